#!/bin/bash
# Installs everything vunify needs to build, test and run, from Debian 12's own archive.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then echo "scripts/deps.sh: run as root (apt-get)" >&2; exit 1; fi
PKGS=(build-essential cmake pkg-config
      libfuse3-dev fuse3 libxxhash-dev libsqlite3-dev libarchive-dev catch2 libcli11-dev libfmt-dev
      nlohmann-json3-dev libtomlplusplus-dev libseccomp-dev libcap-dev libmnl-dev
      acl attr util-linux e2fsprogs iproute2 busybox-static debootstrap python3-minimal xz-utils zstd)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
