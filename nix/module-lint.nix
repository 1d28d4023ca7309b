# Lint of module/ through the kernel's own tooling and configuration:
#   - clippy: `make -C $KDIR M=$PWD CLIPPY=1 modules` (clippy-driver replaces
#     rustc with the kernel's lint set), with KRUSTFLAGS=-Dwarnings so any
#     rustc or clippy warning fails, and the kernel's .clippy.toml;
#   - rustfmt: the kernel's `rustfmt`/`rustfmtcheck` targets exist only for
#     in-tree builds (Makefile, `ifeq ($(KBUILD_EXTMOD),)`), so rustfmt --check
#     runs directly, with the kernel's .rustfmt.toml.
{
  lib,
  kernel,
  kernelModuleMakeFlags,
  clippy,
  rustfmt,
  src,
  topDir,
}:
kernel.stdenv.mkDerivation {
  pname = "lkmlab-module-lint";
  version = kernel.modDirVersion;
  inherit src;

  nativeBuildInputs = kernel.moduleBuildDependencies ++ [
    clippy
    rustfmt
  ];

  makeFlags = kernelModuleMakeFlags ++ [
    "-C"
    "${kernel.dev}/lib/modules/${kernel.modDirVersion}/build"
    "CLIPPY=1"
    "KRUSTFLAGS=-Dwarnings"
  ];
  preBuild = ''
    lintConf="$TMPDIR/kernel-lint-config"
    mkdir -p "$lintConf"
    tar -xJf ${kernel.src} -C "$lintConf" --strip-components=1 \
      ${topDir}/.rustfmt.toml ${topDir}/.clippy.toml

    mapfile -t rustSources < <(find . -name '*.rs' | sort)
    if [ "''${#rustSources[@]}" = 0 ]; then
      echo "lkmlab: no Rust sources in module/" >&2
      exit 1
    fi
    rustfmt --check --config-path "$lintConf/.rustfmt.toml" "''${rustSources[@]}"

    makeFlagsArray+=("M=$PWD" "CLIPPY_CONF_DIR=$lintConf")
  '';
  buildFlags = [ "modules" ];
  enableParallelBuilding = true;

  installPhase = ''
    runHook preInstall
    printf '%s\n' "''${rustSources[@]}" > "$out"
    runHook postInstall
  '';

  meta = {
    description = "rustfmt and clippy on lkmlab's module(s), with the kernel's own configuration";
    license = lib.licenses.gpl2Only;
    inherit (import ./arches.nix) platforms;
  };
}
