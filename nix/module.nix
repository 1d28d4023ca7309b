# The out-of-tree Rust module(s) in module/, built like nixpkgs'
# rust-out-of-tree-module (pkgs/os-specific/linux/rust-out-of-tree-module):
# called through `linuxPackagesFor kernel`, which supplies `kernel` and
# `kernelModuleMakeFlags` (the kernel's own CC/LD/ARCH... plus KBUILD_OUTPUT).
# Kbuild is driven directly: make -C $KDIR M=$PWD modules / modules_install.
{
  lib,
  kernel,
  kernelModuleMakeFlags,
  src,
}:
let
  kdir = "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build";
  # External modules default to updates/ (scripts/Makefile.modinst in 7.3).
  moduleDir = "lib/modules/${kernel.modDirVersion}/extra";
in
kernel.stdenv.mkDerivation {
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
    platforms = [ "x86_64-linux" ];
    broken = !kernel.withRust;
  };
}
