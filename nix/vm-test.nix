# The VM test of one target inside the build sandbox: `lkmlab test` boots
# the target's kernel with its module and the static guest runner of its
# architecture and collects the results. No `requiredSystemFeatures = [ "kvm" ]`:
# `--accel auto` probes KVM and falls back to TCG, so this runs on any
# builder of this system (another architecture's guest always under TCG).
# Nix puts /dev/kvm into every sandbox of a machine whose `system-features`
# include `kvm` (its default where /dev/kvm exists), so there the probe can
# pass.
{
  lib,
  runCommand,
  lkmlab,
  qemu,
  module,
  guestRunner,
  busybox,
  projectSrc,
  # The target's name (`x86_64`, `arm64`, `6.12-x86_64`) and lkmlab
  # test's --target/--kernel/--modules for it.
  name,
  labArgs,
}:
runCommand "lkmlab-vm-test-${name}-${module.version}"
  {
    # busybox: the static /bin/sh lkmlab packs for guest test scripts.
    nativeBuildInputs = [
      lkmlab
      qemu
      busybox
    ];
    meta = {
      description = "lkmlab's VM test of target ${name}";
      license = lib.licenses.gpl2Only;
      inherit (import ./arches.nix) platforms;
    };
  }
  ''
    export HOME="$TMPDIR" LKMLAB_CACHE="$TMPDIR/lkmlab-cache"
    mkdir -p "$out"
    if ! lkmlab --project ${projectSrc} test ${labArgs} \
      --runner ${lib.getExe guestRunner} \
      --accel auto \
      --out "$out"; then
      echo "lkmlab test failed; the guest console ended with:" >&2
      tail -n 60 "$out/console.log" >&2 || true
      exit 1
    fi
    for result in console.log results.ktap junit.xml; do
      test -s "$out/$result" || { echo "lkmlab test wrote no $result" >&2; exit 1; }
    done
  ''
