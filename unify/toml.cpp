// toml++'s implementation, compiled once into vunify here (TOML_HEADER_ONLY=0 everywhere else)
// instead of loaded from libtomlplusplus.so at every start.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
