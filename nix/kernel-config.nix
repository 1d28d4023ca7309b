# The kernel .config of one target, made by Kbuild itself (no other tool
# writes it): `make tinyconfig`, the target's fragments from lkmlab.toml
# merged in order by the kernel's scripts/kconfig/merge_config.sh, `make
# olddefconfig`. Nothing of lkmlab is
# in it (nor in the kernel's closure): the kernel derivation fails if a
# requested option did not survive (kernel.nix's postConfigure), and
# checks.kernel-config-<target> holds this .config to the one `lkmlab config`
# makes (kernel-config-check.nix), which explains a dropped option.
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
  toolchain,
  kernelTarball,
  pin,
  # The target's architecture and flavor, and its fragments (paths in
  # projectSrc, in the order they apply: nix/fragments.nix).
  arch,
  flavor,
  fragments,
  makeFlags,
  projectSrc,
}:
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
    mkdir "$TMPDIR/kconfig"
    kmake() {
      make -C "$PWD" O="$TMPDIR/kconfig" ${lib.escapeShellArgs makeFlags} "$@"
    }
    kmake tinyconfig
    scripts/kconfig/merge_config.sh -m -O "$TMPDIR/kconfig" "$TMPDIR/kconfig/.config" \
      ${lib.escapeShellArgs (map (f: "${projectSrc}/${f}") fragments)}
    kmake olddefconfig
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -m 0444 "$TMPDIR/kconfig/.config" "$out"
    runHook postInstall
  '';

  dontFixup = true;

  # What kernel-config-check.nix, which reuses this derivation, needs to know.
  passthru = {
    inherit arch flavor makeFlags;
  };

  meta = {
    description = "The .config of lkmlab's ${arch} ${flavor} kernel, made by Kbuild from lkmlab.toml's fragments";
    license = lib.licenses.gpl2Only;
    inherit (import ./arches.nix) platforms;
  };
}
