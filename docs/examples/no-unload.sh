#!/usr/bin/env bash
# docs/tutorial.md, step 4: hello and the guest test
# docs/examples/unload-support.sh on the default kernel, then on a kernel
# built without CONFIG_MODULE_UNLOAD (the no-unload flavor in lkmlab.toml).
#
#   docs/examples/no-unload.sh [WORK_DIR]     (default: target/tutorial/no-unload)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-target/tutorial/no-unload}
rm -rf "$work"
mkdir -p "$work/hello/guest-tests"
cp module/hello.rs "$work/hello/"
echo 'obj-m := hello.o' >"$work/hello/Kbuild"
cp docs/examples/unload-support.sh "$work/hello/guest-tests/"

for flavor in default no-unload; do
  echo "== $flavor: $(grep -h '^CONFIG_MODULE_UNLOAD[= ]\|^# CONFIG_MODULE_UNLOAD ' \
    "$(lkmlab kernel --flavor "$flavor" 2>/dev/null)/.config")"
  ko=$(lkmlab module --flavor "$flavor" --module "$work/hello" 2>/dev/null)
  readelf -p .modinfo "$ko" | grep -o 'vermagic=.*' | sed 's/ *$//'
  status=0
  lkmlab test --flavor "$flavor" --module "$work/hello" --out "$work/$flavor" \
    >"$work/$flavor.txt" 2>/dev/null || status=$?
  grep -E -A1 '^FAIL' "$work/$flavor.txt" | grep -v '^--$' || true
  echo "$(tail -n 1 "$work/$flavor.txt") (exit status $status); the guest test printed:"
  sed -n '/^# running guest_tests.unload-support$/,/guest_tests.unload-support$/p' \
    "$work/$flavor/results.ktap" | sed '1d;$d'
done

echo "== the no-unload build of hello.ko, offered to the default kernel"
status=0
lkmlab test --kernel "$(lkmlab kernel 2>/dev/null)/arch/x86/boot/bzImage" \
  --modules "$(dirname "$ko")" --module "$work/hello" --out "$work/cross" \
  >/dev/null 2>&1 || status=$?
echo "lkmlab test: exit status $status; the kernel said:"
# The kernel checks the size of struct module before the vermagic: either
# refusal may come first.
grep -oE 'hello: version magic .*|module hello: \.gnu\.linkonce\.this_module section size must match .*' \
  "$work/cross/console.log" | sort -u
