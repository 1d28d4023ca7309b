# The Kconfig fragments of a target, in the order they apply on top of
# `make tinyconfig` (paths relative to the project): `[kconfig] fragments`,
# then `[kconfig.arch.<arch>] fragments` (none for x86_64 in a pin from before
# architectures had fragments of their own), then `[kernels.<kernel>]
# fragments` (a kernel other than [kernel]), then
# `[kconfig.flavors.<flavor>] fragments`. lkmlab's order
# (lkmlab/src/config/target.rs, Project::fragments); nix/kconfig.nix parses
# these, nix/kernel-config.nix merges them.
{
  root,
  arch ? "x86_64",
  flavor ? "default",
  # A [kernels.NAME] of the pin; null: [kernel], the default one.
  kernel ? null,
}:
let
  toml = builtins.fromTOML (builtins.readFile (root + "/lkmlab.toml"));
  flavors = toml.kconfig.flavors or { };
  arches = toml.kconfig.arch or { };
  kernels = toml.kernels or { };
in
toml.kconfig.fragments
++ (
  if arches ? ${arch} then
    arches.${arch}.fragments
  else if arch == "x86_64" then
    [ ]
  else
    throw "fragments.nix: lkmlab.toml has no [kconfig.arch.${arch}] fragments"
)
++ (
  if kernel == null then
    [ ]
  else if kernels ? ${kernel} then
    kernels.${kernel}.fragments or [ ]
  else
    throw "fragments.nix: lkmlab.toml has no [kernels.\"${kernel}\"]"
)
++ (
  if flavors ? ${flavor} then
    flavors.${flavor}.fragments or [ ]
  else
    throw "fragments.nix: flavor `${flavor}` is not in [kconfig.flavors] of lkmlab.toml"
)
