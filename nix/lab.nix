# Everything a lab flake exposes for one system, from one nixpkgs, for one
# module project: lkmlab's own (src = lkmlab's repository) or a module
# author's (lkmlab.lib.mkLab / mkFlake, src = their project). The Nix side is
# glue: the pin, the targets and the Kconfig fragments come from the
# project's lkmlab.toml, the VM test is an lkmlab command, and the kernel's
# .config is Kbuild's (held to `lkmlab config`'s by a check).
{
  pkgs,
  # The project: lkmlab.toml, kernel-config/, the module directory that
  # lkmlab.toml's [module] dir names (with its guest-tests/).
  src ? ../.,
  # lkmlab's own checks: its test suite (`cargo test -p lkmlab`) and the
  # format of the project's Nix files. lkmlab's flake sets it; a module
  # project gets them only when it asks.
  selfChecks ? false,
  # checks.vm-test-kvm (and -T for each target of this system's
  # architecture): the VM test under KVM, requiring the `kvm` system
  # feature. Off by default: `nix flake check` fails outright on a builder
  # without that feature, and the TCG vm-test runs anywhere.
  kvmChecks ? false,
}:
let
  inherit (pkgs) lib;
  fs = lib.fileset;
  # The project's files (the CLI and the guest runner are built from
  # lkmlab's own Cargo workspace, wherever the project is: nix/cli.nix).
  root = src;

  # The targets lkmlab.toml declares ([[targets]]), named as lkmlab names
  # them. The flake builds those whose flavor uses GCC (LLVM flavors, such as
  # lkmlab's debug flavor, are built by the lkmlab CLI only; docs/nix.md).
  declaredTargets = import ./targets.nix { inherit root; };
  targets = lib.filter (t: t.compiler == "gcc") declaredTargets;
  # The target the unsuffixed outputs (packages.kernel, checks.vm-test, the
  # apps, the devShell) are for: the first of this system's architecture,
  # else the first.
  system = pkgs.stdenv.hostPlatform.system;
  inherit (import ./arches.nix) arches platforms;
  isNative = arch: arches.${arch}.system == system;
  # nixpkgs for an architecture: this system's own packages when it is that
  # architecture, else nixpkgs' cross package set for it (GCC as the cross
  # compiler, as nixpkgs builds every cross kernel).
  pkgsFor = arch: if isNative arch then pkgs else pkgs.pkgsCross.${arches.${arch}.cross};
  primary =
    let
      own = lib.filter (t: isNative t.arch) targets;
    in
    if own != [ ] then
      lib.head own
    else if targets != [ ] then
      lib.head targets
    else
      throw "lkmlab: lkmlab.toml declares no target with a GCC flavor, which the flake builds";
  moduleDir = root + "/${(lib.importTOML (root + "/lkmlab.toml")).module.dir}";

  # Each derivation sees only the files it reads, so that e.g. editing docs/
  # or the module does not rebuild the kernel.
  sources = {
    # What `lkmlab config` and `lkmlab show` read.
    config = fs.toSource {
      inherit root;
      fileset = fs.unions [
        (root + "/lkmlab.toml")
        (root + "/kernel-config")
      ];
    };
    # The project as `lkmlab test` and `lkmlab vm` see it.
    project = fs.toSource {
      inherit root;
      fileset = fs.unions [
        (root + "/lkmlab.toml")
        (root + "/kernel-config")
        (fs.maybeMissing (root + "/tests"))
        # The module's own guest tests (`lkmlab test` packs them; scripts run
        # under the static busybox below) and the devices its VM gets.
        (fs.maybeMissing (moduleDir + "/guest-tests"))
        (fs.maybeMissing (moduleDir + "/devices.toml"))
      ];
    };
    # The module directory without what Kbuild leaves in it when it is run
    # there (`make -C $KDIR M=$PWD`, as module/Makefile does; lkmlab itself
    # builds in target/): such a leftover neither enters the store nor
    # changes the module's derivation (.ci/nix-check seeds one).
    module = fs.toSource {
      root = moduleDir;
      fileset = fs.difference moduleDir (
        fs.unions [
          (fs.fileFilter isBuildLeftover moduleDir)
          (fs.maybeMissing (moduleDir + "/.tmp_versions"))
        ]
      );
    };
    # The project's Nix files, for the format check: flake.nix and nix/.
    nix = fs.toSource {
      inherit root;
      fileset = fs.unions [
        (fs.maybeMissing (root + "/flake.nix"))
        (
          if builtins.pathExists (root + "/nix") then
            fs.fileFilter (file: file.hasExt "nix") (root + "/nix")
          else
            fs.unions [ ]
        )
      ];
    };
  };

  # What Kbuild writes into an external module's directory: the files the
  # kernel's `make clean` deletes there (7.3's Makefile: the `find` of its
  # `clean` target, so also `.tmp_*`, and its rm-files Module.symvers,
  # modules.nsdeps, compile_commands.json), the `*.rmeta` its mrproper
  # deletes, and rust-project.json (`make rust-analyzer`, `lkmlab
  # rust-analyzer`: absolute paths of one machine). By file name; a
  # `.tmp_versions` directory (older kernels) is left out whole below.
  isBuildLeftover =
    file:
    lib.any file.hasExt [
      "o"
      "a"
      "i"
      "s"
      "rsi"
      "ko"
      "mod"
      "dwo"
      "lst"
      "su"
      "symtypes"
      "ll"
      "gcno"
      "rmeta"
    ]
    || lib.hasInfix ".ko." file.name
    || lib.hasSuffix ".o.thinlto.bc" file.name
    || lib.hasSuffix ".mod.c" file.name
    || lib.hasPrefix ".tmp_" file.name
    || (
      lib.hasPrefix "." file.name
      && lib.any file.hasExt [
        "cmd"
        "d"
        "tmp"
      ]
    )
    || builtins.elem file.name [
      "modules.order"
      "Module.symvers"
      "modules.nsdeps"
      "compile_commands.json"
      "rust-project.json"
    ];

  # The toolchain linuxManualConfig builds the kernel with: build.nix takes
  # rustc-unwrapped, rust-bindgen-unwrapped and rustPlatform (RUST_LIB_SRC)
  # from the package set; bindgen links the libclang of its passthru.clang.
  toolchain = {
    rustc = pkgs.rustc-unwrapped;
    bindgen = pkgs.rust-bindgen-unwrapped;
    rustLibSrc = pkgs.rustPlatform.rustLibSrc;
    libclang = lib.getLib pkgs.rust-bindgen-unwrapped.clang.cc;
  };

  # QEMU for every guest architecture: the interactive VM, the devShell,
  # a foreign architecture's VM test.
  qemu = pkgs.qemu;
  # The VM test of a guest of this system's own architecture: nixpkgs'
  # qemu_test, the QEMU NixOS's own VM tests run, built for the host's
  # architecture only (so it cannot run a foreign guest).
  qemuFor = arch: if isNative arch then pkgs.qemu_test else qemu;

  # lkmlab's own packages (nix/cli.nix, which the overlay shares): the
  # guest runner of an architecture's package set (static, PID 1 of the
  # test VM), and lkmlab, carrying this system's runner (lkmlab/build.rs).
  cli = import ./cli.nix { inherit lib; };
  guestRunnerFor = cli.guestRunner;
  guest-runner = guestRunnerFor pkgs;
  lkmlab = cli.lkmlab pkgs guest-runner;

  virtme-ng = pkgs.callPackage ./virtme-ng.nix { inherit qemu; };

  # The static /bin/sh lkmlab packs for guest test scripts (it takes the
  # `busybox` on PATH and checks it is static), for the guest's
  # architecture. Only bin/busybox: the package's bin/ also has its applets
  # (ls, sh, sed, ...), which would come before coreutils on PATH.
  busyboxFor =
    tpkgs:
    pkgs.runCommand "busybox-static-bin-${tpkgs.stdenv.hostPlatform.linuxArch}"
      {
        meta = {
          description = "The static busybox of ${tpkgs.stdenv.hostPlatform.linuxArch} guests, alone in bin/";
          license = lib.licenses.gpl2Only; # busybox's
          inherit platforms;
          mainProgram = "busybox";
        };
      }
      ''
        mkdir -p "$out/bin"
        ln -s ${lib.getExe' tpkgs.pkgsStatic.busybox "busybox"} "$out/bin/busybox"
      '';

  # Everything one target builds: its kernel's .config, kernel, module(s)
  # and VM test. A target of another architecture than this system's is
  # cross-built with nixpkgs' cross package set for it; its VM test runs
  # under TCG on this system.
  mkTarget =
    target:
    let
      tpkgs = pkgsFor target.arch;
      pin = import ./pin.nix {
        inherit root;
        kernel = target.pinKernel;
      };
      kconfig = import ./kconfig.nix {
        inherit root;
        inherit (target) arch flavor;
        kernel = target.pinKernel;
      };
      kernelTarball = pkgs.callPackage ./kernel-source.nix { inherit pin; };

      # The make variables linuxManualConfig builds this kernel with (its
      # compilers by absolute path, ARCH, CROSS_COMPILE): nixpkgs' own
      # common-flags.nix on the same stdenv, so that Kconfig probes exactly
      # the compiler the kernel is built with.
      makeFlags = tpkgs.callPackage (pkgs.path + "/pkgs/os-specific/linux/kernel/common-flags.nix") { };

      # Kbuild's own configuration (no lkmlab in the kernel's closure) ...
      kernel-config = tpkgs.callPackage ./kernel-config.nix {
        inherit
          toolchain
          kernelTarball
          pin
          makeFlags
          ;
        inherit (target) arch flavor;
        fragments = import ./fragments.nix {
          inherit root;
          inherit (target) arch flavor;
          kernel = target.pinKernel;
        };
        projectSrc = sources.config;
      };

      # ... held to lkmlab's (a check: lkmlab's tests and toolchain stay out
      # of the build path).
      kernel-config-check = tpkgs.callPackage ./kernel-config-check.nix {
        inherit lkmlab;
        kernelName = target.kernel;
        projectSrc = sources.config;
        kernelConfig = kernel-config;
      };

      kernel = tpkgs.callPackage ./kernel.nix {
        inherit pin kconfig kernelTarball;
        configfile = kernel-config;
      };
      kernelImage = "${kernel}/${kernel.target or tpkgs.stdenv.hostPlatform.linux-kernel.target}";

      kernelPackages = tpkgs.linuxPackagesFor kernel;

      # On a kernel other than the pin's default one, a module that does not
      # build is left out with the compiler's reason, as `lkmlab check` skips
      # it; on the default kernel every module must build.
      module = kernelPackages.callPackage ./module.nix {
        src = sources.module;
        allowUnbuilt = target.pinKernel != null;
      };

      runner = guestRunnerFor tpkgs;

      # lkmlab test's and lkmlab vm's arguments for this target's kernel,
      # module and runner.
      labArgs = lib.escapeShellArgs [
        "--target"
        target.name
        "--kernel"
        kernelImage
        "--modules"
        "${module}/${module.moduleDir}"
      ];

      # The QEMU of this target's VM test (and of apps.test).
      qemu = qemuFor target.arch;

      # lkmlab's runner in the sandbox: results.ktap, junit.xml, console.log
      # in $out. `--accel auto` (KVM if the sandbox offers a working one, else
      # TCG) on any builder of this system; vm-test-kvm: `--accel kvm` on a
      # builder with the `kvm` feature, for a guest of this system's own
      # architecture only (KVM runs no other).
      vmTestWith =
        accel:
        pkgs.callPackage ./vm-test.nix {
          inherit
            lkmlab
            qemu
            module
            labArgs
            accel
            ;
          inherit (target) name;
          guestRunner = runner;
          inherit busybox;
          projectSrc = sources.project;
        };
      vm-test = vmTestWith "auto";
      vm-test-kvm = if isNative target.arch then vmTestWith "kvm" else null;
      busybox = busyboxFor tpkgs;
    in
    {
      inherit
        target
        pin
        kconfig
        kernel-config
        kernel-config-check
        kernel
        kernelImage
        kernelPackages
        module
        runner
        labArgs
        qemu
        vm-test
        vm-test-kvm
        busybox
        ;
    };

  built = lib.listToAttrs (map (t: lib.nameValuePair t.name (mkTarget t)) targets);
  main = built.${primary.name};
  inherit (main)
    pin
    kconfig
    kernel
    module
    kernelPackages
    labArgs
    busybox
    vm-test-kvm
    ;

  # packages.NAME-TARGET and checks.NAME-TARGET for every target (a null
  # is no output).
  perTarget =
    pick:
    lib.concatMapAttrs (
      name: t:
      lib.mapAttrs' (what: drv: lib.nameValuePair "${what}-${name}" drv) (
        lib.filterAttrs (_: drv: drv != null) (pick t)
      )
    ) built;

  mkApp =
    {
      name,
      description,
      runtimeInputs,
      text,
    }:
    {
      type = "app";
      program = lib.getExe (
        pkgs.writeShellApplication {
          inherit name runtimeInputs text;
          meta = {
            inherit description platforms;
            license = lib.licenses.gpl2Only;
          };
        }
      );
      meta = { inherit description; };
    };

  # meta of the checks lkmlab defines here.
  checkMeta = description: {
    inherit description platforms;
    license = lib.licenses.gpl2Only;
  };

  # The devShell's rustc and bindgen are the kernel derivation's own: checked
  # against what linuxManualConfig puts in kernel.moduleBuildDependencies.
  devShellToolchain =
    let
      tools = [
        toolchain.rustc
        toolchain.bindgen
      ];
      fromKernel = tool: builtins.elem tool kernel.moduleBuildDependencies;
    in
    assert lib.assertMsg (lib.all fromKernel tools) "lab.nix: the kernel's toolchain changed";
    tools;
