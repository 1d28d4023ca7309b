# The mock's restatement of nixpkgs' pkgs/os-specific/linux/kernel/common-flags.nix
# (tools.toml [sources] common-flags): the make variables a kernel is built
# with, its compilers by absolute path. The mock's `path` is the folder two
# levels above pkgs/, so the flake's `pkgs.path + "/pkgs/os-specific/linux/kernel/common-flags.nix"`
# finds this file, and the mock's linuxManualConfig uses it too. Its clang-only
# CFLAGS_MODULE/CFLAGS_KERNEL are left out: the mock has no clang stdenv.
{
  lib,
  stdenv,
  buildPackages,
  extraMakeFlags ? [ ],
}:
[
  "CC=${lib.getExe stdenv.cc.cc}"
  "CXX=${lib.getExe' stdenv.cc.cc (if stdenv.cc.isClang then "clang++" else "g++")}"
  "LD=${lib.getExe' stdenv.cc.bintools.bintools "${stdenv.cc.targetPrefix}ld"}"
  "AR=${lib.getExe' stdenv.cc "${stdenv.cc.targetPrefix}ar"}"
  "NM=${lib.getExe' stdenv.cc "${stdenv.cc.targetPrefix}nm"}"
  "STRIP=${lib.getExe' stdenv.cc.bintools.bintools "${stdenv.cc.targetPrefix}strip"}"
  "OBJCOPY=${lib.getExe' stdenv.cc "${stdenv.cc.targetPrefix}objcopy"}"
  "OBJDUMP=${lib.getExe' stdenv.cc "${stdenv.cc.targetPrefix}objdump"}"
  "READELF=${lib.getExe' stdenv.cc "${stdenv.cc.targetPrefix}readelf"}"
  "HOSTCC=${lib.getExe' buildPackages.stdenv.cc "${buildPackages.stdenv.cc.targetPrefix}cc"}"
  "HOSTCXX=${lib.getExe' buildPackages.stdenv.cc "${buildPackages.stdenv.cc.targetPrefix}c++"}"
  "HOSTAR=${lib.getExe' buildPackages.stdenv.cc.bintools "${buildPackages.stdenv.cc.targetPrefix}ar"}"
  "HOSTLD=${lib.getExe' buildPackages.stdenv.cc.bintools "${buildPackages.stdenv.cc.targetPrefix}ld"}"
  "ARCH=${stdenv.hostPlatform.linuxArch}"
  "CROSS_COMPILE=${stdenv.cc.targetPrefix}"
]
++ (stdenv.hostPlatform.linux-kernel.makeFlags or [ ])
++ extraMakeFlags
