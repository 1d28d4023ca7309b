{
  description = "mymodule: a Linux kernel module in Rust, built and tested with lkmlab";

  # lkmlab's flake, whose nixpkgs (rustc, bindgen, libclang, QEMU, virtme-ng)
  # builds the kernel, the module and the dev shell here. If you got lkmlab
  # from elsewhere (a fork, a checkout), point this at it, e.g.
  # "git+file:///home/you/lkmlab", and the CI workflow's LKMLAB_GIT
  # (.github/workflows/lkmlab.yml) at its git repository. `nix flake update
  # lkmlab` moves to a newer lkmlab (and so to its toolchain).
  inputs.lkmlab.url = "github:lkmlab/lkmlab";

  # The same outputs as lkmlab's own flake, for this project: packages
  # (module, kernel, ...), checks (the VM test, lint, ...), apps (vm, test)
  # and the dev shell. See lkmlab's docs/nix.md.
  outputs = { lkmlab, ... }: lkmlab.lib.mkFlake { src = ./.; };
}
