# The guest runner (workspace package `lkmlab-guest`, guest/): PID 1 of
# the test initramfs, so it must be a static executable.
#
# Called with `pkgsStatic.callPackage`: nixpkgs' static package set targets
# <cpu>-unknown-linux-musl (x86_64 or aarch64: the package set's own
# architecture, a pkgsCross set's for another target's runner) with a static
# stdenv, and buildRustPackage passes that --target itself (the cross rustc only adds the musl std; rustc itself
# is reused). The alternative, glibc with `-C target-feature=+crt-static`,
# needs glibc.static and hand-set RUSTFLAGS that nixpkgs does not manage, and
# glibc is not meant to be linked statically.
{
  lib,
  stdenv,
  rustPlatform,
  src,
  version,
}:
assert lib.assertMsg stdenv.hostPlatform.isStatic "guest-runner.nix: use pkgsStatic.callPackage";
rustPlatform.buildRustPackage {
  pname = "lkmlab-guest";
  inherit version src;

  cargoLock.lockFile = ../Cargo.lock;
  cargoBuildFlags = [
    "-p"
    "lkmlab-guest"
  ];
  # Its tests run in the guest, through `lkmlab test`.
  doCheck = false;

  # The headers are read into a variable first: `readelf | grep -q` under
  # pipefail fails when grep quits early and readelf dies of SIGPIPE, and an
  # `if` on that would call a dynamic executable static.
  postInstall = ''
    readelf=${stdenv.cc.targetPrefix}readelf
    headers=$("$readelf" -l "$out/bin/lkmlab-guest")
    case "$headers" in
      *'Program Headers:'*) ;;
      *)
        echo "lkmlab-guest: $readelf -l shows no program headers" >&2
        exit 1
        ;;
    esac
    case "$headers" in
      *'program interpreter'*)
        echo "lkmlab-guest is not statically linked (it has a program interpreter)" >&2
        exit 1
        ;;
    esac
  '';

  meta = {
    description = "lkmlab's guest test runner (static PID 1 of the test VM)";
    license = lib.licenses.gpl2Only;
    mainProgram = "lkmlab-guest";
    inherit (import ./arches.nix) platforms;
  };
}
