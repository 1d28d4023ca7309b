#!/bin/sh
# A guest test (docs/tutorial.md, step 4): what the kernel shows of a loaded
# module's use count, and whether it can unload it at all.
exec 2>&1                          # stderr into the report too, in order
[ -e /sys/module/hello ] || insmod "$LKMLAB_MODULES/hello.ko"
grep '^hello ' /proc/modules | cut -d' ' -f1,3,4   # name, use count, users
if [ -e /sys/module/hello/refcnt ]; then
    echo "refcnt $(cat /sys/module/hello/refcnt)"
else
    echo "no /sys/module/hello/refcnt"
fi
rmmod hello && echo "unloaded"
