#!/usr/bin/env bash
# Breaking one thing at a time must make lkmlab fail, with a message that
# names the cause. Each case runs the real CLI against the real pinned kernel
# (built and cached by `lkmlab kernel` first) and checks its exit status and
# its words. Ends with `N passed, N failed`.
#
#   tests/e2e/failure-modes.sh            # needs lkmlab on PATH (or $LKMLAB)
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
lkmlab=${LKMLAB:-lkmlab}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. tests/e2e/lib.sh

# expect NAME STATUS PATTERN... -- COMMAND...: COMMAND must exit with STATUS
# and its output must match every PATTERN (grep -E).
expect() {
  local name=$1 status=$2
  shift 2
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  local out="$work/$name.out" got problems=()
  "$@" >"$out" 2>&1
  got=$?
  [ "$got" -eq "$status" ] || problems+=("exit status $got, expected $status")
  for p in "${patterns[@]}"; do
    grep -qE -- "$p" "$out" || problems+=("output lacks /$p/")
  done
  if [ ${#problems[@]} -eq 0 ]; then
    ok "$name"
  else
    fail "$name: ${problems[*]}" "$(cat "$out")"
  fi
}

fixture() { echo "tests/fixtures/$1"; }

# refuse NAME PATTERN...: the output of the `expect` named NAME must match
# none of the PATTERNs (grep -E): what a verdict must not say.
refuse() {
  local name=$1 out="$work/$1.out" p found=()
  shift
  for p in "$@"; do
    grep -qE -- "$p" "$out" && found+=("/$p/")
  done
  if [ ${#found[@]} -eq 0 ]; then
    ok "$name says nothing of the rest"
  else
    fail "$name says ${found[*]}" "$(cat "$out")"
  fi
}

expect module-init-fails 1 'FAIL init_fails\.insmod' 'No such device' '[0-9]+ passed, [1-9][0-9]* failed' -- \
  "$lkmlab" test --module "$(fixture init-fails)" --out "$work/init-fails"

expect kernel-warning 1 'FAIL kernel_log\.kernel_warning' 'WARNING: warns\.rs:[0-9]+ at init_module' -- \
  "$lkmlab" test --module "$(fixture warns)" --out "$work/warns"

expect guest-panic 1 'FAIL vm\.crash' 'kernel panicked.*while running panics\.insmod' \
  'Kernel panic - not syncing: lkmlab fixture: deliberate panic' -- \
  "$lkmlab" test --module "$(fixture panics)" --out "$work/panics"

# A case that never returns: the runner's watchdog dumps where it waits
# before the host's timeout, and the verdict quotes it (vm.case_hung), not
# a bare timeout; what the plan had after it did not run.
expect guest-hang 1 'FAIL vm\.case_hung' 'hangs\.insmod hung: the runner.s watchdog found it still running after [0-9]+s' \
  'task init \(pid [0-9]+, state [A-Z][^)]*\) of hangs\.insmod' 'sysrq: Show Blocked State' 'task:init +state:D' \
  'msleep' 'not run \([0-9]+\), because hangs\.insmod hung' '    hangs\.rmmod' -- \
  "$lkmlab" test --module "$(fixture hangs)" --out "$work/hangs" --timeout 10
refuse guest-hang 'FAIL vm\.timeout' 'FAIL ktap\.structure' 'FAIL kernel_log\.'

# A guest test that deadlocks in the kernel (a mutex taken twice in read):
# the watchdog's dump names the blocked reader and where it waits.
expect hangs-in-read 1 'FAIL vm\.case_hung' 'guest_tests\.read hung: the runner.s watchdog found it still running' \
  'task:cat +state:D' '__mutex_lock' 'hangs_in_read::Device as kernel::miscdevice::MiscDevice>::read_iter\+0x[0-9a-f]+/0x[0-9a-f]+ \[hangs_in_read\]' \
  'not run \(1\), because guest_tests\.read hung' '    guest_tests\.unreached' \
  '[0-9]+ passed, 1 failed, 1 not run' -- \
  "$lkmlab" test --module "$(fixture hangs-in-read)" --out "$work/hangs-in-read" --timeout 20
refuse hangs-in-read 'FAIL vm\.timeout' 'FAIL ktap\.structure' 'FAIL kernel_log\.'

# An oops ends the run (oops=panic): the oops is quoted, the case that was
# running fails, the rest of the plan is named as not run, and nothing else
# fails for it — no crash, no panic, no missing results, no timeout.
expect oops-in-init 1 'FAIL oops_in_init\.insmod' 'the kernel oopsed while this case ran' \
  'FAIL kernel_log\.kernel_BUG' 'BUG: kernel NULL pointer dereference' 'RIP: 0010:.*oops_in_init' \
  'not run \(3\), because the kernel oopsed in oops_in_init\.insmod' '    oops_in_init\.rmmod' \
  '    guest_tests\.unreached' '0 passed, 2 failed, 3 not run' -- \
  "$lkmlab" test --module "$(fixture oops-in-init)" --out "$work/oops-in-init"
refuse oops-in-init 'FAIL vm\.' 'FAIL ktap\.' 'FAIL kernel_log\.kernel_panic'

expect oops-in-read 1 'FAIL guest_tests\.read' 'BUG: kernel NULL pointer dereference' 'Oops: ' \
  'RIP: 0010:.*oops_in_read' -- \
  "$lkmlab" test --module "$(fixture oops-in-read)" --out "$work/oops-in-read"

# The debug flavor's detectors (kmemleak, lockdep): its kernel is built by
# `lkmlab kernel --flavor debug` beforehand.
# Code that runs after its module is gone: the work item is still asleep
# when the guest test unloads the module and ends; the runner's wait after
# the last unload lets it wake inside the run, and the verdict names whose
# code ran and from what (not a bare page fault).
expect work-after-unload 1 'FAIL kernel_log\.code_ran_after_unload' \
  'a work item of work_after_unload ran after the module was unloaded' \
  'FAIL kernel\.quiet_after_unload' 'ok +guest_tests\.unload-at-once' -- \
  "$lkmlab" test --module "$(fixture work-after-unload)" --out "$work/work-after-unload"
refuse work-after-unload 'FAIL kernel_log\.kernel_BUG' 'FAIL kernel_log\.kernel_oops' 'FAIL vm\.'

# A user-space address read directly from kernel code: the VM's CPU has
# SMAP (-cpu qemu64,+smep,+smap), so the read faults instead of silently working.
expect user-pointer 1 'FAIL guest_tests\.read-user-memory' '#PF: supervisor read access in kernel mode' \
  'permissions violation' 'in <user_pointer::Device as kernel::miscdevice::MiscDevice>::write_iter \[user_pointer\]' -- \
  "$lkmlab" test --module "$(fixture user-pointer)" --out "$work/user-pointer"

# A guest test that loads a module itself and ends without unloading it.
expect leaves-loaded 1 'FAIL guest_tests\.forgets-rmmod' 'the test left leaves_loaded loaded' -- \
  "$lkmlab" test --module "$(fixture leaves-loaded)" --out "$work/leaves-loaded"
refuse leaves-loaded 'FAIL leaves_loaded\.' 'FAIL kernel_log\.' 'FAIL vm\.' 'quiet_after_unload'

expect leak-on-unload-debug 1 'FAIL kernel\.kmemleak_no_leaks' 'unreferenced object 0x[0-9a-f]+ \(size [0-9]+\)' \
  'kkkkkkkkkkkkkkkk' -- \
  "$lkmlab" test --flavor debug --module "$(fixture leaks)" --out "$work/leaks"

# Drivers (docs/drivers.md): a probe that fails leaves the device without a
# driver though the module loads; a remove that forgets what probe allocated.
expect probe-fails 1 'FAIL kernel_log\.driver_probe_failed' \
  'probe_fails 0000:[0-9a-f:.]+: probe with driver probe_fails failed with error -22' \
  'FAIL probe_fails\.kernel_log_clean' -- \
  "$lkmlab" test --module "$(fixture probe-fails)" --out "$work/probe-fails"

expect irq-after-remove 1 'FAIL irq_after_remove\.rmmod' \
  'after unbinding 0000:[0-9a-f:.]+ \(irq_after_remove\) from irq_after_remove.s drivers, /proc/interrupts still lists handlers .*\(IRQ [0-9]+: irq_after_remove\)' -- \
  "$lkmlab" test --module "$(fixture irq-after-remove)" --out "$work/irq-after-remove"

expect qemu-dies 1 'FAIL vm\.qemu' 'QEMU failed \(signal: 6.*hardware error: EDU: DMA range 0x0*50000-0x0*50007 out of bounds' \
  'not run \(2\), because QEMU failed in qemu_dies\.insmod' -- \
  "$lkmlab" test --module "$(fixture qemu-dies)" --out "$work/qemu-dies"
refuse qemu-dies 'vm\.crash' 'RAX='

# A property value QEMU refuses: QEMU fails at start, and that is the one
# failure reported (not the missing results after it).
refused="$work/device-refused"
mkdir -p "$refused"
cp module/hello.rs "$refused/"
echo 'obj-m := hello.o' >"$refused/Kbuild"
printf '[[devices]]\ndevice = "edu"\nproperties = { addr = "zz" }\n' >"$refused/devices.toml"
expect device-refused 1 'FAIL vm\.qemu' "Property 'edu\.addr' doesn't take value 'zz'" '^0 passed, 1 failed' -- \
  "$lkmlab" test --module "$refused" --out "$work/device-refused-out"
refuse device-refused 'vm\.no_results' 'ktap\.structure'

expect remove-leaks-debug 1 'FAIL kernel\.kmemleak_no_leaks' 'unreferenced object 0x[0-9a-f]+ \(size 256\)' \
  'pci_device_probe' -- \
  "$lkmlab" test --flavor debug --module "$(fixture remove-leaks)" --out "$work/remove-leaks"

expect missing-unlock-debug 1 'WARNING: lock held when returning to user space' 'missing_unlock' -- \
  "$lkmlab" test --flavor debug --module "$(fixture missing-unlock)" --out "$work/missing-unlock"

# The bugs Rust does not rule out, each caught by the debug flavor (KASAN,
# lockdep, fault injection + kmemleak) or by every flavor (SMP, the stack
# guard page), with the kernel's own report and the module's function quoted.
# On the debug kernel lockdep reports first (the work item's lock class
# lived in the freed module; which of its reports varies from run to run):
# that first report is quoted and named, not the oops after it or a bare
# lockdep finding.
expect work-after-unload-debug 1 'FAIL kernel_log\.code_ran_after_unload' \
  'a work item of work_after_unload ran after the module was unloaded' 'Workqueue: events 0x' -- \
  "$lkmlab" test --flavor debug --module "$(fixture work-after-unload)" --out "$work/work-after-unload-debug"
refuse work-after-unload-debug 'FAIL kernel_log\.locking_problem' 'FAIL kernel_log\.kernel_BUG' 'FAIL kernel_log\.kernel_oops'

expect use-after-free-debug 1 'FAIL kernel_log\.memory_error_\(KASAN\)' \
  'BUG: KASAN: slab-use-after-free in .*read_after_free' 'in use_after_free::read_after_free \[use_after_free\]' \
  'Freed by task' -- \
  "$lkmlab" test --flavor debug --module "$(fixture use-after-free)" --out "$work/use-after-free"

expect out-of-bounds-debug 1 'FAIL kernel_log\.memory_error_\(KASAN\)' \
  'BUG: KASAN: slab-out-of-bounds in .*sum_one_too_many' 'Read of size 1' -- \
  "$lkmlab" test --flavor debug --module "$(fixture out-of-bounds)" --out "$work/out-of-bounds"

expect double-free-debug 1 'FAIL kernel_log\.memory_error_\(KASAN\)' \
  'BUG: KASAN: double-free in ' 'in double_free::free_twice \[double_free\]' -- \
  "$lkmlab" test --flavor debug --module "$(fixture double-free)" --out "$work/double-free"

expect abba-locks-debug 1 'FAIL kernel_log\.locking_problem_\(lockdep\)' \
  'WARNING: possible circular locking dependency detected' 'abba_locks::accounts' 'abba_locks::audit' \
  'abba_locks::AbbaLocks>?::audit' -- \
  "$lkmlab" test --flavor debug --module "$(fixture abba-locks)" --out "$work/abba-locks"

expect sleep-in-atomic-debug 1 'FAIL kernel_log\.kernel_BUG' 'BUG: sleeping function called from invalid context' \
  'in <sleep_in_atomic::SleepInAtomic>::record \[sleep_in_atomic\]' -- \
  "$lkmlab" test --flavor debug --module "$(fixture sleep-in-atomic)" --out "$work/sleep-in-atomic"

# Rust's overflow checks are on in every flavor: a panic, quoted from its
# own message, in the function that overflowed.
expect rust-overflow 1 'FAIL kernel_log\.Rust_panic' 'rust_kernel: panicked at overflow\.rs:[0-9]+:[0-9]+:' \
  'attempt to add with overflow' 'in overflow::ten_more \[overflow\]' -- \
  "$lkmlab" test --module "$(fixture overflow)" --out "$work/overflow"

expect data-race 1 'FAIL guest_tests\.two-writers' 'data race: [0-9]+ updates were lost' -- \
  "$lkmlab" test --module "$(fixture data-race)" --out "$work/data-race"

expect stack-overflow 1 'FAIL kernel_log\.stack_overflow' 'stack guard page was hit' \
  'in stack_overflow::descend \[stack_overflow\]' -- \
  "$lkmlab" test --module "$(fixture stack-overflow)" --out "$work/stack-overflow"

# The leak is reported once, at the step whose load made it: that step and
# its sweep fail, no other step does, and kmemleak's own case passes.
expect leak-on-init-error-fault-injection 1 '^FAIL leak_on_init_error\.fault_injection$' \
  '^  FAIL init_fails_cleanly_at_alloc_2$' '^  ok   init_fails_cleanly_at_alloc_1$' \
  '^  ok   loads_when_no_allocation_fails$' \
  '^ {9}unreferenced object 0x[0-9a-f]+ \(size 512\):$' '^ok   kernel\.kmemleak_no_leaks$' \
  '^4 passed, 1 failed$' -- \
  "$lkmlab" test --flavor debug --fault-injection --module "$(fixture leak-on-init-error)" \
    --out "$work/leak-on-init-error"
# ... and without fault injection the same module passes: the bug is in an
# error path only.
expect leak-on-init-error-passes-without 0 '[0-9]+ passed, 0 failed' -- \
  "$lkmlab" test --flavor debug --module "$(fixture leak-on-init-error)" --out "$work/leak-on-init-error-plain"

expect module-does-not-build 2 'module build failed' 'error\[E0308\]: mismatched types' \
  'does_not_build\.rs:[0-9]+:[0-9]+' 'Full log: ' -- \
  "$lkmlab" module --module "$(fixture does-not-build)"

# Code written for std, and kernel items that are not there: rustc's errors,
# then what the kernel crate has instead and where its documentation is
# (`lkmlab doc`, named, never built by a failing build).
expect module-std-collections 2 'module build failed' 'error\[E0107\]' \
  'A kernel module has no `std` or `alloc` crate' '`Vec<T>` → `KVec<T>`' '`String` → `CString`' \
  'lkmlab doc kernel::alloc' -- \
  "$lkmlab" module --module "$(fixture std-collections)"
expect module-unresolved-import 2 'module build failed' 'unresolved import `kernel::sync::Mutexx`' \
  'the missing `kernel::alloc::Flags` argument is that flag' \
  '`kernel::sync::Mutexx`.*`kernel::allocator`' \
  'builds its documentation|documentation of this kernel \(`lkmlab doc`\)' -- \
  "$lkmlab" module --module "$(fixture unresolved-import)"

# A module is built with its kernel's compiler: a CC= or LLVM= that picks
# another one is refused before make runs, both ways.
expect compiler-mismatch-llvm-on-gcc 2 'the module would be built with another compiler than its kernel' \
  'kernel 7\.3\.4 \(default\) was built by: gcc' 'this build would use: +.*clang version 19' 'Drop the CC=/LLVM= make variables' -- \
  "$lkmlab" module LLVM=-19
expect compiler-mismatch-gcc-on-llvm 2 'the module would be built with another compiler than its kernel' \
  'kernel 7\.3\.4 \(debug\) was built by: .*clang version 19' 'this build would use: +gcc' -- \
  "$lkmlab" module --flavor debug CC=gcc

# A wrong file in the mirror: refused for its size, or (of the pinned size)
# with both hashes; nothing unpacked either way.
mkdir -p "$work/mirror" "$work/cache"
deb=$(sed -n '/^\[kernel.deb\]/,/^\[/s/^file = "\(.*\)"/\1/p' lkmlab.toml)
size=$(sed -n '/^\[kernel.deb\]/,/^\[/s/^size = \([0-9]*\)/\1/p' lkmlab.toml)
echo "not the kernel" >"$work/mirror/$deb"
expect wrong-size-in-mirror 2 "is 15 bytes; the pin says $size bytes" 'nothing was unpacked' -- \
  env LKMLAB_CACHE="$work/cache" LKMLAB_MIRROR="$work/mirror" "$lkmlab" fetch
# Of the pinned size (sparse: no disk space) but not the pinned bytes.
truncate -s "$size" "$work/mirror/$deb"
expect wrong-sha256-in-mirror 2 'sha256 mismatch' 'expected 703e369d' 'got +[0-9a-f]{64}' 'nothing was unpacked' -- \
  env LKMLAB_CACHE="$work/cache" LKMLAB_MIRROR="$work/mirror" "$lkmlab" fetch
if [ -n "$(ls -A "$work/cache/src" 2>/dev/null)" ]; then
  echo "FAIL wrong-sha256-in-mirror: something was unpacked into $work/cache/src"
  failed=$((failed + 1))
fi

# A fragment asking for options olddefconfig drops: one that does not exist,
# one whose dependency (BLK_DEV, which needs BLOCK) tinyconfig lacks, one whose
# dependency tinyconfig's SLUB_TINY breaks. Kconfig says which reason applies
# to each, and the failed configure leaves no tree and no lock in the cache.
mkdir -p "$work/project"
cp -r lkmlab.toml kernel-config module "$work/project/"
printf 'CONFIG_LKMLAB_NO_SUCH_OPTION=y\nCONFIG_VIRTIO_BLK=y\nCONFIG_KASAN=y\n' >>"$work/project/kernel-config/base.config"
kernel_cache="${LKMLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lkmlab}/kernel"
# Lock files in the kernel cache without their tree.
orphan_locks() {
  local lock
  for lock in "$kernel_cache"/*.lock; do
    [ -e "$lock" ] && [ ! -d "${lock%.lock}" ] && echo "$lock"
  done
  return 0
}
orphans_before=$(orphan_locks)
expect dropped-kconfig-option 2 'did not survive' \
  'CONFIG_LKMLAB_NO_SUCH_OPTION=y \(kernel-config/base\.config:[0-9]+\) ended up not set: no such symbol in this kernel' \
  'CONFIG_VIRTIO_BLK=y \(kernel-config/base\.config:[0-9]+\) ended up not set: dependency not met: BLK_DEV \[=n\]$' \
  'CONFIG_KASAN=y .* dependency not met: .*!SLUB_TINY \[=y\]' \
  'configure a tree of your own: make -C .* tinyconfig menuconfig' -- \
  "$lkmlab" --project "$work/project" kernel
if grep -q 'build tree' "$work/dropped-kconfig-option.out"; then
  fail "dropped-kconfig-option: the hint points at the build tree, which is deleted" \
    "$(cat "$work/dropped-kconfig-option.out")"
fi
orphans_after=$(orphan_locks)
if [ "$orphans_after" = "$orphans_before" ]; then
  ok "dropped-kconfig-option leaves no lock file behind"
else
  fail "dropped-kconfig-option leaves no lock file behind" "orphan locks now: $orphans_after"
fi

# Missing and too-old tools: doctor names each and prints the fix.
mkdir -p "$work/oldbin"
printf '#!/bin/sh\necho "bindgen 0.60.0"\n' >"$work/oldbin/bindgen"
chmod +x "$work/oldbin/bindgen"
expect bindgen-too-old 2 'FAIL bindgen +0\.60\.0 is older than the kernel.s minimum 0\.71\.1' \
  'fix: cargo install bindgen-cli --locked --version' -- \
  env PATH="$work/oldbin:$PATH" "$lkmlab" doctor
mkdir -p "$work/nobin"
for tool in rustc cargo make gcc ld flex bison bc perl cpio tar xz curl; do
  p=$(command -v "$tool") && ln -sf "$p" "$work/nobin/$tool"
done
expect qemu-missing 2 'FAIL qemu-system-x86_64 +not found' 'fix: sudo apt-get install qemu-system-x86' -- \
  env PATH="$work/nobin" "$(command -v "$lkmlab")" doctor

finish
