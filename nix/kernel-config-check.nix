# The two ways of making a target's .config held together: `lkmlab config`
# (lkmlab's own configure step, the code the host provider runs: tinyconfig,
# the fragments, olddefconfig, and a check that every requested option
# survived, explaining one that did not) must give exactly the .config of
# kernel-config.nix (Kbuild's merge_config.sh), which the kernel is built
# from.
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
  # The target's .config as the flake builds it (kernel-config.nix).
  kernelConfig,
}:
let
  # ARCH is --arch's (lkmlab refuses it among the make variables).
  makeVars = lib.filter (f: !lib.hasPrefix "ARCH=" f) makeFlags;
in
stdenv.mkDerivation {
  pname = "lkmlab-kernel-config-check-${arch}-${flavor}";
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
    if ! diff -u ${kernelConfig} "$TMPDIR/kernel.config"; then
      echo "lkmlab: lkmlab config and Kbuild's merge_config.sh made different .config files (above)" >&2
      exit 1
    fi
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    touch "$out"
    runHook postInstall
  '';

  dontFixup = true;
}
