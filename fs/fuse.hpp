// The libfuse3 low-level API at the version vunify is written against (3.12+ loop config).
#pragma once
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>
