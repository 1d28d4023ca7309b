# A kernel pin, read from lkmlab.toml: the single pin both providers share.
#
# Pure Nix (no nixpkgs): `nix-instantiate --eval --strict --json -E "import ./nix/pin.nix { }"`
# must print exactly what `lkmlab show pin` prints, and with `kernel = "NAME"`
# what `lkmlab show pin --kernel-name NAME` prints (.ci/nix-check compares them).
{
  # The project whose lkmlab.toml is read (lkmlab's own by default).
  root ? ../.,
  # A [kernels.NAME] of the pin; null: [kernel], the default one.
  kernel ? null,
}:
let
  toml = builtins.fromTOML (builtins.readFile (root + "/lkmlab.toml"));
  kernels = toml.kernels or { };
  k =
    if kernel == null then
      toml.kernel
    else if kernels ? ${kernel} then
      kernels.${kernel}
    else
      throw "pin.nix: lkmlab.toml has no [kernels.\"${kernel}\"]";
in
{
  inherit (k) version;
  deb = {
    inherit (k.deb)
      file
      size
      sha256
      urls
      ;
  };
  tarball = {
    inherit (k.tarball) path sha256 top_dir;
  };
}
