# The kernel .config, made by lkmlab's own configure step (the same code the
# host provider runs): `make tinyconfig`, the fragments from lkmlab.toml,
# `make olddefconfig`, and a check that every requested option survived.
#
# The Kconfig environment matches the kernel derivation's: the same rustc,
# bindgen and rust-src (RUST_IS_AVAILABLE is evaluated here), and the same
# Kconfig-time tools as build.nix (bison, flex, perl, bc, pahole).
{
  lib,
  stdenv,
  buildPackages,
  bc,
  bison,
  flex,
  pahole,
  perl,
  lkmlab,
  toolchain,
  kernelTarball,
  pin,
  flavor,
  projectSrc,
}:
stdenv.mkDerivation {
  pname = "lkmlab-kernel-config-${flavor}";
  inherit (pin) version;

  src = kernelTarball;
  sourceRoot = pin.tarball.top_dir;

  depsBuildBuild = [ buildPackages.stdenv.cc ];
  nativeBuildInputs = [
    bc
    bison
    flex
    lkmlab
    pahole
    perl
    toolchain.bindgen
    toolchain.rustc
  ];

  RUST_LIB_SRC = "${toolchain.rustLibSrc}";
  LIBCLANG_PATH = "${toolchain.libclang}/lib";

  # Kconfig probes the compiler ($(cc-option ...)); the kernel itself is built
  # with the unwrapped gcc, so keep the wrapper from adding hardening flags.
  hardeningDisable = [ "all" ];

  postPatch = ''
    patchShebangs scripts
  '';

  dontConfigure = true;

  buildPhase = ''
    runHook preBuild
    export HOME="$TMPDIR" LKMLAB_CACHE="$TMPDIR/lkmlab-cache"
    lkmlab --project ${projectSrc} config \
      --source "$PWD" --output "$TMPDIR/kernel.config" \
      --arch x86_64 --flavor ${lib.escapeShellArg flavor}
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -m 0444 "$TMPDIR/kernel.config" "$out"
    runHook postInstall
  '';

  dontFixup = true;
}
