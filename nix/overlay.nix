# `overlays.default`: lkmlab's own packages for any nixpkgs, built with that
# nixpkgs' Rust toolchain (`final`), as an overlay does:
#   pkgs = import nixpkgs { inherit system; overlays = [ lkmlab.overlays.default ]; };
#   pkgs.lkmlab         the CLI (`lkmlab`), carrying pkgs.lkmlab-guest
#   pkgs.lkmlab-guest   its static guest runner (pkgsStatic, musl)
# On lkmlab's own nixpkgs they are the flake's packages.lkmlab and
# packages.guest-runner, derivation for derivation. The kernel, the module
# and the checks are a project's, not a package set's: they come from
# lkmlab.lib.mkLab (its `pkgs` may be a set with this overlay applied).
final: prev:
let
  cli = import ./cli.nix { inherit (final) lib; };
in
{
  lkmlab-guest = cli.guestRunner final;
  lkmlab = cli.lkmlab final final.lkmlab-guest;
}
