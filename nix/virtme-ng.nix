# nixpkgs' virtme-ng (pkgs/by-name/vi/virtme-ng) with QEMU and `file` on its
# PATH: the package depends on neither. It expects qemu-system-* on PATH, and
# reads the kernel's version with `file` (falling back to binutils' `strings`):
# without both, `vng` fails with "No such file or directory: 'strings'" (found
# by the replica, .ci/replica).
{
  lib,
  symlinkJoin,
  makeWrapper,
  virtme-ng,
  qemu,
  file,
}:
let
  runtimeTools = [
    qemu
    file
  ];
in
symlinkJoin {
  name = "virtme-ng-with-qemu-${virtme-ng.version}";
  paths = [ virtme-ng ];
  nativeBuildInputs = [ makeWrapper ];
  postBuild = ''
    test -x "$out/bin/vng" || { echo "virtme-ng provides no vng" >&2; exit 1; }
    for prog in "$out"/bin/*; do
      wrapProgram "$prog" --prefix PATH : ${lib.makeBinPath runtimeTools}
    done
  '';
  meta = virtme-ng.meta // {
    description = "virtme-ng with QEMU and file on its PATH";
    mainProgram = "vng";
    inherit (import ./arches.nix) platforms;
  };
}
