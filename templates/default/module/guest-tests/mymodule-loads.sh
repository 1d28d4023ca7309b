#!/bin/sh
# A guest test: runs in the test VM after mymodule's own suite (load, KUnit,
# unload). Exit 0 passes, 77 skips, anything else fails; what it prints is
# kept in the report. $LKMLAB_MODULES holds the .ko files; busybox is the
# shell. See docs/guest-tests.md in lkmlab's repository.
set -e
exec 2>&1
insmod "$LKMLAB_MODULES/mymodule.ko" greeting_count=3
dmesg | grep -q 'mymodule: loaded: hello, again (greeting_count=3)'
rmmod mymodule
[ ! -e /sys/module/mymodule ]
echo "loaded with greeting_count=3, greeted, unloaded"
