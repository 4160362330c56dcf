#!/bin/bash
# README command 1: install dependencies, build, and run the main job on a scratch pool:
# make several guests, unify them, and show what was saved.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
V=$PWD/build/cli/vunify
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vunify-demo.XXXXXX")
POOL=$WORK/pool
cleanup() { "$V" --pool "$POOL" umount --all >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
v() { echo "+ vunify $*"; "$V" --pool "$POOL" "$@"; }

# A small guest made from busybox-static and a slice of the host's /usr, with varied metadata.
SRC=$WORK/template
mkdir -p "$SRC"/{bin,etc,usr/lib,var/log,root}
cp -a /bin/busybox "$SRC/bin/busybox"
for t in sh ls cat echo; do ln -s busybox "$SRC/bin/$t"; done
cp -a /usr/share/common-licenses "$SRC/usr/lib/" 2>/dev/null || true
cp -a /usr/lib/x86_64-linux-gnu/libsqlite3.so.* /usr/lib/x86_64-linux-gnu/libarchive.so.* "$SRC/usr/lib/" 2>/dev/null || true
echo "demo" > "$SRC/etc/hostname"; chmod 0600 "$SRC/root"; chown 1000:1000 "$SRC/var/log"
setfattr -n user.origin -v demo "$SRC/etc/hostname"

v init
for i in 1 2 3 4 5; do
  cp -a "$SRC" "$WORK/g$i"
  echo "guest-$i" > "$WORK/g$i/etc/hostname"           # each guest has its own hostname
  v guest add "web-$i" --from "$WORK/g$i" --move
done
v guest list
v unify --all
v stat
v verify
