#!/bin/sh
# A guest test: runs in the test VM after mymodule's own suite (load, KUnit,
# unload). Exit 0 passes, 77 skips, anything else fails; what it prints is
# kept in the report. $LKMLAB_MODULES holds the .ko files; busybox is the
# shell. See docs/guest-tests.md in lkmlab's repository.
#
# This one tests the template's module as `lkmlab init` wrote it: when you
# make the module yours, replace this test with tests of your module.
exec 2>&1
ko="$LKMLAB_MODULES/mymodule.ko"

# Fail, saying that this test belongs to the template's module.
not_the_template() {
  echo "$1: this is the template's test of the template's module;" \
    "replace guest-tests/mymodule-loads.sh with a test of your module"
  exit 1
}

[ -e "$ko" ] || not_the_template "no mymodule.ko was built"
insmod "$ko" greeting_count=3 || exit 1
# The kernel loads a module given a parameter it does not declare, and says so.
if dmesg | grep -q "mymodule: unknown parameter 'greeting_count' ignored"; then
  rmmod mymodule
  not_the_template "mymodule has no parameter greeting_count"
fi
if ! dmesg | grep -q 'mymodule: loaded: hello, again (greeting_count=3)'; then
  rmmod mymodule
  not_the_template "mymodule did not log 'loaded: hello, again (greeting_count=3)'"
fi
rmmod mymodule || exit 1
[ ! -e /sys/module/mymodule ] || { echo "mymodule is still loaded after rmmod"; exit 1; }
echo "loaded with greeting_count=3, greeted, unloaded"
