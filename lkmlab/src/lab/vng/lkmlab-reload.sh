#!/bin/sh
# lkmlab-reload NAME [PARAM=VALUE...]: load $LKMLAB_MODULES/NAME.ko afresh.
# Written by `lkmlab vm`; runs in the guest after `lkmlab module` on the host.
dir=${LKMLAB_MODULES:?is not set: run this inside lkmlab vm}
if [ $# -lt 1 ]; then
    echo "usage: lkmlab-reload NAME [PARAM=VALUE...]; modules in $dir:" >&2
    for ko in "$dir"/*.ko; do
        [ -e "$ko" ] && basename "$ko" .ko
    done >&2
    exit 2
fi
name=${1%.ko}
shift
ko=$dir/$name.ko
mod=$(echo "$name" | tr - _)
if [ ! -f "$ko" ]; then
    echo "lkmlab-reload: no $ko; build it on the host with \`lkmlab module\`" >&2
    exit 1
fi
if [ -d "/sys/module/$mod" ]; then
    refs=$(cat "/sys/module/$mod/refcnt" 2>/dev/null || echo 0)
    if [ "$refs" != 0 ]; then
        holders=$(for h in "/sys/module/$mod/holders"/*; do
            [ -e "$h" ] && printf '%s ' "${h##*/}"
        done)
        echo "lkmlab-reload: $mod is in use (refcnt $refs${holders:+, used by $holders});" \
             "not unloading it. Close what uses it (open /dev files, dependent modules) and retry." >&2
        exit 1
    fi
    rmmod "$mod" || exit 1
    echo "lkmlab-reload: unloaded $mod"
fi
insmod "$ko" "$@" || exit 1
echo "lkmlab-reload: loaded $ko"
