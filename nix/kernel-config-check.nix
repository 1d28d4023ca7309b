# The two ways of making a target's .config held together: `lkmlab config`
# (lkmlab's own configure step, the code the host provider runs: tinyconfig,
# the fragments, olddefconfig, and a check that every requested option
# survived, explaining one that did not) must give exactly the .config of
# kernel-config.nix (Kbuild's merge_config.sh), which the kernel is built
# from. It is that derivation with lkmlab added and its build replaced, so
# the Kconfig environment (make variables, toolchain, tools) is one
# definition, kernel-config.nix's.
{
  lib,
  lkmlab,
  # The target's .config as the flake builds it (kernel-config.nix).
  kernelConfig,
  # The target's kernel (its name in lkmlab.toml).
  kernelName,
  projectSrc,
}:
let
  inherit (kernelConfig) arch flavor makeFlags;
  # ARCH is --arch's (lkmlab refuses it among the make variables).
  makeVars = lib.filter (f: !lib.hasPrefix "ARCH=" f) makeFlags;
in
kernelConfig.overrideAttrs (old: {
  pname = "lkmlab-kernel-config-check-${arch}-${flavor}";
  nativeBuildInputs = old.nativeBuildInputs ++ [ lkmlab ];

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

  meta = old.meta // {
    description = "`lkmlab config` makes the ${arch} ${flavor} kernel's .config that Kbuild makes";
  };
})
