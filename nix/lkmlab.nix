# The lkmlab CLI from the Cargo workspace, carrying the guest runner. Built
# without its tests (doCheck = false): `checks.lkmlab` (lkmlab's own flake,
# selfChecks) is this package with them, `cargo test -p lkmlab`, so they must
# run in the build sandbox: no network, no /dev/kvm, HOME not writable.
{
  lib,
  rustPlatform,
  cpio,
  dpkg,
  src,
  version,
  guestRunner,
}:
rustPlatform.buildRustPackage {
  pname = "lkmlab";
  inherit version src;

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "-p"
    "lkmlab"
  ];
  cargoTestFlags = [
    "-p"
    "lkmlab"
  ];
  doCheck = false;
  # lkmlab/build.rs carries this static runner instead of building one with
  # glibc's libc.a, which the sandbox's toolchain does not link statically.
  env.LKMLAB_GUEST_RUNNER = lib.getExe guestRunner;
  # The cpio writer's tests unpack what it writes with GNU cpio; the cache
  # test (tests/cache.rs) builds a stand-in kernel package with dpkg-deb.
  nativeCheckInputs = [
    cpio
    dpkg
  ];

  meta = {
    description = "A reproducible VM lab for Linux kernel modules written in Rust";
    license = lib.licenses.gpl2Only;
    mainProgram = "lkmlab";
    # It carries a guest runner of its own architecture (one of lkmlab's).
    inherit (import ./arches.nix) platforms;
  };
}
