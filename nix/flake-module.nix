# `flakeModules.default`: lkmlab's lab for a flake made with flake-parts
# (https://flake.parts), the outputs of `lkmlab.lib.mkFlake` from options:
#
#   outputs =
#     inputs@{ flake-parts, lkmlab, ... }:
#     flake-parts.lib.mkFlake { inherit inputs; } {
#       imports = [ lkmlab.flakeModules.default ];
#       systems = [ "x86_64-linux" "aarch64-linux" ];
#       perSystem.lkmlab.src = ./.;
#     };
#
# For each system, perSystem's packages, checks, apps, devShells.default
# and formatter get mkLab's (each at mkDefault priority, so the flake's own
# definition of a name wins). A plain module function: lkmlab's flake has
# no flake-parts input, it is the user's flake-parts that evaluates it
# (`flake-parts-lib.mkPerSystemOption`, as flake-parts' own modules do).
# .ci/nix-check evaluates it with a stand-in for flake-parts and compares
# its outputs with mkFlake's.
{
  # lkmlab.lib.mkLab.
  mkLab,
  # system -> lkmlab's own nixpkgs for it (what mkFlake builds with).
  lkmlabPkgs,
}:
{ lib, flake-parts-lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.perSystem = flake-parts-lib.mkPerSystemOption (
    { config, system, ... }:
    let
      cfg = config.lkmlab;
      lab = mkLab {
        inherit (cfg)
          pkgs
          src
          selfChecks
          kvmChecks
          ;
      };
      lower = lib.mapAttrs (_: lib.mkDefault);
    in
    {
      options.lkmlab = {
        src = mkOption {
          type = types.nullOr types.path;
          default = null;
          example = lib.literalExpression "./.";
          description = ''
            The module project: its lkmlab.toml, kernel-config/ and the module
            directory lkmlab.toml names (`./.` in its flake.nix). null: no
            lkmlab outputs.
          '';
        };
        selfChecks = mkOption {
          type = types.bool;
          default = false;
          description = ''
            lkmlab's own test suite (`checks.lkmlab`) and the Nix format check
            (`checks.nixfmt`) among the checks, as lkmlab's own flake has them.
          '';
        };
        kvmChecks = mkOption {
          type = types.bool;
          default = false;
          description = ''
            `checks.vm-test-kvm` (and `vm-test-kvm-<target>`): the VM test
            under KVM, requiring the `kvm` system feature, which
            `nix flake check` then needs on its builders.
          '';
        };
        pkgs = mkOption {
          type = types.raw;
          default = lkmlabPkgs system;
          defaultText = lib.literalMD "lkmlab's own nixpkgs for the system, as `lkmlab.lib.mkFlake` builds with";
          example = lib.literalExpression "pkgs";
          description = ''
            The nixpkgs the kernel, the module and lkmlab are built with. Its
            compilers build the kernel; lkmlab is tested with its own.
          '';
        };
      };

      config = lib.mkIf (cfg.src != null) {
        packages = lower lab.packages;
        checks = lower lab.checks;
        apps = lower lab.apps;
        devShells.default = lib.mkDefault lab.devShell;
        formatter = lib.mkDefault lab.formatter;
      };
    }
  );
}
