# A stand-in for the part of nixpkgs the flake uses, so that the whole flake
# evaluates and instantiates offline with the real nixpkgs lib
# (.ci/replica/eval.nix). It is not nixpkgs and builds nothing under Nix:
#
# - Each function takes the argument set of the nixpkgs function it stands
#   for, as read in the file named beside it (commits in tools.toml
#   [sources]). Where the real one has no `...`, neither has the mock, so an
#   argument nixpkgs does not know fails here too.
# - The packages are tools.toml's [tool.*] entries: derivations marked
#   `replicaTool`, with nixpkgs' outputs where they matter.
# - Every derivation is a real `derivation`: nix-instantiate writes it, and
#   .ci/replica/replica.py executes the .drv the way the Nix sandbox would,
#   with stdenv/builder.sh + stdenv/setup.sh (this folder) in place of
#   nixpkgs' stdenv. The phases of linuxManualConfig below restate build.nix's
#   in shell of our own.
{ lib, table }:
let
  # One package set: `system` is the build platform (the derivations'
  # `system`); `cross` null for the native set, else { name; system; }:
  # nixpkgs' pkgsCross.<name>, whose host platform is that system.
  mkSet =
    {
      system,
      cross ? null,
    }:
    let
      hostSystem = if cross == null then system else cross.system;
      # Tools of the cross set's own compilers: tools.toml keys under
      # `pkgsCross.<name>.`.
      crossKey = key: if cross == null then key else "pkgsCross.${cross.name}.${key}";

      # --- the tools of tools.toml ---

      # A package that stands for tools.toml [tool.KEY]: never built, the replica
      # links the Debian executables the table names into its outputs.
      mkTool =
        key:
        let
          entry = table.tool.${key};
          name = builtins.replaceStrings [ "." ] [ "-" ] key;
          drv = derivation {
            inherit name system;
            outputs = entry.outputs or [ "out" ];
            builder = "/replica-tool";
            replicaTool = key;
          };
        in
        drv
        // {
          pname = name;
          version = entry.version or "replica";
          meta.mainProgram = entry.mainProgram or name;
        };
      tools = lib.genAttrs (builtins.attrNames table.tool) mkTool;
      tool = key: tools.${key} or (throw "mock-nixpkgs: tools.toml has no [tool.\"${key}\"]");

      # "NAME" or "NAME:OUTPUT" (tools.toml [lists]).
      toolRef =
        ref:
        let
          parts = lib.splitString ":" ref;
        in
        if builtins.length parts == 1 then
          tool ref
        else
          (tool (builtins.head parts)).${builtins.elemAt parts 1};
      toolList = name: map toolRef table.lists.${name};

      bash = tool "bash";
      runtimeShell = "${bash}/bin/bash";

      # --- platforms and stdenvs ---

      # lib/systems (elaborated x86_64-linux, aarch64-linux) and
      # lib/systems/platforms.nix (pc, aarch64-multiplatform): the attributes
      # the flake, build.nix and common-flags.nix read.
      mkPlatform =
        sys: isStatic:
        let
          isx86 = sys == "x86_64-linux";
          cpu = if isx86 then "x86_64" else "aarch64";
          triple = "${cpu}-unknown-linux-${if isStatic then "musl" else "gnu"}";
        in
        {
          system = sys;
          inherit isStatic isx86;
          config = triple;
          isLinux = true;
          isx86_64 = isx86;
          isAarch = !isx86;
          isAarch32 = false;
          isAarch64 = !isx86;
          isRiscV = false;
          isLoongArch64 = false;
          isPower = false;
          isDarwin = false;
          isMinGW = false;
          linuxArch = if isx86 then "x86_64" else "arm64";
          linux-kernel =
            if isx86 then
              {
                name = "pc";
                target = "bzImage";
                autoModules = true;
              }
            else
              {
                name = "aarch64-multiplatform";
                baseConfig = "defconfig";
                DTB = true;
                autoModules = true;
                target = "Image";
              };
          rust = {
            rustcTargetSpec = triple;
            cargoShortTarget = triple;
          };
        };

      # The prefix of a compiler for the host platform: none natively, the
      # host's triple for a cross compiler (cc-wrapper's targetPrefix).
      crossPrefix = if cross == null then "" else "${(mkPlatform hostSystem false).config}-";

      # stdenv.cc (pkgs/build-support/cc-wrapper): the wrapper, with the
      # unwrapped compiler as .cc and the bintools wrapper as .bintools, whose
      # .bintools is the unwrapped binutils. A cross set's have its triple as
      # prefix (aarch64-unknown-linux-gnu-gcc).
      gccWrapper = tool (crossKey "stdenv.cc") // {
        cc = tool (crossKey "stdenv.cc.cc") // {
          meta.mainProgram = "${crossPrefix}gcc";
          version = "replica";
        };
        bintools = tool (crossKey "stdenv.cc.bintools") // {
          bintools = tool (crossKey "stdenv.cc.bintools.bintools");
        };
        targetPrefix = crossPrefix;
        isClang = false;
        isGNU = true;
      };
      # pkgsStatic's compiler: always a cross compiler (to musl).
      staticGccWrapper = tool (crossKey "pkgsStatic.stdenv.cc") // {
        targetPrefix = "${(mkPlatform hostSystem true).config}-";
        isClang = false;
        isGNU = true;
      };

      mkStdenv =
        {
          name,
          cc,
          isStatic ? false,
        }:
        let
          self = {
            inherit name cc system;
            hostPlatform = mkPlatform hostSystem isStatic;
            buildPlatform = mkPlatform system false;
            targetPlatform = mkPlatform hostSystem isStatic;
            isLinux = true;
            isDarwin = false;
            shell = runtimeShell;
            shellDryRun = "${runtimeShell} -n -O extglob";
            initialPath = toolList "stdenv";
            mkDerivation = mkDerivationWith self;
          };
        in
        self;

      # stdenv.mkDerivation (pkgs/stdenv/generic/make-derivation.nix), as far as
      # the flake's derivations use it: pname/version or name, outputs, `env`,
      # passthru and meta kept out of the derivation, __structuredAttrs,
      # overrideAttrs, and check-meta's refusal of a broken or unsupported
      # package. Attribute values reach the builder as Nix passes them.
      mkDerivationWith =
        stdenv: fnOrAttrs:
        let
          attrs = if builtins.isFunction fnOrAttrs then lib.fix fnOrAttrs else fnOrAttrs;
          structured = attrs.__structuredAttrs or false;
          env = attrs.env or { };
          drvAttrs =
            removeAttrs attrs [
              "passthru"
              "meta"
              "env"
              "pos"
            ]
            // (if structured then { inherit env; } else env)
            // {
              name = attrs.name or "${attrs.pname}-${attrs.version}";
              inherit system;
              outputs = attrs.outputs or [ "out" ];
              builder = runtimeShell;
              args = [
                "-e"
                ./stdenv/builder.sh
              ];
              replicaSetup = ./stdenv/setup.sh;
              replicaStdenv = stdenv.name;
              initialPath = stdenv.initialPath;
              # The stdenv's compiler, which nixpkgs' setup puts on PATH.
              replicaCC = if stdenv.cc == null then [ ] else [ stdenv.cc ];
              __ignoreNulls = true;
            };
          meta = attrs.meta or { };
          # pkgs/stdenv/generic/check-meta.nix: with the default config
          # (allowBroken = false, allowUnsupportedSystem = false) a broken
          # package, or one whose meta.platforms leaves out the host, does not
          # evaluate.
          # The host platform: a cross package runs on the cross system.
          platform = lib.systems.elaborate stdenv.hostPlatform.system;
          valid =
            if meta.broken or false then
              throw "mock check-meta: ${drvAttrs.name} is marked as broken (meta.broken)"
            else if !(lib.meta.availableOn platform { inherit meta; }) then
              throw "mock check-meta: ${drvAttrs.name} is not available on ${stdenv.hostPlatform.system} (meta.platforms)"
            else
              true;
          drv =
            assert valid;
            derivation drvAttrs;
          passthru = attrs.passthru or { };
        in
        drv
        // passthru
        // {
          inherit passthru meta;
          overrideAttrs = f: mkDerivationWith stdenv (attrs // lib.toExtension f attrs attrs);
        };

      stdenv = mkStdenv {
        name = "stdenv";
        cc = gccWrapper;
      };
      stdenvNoCC = mkStdenv {
        name = "stdenvNoCC";
        cc = null;
      };
      staticStdenv = mkStdenv {
        name = "stdenv-static";
        cc = staticGccWrapper;
        isStatic = true;
      };

      # --- pkgs/build-support/trivial-builders/default.nix ---

      trivial = rec {
        runCommand =
          name: env:
          runCommandWith {
            stdenv = stdenvNoCC;
            runLocal = false;
            inherit name;
            derivationArgs = env;
          };

        runCommandWith =
          {
            stdenv ? pkgs.stdenv,
            runLocal ? false,
            derivationArgs ? { },
            name,
          }:
          buildCommand:
          stdenv.mkDerivation (
            {
              enableParallelBuilding = true;
              inherit buildCommand name;
              passAsFile = [ "buildCommand" ] ++ (derivationArgs.passAsFile or [ ]);
            }
            // lib.optionalAttrs runLocal {
              preferLocalBuild = true;
              allowSubstitutes = false;
            }
            // removeAttrs derivationArgs [ "passAsFile" ]
          );

        writeTextFile =
          {
            name,
            text,
            executable ? false,
            destination ? "",
            checkPhase ? "",
            meta ? { },
            passthru ? { },
            allowSubstitutes ? false,
            preferLocalBuild ? true,
            derivationArgs ? { },
          }:
          let
            binName = builtins.match "/bin/([^/]+)" destination;
          in
          runCommand name
            (
              {
                inherit
                  text
                  executable
                  checkPhase
                  allowSubstitutes
                  preferLocalBuild
                  ;
                passAsFile = [ "text" ];
                meta =
                  lib.optionalAttrs (executable && binName != null) { mainProgram = lib.head binName; } // meta;
                inherit passthru;
              }
              // derivationArgs
            )
            ''
              target=$out${lib.escapeShellArg destination}
              mkdir -p "$(dirname "$target")"
              mv "$textPath" "$target"
              if [ -n "$executable" ]; then chmod +x "$target"; fi
              eval "$checkPhase"
            '';

        writeShellScriptBin =
          name: text:
          writeTextFile {
            inherit name;
            executable = true;
            destination = "/bin/${name}";
            text = ''
              #!${runtimeShell}
              ${text}
            '';
            checkPhase = ''
              ${stdenv.shellDryRun} "$target"
            '';
            meta.mainProgram = name;
          };

        # The script text as nixpkgs writes it: shebang, one `set -o` per bash
        # option, runtimeEnv, PATH, then the text. Its shellcheck test is
        # passthru.tests.shellcheck there (not part of the build); the replica
        # runs shellcheck on the script itself.
        writeShellApplication =
          {
            name,
            text,
            runtimeInputs ? [ ],
            runtimeEnv ? null,
            meta ? { },
            passthru ? { },
            checkPhase ? null,
            excludeShellChecks ? [ ],
            extraShellCheckFlags ? [ ],
            bashOptions ? [
              "errexit"
              "nounset"
              "pipefail"
            ],
            derivationArgs ? { },
            inheritPath ? true,
          }:
          writeTextFile {
            inherit name meta derivationArgs;
            executable = true;
            destination = "/bin/${name}";
            allowSubstitutes = true;
            preferLocalBuild = false;
            text = ''
              #!${runtimeShell}
              ${lib.concatMapStringsSep "\n" (option: "set -o ${option}") bashOptions}
            ''
            + lib.optionalString (runtimeEnv != null) (
              lib.concatStrings (
                lib.mapAttrsToList (name: value: ''
                  ${lib.toShellVar name value}
                  export ${name}
                '') runtimeEnv
              )
            )
            + lib.optionalString (runtimeInputs != [ ]) ''

              export PATH="${lib.makeBinPath runtimeInputs}${lib.optionalString inheritPath ":$PATH"}"
            ''
            + ''

              ${text}
            '';
            checkPhase =
              if checkPhase == null then
                ''
                  runHook preCheck
                  ${stdenv.shellDryRun} "$target"
                  runHook postCheck
                ''
              else
                checkPhase;
            passthru = passthru // {
              replicaShellCheck = {
                inherit excludeShellChecks extraShellCheckFlags;
              };
            };
          };

        symlinkJoin =
          args_@{
            name ?
              assert lib.assertMsg (
                args_ ? pname && args_ ? version
              ) "symlinkJoin requires either a `name` OR `pname` and `version`";
              "${args_.pname}-${args_.version}",
            paths,
            stripPrefix ? "",
            preferLocalBuild ? true,
            allowSubstitutes ? false,
            postBuild ? "",
            failOnMissing ? stripPrefix == "",
            ...
          }:
          runCommand name
            (
              removeAttrs args_ [
                "name"
                "postBuild"
                "stripPrefix"
                "paths"
                "failOnMissing"
              ]
              // {
                inherit preferLocalBuild allowSubstitutes;
                paths = map (path: "${path}${stripPrefix}") paths;
                passAsFile = [ "paths" ];
              }
            )
            ''
              mkdir -p "$out"
              for i in $(cat "$pathsPath"); do
                ${
                  lib.optionalString (!failOnMissing) "if test -d $i; then "
                }${tool "lndir"}/bin/lndir -silent "$i" "$out"${lib.optionalString (!failOnMissing) "; fi"}
              done
              ${postBuild}
            '';
      };

      # --- fetchers: pkgs/build-support/fetchurl/default.nix (extendDrvArgs;
      # "No ellipsis") ---

      fetchurl =
        {
          url ? "",
          urls ? [ ],
          curlOpts ? "",
          curlOptsList ? [ ],
          name ? null,
          pname ? null,
          version ? null,
          hash ? "",
          outputHash ? "",
          outputHashAlgo ? "",
          sha1 ? "",
          sha256 ? "",
          sha512 ? "",
          recursiveHash ? false,
          netrcPhase ? null,
          netrcImpureEnvVars ? [ ],
          postFetch ? "",
          downloadToTemp ? false,
          executable ? false,
          showURLs ? false,
          meta ? { },
          passthru ? { },
          preferLocalBuild ? true,
          nativeBuildInputs ? [ ],
          derivationArgs ? { },
        }:
        let
          allUrls = if urls != [ ] then urls else [ url ];
          hashes = lib.filter (h: h != "") [
            hash
            outputHash
            sha1
            sha256
            sha512
          ];
        in
        assert lib.assertMsg (allUrls != [ "" ]) "fetchurl requires either `url` or `urls` to be set";
        assert lib.assertMsg (
          builtins.length hashes == 1
        ) "fetchurl: exactly one hash (got ${toString (builtins.length hashes)})";
        stdenvNoCC.mkDerivation (
          derivationArgs
          // {
            name =
              if pname != null && version != null then
                "${pname}-${version}"
              else if name != null then
                name
              else
                baseNameOf (toString (lib.head allUrls));
            urls = allUrls;
            nativeBuildInputs = [ (tool "curl") ] ++ nativeBuildInputs;
            outputHashMode = if recursiveHash || executable then "recursive" else "flat";
            replicaFetch = true;
            inherit
              postFetch
              downloadToTemp
              executable
              preferLocalBuild
              meta
              ;
            passthru = passthru // {
              url = lib.head allUrls;
            };
          }
          // (
            if hash != "" then
              {
                outputHash = hash;
                outputHashAlgo = null;
              }
            else if outputHash != "" then
              { inherit outputHash outputHashAlgo; }
            else if sha512 != "" then
              {
                outputHash = sha512;
                outputHashAlgo = "sha512";
              }
            else if sha256 != "" then
              {
                outputHash = sha256;
                outputHashAlgo = "sha256";
              }
            else
              {
                outputHash = sha1;
                outputHashAlgo = "sha1";
              }
          )
        );

      # --- Rust: pkgs/build-support/rust/build-rust-package/default.nix (it has
      # `...`: the rest goes to mkDerivation). Not replayed: the replica stands
      # in tools.toml [standin.PNAME] for the output. ---

      mkRustPlatform = stdenv: {
        rustLibSrc = tool "rustPlatform.rustLibSrc";
        buildRustPackage =
          {
            name ? "${args.pname}-${args.version}",
            cargoDepsName ? name,
            src ? null,
            srcs ? null,
            preUnpack ? null,
            unpackPhase ? null,
            postUnpack ? null,
            cargoPatches ? [ ],
            patches ? [ ],
            sourceRoot ? null,
            logLevel ? "",
            buildInputs ? [ ],
            nativeBuildInputs ? [ ],
            cargoUpdateHook ? "",
            cargoDepsHook ? "",
            buildType ? "release",
            meta ? { },
            cargoLock ? null,
            cargoVendorDir ? null,
            checkType ? buildType,
            buildNoDefaultFeatures ? false,
            checkNoDefaultFeatures ? buildNoDefaultFeatures,
            buildFeatures ? [ ],
            checkFeatures ? buildFeatures,
            useNextest ? false,
            auditable ? true,
            depsExtraArgs ? { },
            __internal_dontAddSysroot ? false,
            buildAndTestSubdir ? null,
            ...
          }@args:
          assert lib.assertMsg (
            cargoLock != null || cargoVendorDir != null || args ? cargoHash
          ) "cargoHash, cargoVendorDir, or cargoLock must be set";
          stdenv.mkDerivation (
            removeAttrs args [
              "depsExtraArgs"
              "cargoUpdateHook"
              "cargoLock"
            ]
            // {
              cargoDeps = if cargoLock != null then importCargoLock cargoLock else null;
              nativeBuildInputs = nativeBuildInputs ++ [
                (tool "cargo")
                pkgs.rustc
              ];
              doCheck = args.doCheck or true;
              strictDeps = true;
              replicaStandin = args.pname;
              meta = meta;
            }
          );
      };

      # pkgs/build-support/rust/import-cargo-lock.nix: crates.io packages need
      # only the lock's checksum; a git source would need outputHashes.
      importCargoLock =
        {
          lockFile ? null,
          lockFileContents ? null,
          allowBuiltinFetchGit ? false,
          outputHashes ? { },
          extraRegistries ? { },
        }:
        let
          lock = builtins.fromTOML (
            if lockFile != null then builtins.readFile lockFile else lockFileContents
          );
          remote = lib.filter (p: p ? source) lock.package;
          bad = lib.filter (
            p:
            !(lib.hasPrefix "registry+" p.source && p ? checksum) && !(outputHashes ? "${p.name}-${p.version}")
          ) remote;
        in
        assert lib.assertMsg (
          bad == [ ]
        ) "importCargoLock: no checksum or outputHash for ${toString (map (p: p.name) bad)}";
        stdenvNoCC.mkDerivation {
          name = "cargo-vendor-dir";
          crates = map (p: "${p.name}-${p.version}-${p.checksum}") remote;
          buildCommand = "mkdir -p $out";
        };

      # --- the kernel: pkgs/os-specific/linux/kernel/build.nix
      # (linuxKernel.manualConfig = linuxManualConfig) ---

      # common-flags.nix: the unwrapped compilers by absolute path.
      commonMakeFlags =
        stdenv: extraMakeFlags:
        import ./nixpkgs/pkgs/os-specific/linux/kernel/common-flags.nix {
          inherit lib stdenv extraMakeFlags;
          inherit (pkgs) buildPackages;
        };

      linuxManualConfig =
        let
          lib_ = lib;
          stdenv_ = stdenv;
          readConfig =
            configfile:
            lib.listToAttrs (
              lib.concatMap (
                line:
                let
                  m = lib.match "(CONFIG_[^=]+)=([ym])" line;
                in
                lib.optional (m != null) {
                  name = lib.elemAt m 0;
                  value = lib.elemAt m 1;
                }
              ) (lib.splitString "\n" (builtins.readFile configfile))
            );
        in
        lib.makeOverridable (
          {
            version,
            pname ? "linux",
            pos ? null,
            extraMakeFlags ? [ ],
            modDirVersion ? null,
            src,
            kernelPatches ? [ ],
            configfile,
            target ?
              if stdenv.hostPlatform.isx86 then
                "bzImage"
              else if stdenv.hostPlatform.isAarch32 then
                "zImage"
              else if stdenv.hostPlatform.isAarch64 || stdenv.hostPlatform.isRiscV then
                "Image"
              else if stdenv.hostPlatform.isLoongArch64 then
                "vmlinuz.efi"
              else
                "vmlinux",
            buildDTBs ?
              stdenv.hostPlatform.isAarch || stdenv.hostPlatform.isRiscV || stdenv.hostPlatform.isLoongArch64,
            config ? lib.optionalAttrs (builtins.isPath configfile || allowImportFromDerivation) (
              readConfig configfile
            ),
            randstructSeed ? "",
            extraMeta ? { },
            isZen ? false,
            allowImportFromDerivation ? false,
            features ? { },
            lib ? lib_,
            stdenv ? stdenv_,
          }:
          let
            modDirVersion' = if modDirVersion == null then lib.versions.pad 3 version else modDirVersion;
            config' = {
              isSet = attr: config' ? "CONFIG_${attr}";
              getValue = attr: config'."CONFIG_${attr}" or null;
              isYes = attr: config'.getValue attr == "y";
              isNo = attr: config'.getValue attr == "n";
              isModule = attr: config'.getValue attr == "m";
              isEnabled = attr: config'.isModule attr || config'.isYes attr;
              isDisabled = attr: !(config'.isSet attr) || config'.isNo attr;
            }
            // config;
            isModular = config'.isYes "MODULES";
            withRust = config'.isYes "RUST";
            flags = commonMakeFlags stdenv extraMakeFlags;
            build = "$dev/lib/modules/${modDirVersion'}/build";
            moduleBuildDependencies =
              toolList "module"
              ++ [
                (tool "deterministic-uname")
                (tool "setup-module-compression")
              ]
              ++ lib.optional (lib.versionAtLeast version "5.13") (tool "zstd")
              ++ lib.optionals withRust (toolList "kernel-rust");
          in
          stdenv.mkDerivation {
            inherit pname version src;
            __structuredAttrs = true;
            enableParallelBuilding = true;
            hardeningDisable = [
              "bindnow"
              "format"
              "fortify"
              "stackprotector"
              "pic"
            ];
            outputs = [
              "out"
              "dev"
            ]
            ++ lib.optional isModular "modules";
            dontCheckForBrokenSymlinks = true;

            # build.nix also applies its randstruct-provide-seed-5.19.patch, which
            # is nixpkgs' and not here (docs/nix.md: what the replica cannot show).
            patches = lib.filter (p: p != null) (map (p: p.patch) kernelPatches);

            buildFlags = [
              target
              "scripts_gdb"
            ]
            ++ lib.optional isModular "modules"
            ++ lib.optional buildDTBs "dtbs";

            installFlags = [
              "INSTALL_PATH=${placeholder "out"}"
              # build.nix: scripts/install.sh runs ~/bin/installkernel KERNELRELEASE
              # IMAGE System.map INSTALL_PATH; HOME is a store path whose
              # bin/installkernel copies the image and System.map.
              "HOME=${trivial.writeShellScriptBin "installkernel" ''
                cp -av $2 $4
                cp -av $3 $4
              ''}"
            ]
            ++ lib.optionals isModular [
              "INSTALL_MOD_PATH=${placeholder "modules"}"
              "INSTALL_MOD_STRIP=$(if $(dontStrip),,1)"
            ];

            depsBuildBuild = [ pkgs.buildPackages.stdenv.cc ];
            nativeBuildInputs = toolList "kernel" ++ lib.optionals withRust (toolList "kernel-rust");

            env = {
              RUST_LIB_SRC = lib.optionalString withRust "${pkgs.rustPlatform.rustLibSrc}";
              KRUSTFLAGS = lib.optionalString withRust "--remap-path-prefix ${pkgs.rustPlatform.rustLibSrc}=/";
            };

            makeFlags = [
              "O=$(buildRoot)"
              "KBUILD_BUILD_TIMESTAMP=@$(SOURCE_DATE_EPOCH)"
              "KBUILD_BUILD_VERSION=1-NixOS"
              "DTC_FLAGS=-@"
              "--eval=undefine modules"
              "--eval=undefine src"
            ]
            ++ flags;

            # build.nix's postPatch: the randstruct seed (its patch adds the
            # placeholder; without the patch there is none to fill), then
            # patchShebangs on scripts/ and the arch install scripts.
            postPatch = ''
              for file in scripts/gen-randstruct-seed.sh scripts/gcc-plugins/gen-random-seed.sh; do
                if [ -f "$file" ] && grep -q NIXOS_RANDSTRUCT_SEED "$file"; then
                  substituteInPlace "$file" --replace-fail NIXOS_RANDSTRUCT_SEED \
                    "$(echo ${randstructSeed}${src} ${placeholder "configfile"} | sha256sum | cut -d ' ' -f 1)"
                  break
                fi
              done
              patchShebangs scripts
              while IFS= read -r -d "" script; do patchShebangs "$script"; done \
                < <(find arch -name install.sh -print0)
            '';

            # build.nix's configurePhase: a separate build/ directory (O=) with a
            # link to the configfile, `make oldconfig`, postConfigure, `make
            # prepare`, and a check that the tree's release is modDirVersion.
            configurePhase = ''
              runHook preConfigure
              mkdir build
              export buildRoot="$PWD/build"
              if [ -e "$buildRoot/.config" ]; then
                echo "build.nix: $buildRoot/.config exists" >&2
                exit 1
              fi
              ln -sv ${configfile} "$buildRoot/.config"
              make "''${makeFlags[@]}" oldconfig
              runHook postConfigure
              make "''${makeFlags[@]}" prepare
              release=$(cat "$buildRoot/include/config/kernel.release")
              if [ "$release" != "${modDirVersion'}" ]; then
                echo "build.nix: modDirVersion is ${modDirVersion'}, the tree says $release" >&2
                exit 1
              fi
              cd "$buildRoot"
            '';

            # build.nix's postInstall: vmlinux and the gdb scripts to $dev; for a
            # modular kernel, the source tree (without build/) to
            # $dev/lib/modules/V/source, .config and Module.symvers to .../build,
            # `make modules_prepare` into that separate O=, then everything in
            # source/ that modules do not need is deleted: other arches, drivers/,
            # and every file that is not a header, a linker script, a Makefile,
            # rust/Makefile or under scripts/.
            postInstall = ''
              mkdir -p $dev
              cp vmlinux $dev/
            ''
            + lib.optionalString isModular ''
              mkdir -p ${build}/scripts
              cp -rL ../scripts/gdb/ ${build}/scripts
              cp scripts/gdb/linux/constants.py ${build}/scripts/gdb/linux
              unlink $modules/lib/modules/${modDirVersion'}/build
              mkdir -p ${build} $dev/lib/modules/${modDirVersion'}/source
              (cd .. && rsync --archive --prune-empty-dirs --exclude='/build/' \
                * $dev/lib/modules/${modDirVersion'}/source/)
              cd $dev/lib/modules/${modDirVersion'}/source
              cp $buildRoot/{.config,Module.symvers} ${build}
              make modules_prepare "''${makeFlags[@]}" O=${build}
              chmod u+w -R ..
              for d in $(cd arch/; ls); do
                if [ -d "${build}/arch/$d" ]; then continue; fi
                rm -rf "arch/$d"
              done
              rm -fR drivers
              find . -type f \( -name '*.h' -o -name '*.lds' \) -print0 | xargs -0 -r chmod u-w
              chmod u-w Makefile arch/*/Makefile*
              ${lib.optionalString withRust "chmod u-w rust/Makefile"}
              chmod u-w -R scripts
              find . -type f -perm -u=w -print0 | xargs -0 -r rm
              find . -empty -type d -delete
            '';

            requiredSystemFeatures = [ "big-parallel" ];

            passthru = {
              inherit
                version
                kernelPatches
                configfile
                target
                buildDTBs
                moduleBuildDependencies
                stdenv
                isZen
                withRust
                features
                ;
              commonMakeFlags = flags;
              modDirVersion = modDirVersion';
              baseVersion = lib.head (lib.splitString "-rc" version);
              kernelOlder = lib.versionOlder version;
              kernelAtLeast = lib.versionAtLeast version;
              config = config';
            };

            installTargets = [ "install" ] ++ lib.optional isModular "modules_install";
            karch = stdenv.hostPlatform.linuxArch;
            meta = {
              broken = withRust && lib.versionOlder version "6.12";
              platforms = lib.platforms.linux;
            }
            // extraMeta;
          }
        );

      # pkgs/top-level/linux-kernels.nix, packagesFor.
      linuxPackagesFor =
        kernel_:
        lib.makeExtensible (self: {
          callPackage = lib.callPackageWith (pkgs // self);
          kernel = kernel_;
          inherit (kernel_) stdenv;
          kernelModuleMakeFlags = self.kernel.commonMakeFlags ++ [
            "KBUILD_OUTPUT=${kernel_.dev}/lib/modules/${kernel_.modDirVersion}/build"
          ];
        });

      # pkgs/build-support/mkshell/default.nix.
      mkShell =
        {
          name ? "nix-shell",
          packages ? [ ],
          inputsFrom ? [ ],
          buildInputs ? [ ],
          nativeBuildInputs ? [ ],
          propagatedBuildInputs ? [ ],
          propagatedNativeBuildInputs ? [ ],
          ...
        }@attrs:
        stdenv.mkDerivation (
          removeAttrs attrs [
            "packages"
            "inputsFrom"
          ]
          // {
            inherit
              name
              buildInputs
              propagatedBuildInputs
              propagatedNativeBuildInputs
              ;
            nativeBuildInputs = packages ++ nativeBuildInputs;
            phases = [ "buildPhase" ];
            buildPhase = "export > $out";
          }
        );

      pkgs = tools // {
        inherit
          lib
          stdenv
          stdenvNoCC
          fetchurl
          linuxManualConfig
          linuxPackagesFor
          mkShell
          runtimeShell
          ;
        inherit (trivial)
          runCommand
          runCommandWith
          writeTextFile
          writeShellScriptBin
          writeShellApplication
          symlinkJoin
          ;
        callPackage = lib.callPackageWith pkgs;
        newScope = extra: lib.callPackageWith (pkgs // extra);
        # A cross set's build tools are the build system's native packages.
        buildPackages = if cross == null then pkgs else native.${system};
        # nixpkgs' source tree, for the files the flake imports from it
        # (pkgs/os-specific/linux/kernel/common-flags.nix): the mock's own.
        path = ./nixpkgs;
        # lib/systems/examples.nix: the cross package sets the flake uses.
        pkgsCross =
          lib.mapAttrs
            (
              name: crossSystem:
              (mkSet {
                inherit system;
                cross = {
                  inherit name;
                  system = crossSystem;
                };
              }).pkgs
            )
            {
              aarch64-multiplatform = "aarch64-linux";
              gnu64 = "x86_64-linux";
            };
        rustPlatform = mkRustPlatform stdenv;
        rustc = tool "rustc-unwrapped";
        rust-bindgen-unwrapped = tool "rust-bindgen-unwrapped" // {
          clang.cc = tool "rust-bindgen-unwrapped.clang.cc";
        };
        pkgsStatic = pkgs // {
          stdenv = staticStdenv;
          busybox = tool (crossKey "pkgsStatic.busybox");
          rustPlatform = mkRustPlatform staticStdenv;
          callPackage = lib.callPackageWith pkgs.pkgsStatic;
        };
      };
    in
    {
      inherit pkgs tools;
    };

  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  native = lib.genAttrs systems (system: (mkSet { inherit system; }).pkgs);
in
{
  inherit lib;
  legacyPackages = native;
  replicaTools = (mkSet { system = "x86_64-linux"; }).tools;
}
