# The geometric mean of the ratios of column a to column b over the input's lines, with its 95%
# confidence interval (normal approximation on the logs): "0.966 [0.926, 1.008]".
# Usage: awk -v a=COL -v b=COL -f bench/pair_ci.awk FILE   (used by bench/limits and bench/context)
{ l = log($a / $b); s += l; q += l * l; n++ }
END {
  m = s / n; sd = n > 1 ? sqrt((q - n * m * m) / (n - 1)) : 0; h = 1.96 * sd / sqrt(n)
  printf "%.3f [%.3f, %.3f]", exp(m), exp(m - h), exp(m + h)
}
