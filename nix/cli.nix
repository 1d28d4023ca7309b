# lkmlab's own packages, built from lkmlab's Cargo workspace on whatever
# nixpkgs they are given: the CLI and its static guest runner. One
# definition for the lab (nix/lab.nix) and for the overlay (nix/overlay.nix),
# so `overlays.default`'s lkmlab on lkmlab's nixpkgs is the very derivation
# of `packages.lkmlab` (.ci/nix-check compares their drvPaths).
{ lib }:
let
  fs = lib.fileset;

  # lkmlab's Cargo workspace (every member must be present for any to
  # build; lkmlab's tests read its own pin and fragments).
  src = fs.toSource {
    root = ../.;
    fileset = fs.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../lkmlab
      ../protocol
      ../guest
      ../templates
      ../lkmlab.toml
      ../kernel-config
    ];
  };

  crateVersion =
    manifest:
    let
      version = (lib.importTOML manifest).package.version;
    in
    if builtins.isString version then
      version
    else
      (lib.importTOML ../Cargo.toml).workspace.package.version;
in
{
  # The guest runner of a package set's architecture: static, PID 1 of the
  # test VM (pkgs.pkgsStatic, whatever pkgs is: native or pkgsCross.*).
  guestRunner =
    pkgs:
    pkgs.pkgsStatic.callPackage ./guest-runner.nix {
      inherit src;
      version = crateVersion ../guest/Cargo.toml;
    };

  # The CLI, carrying the given guest runner (lkmlab/build.rs).
  lkmlab =
    pkgs: guestRunner:
    pkgs.callPackage ./lkmlab.nix {
      inherit src guestRunner;
      version = crateVersion ../lkmlab/Cargo.toml;
    };
}
