# The VM test of one target inside the build sandbox: `lkmlab test` boots
# the target's kernel with its module and the static guest runner of its
# architecture and collects the results. Nix puts /dev/kvm in every
# sandbox of a machine whose `system-features` include `kvm` (Nix's
# default there when /dev/kvm exists), whatever the derivation requires.
#   accel = "auto" (checks.vm-test): no `requiredSystemFeatures`, so any
#     builder of this system takes it; lkmlab probes KVM and falls back to
#     TCG where the sandbox has none that works (another architecture's
#     guest always runs under TCG).
#   accel = "kvm" (checks.vm-test-kvm, mkFlake's kvmChecks): requires the
#     `kvm` system feature, as NixOS's VM tests do, so Nix builds it only on
#     a builder that declares it, and `--accel kvm` fails instead of falling
#     back to TCG. Only for a guest of the builder's own architecture.
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
  accel ? "auto",
}:
assert lib.assertMsg (builtins.elem accel [
  "auto"
  "kvm"
]) "vm-test.nix: accel is \"auto\" or \"kvm\", not \"${accel}\"";
runCommand "lkmlab-vm-test-${lib.optionalString (accel == "kvm") "kvm-"}${name}-${module.version}"
  (
    {
      # busybox: the static /bin/sh lkmlab packs for guest test scripts.
      nativeBuildInputs = [
        lkmlab
        qemu
        busybox
      ];
      meta = {
        description =
          "lkmlab's VM test of target ${name}"
          + (if accel == "kvm" then " under KVM" else " (KVM if it works, else TCG)");
        license = lib.licenses.gpl2Only;
        inherit (import ./arches.nix) platforms;
      };
    }
    // lib.optionalAttrs (accel == "kvm") { requiredSystemFeatures = [ "kvm" ]; }
  )
  ''
    export HOME="$TMPDIR" LKMLAB_CACHE="$TMPDIR/lkmlab-cache"
    mkdir -p "$out"
    if ! lkmlab --project ${projectSrc} test ${labArgs} \
      --runner ${lib.getExe guestRunner} \
      --accel ${accel} \
      --out "$out"; then
      echo "lkmlab test failed; the guest console ended with:" >&2
      tail -n 60 "$out/console.log" >&2 || true
      exit 1
    fi
    for result in console.log results.ktap junit.xml; do
      test -s "$out/$result" || { echo "lkmlab test wrote no $result" >&2; exit 1; }
    done
  ''
