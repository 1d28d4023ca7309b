# The out-of-tree Rust module(s) in module/, built like nixpkgs'
# rust-out-of-tree-module (pkgs/os-specific/linux/rust-out-of-tree-module):
# called through `linuxPackagesFor kernel`, which supplies `kernel` and
# `kernelModuleMakeFlags` (the kernel's own CC/LD/ARCH... plus KBUILD_OUTPUT).
# Kbuild is driven directly: make -C $KDIR M=$PWD modules / modules_install.
#
# With allowUnbuilt (a target on a kernel other than the pin's default one),
# `make -k modules` builds every module that can, the others are left out,
# and the build's log is installed beside the .ko files (lkmlab-build.log):
# `lkmlab test --modules` reads it and reports each left-out module as
# skipped with the compiler's first error, as `lkmlab check` does.
{
  lib,
  kernel,
  kernelModuleMakeFlags,
  src,
  allowUnbuilt ? false,
}:
let
  kdir = "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build";
  # External modules default to updates/ (scripts/Makefile.modinst in 7.3).
  moduleDir = "lib/modules/${kernel.modDirVersion}/extra";
in
kernel.stdenv.mkDerivation (
  {
    pname = "lkmlab-module";
    version = kernel.modDirVersion;
    inherit src;

    nativeBuildInputs = kernel.moduleBuildDependencies;

    makeFlags = kernelModuleMakeFlags ++ [
      "-C"
      kdir
    ];
    preBuild = ''
      makeFlagsArray+=("M=$PWD")
    '';
    buildFlags = [ "modules" ];
    enableParallelBuilding = true;

    installFlags = [
      "INSTALL_MOD_PATH=${placeholder "out"}"
      "INSTALL_MOD_DIR=extra"
    ];
    installTargets = [ "modules_install" ];
  }
  // lib.optionalAttrs allowUnbuilt {
    # The standard phases, with `make -k` and a log instead of failing, then
    # `make NAME.ko` for each module whose object compiled (Kbuild links no
    # module when any failed: modpost waits for all), and an install of
    # what built (modules_install would fail on the left-out ones). What
    # `lkmlab check` does on such a kernel (lkmlab/src/build/partial.rs).
    buildPhase = ''
      runHook preBuild
      if ! make -j"$NIX_BUILD_CORES" $makeFlags "''${makeFlagsArray[@]}" -k modules 2>&1 |
        tee lkmlab-build.log; then
        echo "lkmlab: some modules did not build for ${kernel.modDirVersion}; lkmlab test skips them" >&2
        compiled=()
        for mod in $(find . -name '*.mod'); do
          if [ -f "''${mod%.mod}.o" ]; then
            compiled+=("''${mod#./}")
          fi
        done
        if [ "''${#compiled[@]}" -gt 0 ]; then
          make -j"$NIX_BUILD_CORES" $makeFlags "''${makeFlagsArray[@]}" "''${compiled[@]/%.mod/.ko}"
        fi
      fi
      runHook postBuild
    '';
    installPhase = ''
      runHook preInstall
      mkdir -p "$out/${moduleDir}"
      find . -name '*.ko' -exec install -m 0444 -t "$out/${moduleDir}" {} +
      install -m 0444 lkmlab-build.log "$out/${moduleDir}/lkmlab-build.log"
      runHook postInstall
    '';
  }
  // {
    postInstall = ''
      if ! compgen -G "$out/${moduleDir}/*.ko" > /dev/null; then
        echo "lkmlab: no .ko installed under ${moduleDir}" >&2
        exit 1
      fi
    '';

    passthru = {
      inherit kdir moduleDir;
    };

    meta = {
      description = "lkmlab's out-of-tree Rust kernel module(s), built against the pinned kernel";
      license = lib.licenses.gpl2Only;
      inherit (import ./arches.nix) platforms;
      broken = !kernel.withRust;
    };
  }
)
