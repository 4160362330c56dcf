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
echo "demo" > "$SRC/etc/hostname"; echo "Welcome to a vunify guest" > "$SRC/etc/motd"; chmod 0600 "$SRC/root"; chown 1000:1000 "$SRC/var/log"
setfattr -n user.origin -v demo "$SRC/etc/hostname"

v init
# A template from a tarball (streamed into the store), then guests made from it in one go.
tar --xattrs --xattrs-include='*' --acls --numeric-owner -C "$SRC" -cpf "$WORK/template.tar" .
v template import busybox "$WORK/template.tar"
v guest create web --template busybox --count 5
# Two guests added from trees made elsewhere: unify finds what they share with the store.
for i in 1 2; do
  cp -a "$SRC" "$WORK/legacy$i"
  echo "legacy-$i" > "$WORK/legacy$i/etc/hostname"
  v guest add "legacy-$i" --from "$WORK/legacy$i" --move
done
v guest list
v unify --all
if "$V" mount --help >/dev/null 2>&1; then
  v mount --all
  echo "+ cat $POOL/guests/web-01/root/etc/hostname"; cat "$POOL/guests/web-01/root/etc/hostname"
  echo "+ echo 'only in web-01' >> guests/web-01/root/etc/motd   (the write breaks the shared link)"
  echo "only in web-01" >> "$POOL/guests/web-01/root/etc/motd"
  echo "+ cat guests/web-01/root/etc/motd; cat guests/web-02/root/etc/motd"
  cat "$POOL/guests/web-01/root/etc/motd"; cat "$POOL/guests/web-02/root/etc/motd"
  v guest list
  v umount --all
fi
v stat
v verify
