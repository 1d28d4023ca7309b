{
  description = "lkmlab: a reproducible VM lab for Linux loadable kernel modules in Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;

      # The lab for one project on one system: packages (module, kernel,
      # kernel-config, each also per target; lkmlab, guest-runner,
      # virtme-ng), checks (vm-test and kernel-config, also per target;
      # module-lint, pin; with selfChecks lkmlab's tests and nixfmt; with
      # kvmChecks vm-test-kvm), apps (vm, test), devShell and formatter.
      # `src` is the project: lkmlab.toml, kernel-config/ and the module
      # directory lkmlab.toml names.
      mkLab =
        {
          pkgs,
          src,
          selfChecks ? false,
          kvmChecks ? false,
        }:
        import ./nix/lab.nix {
          inherit
            pkgs
            src
            selfChecks
            kvmChecks
            ;
        };

      # A project's flake outputs, on lkmlab's nixpkgs: what a module
      # repository's flake.nix returns (`lkmlab.lib.mkFlake { src = ./.; }`).
      # For each system: every target lkmlab.toml declares with a GCC flavor
      # (`packages.<system>.kernel-arm64`, `checks.<system>.vm-test-arm64`,
      # ...), a target of another architecture cross-built with nixpkgs'
      # pkgsCross; the unsuffixed outputs are the first target of the
      # system's own architecture (docs/nix.md).
      mkFlake =
        {
          src,
          systems ? [
            "x86_64-linux"
            "aarch64-linux"
          ],
          # lkmlab's own test suite and the Nix format check as checks too.
          selfChecks ? false,
          # checks.vm-test-kvm too (the VM test under KVM; it requires the
          # `kvm` system feature, which `nix flake check` then needs).
          kvmChecks ? false,
        }:
        let
          labs = lib.genAttrs systems (
            system:
            mkLab {
              pkgs = nixpkgs.legacyPackages.${system};
              inherit src selfChecks kvmChecks;
            }
          );
          perSystem = f: lib.mapAttrs (_: f) labs;
        in
        {
          packages = perSystem (lab: lab.packages);
          checks = perSystem (lab: lab.checks);
          apps = perSystem (lab: lab.apps);
          devShells = perSystem (lab: {
            default = lab.devShell;
          });
          formatter = perSystem (lab: lab.formatter);
        };
    in
    # lkmlab's own lab (its module/ directory) is made as any project's is,
    # with lkmlab's own checks (its test suite, the Nix format).
    mkFlake {
      src = ./.;
      selfChecks = true;
    }
    // {
      lib = { inherit mkLab mkFlake; };

      # lkmlab and its guest runner for any nixpkgs (nix/overlay.nix).
      overlays.default = import ./nix/overlay.nix;

      # For a flake made with flake-parts: `imports = [
      # lkmlab.flakeModules.default ]` and `perSystem.lkmlab.src = ./.;`
      # give it mkFlake's outputs (nix/flake-module.nix). A plain module:
      # lkmlab's flake has no flake-parts input.
      flakeModules.default = lib.setDefaultModuleLocation ./nix/flake-module.nix (
        import ./nix/flake-module.nix {
          inherit mkLab;
          lkmlabPkgs = system: nixpkgs.legacyPackages.${system};
        }
      );

      # `nix flake init -t <lkmlab>`: the project `lkmlab init` makes (one
      # source: lkmlab carries this directory, and a test checks that
      # `lkmlab init` writes it file for file).
      templates.default = {
        path = ./templates/default;
        description = "A Rust kernel module tested with lkmlab: lkmlab.toml, kernel-config/, module/, flake.nix";
        welcomeText = ''
          A Rust kernel module project, made from lkmlab's template. Rename the
          module (module/mymodule.rs, module/Kbuild, the guest test), or make it
          with `lkmlab init DIR --name NAME` instead. Then `nix build .#module`,
          `nix flake check`, `nix run .#vm`. If lkmlab is not at
          github:lkmlab/lkmlab for you, point flake.nix's `inputs.lkmlab.url`
          at where it is.
        '';
      };
    };
}
