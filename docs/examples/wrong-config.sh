#!/usr/bin/env bash
# docs/tutorial.md, step 2: build hello.ko against the debug flavor's tree
# (same release, another configuration) and offer it to the default kernel.
#
#   docs/examples/wrong-config.sh [WORK_DIR]     (default: target/tutorial/wrong-config)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-target/tutorial/wrong-config}
rm -rf "$work"
mkdir -p "$work/hello"
cp module/hello.rs "$work/hello/"
echo 'obj-m := hello.o' >"$work/hello/Kbuild"
# Each kernel is built first if it is not yet: the debug one takes several
# minutes (10-25 on a small machine), so lkmlab's messages and its progress
# line stay on the terminal; when both are built, each says so in one line.
echo "wrong-config.sh: building the default and debug kernels where needed (the first debug build takes several minutes)"
default=$(lkmlab kernel)
debug=$(lkmlab kernel --flavor debug)
echo "default tree: release $(cat "$default/include/config/kernel.release")"
echo "debug tree:   release $(cat "$debug/include/config/kernel.release")"

ko=$(lkmlab module --flavor debug --module "$work/hello" 2>/dev/null)
readelf -p .modinfo "$ko" | grep -o 'vermagic=.*'

status=0
lkmlab test --kernel "$default/arch/x86/boot/bzImage" --modules "$(dirname "$ko")" \
  --module "$work/hello" --out "$work/test" || status=$?
echo "lkmlab test: exit status $status"
echo "the kernel said:"
grep -o 'module hello: .*' "$work/test/console.log" | sort -u
