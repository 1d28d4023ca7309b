# A stand-in for flake-parts (hercules-ci/flake-parts, read at 427bf4bd,
# 2026-08-01): the part of it lkmlab's flakeModules.default meets, so that
# .ci/nix-check can evaluate that module offline with the real nixpkgs lib
# (`$FLAKE_PARTS`, a flake-parts checkout, makes eval.nix use the real one).
# As there:
#   - flake-parts-lib.mkPerSystemOption m: an option whose type is the
#     `perSystem` deferred module type with m as a static module (lib.nix:
#     mkDeferredModuleOption, mkLegacyDeferredModuleType);
#   - perSystem is evaluated per system with lib.evalModules, `system` as a
#     special argument and prefix [ "perSystem" system ]
#     (modules/perSystem.nix), `pkgs` as a module argument at
#     mkOptionDefault priority (modules/nixpkgs.nix);
#   - perSystem's packages, checks, devShells (lazy attribute sets of
#     packages), apps (lazy attribute set of { type = "app"; program; meta;
#     }, a derivation program coerced with lib.getExe) and formatter (null or
#     a package) become the flake's <name>.<system> (modules/packages.nix,
#     checks.nix, devShells.nix, apps.nix, formatter.nix, transposition.nix).
# Not here: inputs', self', the top-level `flake` option, debug, partitions.
{ lib }:
{
  # The flake's modules (what flake-parts.lib.mkFlake's second argument
  # imports).
  modules,
  systems ? [
    "x86_64-linux"
    "aarch64-linux"
  ],
  # system -> the `pkgs` module argument of perSystem.
  pkgsFor ? system: throw "standin: no pkgs for ${system}",
}:
let
  inherit (lib) mkOption types;

  perSystemType =
    module:
    types.deferredModuleWith {
      staticModules = [ module ];
    };

  flake-parts-lib = {
    mkPerSystemOption = module: mkOption { type = perSystemType module; };
  };

  app = types.submodule {
    options = {
      type = mkOption {
        type = types.enum [ "app" ];
        default = "app";
      };
      program = mkOption {
        type = types.coercedTo types.package lib.getExe types.str;
      };
      meta = mkOption {
        type = types.lazyAttrsOf types.raw;
        default = { };
      };
    };
  };

  # What flake-parts' core modules declare in perSystem.
  perSystemCore =
    { system, ... }:
    {
      options = {
        packages = mkOption {
          type = types.lazyAttrsOf types.package;
          default = { };
        };
        checks = mkOption {
          type = types.lazyAttrsOf types.package;
          default = { };
        };
        devShells = mkOption {
          type = types.lazyAttrsOf types.package;
          default = { };
        };
        apps = mkOption {
          type = types.lazyAttrsOf app;
          default = { };
        };
        formatter = mkOption {
          type = types.nullOr types.package;
          default = null;
        };
      };
      config._module.args.pkgs = lib.mkOptionDefault (pkgsFor system);
    };

  top = lib.evalModules {
    specialArgs = { inherit flake-parts-lib; };
    modules = [
      {
        options.perSystem = mkOption {
          type = perSystemType perSystemCore;
          apply =
            module: system:
            (lib.evalModules {
              modules = [ module ];
              prefix = [
                "perSystem"
                system
              ];
              specialArgs = { inherit system; };
            }).config;
        };
      }
    ]
    ++ modules;
  };

  perSystem = lib.genAttrs systems top.config.perSystem;
  transpose = name: lib.mapAttrs (_: c: c.${name}) perSystem;
in
{
  packages = transpose "packages";
  checks = transpose "checks";
  devShells = transpose "devShells";
  apps = transpose "apps";
  formatter = transpose "formatter";
}
