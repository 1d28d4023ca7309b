#!/bin/sh
# Shared by the guest tests of this directory (sourced after pci.sh): load
# rust_edu, talk to /dev/edu, check that nothing of it remains.

EDU_DEV=/dev/edu

# fail MESSAGE...: print it with the kernel's last lines, unload, exit 1.
fail() {
    echo "$*"
    dmesg | tail -n 20
    exec 3>&- 2>/dev/null
    rmmod rust_edu 2>/dev/null
    exit 1
}

# edu_load: insmod rust_edu and check that it bound the edu device, whose
# address it leaves in $EDU_ADDR.
edu_load() {
    EDU_ADDR=$(pci_find 0x1234 0x11e8) || exit 1
    insmod "$LKMLAB_MODULES/rust_edu.ko" || exit 1
    edu_expect_bound
}

# edu_expect_bound: the device is bound to rust_edu, /dev/edu is there.
edu_expect_bound() {
    [ "$(bound_to "$EDU_ADDR")" = rust_edu ] || fail "$EDU_ADDR is bound to '$(bound_to "$EDU_ADDR")', expected rust_edu"
    [ -e "/sys/bus/pci/drivers/rust_edu/$EDU_ADDR" ] || fail "no /sys/bus/pci/drivers/rust_edu/$EDU_ADDR"
    [ -c "$EDU_DEV" ] || fail "no character device $EDU_DEV"
}

# edu_unload: rmmod rust_edu and check that nothing of it remains.
edu_unload() {
    rmmod rust_edu || fail "rmmod rust_edu failed"
    [ ! -e /sys/module/rust_edu ] || fail "/sys/module/rust_edu remains after rmmod"
    [ -z "$(bound_to "$EDU_ADDR")" ] || fail "$EDU_ADDR is still bound to $(bound_to "$EDU_ADDR")"
    edu_expect_released
}

# edu_expect_released: no IRQ handler, no /dev/edu, no BAR region.
edu_expect_released() {
    ! grep -q rust_edu /proc/interrupts || fail "/proc/interrupts still has rust_edu: $(grep rust_edu /proc/interrupts)"
    [ ! -e "$EDU_DEV" ] || fail "$EDU_DEV remains"
    ! grep -q rust_edu /proc/iomem || fail "/proc/iomem still has rust_edu: $(grep rust_edu /proc/iomem)"
}

# edu_get NAME: the value of NAME in the report /dev/edu reads as.
edu_get() {
    sed -n "s/^$1 //p" "$EDU_DEV"
}

# edu_expect NAME VALUE
edu_expect() {
    got=$(edu_get "$1")
    [ "$got" = "$2" ] || fail "/dev/edu reports $1 '$got', expected '$2'; it reads: $(cat "$EDU_DEV")"
}

# edu_irq_lines: the /proc/interrupts lines of rust_edu.
edu_irq_lines() {
    grep -c rust_edu /proc/interrupts || true
}

# edu_irq_total: the interrupts /proc/interrupts counts on rust_edu's line
# (every CPU's column; a shared line counts its other devices' too).
edu_irq_total() {
    grep rust_edu /proc/interrupts | awk '{ n = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i; print n }'
}
