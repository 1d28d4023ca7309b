#!/usr/bin/env bash
# Editor support, proven with rust-analyzer itself: `lkmlab rust-analyzer
# --check` writes rust-project.json from the pinned build tree and runs
# `rust-analyzer diagnostics` on it.
#
#   1. module/ must come out clean: no error or warning in hello.rs or
#      scull.rs, so every `kernel::…` item resolves.
#   2. A copy of hello with an unresolved import and an unknown method must
#      fail, naming both at their lines: the check can see a broken module.
#   3. A rust-analyzer that cannot run (rustup's proxy without the component)
#      must be refused with the fix.
#
# Ends with `N passed, N failed`.
#
#   tests/e2e/rust-analyzer.sh
#
# lkmlab comes from $LKMLAB, else PATH; rust-analyzer from
# LKMLAB_RUST_ANALYZER, else PATH (`scripts/setup-debian.sh
# --only-rust-analyzer` installs it into ~/.local/bin). Each analysis takes
# some seconds.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
lkmlab=${LKMLAB:-lkmlab}
. tests/e2e/lib.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The project's modules.
mkdir -p "$work/module"
out=$("$lkmlab" rust-analyzer --check --output "$work/module/rust-project.json" 2>&1)
status=$?
if [ "$status" -eq 0 ] &&
   grep -q '^rust-analyzer: 0 error(s) or warning(s) in .*/module (2 crate(s): ' <<<"$out"; then
  ok "module/ (hello, scull): no errors or warnings"
else
  fail "module/ (hello, scull): no errors or warnings" "exit status $status
$out"
fi

# 2. A broken copy of hello.
mkdir -p "$work/broken"
echo 'obj-m := hello.o' >"$work/broken/Kbuild"
sed -e 's/^use kernel::prelude::\*;$/use kernel::prelude::*;\nuse kernel::no_such_module;/' \
    -e 's/let count = greeting_count();/let count = greeting_count().no_such_method();/' \
    module/hello.rs >"$work/broken/hello.rs"
import_line=$(grep -n '^use kernel::no_such_module;' "$work/broken/hello.rs" | cut -d: -f1)
method_line=$(grep -n 'no_such_method' "$work/broken/hello.rs" | cut -d: -f1)
out=$("$lkmlab" rust-analyzer --check --module "$work/broken" 2>&1)
status=$?
if [ -z "$import_line" ] || [ -z "$method_line" ]; then
  fail "broken copy of hello" "the sed edits did not apply to module/hello.rs; update this test"
elif [ "$status" -eq 1 ] &&
     grep -q "/broken/hello.rs:$import_line:[0-9]*: Error .*unresolved import" <<<"$out" &&
     grep -q "/broken/hello.rs:$method_line:[0-9]*: Error .*no_such_method" <<<"$out"; then
  ok "broken copy of hello: the unresolved import (line $import_line) and method (line $method_line) are reported"
else
  fail "broken copy of hello: the unresolved import and method are reported" "exit status $status
$out"
fi

# 3. A rust-analyzer that does not run.
printf '#!/bin/sh\necho "error: Unknown binary '"'"'rust-analyzer'"'"' in official toolchain" >&2\nexit 1\n' \
  >"$work/rust-analyzer"
chmod +x "$work/rust-analyzer"
out=$("$lkmlab" rust-analyzer --check --rust-analyzer "$work/rust-analyzer" 2>&1)
status=$?
if [ "$status" -eq 2 ] && grep -q 'Unknown binary' <<<"$out" &&
   grep -q -- '--with-rust-analyzer' <<<"$out"; then
  ok "a rust-analyzer that cannot run is refused with the fix"
else
  fail "a rust-analyzer that cannot run is refused with the fix" "exit status $status
$out"
fi

finish
