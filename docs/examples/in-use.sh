#!/bin/sh
# A guest test (docs/tutorial.md, step 4): a module whose device is open is in
# use, and the kernel refuses to unload it until the last file is closed.
set -e
exec 2>&1                          # stderr into the report too, in order
insmod "$LKMLAB_MODULES/scull.ko"
echo "closed:   refcnt $(cat /sys/module/scull/refcnt)"
exec 3<>/dev/scull                 # open /dev/scull and keep it open as fd 3
echo "open:     refcnt $(cat /sys/module/scull/refcnt)"
if rmmod scull; then
    echo "rmmod succeeded while /dev/scull was open"
    exit 1
fi
exec 3>&-                          # close it
echo "closed:   refcnt $(cat /sys/module/scull/refcnt)"
rmmod scull
[ ! -e /sys/module/scull ] && echo "unloaded: /sys/module/scull is gone"
