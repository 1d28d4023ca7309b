#!/bin/sh
# A guest test written as a user would: load scull, use /dev/scull from the
# shell, unload. Runs in the test VM after the built-in suites (see
# docs/guest-tests.md): exit 0 passes, 77 skips, anything else fails.
set -e
# On a kernel scull does not build for (6.12: its `kernel` crate is older),
# lkmlab reports scull skipped, and this test skips with it.
if [ ! -e "$LKMLAB_MODULES/scull.ko" ]; then
    echo "scull.ko was not built for this kernel"
    exit 77
fi
insmod "$LKMLAB_MODULES/scull.ko" capacity=64
printf 'hello' > /dev/scull
got=$(cat /dev/scull)
if [ "$got" != hello ]; then
    echo "read back '$got' from /dev/scull, expected 'hello'"
    exit 1
fi
rmmod scull
if [ -e /sys/module/scull ]; then
    echo "/sys/module/scull still exists after rmmod"
    exit 1
fi
