# lkmlab's architectures (lkmlab/src/config/arch.rs, `Arch`) as Nix knows
# them: the system a guest of that architecture is native on, and nixpkgs'
# cross package set (lib/systems/examples.nix) that builds for it elsewhere.
# `platforms` is what every derivation of the lab declares as meta.platforms:
# the two systems the flake has outputs for (flake.nix) and the mock
# evaluation instantiates (.ci/nix-check), no more.
let
  arches = {
    x86_64 = {
      system = "x86_64-linux";
      cross = "gnu64";
    };
    arm64 = {
      system = "aarch64-linux";
      cross = "aarch64-multiplatform";
    };
  };
in
{
  inherit arches;
  platforms = map (a: a.system) (builtins.attrValues arches);
}
