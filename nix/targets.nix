# The targets lkmlab.toml declares ([[targets]]), in order, named as lkmlab
# names them: the kernel unless it is the default one, the architecture, then
# the flavor unless it is `default` (`x86_64`, `arm64`, `6.12-x86_64`).
#
# Pure Nix (no nixpkgs): `.ci/nix-check` compares
# `builtins.map (t: removeAttrs t [ "pinKernel" ]) (import ./nix/targets.nix { })`
# with `lkmlab show targets`. Each element:
#   { name; kernel;     the kernel's name: [kernel]'s series ("7.3") or NAME
#     pinKernel;        what pin.nix and kconfig.nix take: null or NAME
#     arch; flavor; compiler; }   compiler: the flavor's, "gcc" or "llvm"
{
  root ? ../.,
}:
let
  toml = builtins.fromTOML (builtins.readFile (root + "/lkmlab.toml"));
  parts = builtins.splitVersion toml.kernel.version;
  series = "${builtins.elemAt parts 0}.${builtins.elemAt parts 1}";
  kernels = toml.kernels or { };
  flavors = toml.kconfig.flavors or { };
  declared = toml.targets or [ { arch = "x86_64"; } ];

  target =
    t:
    let
      kernelName = t.kernel or series;
      isDefault = kernelName == series;
      flavor = t.flavor or "default";
    in
    assert
      isDefault
      || kernels ? ${kernelName}
      || throw "targets.nix: [[targets]] names kernel \"${kernelName}\", which lkmlab.toml does not pin";
    assert
      flavors ? ${flavor}
      || throw "targets.nix: [[targets]] names flavor \"${flavor}\", which is not in [kconfig.flavors]";
    {
      name =
        (if isDefault then "" else "${kernelName}-")
        + t.arch
        + (if flavor == "default" then "" else "-${flavor}");
      kernel = kernelName;
      pinKernel = if isDefault then null else kernelName;
      inherit (t) arch;
      inherit flavor;
      compiler = flavors.${flavor}.compiler or "gcc";
    };
in
map target declared
