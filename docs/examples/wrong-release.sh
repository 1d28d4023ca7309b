#!/usr/bin/env bash
# docs/tutorial.md, step 2: build hello.ko against the headers of another
# kernel release (7.3.4-other) and offer it to the lab's 7.3.4 kernel.
#
#   docs/examples/wrong-release.sh [WORK_DIR]    (default: target/tutorial/wrong-release)
set -euo pipefail
cd "$(dirname "$0")/../.."
work=${1:-target/tutorial/wrong-release}
rm -rf "$work"
mkdir -p "$work/hello"
work=$(cd "$work" && pwd)
tree=$(lkmlab kernel 2>/dev/null)   # the lab's kernel build tree: release 7.3.4

# 1. The headers of kernel "7.3.4-other": what an external module build reads
#    from a kernel tree (what a distribution's linux-headers package holds),
#    copied from the lab's tree; the kernel's own make rules then write the
#    new release into it, as they do for any kernel built with LOCALVERSION.
headers=$work/headers
mkdir -p "$headers/arch/x86" "$headers/rust" "$headers/tools/objtool"
cp -a "$tree"/{Makefile,.config,Module.symvers,source,include,scripts} "$headers/"
cp -a "$tree/arch/x86/include" "$headers/arch/x86/"
cp -a "$tree"/rust/*.rmeta "$tree"/rust/*.so "$headers/rust/"
cp -a "$tree/tools/objtool/objtool" "$headers/tools/objtool/"
make -s -C "$tree/source" O="$headers" ARCH=x86_64 LOCALVERSION=-other \
  outputmakefile include/config/kernel.release include/generated/utsrelease.h
echo "headers of kernel $(cat "$headers/include/config/kernel.release")"

# 2. hello.ko, built against those headers with the same Kbuild command lkmlab
#    runs against the lab's tree.
cp module/hello.rs "$work/hello/"
echo 'obj-m := hello.o' >"$work/hello/Kbuild"
make -s -C "$headers" M="$work/hello" MO="$work/ko" ARCH=x86_64 modules
readelf -p .modinfo "$work/ko/hello.ko" | grep -o 'vermagic=.*'

# 3. Offered to the lab's kernel. lkmlab itself refuses it before booting
#    (it reads the release from the bzImage and the vermagic from the .ko):
status=0
lkmlab test --kernel "$tree/arch/x86/boot/bzImage" --modules "$work/ko" \
  --module "$work/hello" --out "$work/test" 2>&1 | grep -o 'error: .*' || status=$?
# ... and with --allow-foreign-modules it boots it anyway: the hello suite's
#    insmod fails, and the kernel log says why.
status=0
lkmlab test --kernel "$tree/arch/x86/boot/bzImage" --modules "$work/ko" \
  --module "$work/hello" --out "$work/test" --allow-foreign-modules || status=$?
echo "lkmlab test: exit status $status"
echo "the kernel said:"
grep -o 'hello: version magic.*' "$work/test/console.log" | sort -u
