# The kernel .config of one target, made by lkmlab's own configure step (the
# same code the host provider runs): `make tinyconfig`, the fragments from
# lkmlab.toml, `make olddefconfig`, and a check that every requested option
# survived.
#
# The Kconfig environment matches the kernel derivation's: the same make
# variables (`makeFlags`: nixpkgs' common-flags.nix on the kernel's stdenv,
# so the same compilers by absolute path, ARCH and CROSS_COMPILE; Kconfig's
# compiler probes and CONFIG_CC_VERSION_TEXT see the compiler the kernel is
# built with), the same rustc, bindgen and rust-src (RUST_IS_AVAILABLE is
# evaluated here), and the same Kconfig-time tools as build.nix (bison,
# flex, perl, bc, pahole).
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
  # The target's kernel (its name in lkmlab.toml), architecture and flavor.
  kernelName,
  arch,
  flavor,
  makeFlags,
  projectSrc,
}:
let
  # ARCH is --arch's (lkmlab refuses it among the make variables).
  makeVars = lib.filter (f: !lib.hasPrefix "ARCH=" f) makeFlags;
in
stdenv.mkDerivation {
  pname = "lkmlab-kernel-config-${arch}-${flavor}";
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

  # Kconfig probes the compiler ($(cc-option ...)) named by makeFlags, the
  # unwrapped one the kernel is built with; keep the wrapper (HOSTCC) from
  # adding hardening flags build.nix does not have either.
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
      --kernel-name ${lib.escapeShellArg kernelName} \
      --arch ${lib.escapeShellArg arch} --flavor ${lib.escapeShellArg flavor} \
      ${lib.escapeShellArgs makeVars}
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -m 0444 "$TMPDIR/kernel.config" "$out"
    runHook postInstall
  '';

  dontFixup = true;
}