in
{
  # The unsuffixed outputs are the primary target's (the first declared of
  # this system's architecture); every target's are also named with its
  # name (`kernel-arm64`, `module-6.12-x86_64`, `vm-test-arm64`), so that
  # remote builders or Hydra can spread the matrix over machines.
  packages = {
    default = module;
    inherit (main) kernel-config;
    inherit
      kernel
      module
      lkmlab
      guest-runner
      virtme-ng
      ;
  }
  // perTarget (t: {
    inherit (t) kernel-config kernel module;
  });

  checks = {
    # lkmlab's runner in the sandbox: results.ktap, junit.xml, console.log in $out.
    inherit (main) vm-test;
    # The .config the kernel is built from equals what `lkmlab config` makes.
    kernel-config = main.kernel-config-check;

    module-lint = kernelPackages.callPackage ./module-lint.nix {
      src = sources.module;
      topDir = pin.tarball.top_dir;
    };

    # The pure Nix reading of lkmlab.toml agrees with lkmlab's own.
    pin =
      pkgs.runCommand "lkmlab-pin-check"
        {
          nativeBuildInputs = [
            lkmlab
            pkgs.jq
          ];
          nixPin = builtins.toJSON pin;
          nixKconfig = builtins.toJSON kconfig;
          passAsFile = [
            "nixPin"
            "nixKconfig"
          ];
          meta = checkMeta "lkmlab.toml's pin and Kconfig options as Nix reads them equal lkmlab's reading";
        }
        ''
          export HOME="$TMPDIR"
          lkmlab --project ${sources.config} show pin --kernel-name ${primary.kernel} > pin.json
          lkmlab --project ${sources.config} show kconfig --target ${primary.name} > kconfig.json
          diff -u <(jq -S . "$nixPinPath") <(jq -S . pin.json)
          diff -u <(jq -S . "$nixKconfigPath") <(jq -S . kconfig.json)
          touch "$out"
        '';

  }
  // perTarget (t: {
    inherit (t) vm-test;
    kernel-config = t.kernel-config-check;
  })
  # The VM test under KVM: the primary target's (when it is of this
  # system's architecture) and each such target's.
  // lib.optionalAttrs kvmChecks (
    lib.optionalAttrs (vm-test-kvm != null) { inherit vm-test-kvm; }
    // perTarget (t: {
      inherit (t) vm-test-kvm;
    })
  )
  // lib.optionalAttrs selfChecks {
    # `cargo test -p lkmlab`: the package itself is built without its tests
    # (they are no part of what the VM test or the apps need).
    lkmlab = lkmlab.overrideAttrs { doCheck = true; };

    nixfmt =
      pkgs.runCommand "lkmlab-nixfmt-check"
        {
          nativeBuildInputs = [ pkgs.nixfmt ];
          meta = checkMeta "The project's flake.nix and nix/*.nix are formatted by nixfmt";
        }
        ''
          cd ${sources.nix}
          find . -name '*.nix' -print0 | sort -z | xargs -0 nixfmt --check
          touch "$out"
        '';
  };

  apps = rec {
    vm = mkApp {
      name = "lkmlab-vm";
      description = "Interactive virtme-ng VM on the pinned kernel, the module in $LKMLAB_MODULES";
      runtimeInputs = [
        lkmlab
        virtme-ng
        qemu
      ];
      text = ''
        exec lkmlab --project ${sources.project} vm ${labArgs} "$@"
      '';
    };

    test = mkApp {
      name = "lkmlab-test";
      description = "The VM test outside the sandbox: KVM when it works, else TCG";
      # busybox: module/guest-tests has a script, which needs a static shell.
      # The QEMU of the target's VM test.
      runtimeInputs = [
        lkmlab
        main.qemu
        busybox
      ];
      # Results go to ./lkmlab-results unless --out is given; --accel auto
      # (KVM when it works, else TCG) unless --accel is given (lkmlab refuses
      # an option given twice).
      text = ''
        out=(--out "$PWD/lkmlab-results")
        accel=(--accel auto)
        for arg in "$@"; do
          case "$arg" in
            --out | --out=*) out=() ;;
            --accel | --accel=*) accel=() ;;
          esac
        done
        exec lkmlab --project ${sources.project} test ${labArgs} \
          --runner ${lib.getExe main.runner} "''${accel[@]}" "''${out[@]}" "$@"
      '';
    };

    default = vm;
  };

  devShell = pkgs.mkShell {
    packages = devShellToolchain ++ [
      lkmlab
      virtme-ng
      qemu
      pkgs.rust-analyzer
      pkgs.rustfmt
      pkgs.clippy
      pkgs.python3 # scripts/generate_rust_analyzer.py (make M=... rust-analyzer)
      pkgs.bc
      pkgs.bison
      pkgs.elfutils
      pkgs.flex
      pkgs.pahole
      pkgs.perl
      (lib.getBin pkgs.lz4) # CONFIG_KERNEL_LZ4, for `lkmlab kernel` in the shell
    ];
    KDIR = module.kdir;
    # nixpkgs' flags for out-of-tree modules (the kernel's own unwrapped CC,
    # LD, ..., ARCH, KBUILD_OUTPUT), as module.nix builds with:
    #   make -C "$KDIR" M="$PWD" $KMAKEFLAGS     (module/Makefile passes them on)
    # Without them Kbuild runs the `gcc` on PATH, the stdenv's wrapper.
    KMAKEFLAGS = toString kernelPackages.kernelModuleMakeFlags;
    # What the wrapper compiles here gets no hardening flags the kernel's
    # build (unwrapped compiler, build.nix's hardeningDisable) did not have.
    hardeningDisable = [ "all" ];
    RUST_LIB_SRC = "${toolchain.rustLibSrc}";
    LIBCLANG_PATH = "${toolchain.libclang}/lib";
    meta = {
      description = "The kernel's own Rust toolchain, its build tree ($KDIR), QEMU, virtme-ng and lkmlab";
      license = lib.licenses.gpl2Only;
      inherit platforms;
    };
  };

  formatter = pkgs.nixfmt-tree;
}
