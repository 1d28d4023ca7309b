#!/usr/bin/env bash
# Is the kernel lkmlab builds reproducible to the bit? Builds the pinned
# kernel twice from empty caches, in two directories with different paths,
# under two user names and two host names, minutes apart (two clocks), then
# compares bzImage, vmlinux, Module.symvers and the .ko files built against
# each tree (module/'s) byte for byte. Results: docs/reproducibility.md.
#
#   scripts/reproducibility.sh [FLAVOR]      # default: default
#
# Two clean kernel builds: about 2 x 5-15 minutes on 2 cores. Needs root for
# the second host name (unshare --uts); lkmlab on PATH (or $LKMLAB). The
# pinned files come from $LKMLAB_MIRROR when set (sha256-verified as always).
# With diffoscope installed, a difference is explained file by file.
set -euo pipefail
cd "$(dirname "$0")/.."
flavor=${1:-default}
lkmlab=$(command -v "${LKMLAB:-lkmlab}") || { echo "lkmlab not found (set LKMLAB)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "run as root: the second build gets its own host name (unshare --uts)" >&2; exit 2; }
work=$(mktemp -d /tmp/lkmlab-repro.XXXXXX)
keep=${KEEP:-0}
trap '[ "$keep" = 1 ] || rm -rf "$work"' EXIT

# build NAME DIR USER HOST: a copy of the project in DIR, an empty cache in
# DIR/cache, the kernel and module/ built there as USER on HOST. `whoami` and
# `uname -n` are what Kbuild asks when KBUILD_BUILD_USER/HOST are not set.
build() {
  local name=$1 dir=$2 user=$3 host=$4
  mkdir -p "$dir/project" "$dir/bin"
  cp -r lkmlab.toml kernel-config module "$dir/project/"
  printf '#!/bin/sh\necho %s\n' "$user" >"$dir/bin/whoami"
  chmod +x "$dir/bin/whoami"
  echo "== build $name: $dir, user $user, host $host, $(date -u '+%F %T') UTC"
  unshare --uts env "PATH=$dir/bin:$PATH" "USER=$user" "LOGNAME=$user" \
    "LKMLAB_CACHE=$dir/cache" LKMLAB="$lkmlab" HOST_NAME="$host" DIR="$dir" FLAVOR="$flavor" \
    bash -c 'set -e
      hostname "$HOST_NAME"
      "$LKMLAB" --project "$DIR/project" kernel --flavor "$FLAVOR" >"$DIR/tree"
      "$LKMLAB" --project "$DIR/project" module --flavor "$FLAVOR" >"$DIR/kos"' \
    2>&1 | grep -E 'lkmlab: (kernel|configuring)' || true
  [ -s "$dir/tree" ] || { echo "build $name failed"; exit 1; }
}

a=$work/a
b=$work/second/a-longer-path-for-the-other-build
build A "$a" lkmlab-repro-a builder-one
build B "$b" someone-else another-host.example

tree_a=$(cat "$a/tree")
tree_b=$(cat "$b/tree")
compare=(arch/x86/boot/bzImage vmlinux Module.symvers)
different=0
report() {
  local what=$1 fa=$2 fb=$3
  if cmp -s "$fa" "$fb"; then
    echo "identical  $what  $(sha256sum <"$fa" | cut -c1-16)"
  else
    different=$((different + 1))
    echo "DIFFERENT  $what  ($(cmp -l "$fa" "$fb" 2>/dev/null | wc -l) bytes differ)"
    if command -v diffoscope >/dev/null; then
      diffoscope --text - "$fa" "$fb" 2>/dev/null | head -n 60 || true
    fi
  fi
}
for f in "${compare[@]}"; do
  report "$f" "$tree_a/$f" "$tree_b/$f"
done
while read -r ko; do
  rel=${ko#"$a/project/"}
  report "$rel" "$ko" "$b/project/$rel"
done <"$a/kos"
echo "uname -v of both: $(strings "$tree_a/arch/x86/boot/bzImage" | grep -m1 '^7\.' || true)"
if [ "$different" -eq 0 ]; then
  echo "reproducible: every file identical"
else
  echo "NOT reproducible: $different file(s) differ (KEEP=1 keeps $work)"
  exit 1
fi
