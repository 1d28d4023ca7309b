# The VM test inside the build sandbox: `lkmlab test` boots the pinned kernel
# with the module and the static guest runner and collects the results.
# No `requiredSystemFeatures = [ "kvm" ]`: `--accel auto` probes KVM and falls
# back to TCG, so this runs on any x86_64-linux builder.
{
  lib,
  runCommand,
  lkmlab,
  qemu,
  kernelImage,
  module,
  guestRunner,
  busybox,
  projectSrc,
  flavor,
}:
runCommand "lkmlab-vm-test-${module.version}"
  {
    # busybox: the static /bin/sh lkmlab packs for guest test scripts.
    nativeBuildInputs = [
      lkmlab
      qemu
      busybox
    ];
  }
  ''
    export HOME="$TMPDIR" LKMLAB_CACHE="$TMPDIR/lkmlab-cache"
    mkdir -p "$out"
    if ! lkmlab --project ${projectSrc} test \
      --kernel ${kernelImage} \
      --modules ${module}/${module.moduleDir} \
      --runner ${lib.getExe guestRunner} \
      --accel auto \
      --arch x86_64 \
      --flavor ${lib.escapeShellArg flavor} \
      --out "$out"; then
      echo "lkmlab test failed; the guest console ended with:" >&2
      tail -n 60 "$out/console.log" >&2 || true
      exit 1
    fi
    for result in console.log results.ktap junit.xml; do
      test -s "$out/$result" || { echo "lkmlab test wrote no $result" >&2; exit 1; }
    done
  ''
