# The pinned kernel source: Debian's linux-source .deb (sha256-verified by
# fetchurl), unpacked to the tarball inside it. The extraction is itself a
# fixed-output derivation, so Nix verifies the tarball's sha256 from
# lkmlab.toml as well. Not `pkgs.linux_*`: both providers build this very file.
{
  lib,
  fetchurl,
  runCommand,
  dpkg,
  pin,
}:
let
  deb = fetchurl {
    inherit (pin.deb) urls sha256;
    # The .deb's own name has a `~`, which is not allowed in store paths.
    name = builtins.replaceStrings [ "~" ] [ "-" ] pin.deb.file;
    meta = meta // {
      description = "Debian's linux-source ${pin.version} package";
    };
  };
  # No platforms: a fixed-output file, the same whichever system fetches it.
  meta = {
    description = "The Linux ${pin.version} source tarball, from Debian's linux-source package";
    license = lib.licenses.gpl2Only;
  };
in
runCommand (baseNameOf pin.tarball.path)
  {
    nativeBuildInputs = [ dpkg ];
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = pin.tarball.sha256;
    passthru = {
      inherit deb;
      inherit (pin.tarball) top_dir;
    };
    inherit meta;
  }
  ''
    dpkg-deb --fsys-tarfile ${deb} | tar -xOf - ./${pin.tarball.path} > "$out"
  ''
