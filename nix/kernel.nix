# The kernel: nixpkgs' linuxManualConfig (pkgs/os-specific/linux/kernel/build.nix)
# on the pinned Debian source, with the .config from `lkmlab config`.
#
# `config` is passed explicitly. With allowImportFromDerivation = false (the
# default) and a derivation as `configfile`, linuxManualConfig's `config`
# defaults to {} and then:
#   CONFIG_MODULES -> isModular: the `modules` output, the `modules` make target,
#                     modules_install and the `dev` build tree for modules
#   CONFIG_RUST    -> withRust: rustc and bindgen in nativeBuildInputs and in
#                     moduleBuildDependencies, RUST_LIB_SRC, KRUSTFLAGS
# would all silently be off. Those two keys are all build.nix reads; we pass
# the whole fragment-derived set, so `kernel.config` also answers isEnabled
# etc. truthfully for every option lkmlab requests.
{
  lib,
  linuxManualConfig,
  lz4,
  pin,
  kconfig,
  configfile,
  kernelTarball,
}:
let
  consulted = {
    CONFIG_MODULES = "y";
    CONFIG_RUST = "y";
  };
  isWrong = name: (kconfig.${name} or null) != consulted.${name};
  wrong = lib.filter isWrong (lib.attrNames consulted);

  # build.nix runs `make oldconfig` on our .config with its own compiler
  # wrapper and tools; fail if that changed any option lkmlab requested.
  escape = builtins.replaceStrings [ "\\" "\"" ] [ "\\\\" "\\\"" ];
  expect =
    name: value:
    if value == "n" then
      "lkmlab_unset ${name}"
    else
      "lkmlab_want ${name} ${lib.escapeShellArg value} ${lib.escapeShellArg ''"${escape value}"''}";
  verifyConfig = ''
    lkmlab_bad=0
    lkmlab_want() {
      grep -qxF -e "$1=$2" -e "$1=$3" "$buildRoot/.config" || {
        echo "lkmlab: oldconfig dropped $1=$2 (requested by the Kconfig fragments)" >&2
        lkmlab_bad=1
      }
    }
    lkmlab_unset() {
      if grep -q "^$1=" "$buildRoot/.config"; then
        echo "lkmlab: oldconfig set $1, which the Kconfig fragments disable" >&2
        lkmlab_bad=1
      fi
    }
    ${lib.concatStringsSep "\n" (lib.mapAttrsToList expect kconfig)}
    if [ "$lkmlab_bad" != 0 ]; then exit 1; fi
  '';
in
assert lib.assertMsg (
  wrong == [ ]
) "lkmlab: the Kconfig fragments must set CONFIG_MODULES=y and CONFIG_RUST=y: ${toString wrong}";
(linuxManualConfig {
  inherit (pin) version;
  modDirVersion = pin.version;
  src = kernelTarball;
  inherit configfile;
  config = kconfig;
  # build.nix's meta (broken, ...) with lkmlab's description, the kernel's
  # license and lkmlab's platforms: the kernel is built for lkmlab's two
  # architectures only.
  extraMeta = {
    description = "Linux ${pin.version} as lkmlab.toml pins and configures it";
    license = lib.licenses.gpl2Only;
    inherit (import ./arches.nix) platforms;
  };
}).overrideAttrs
  (old: {
    # The unpack fails unless the tarball has the top directory lkmlab.toml names.
    sourceRoot = pin.tarball.top_dir;
    # kernel-config/x86_64.config sets CONFIG_KERNEL_LZ4=y, so Kbuild runs `lz4`
    # for the compressed image (arch/x86/boot/compressed); build.nix's
    # nativeBuildInputs have zstd, and stdenv xz, but nothing has lz4.
    # getBin: the output with bin/lz4 (lz4's first output is `dev`).
    nativeBuildInputs = old.nativeBuildInputs ++ [ (lib.getBin lz4) ];
    postConfigure = (old.postConfigure or "") + verifyConfig;
  })
