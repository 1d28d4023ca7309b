# The kernel pin, read from lkmlab.toml: the single pin both providers share.
#
# Pure Nix (no nixpkgs): `nix-instantiate --eval --strict --json -E "import ./nix/pin.nix { }"`
# must print exactly what `lkmlab show pin` prints (.ci/nix-check compares them).
{
  # The project whose lkmlab.toml is read (lkmlab's own by default).
  root ? ../.,
}:
let
  inherit (builtins.fromTOML (builtins.readFile (root + "/lkmlab.toml"))) kernel;
in
{
  inherit (kernel) version;
  deb = {
    inherit (kernel.deb)
      file
      size
      sha256
      urls
      ;
  };
  tarball = {
    inherit (kernel.tarball) path sha256 top_dir;
  };
}
