{
  description = "lkmlab: a reproducible VM lab for Linux loadable kernel modules in Rust";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;

      # lkmlab configures with `make ARCH=x86_64` and boots qemu-system-x86_64.
      # Once it knows a second architecture, "aarch64-linux" is one more entry:
      # nix/lab.nix takes everything else from the nixpkgs platform.
      systems = [ "x86_64-linux" ];

      labs = lib.genAttrs systems (
        system: import ./nix/lab.nix { pkgs = nixpkgs.legacyPackages.${system}; }
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
}
