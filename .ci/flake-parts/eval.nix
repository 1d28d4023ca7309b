# lkmlab's flakeModules.default, evaluated offline: a project's flake made
# with flake-parts (the stand-in of standin.nix, or the real flake-parts
# checkout `flakeParts`) importing the module with
# `perSystem.lkmlab.src = project`, on lkmlab's flake evaluated with the
# real lib and the mock nixpkgs (../replica/eval.nix). `module` and
# `mkFlake` are the outputs' drvPaths (apps: their programs) one way and
# the other; .ci/nix-check holds them equal, and seeds differences.
{
  lib,
  flake ? ../..,
  project,
  # More modules of the project's flake (settings, a definition of its own).
  extraModules ? [ ],
  # lkmlab.lib.mkFlake's arguments besides src, for the other side.
  mkFlakeArgs ? { },
  # A flake-parts source tree to evaluate with instead of the stand-in.
  flakeParts ? null,
  system ? "x86_64-linux",
}:
let
  evaluated = import ../replica/eval.nix { inherit lib flake system; };
  inherit (evaluated) lkmlab;
  realLib = evaluated.lib;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  modules = [
    lkmlab.flakeModules.default
    { perSystem.lkmlab.src = project; }
  ]
  ++ extraModules;

  standin = import ./standin.nix { lib = realLib; } { inherit modules systems; };
  real =
    let
      flakePartsOutputs = (import (flakeParts + "/flake.nix")).outputs {
        self = flakePartsOutputs;
        nixpkgs-lib.lib = realLib;
      };
      self = {
        _type = "flake";
        outPath = project;
        inputs = { };
      };
    in
    flakePartsOutputs.lib.mkFlake { inputs.self = self; } {
      inherit systems;
      imports = modules;
    };
  viaModule = if flakeParts == null then standin else real;
  viaMkFlake = lkmlab.lib.mkFlake ({ src = project; } // mkFlakeArgs);

  drvPaths = builtins.mapAttrs (_: d: d.drvPath);
  paths = outputs: {
    packages = drvPaths outputs.packages.${system};
    checks = drvPaths outputs.checks.${system};
    devShells = drvPaths outputs.devShells.${system};
    apps = builtins.mapAttrs (_: a: a.program) outputs.apps.${system};
    formatter = outputs.formatter.${system}.drvPath;
  };
  module = paths viaModule;
  mkFlake = paths viaMkFlake;
in
{
  inherit module mkFlake;
  same = module == mkFlake;
  # How many outputs, for the report.
  count = builtins.foldl' (n: set: n + builtins.length (builtins.attrNames set)) 1 [
    module.packages
    module.checks
    module.devShells
    module.apps
  ];
}
