#!/bin/sh
# rust_edu binds QEMU's edu device at insmod: it logs the device's version,
# requests the interrupt (a rust_edu line in /proc/interrupts), claims BAR 0
# (/proc/iomem) and registers /dev/edu; rmmod releases all of it.
. "$LKMLAB_HELPERS/pci.sh"
. "$LKMLAB_HELPERS/edu.sh"

edu_load
lkmlab-log | grep -q "rust_edu $EDU_ADDR: edu 1\.0, irq [0-9]*, DMA buffer at 0x" ||
    fail "no 'edu 1.0, irq N, DMA buffer at 0x…' line from probe"
[ "$(edu_irq_lines)" = 1 ] || fail "/proc/interrupts has $(edu_irq_lines) rust_edu lines, expected 1"
grep -q rust_edu /proc/iomem || fail "/proc/iomem has no rust_edu region"
# Nothing has interrupted yet, nothing was computed.
edu_expect version 1.0
edu_expect interrupts 0
edu_expect dma 0
[ -z "$(edu_get factorial)" ] || fail "/dev/edu reports a factorial before any was computed"
edu_unload
