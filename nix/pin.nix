# The kernel pin, read from lkmlab.toml: the single pin both providers share.
#
# Pure Nix (no nixpkgs): `nix-instantiate --eval --strict --json nix/pin.nix`
# must print exactly what `lkmlab show pin` prints (.ci/nix-check compares them).
let
  inherit (builtins.fromTOML (builtins.readFile ../lkmlab.toml)) kernel;
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
