#!/usr/bin/env bash
# The cheap form of scripts/reproducibility.sh, for CI: instead of two clean
# kernel builds, rebuild only what the machine-specific inputs touch, twice
# with different values, and compare the results byte for byte.
#
#   1. Time, user, host: two copies of the built default tree are relinked
#      (the version stamp and the built-in initramfs regenerated; vmlinux,
#      bzImage and Module.symvers redone), each in a mount namespace where it
#      takes the tree's own path, under another host name (unshare --uts),
#      another user name (the `whoami` Kbuild asks), at another time.
#   2. Paths: two copies of the tree and of the Rust library source, each at
#      other paths, rebuild the Rust objects that embed source paths (core:
#      the library's panic locations; bindings: code generated in the tree).
#
# Each rebuild runs `make` exactly as lkmlab does (`lkmlab show build-env`,
# its paths swapped for the copies'). The two results of each part must be
# identical, and (without --drop) identical to the original tree's.
#
#   tests/e2e/reproducible.sh                 # after `lkmlab kernel`
#   tests/e2e/reproducible.sh --drop VAR      # the seeded form: without one of
#       lkmlab's settings (KBUILD_BUILD_TIMESTAMP, _USER, _HOST, _VERSION,
#       KRUSTFLAGS) the comparisons must fail; exits 0 only if they did
#
# Needs root (unshare). Ends with `N passed, N failed`; exit status 2 when a
# rebuild itself fails.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
. tests/e2e/lib.sh
lkmlab=${LKMLAB:-lkmlab}
drop=""
if [ "${1:-}" = "--drop" ]; then
  drop=${2:?--drop needs a variable name}
fi
[ "$(id -u)" -eq 0 ] || { echo "tests/e2e/reproducible.sh needs root (unshare --mount --uts)"; exit 2; }
work=$(mktemp -d /tmp/lkmlab-repro-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$lkmlab" show build-env >"$work/env.json" || exit 2
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/env.json" "$1"; }
tree=$(field tree)
lib=$(field rust_lib_src)
[ -f "$tree/lkmlab-build.json" ] || { echo "$tree is not built: run \`lkmlab kernel\` first"; exit 2; }

# make_cmd TREE LIB TARGET...: lkmlab's make command line for TREE with the
# Rust library at LIB (lkmlab's paths swapped for these), without $drop.
make_cmd() {
  python3 - "$work/env.json" "$tree" "$lib" "$drop" "$@" <<'PY'
import json, shlex, sys
setup = json.load(open(sys.argv[1]))
tree, lib, drop, t, l = sys.argv[2:7]
env = {k: v.replace(lib, l).replace(tree, t) for k, v in setup["env"].items() if k != drop}
cmd = ["env", *(f"{k}={v}" for k, v in env.items()),
       "make", "-C", setup["source"], f"O={t}", *setup["make_args"], "-j2", *sys.argv[7:]]
print(" ".join(shlex.quote(c) for c in cmd))
PY
}

# same WHAT FILE-A FILE-B
same() {
  if cmp -s "$2" "$3"; then
    ok "$1"
  else
    fail "$1" "$(cmp -l "$2" "$3" 2>/dev/null | wc -l) bytes differ: $2 and $3"
  fi
}

# relink COPY USER HOST: COPY (of the tree) relinked at the tree's path.
relink() {
  local copy=$1 user=$2 host=$3
  cp -a "$tree" "$copy"
  mkdir -p "$copy.bin"
  printf '#!/bin/sh\necho %s\n' "$user" >"$copy.bin/whoami"
  chmod +x "$copy.bin/whoami"
  q() { printf %q "$1"; }
  unshare --mount --uts bash -c "set -e
    mount --bind $(q "$copy") $(q "$tree")
    hostname $(q "$host")
    cd $(q "$tree")
    rm -f include/generated/utsversion.h include/generated/compile.h .version \
      init/version.o init/version-timestamp.o usr/initramfs_data.cpio usr/initramfs_data.o
    PATH=$(q "$copy.bin"):\$PATH $(make_cmd "$tree" "$lib" bzImage modules)" >"$copy.log" 2>&1 ||
    { tail -n 20 "$copy.log"; return 1; }
}

part1=(arch/x86/boot/bzImage vmlinux Module.symvers)
case $drop in ""|KBUILD_*)
  echo "== 1. relinking twice: another time, user and host${drop:+, without $drop}"
  if relink "$work/one" someone-else build-host-one && sleep 2 &&
     relink "$work/two" another-person build-host-two.example; then
    for f in "${part1[@]}"; do
      same "relinks agree: $f" "$work/one/$f" "$work/two/$f"
      [ -n "$drop" ] || same "relink equals the cached build: $f" "$work/one/$f" "$tree/$f"
    done
  else
    echo "relinking the tree failed (log above)"
    exit 2
  fi
  ;;
esac

# rebuild_rust DIR: copies of the tree and the Rust library under DIR, and the
# path-bearing Rust objects rebuilt there.
# (Not libcore.rmeta: rustc metadata keeps the local source path beside the
# remapped one, for diagnostics; it is in no image and no module.)
part2=(rust/core.o rust/bindings.o)
rebuild_rust() {
  local dir=$1
  mkdir -p "$dir/lib"
  cp -a "$tree" "$dir/tree"
  cp -a "$lib" "$dir/lib/library"
  rm -f "$dir/tree/rust/core.o" "$dir/tree/rust/libcore.rmeta" "$dir/tree/rust/bindings.o"
  bash -c "$(make_cmd "$dir/tree" "$dir/lib/library" rust/core.o rust/bindings.o)" >"$dir/make.log" 2>&1 ||
    { tail -n 20 "$dir/make.log"; return 1; }
}
case $drop in ""|KRUSTFLAGS)
  echo "== 2. Rust objects rebuilt at two other paths${drop:+, without $drop}"
  if rebuild_rust "$work/p" && rebuild_rust "$work/another/longer/path"; then
    for f in "${part2[@]}"; do
      same "rebuilds agree: $f" "$work/p/tree/$f" "$work/another/longer/path/tree/$f"
      [ -n "$drop" ] || same "rebuild equals the cached build: $f" "$work/p/tree/$f" "$tree/$f"
    done
  else
    echo "rebuilding the Rust objects failed (log above)"
    exit 2
  fi
  ;;
esac

if [ -n "$drop" ]; then
  echo "$passed passed, $failed failed"
  if [ "$failed" -gt 0 ]; then
    echo "seeded: without $drop the check fails, as it must"
    exit 0
  fi
  echo "seeded: without $drop the check still passes: it cannot see that setting's leak"
  exit 1
fi
finish
