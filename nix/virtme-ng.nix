# nixpkgs' virtme-ng (pkgs/by-name/vi/virtme-ng) with QEMU on its PATH: the
# package itself does not depend on QEMU and expects qemu-system-* on PATH.
{
  lib,
  symlinkJoin,
  makeWrapper,
  virtme-ng,
  qemu,
}:
symlinkJoin {
  name = "virtme-ng-with-qemu-${virtme-ng.version}";
  paths = [ virtme-ng ];
  nativeBuildInputs = [ makeWrapper ];
  postBuild = ''
    test -x "$out/bin/vng" || { echo "virtme-ng provides no vng" >&2; exit 1; }
    for prog in "$out"/bin/*; do
      wrapProgram "$prog" --prefix PATH : ${lib.makeBinPath [ qemu ]}
    done
  '';
  meta = virtme-ng.meta // {
    mainProgram = "vng";
  };
}
