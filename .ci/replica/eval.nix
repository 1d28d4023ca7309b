# The whole flake, evaluated offline: flake.nix's outputs with the real
# nixpkgs lib (`lib`, a path to its lib/) and the mock nixpkgs of
# mock-nixpkgs.nix. `nix-instantiate eval.nix -A drvList` instantiates every
# output; `nix-instantiate --eval --strict --json eval.nix -A plan` says what
# the replica needs to know about them.
#
# Nix < 2.14 has no builtins.readFileType, which lib.fileset needs: there the
# lib is imported with a builtins whose readFileType reads the type from
# builtins.readDir of the parent directory (the same answer: the type of the
# entry itself, a symlink not followed).
{
  lib,
  flake ? ../..,
  tools ? ./tools.toml,
  # A module project's flake (what `lkmlab init` or the flake template
  # makes) to evaluate instead, with this flake as its `lkmlab` input.
  project ? null,
  # Whose outputs: x86_64-linux's (what the replica replays), or
  # aarch64-linux's (instantiated only: the mock's tools are this machine's).
  system ? "x86_64-linux",
}:
let
  shimmed = builtins // {
    readFileType = p: (builtins.readDir (dirOf p)).${baseNameOf p};
  };
  scope = {
    builtins = shimmed;
    import = scopedImport scope;
  };
  realLib = if builtins ? readFileType then import lib else scopedImport scope lib;

  table = builtins.fromTOML (builtins.readFile tools);
  nixpkgs = import ./mock-nixpkgs.nix {
    lib = realLib;
    inherit table;
  };
  flakeExpr = import (flake + "/flake.nix");
  lkmlabOutputs = flakeExpr.outputs {
    self = lkmlabOutputs // {
      outPath = flake;
    };
    inherit nixpkgs;
  };
  projectOutputs = (import (project + "/flake.nix")).outputs {
    self = projectOutputs // {
      outPath = project;
    };
    lkmlab = lkmlabOutputs // {
      outPath = flake;
      inputs = { inherit nixpkgs; };
    };
  };
  outputs = if project == null then lkmlabOutputs else projectOutputs;
  inherit (realLib) mapAttrs' nameValuePair;

  # An app is a program path; instantiating a derivation that names it
  # instantiates the script's derivation too.
  appDrv =
    name: app:
    assert realLib.assertMsg (app.type == "app") "apps.${name}: type is not \"app\"";
    derivation {
      name = "app-${name}";
      inherit system;
      builder = "/replica-app";
      inherit (app) program;
    };

  flat = prefix: set: mapAttrs' (name: value: nameValuePair "${prefix}.${name}" value) set;
  drvs =
    flat "packages" outputs.packages.${system}
    // flat "checks" outputs.checks.${system}
    // flat "devShells" outputs.devShells.${system}
    // {
      formatter = outputs.formatter.${system};
    }
    // flat "apps" (builtins.mapAttrs appDrv outputs.apps.${system});
in
{
  inherit drvs;
  drvList = builtins.attrValues drvs;
  # For the seeded checks of .ci/nix-check: the mock nixpkgs itself; and
  # for its overlay and flake-parts module checks, lkmlab's flake outputs
  # and the real lib.
  pkgs = nixpkgs.legacyPackages.${system};
  lkmlab = lkmlabOutputs;
  lib = realLib;
  plan = {
    outputs = builtins.mapAttrs (_: d: d.drvPath) drvs;
    apps = builtins.mapAttrs (_: a: {
      inherit (a) program;
      description = a.meta.description or null;
    }) outputs.apps.${system};
    tools = builtins.mapAttrs (_: t: t.drvPath) nixpkgs.replicaTools;
    nixVersion = builtins.nixVersion;
    libVersion = realLib.version;
  };
}
