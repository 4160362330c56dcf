#!/bin/bash
# README command 1: install dependencies, build vunify (not the tests), and run the main job on a
# demo pool: make several guests, unify them, write through a view, run one in a context, show what was saved. The
# pool stays for you to explore (nothing stays mounted); `bash scripts/demo.sh --clean` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
V=$PWD/build/cli/vunify
WORK=${VUNIFY_DEMO_DIR:-${TMPDIR:-/tmp}/vunify-demo}
POOL=$WORK/pool

# Unmounts the demo's views and removes its directory; refuses if anything stays mounted in it.
remove_demo() {
  [ -e "$WORK" ] || return 0
  if [ -x "$V" ] && [ -e "$POOL/vunify.db" ]; then "$V" --pool "$POOL" stop --all >/dev/null 2>&1 || true; "$V" --pool "$POOL" umount --all >/dev/null || true; fi
  if awk -v w="$WORK/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
    echo "scripts/demo.sh: something is still mounted under $WORK; not removing it" >&2
    return 1
  fi
  rm -rf "$WORK"
}

if [ "${1:-}" = "--clean" ]; then
  remove_demo
  echo "removed $WORK"
  exit 0
fi

bash scripts/deps.sh
bash scripts/build.sh vunify
if [ -e "$WORK" ]; then echo "removing the previous demo in $WORK"; remove_demo; fi
on_exit() {
  local rc=$?
  [ -e "$POOL/vunify.db" ] && { "$V" --pool "$POOL" stop --all >/dev/null 2>&1; "$V" --pool "$POOL" umount --all >/dev/null 2>&1; } || true
  if [ $rc -ne 0 ]; then echo "demo failed (exit $rc); its pool stays in $POOL (views unmounted); bash scripts/demo.sh --clean removes it" >&2; fi
}
trap on_exit EXIT
v() { echo "+ vunify $*"; "$V" --pool "$POOL" "$@"; }
mkdir -p "$WORK"

# A small guest made from busybox-static and a slice of the host's /usr, with varied metadata.
SRC=$WORK/template
mkdir -p "$SRC"/{bin,etc,usr/lib,var/log,root}
cp -a /bin/busybox "$SRC/bin/busybox"
for t in sh ls cat echo ps hostname sleep; do ln -s busybox "$SRC/bin/$t"; done
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
rm -rf "$SRC" "$WORK/template.tar"
v guest list
v unify --all
v mount --all
echo "+ cat $POOL/guests/web-01/root/etc/hostname"; cat "$POOL/guests/web-01/root/etc/hostname"
echo "+ echo 'only in web-01' >> guests/web-01/root/etc/motd   (the write breaks the shared link)"
echo "only in web-01" >> "$POOL/guests/web-01/root/etc/motd"
echo "+ cat guests/web-01/root/etc/motd; cat guests/web-02/root/etc/motd"
cat "$POOL/guests/web-01/root/etc/motd"; cat "$POOL/guests/web-02/root/etc/motd"
v guest list
v umount --all
# Run one guest in a context of its own: PID 1 is vunify's small init, the hostname is the guest's,
# only the guest's own processes are visible.
v start web-01
v exec web-01 -- /bin/sh -c 'echo "inside: hostname $(hostname); its processes:"; ps -o pid,comm'
v status web-01
v stop web-01
v stat
v verify

cat <<MSG

The demo pool stays in $POOL (no view is left mounted). Next commands to try:
  alias vunify='$V --pool $POOL'
  vunify guest list; vunify stat web-01 legacy-1; vunify template list
  vunify mount web-01 && ls -li $POOL/guests/web-01/root/bin && vunify umount web-01
  vunify start web-02 && vunify exec web-02 -- /bin/sh -c 'hostname; ps' && vunify ps --all && vunify stop web-02
  vunify guest create db --template busybox; vunify unify --all --dry-run
  vunify template export busybox $WORK/busybox.tar.xz; vunify fsck; vunify gc --dry-run
Remove it: bash scripts/demo.sh --clean
  (that is: $V --pool $POOL umount --all && rm -rf $WORK)
MSG
