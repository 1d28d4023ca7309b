//! The command line.

use crate::config::arch::Arch;
use crate::config::pin::AccelChoice;
use crate::config::target::Selection;
use crate::output::ColorChoice;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lkmlab",
    version,
    about = "A reproducible VM lab for Linux kernel modules written in Rust",
    long_about = "Builds the kernel pinned in lkmlab.toml with Rust support, builds your \
                  out-of-tree Rust modules against exactly that tree, and tests them in a \
                  QEMU VM.\n\nExit status: 0 success; 1 tests failed; 2 anything else \
                  (bad input, missing tool, build failure); `vm --exec`: the command's own; \
                  141 when standard output is closed before lkmlab is done (`| head`).",
    after_help = "Start with `lkmlab doctor`, then `lkmlab check`."
)]
pub struct Cli {
    /// Project directory (holding lkmlab.toml); default: search upward from the current directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Cache for downloads, sources and kernel builds [default: $XDG_CACHE_HOME/lkmlab].
    #[arg(long, global = true, env = "LKMLAB_CACHE", value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Directory searched first for pinned files, matched by file name (always sha256-verified).
    #[arg(long, global = true, env = "LKMLAB_MIRROR", value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Say less: no status lines, only notices, errors and results.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Say more: also every command lkmlab runs (make, cargo, QEMU, vng, version probes), as it runs it.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Colour the test report: auto (when standard output is a terminal and NO_COLOR is unset), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Cmd,
}

/// How a verdict is printed.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// One line per case, the failures quoted, the summary line.
    #[default]
    Text,
    /// One JSON object: the counts, what failed, the cases, the kernel log's findings.
    Json,
}

/// Which target (kernel, architecture and kernel flavor) a command works on.
#[derive(Args, Debug, Clone)]
pub struct TargetArg {
    /// A target declared in lkmlab.toml's [[targets]], by name: `KERNEL-` unless it is the
    /// default kernel, its architecture, then `-FLAVOR` unless the flavor is `default`
    /// (`arm64`, `x86_64-debug`, `6.12-x86_64`) [default: the first declared]. For one that
    /// is not declared, give --kernel-name, --arch and --flavor.
    #[arg(long = "target", value_name = "NAME", conflicts_with_all = ["kernel_name", "arch", "flavor"])]
    pub name: Option<String>,
    /// Kernel of the pin: the series of lkmlab.toml's [kernel] (`7.3`) or a NAME of its
    /// [kernels.NAME] [default: the default target's].
    #[arg(long, value_name = "NAME")]
    pub kernel_name: Option<String>,
    /// Architecture: x86_64 or arm64 (cross-built with clang, run under TCG on
    /// another host) [default: the default target's].
    #[arg(long, value_name = "ARCH", value_parser = parse_arch)]
    pub arch: Option<Arch>,
    /// Kernel flavor: `default`, or a name from [kconfig.flavors] in lkmlab.toml
    /// [default: the default target's].
    #[arg(long, value_name = "NAME")]
    pub flavor: Option<String>,
}

impl TargetArg {
    pub fn selection(&self) -> Selection {
        Selection {
            target: self.name.clone(),
            kernel: self.kernel_name.clone(),
            arch: self.arch,
            flavor: self.flavor.clone(),
        }
    }
}

fn parse_arch(name: &str) -> Result<Arch, String> {
    Arch::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        format!(
            "unknown architecture {name:?}; lkmlab knows {}",
            known.join(", ")
        )
    })
}

/// A make variable assignment from the command line: `NAME=VALUE`, NAME a
/// make variable name (letters, digits, `_`, not starting with a digit).
fn parse_make_var(text: &str) -> Result<String, String> {
    let (name, _) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not a make variable: write NAME=VALUE"))?;
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "{name:?} is not a make variable name (letters, digits and _, not starting with a digit)"
        ));
    }
    if name == "ARCH" {
        return Err("ARCH comes from the target: give --arch or --target instead".into());
    }
    Ok(text.to_string())
}

#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// Accelerator: auto uses KVM only after a probe shows it works, else TCG.
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub accel: Option<AccelChoice>,
    /// Seconds before the VM is killed and the run fails, at least 1 [default: [vm] timeout_secs].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Where console.log, results.ktap and junit.xml go [default: target/lkmlab/<flavor>/test
    /// on x86_64, target/lkmlab/<arch>-<flavor>/test on another architecture].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// After each module's suite, load it with the 1st, 2nd, 3rd … allocation of
    /// init_module failing, until a load makes no allocation to fail; each failed
    /// load must leave nothing loaded, nothing logged and (kmemleak) nothing leaked.
    /// Needs a kernel with fault injection: the debug flavor.
    #[arg(long)]
    pub fault_injection: bool,
    /// Print where the time went: kernel check, module build, initramfs, boot
    /// (to the runner's first KTAP), tests, shutdown, verdict.
    #[arg(long)]
    pub timings: bool,
    /// How the verdict is printed on standard output.
    #[arg(long, value_name = "text|json", default_value = "text")]
    pub format: Format,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Start a module project: lkmlab.toml (this lkmlab's pin), kernel-config/, module/ with
    /// a module NAME and a guest test, flake.nix, a GitHub Actions workflow, .gitignore,
    /// README.md; or, with
    /// --module-dir, only lkmlab.toml and kernel-config/ for a module you have. Overwrites
    /// nothing.
    #[command(after_help = "Then: cd DIR && lkmlab check")]
    Init {
        /// Where to create it (made if missing) [default: the current directory].
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The module's name [default: DIR's name, lowercased, `-` as `_`].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Start from the module in MODDIR (a directory with a Kbuild or a Makefile, inside
        /// DIR): lkmlab.toml's [module] dir names it, and no example module is written.
        #[arg(long, value_name = "MODDIR", conflicts_with = "name")]
        module_dir: Option<PathBuf>,
        /// The https address of the git repository lkmlab's source is in, for flake.nix's
        /// lkmlab input and the CI workflow, which clones it [default:
        /// https://github.com/lkmlab/lkmlab].
        #[arg(long, value_name = "URL", conflicts_with = "module_dir")]
        lkmlab_url: Option<String>,
    },
    /// Get every pinned input (kernel source, rust-src when needed) into the cache, sha256-verified.
    Fetch,
    /// Check every tool the pipeline needs and print the fix for each problem.
    Doctor,
    /// Configure (tinyconfig + fragments, verified) and build the pinned kernel; cached by inputs.
    Kernel {
        #[command(flatten)]
        target: TargetArg,
    },
    /// Write the verified .config for a kernel source tree (used by the Nix flake).
    Config {
        #[command(flatten)]
        target: TargetArg,
        /// An unpacked kernel source tree.
        #[arg(long, value_name = "DIR")]
        source: PathBuf,
        /// Where to write the resulting .config.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// The make variables the kernel itself is built with (e.g. the Nix
        /// kernel's CC=…, LD=…, CROSS_COMPILE=…), so that Kconfig probes the
        /// same compiler. When given they replace lkmlab's own compiler
        /// variable (LLVM=…); ARCH stays the target's.
        #[arg(value_name = "VAR=VALUE", value_parser = parse_make_var)]
        make_vars: Vec<String>,
    },
    /// Build an out-of-tree module against the pinned kernel and print its .ko paths.
    Module {
        #[command(flatten)]
        target: TargetArg,
        /// The module directory (with a Kbuild or a Makefile) [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Extra make variables, e.g. CLIPPY=1.
        #[arg(value_name = "VAR=VALUE")]
        make_vars: Vec<String>,
    },
    /// Print the path of the pinned kernel's `kernel` crate documentation (its `make rustdoc`
    /// HTML, offline), building it once; it documents only what the kernel's configuration
    /// enables.
    #[command(
        long_about = "Print the path of the `kernel` crate's documentation for exactly the \
                      target's kernel: the HTML of the kernel's own `make rustdoc` (the `kernel`, \
                      `macros`, `pin_init`, `ffi`, `core` … crates), read offline. The first run \
                      builds the kernel if needed (as `lkmlab kernel` would), then the documentation, \
                      in a copy of the kernel tree so the cached tree is never written to (a few \
                      minutes); it is kept in the cache beside the tree, keyed like it, and later \
                      runs print the path at once.\n\nIt documents the crate as this \
                      configuration compiles it: an item behind a `#[cfg(CONFIG_…)]` whose option \
                      the kernel configuration does not enable is missing. Add the option to a \
                      fragment (kernel-config/) to see it.",
        after_help = "Examples:\n  lkmlab doc\n  lkmlab doc kernel::alloc::KVec\n  \
                      lkmlab doc --target 6.12-x86_64 --open"
    )]
    Doc {
        #[command(flatten)]
        target: TargetArg,
        /// An item or module (`kernel::alloc::KVec`, `kernel::sync`): print its page instead of
        /// the crate's front page (the nearest module's page, with a notice, when it has none).
        #[arg(value_name = "ITEM")]
        item: Option<String>,
        /// Also open the page in a browser (xdg-open), when there is a display.
        #[arg(long)]
        open: bool,
    },
    /// Boot the kernel in QEMU, load, exercise and unload the modules; report KTAP and JUnit.
    Test {
        #[command(flatten)]
        target: TargetArg,
        #[command(flatten)]
        vm: VmArgs,
        /// The module directory [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Use this kernel image (a bzImage; on arm64 an Image) instead of building the pinned
        /// kernel (with --modules).
        #[arg(long, value_name = "FILE", requires = "modules")]
        kernel: Option<PathBuf>,
        /// Use the .ko files in this directory instead of building the module.
        #[arg(long, value_name = "DIR", requires = "kernel")]
        modules: Option<PathBuf>,
        /// Use this static guest runner instead of building guest.
        #[arg(long, value_name = "FILE")]
        runner: Option<PathBuf>,
        /// With --modules: boot modules whose vermagic names another release
        /// instead of refusing them, to watch the kernel refuse them itself.
        #[arg(long, requires = "modules")]
        allow_foreign_modules: bool,
    },
    /// Everything: doctor, fetch, kernel, module, test — on every target lkmlab.toml declares
    /// (or the one --target, --arch or --flavor selects), then a module × target table.
    /// The one command users and CI run.
    Check {
        #[command(flatten)]
        target: TargetArg,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Boot the kernel with virtme-ng: the host filesystem, a root shell in the project
    /// directory, the freshly built .ko files in $LKMLAB_MODULES.
    #[command(
        long_about = "Boot the kernel with virtme-ng (vng): the host filesystem is the guest's root \
                      (read-only, with writable overlays on /etc, /tmp, /usr, …), a root shell \
                      starts in the project directory, and the module build directory is \
                      $LKMLAB_MODULES in the guest. Rebuild with `lkmlab module` on the host and \
                      reload in the guest with `$LKMLAB_RELOAD NAME` (unloads it if unused, then \
                      loads the new .ko). Leave the shell with `exit`.",
        after_help = "Examples:\n  lkmlab vm\n  lkmlab vm --exec 'insmod $LKMLAB_MODULES/scull.ko && cat /dev/scull'\n  \
                      lkmlab vm -- --network user"
    )]
    Vm(VmCmd),
    /// Rebuild the module and rerun the VM test whenever a file under the module directory changes.
    #[command(
        long_about = "Run `lkmlab test` once, then again each time a file under the module \
                      directory is saved (polled every 50 ms, changes settled for 100 ms). Each \
                      run prints its result line, and the failures when there are any; a build \
                      error is shown and watching goes on. Ctrl-C stops."
    )]
    Watch {
        #[command(flatten)]
        target: TargetArg,
        #[command(flatten)]
        vm: VmArgs,
        /// The module directory to watch, build and test [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Stop after this many runs, exiting with the last one's status (for scripts and tests).
        #[arg(long, value_name = "N", hide = true)]
        runs: Option<u32>,
    },
    /// rustfmt and clippy on the module with the kernel's own settings; fails on any diff or warning.
    #[command(
        long_about = "Check the module's Rust code the way the kernel checks its own: rustfmt \
                      --check with the kernel's .rustfmt.toml, then a clean build through Kbuild \
                      with CLIPPY=1 (the kernel's clippy lints and .clippy.toml) and \
                      KRUSTFLAGS=-Dwarnings. Any formatting difference, warning or error fails \
                      it, with the diff or the diagnostics shown."
    )]
    Lint {
        #[command(flatten)]
        target: TargetArg,
        /// The module directory [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Reformat the files with rustfmt instead of only checking them (clippy still runs).
        #[arg(long)]
        fix: bool,
    },
    /// Write rust-project.json for rust-analyzer into the module directory; --check runs rust-analyzer on it.
    #[command(
        name = "rust-analyzer",
        long_about = "Generate rust-project.json for the out-of-tree module with the kernel's own \
                      `make M=<module> rust-analyzer` (scripts/generate_rust_analyzer.py), so that \
                      rust-analyzer resolves `kernel::`, `core::` and the module's items against \
                      the pinned kernel. The file holds absolute paths of this machine: do not \
                      commit it.\n\nWith --check, run `rust-analyzer diagnostics` on it \
                      (some seconds) and exit with status 1 if the module's own files have \
                      any error or warning. Get a rust-analyzer with `rustup component add \
                      rust-analyzer` or `scripts/setup-debian.sh --only-rust-analyzer`."
    )]
    RustAnalyzer {
        #[command(flatten)]
        target: TargetArg,
        /// The module directory [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Where to write the file [default: <module dir>/rust-project.json].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Then run `rust-analyzer diagnostics` on it and fail on any error or
        /// warning in the module's files (unresolved `kernel::` items among them).
        #[arg(long)]
        check: bool,
        /// The rust-analyzer for --check [default: the first that runs, on PATH, then in ~/.local/bin].
        #[arg(long, value_name = "FILE", env = "LKMLAB_RUST_ANALYZER")]
        rust_analyzer: Option<PathBuf>,
    },
    /// Remove from the cache the kernel trees, sources and downloads that the current pin,
    /// fragments and toolchain no longer use.
    Clean {
        /// Only list what would be removed, with sizes.
        #[arg(long)]
        dry_run: bool,
    },
    /// Read results back from a saved KTAP file or console log and print the verdict.
    Report {
        /// A results.ktap, or a console log with KTAP in it (printk prefixes are stripped).
        file: PathBuf,
        /// Also scan this kernel console log for warnings, oopses and leaks.
        #[arg(long, value_name = "FILE")]
        console: Option<PathBuf>,
        /// How the verdict is printed on standard output.
        #[arg(long, value_name = "text|json", default_value = "text")]
        format: Format,
    },
    /// Print what lkmlab reads from the pin, as JSON (cross-checked against the Nix side).
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShowWhat {
    /// A pinned kernel source: version, .deb and inner tarball.
    Pin {
        /// A kernel of the pin: `[kernel]`'s series (`7.3`) or a NAME of its
        /// [kernels.NAME] [default: [kernel]].
        #[arg(long, value_name = "NAME")]
        kernel_name: Option<String>,
    },
    /// The targets lkmlab.toml declares, in order: name, kernel, architecture,
    /// flavor and the flavor's compiler (what the flake makes outputs of).
    Targets,
    /// The merged Kconfig options the fragments request: {"CONFIG_X": "y", …}.
    Kconfig {
        #[command(flatten)]
        target: TargetArg,
    },
    /// How lkmlab runs the kernel build of a target: source and tree directories,
    /// RUST_LIB_SRC, make variables and environment (reproducibility settings included).
    BuildEnv {
        #[command(flatten)]
        target: TargetArg,
    },
}

/// `lkmlab vm`'s options.
#[derive(Args, Debug, Clone)]
pub struct VmCmd {
    #[command(flatten)]
    pub target: TargetArg,
    /// Accelerator: auto uses KVM only after a probe shows it works, else TCG.
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub accel: Option<AccelChoice>,
    /// The module directory to build [default: [module] dir].
    #[arg(long, value_name = "DIR", conflicts_with = "modules")]
    pub module: Option<PathBuf>,
    /// Boot this kernel image (a bzImage) instead of building the pinned kernel (with --modules;
    /// builds nothing).
    #[arg(long, value_name = "FILE", requires = "modules")]
    pub kernel: Option<PathBuf>,
    /// Use the .ko files in this directory as $LKMLAB_MODULES instead of building the module.
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub modules: Option<PathBuf>,
    /// Run this shell command in the VM instead of a shell, without a terminal; exit with its status.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// With --exec: seconds before the VM is killed, 0 for no limit [default: [vm] timeout_secs].
    #[arg(long, value_name = "SECS", requires = "exec")]
    pub timeout: Option<u64>,
    /// Print where the time went: kernel check, module build, accelerator
    /// choice, and virtme-ng from its start to its exit.
    #[arg(long)]
    pub timings: bool,
    /// Extra vng options, after `--` (see `vng --help`).
    #[arg(last = true, value_name = "VNG_OPTION")]
    pub vng_options: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("lkmlab").chain(args.iter().copied()))
    }

    #[test]
    fn vm_takes_its_options_and_passes_the_rest_to_vng() {
        let cli = parse(&[
            "vm",
            "--exec",
            "true",
            "--timeout",
            "0",
            "--",
            "--network",
            "user",
        ])
        .unwrap();
        let Cmd::Vm(vm) = cli.command else {
            panic!("not vm: {cli:?}")
        };
        assert_eq!(vm.exec.as_deref(), Some("true"));
        assert_eq!(vm.timeout, Some(0));
        assert_eq!(vm.vng_options, ["--network", "user"]);
        assert_eq!(vm.target.flavor, None);
    }

    #[test]
    fn options_that_need_each_other_are_refused_alone() {
        for args in [
            &["vm", "--timeout", "5"][..],
            &["vm", "--kernel", "bzImage"],
            &["test", "--target", "arm64", "--arch", "arm64"],
            &["test", "--modules", "dir"],
            &["vm", "--module", "m", "--kernel", "k", "--modules", "d"],
            &["-q", "-v", "doctor"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn config_takes_make_variables_and_refuses_what_is_not_one() {
        let cli = parse(&[
            "config",
            "--source",
            "s",
            "--output",
            "o",
            "CC=/nix/store/x-gcc/bin/aarch64-unknown-linux-gnu-gcc",
            "CROSS_COMPILE=aarch64-unknown-linux-gnu-",
        ])
        .unwrap();
        let Cmd::Config { make_vars, .. } = cli.command else {
            panic!("not config: {cli:?}")
        };
        assert_eq!(make_vars.len(), 2);
        for bad in ["CC", "1X=y", "C-C=gcc", "=x", "ARCH=arm64"] {
            let err = parse(&["config", "--source", "s", "--output", "o", bad]).unwrap_err();
            assert!(
                err.to_string().contains("make variable") || err.to_string().contains("ARCH"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let cli = parse(&["test", "-q", "--color", "never", "--format", "json"]).unwrap();
        assert!(cli.quiet && cli.color == ColorChoice::Never);
        let Cmd::Test { vm, .. } = cli.command else {
            panic!("not test")
        };
        assert_eq!(vm.format, Format::Json);
        assert!(parse(&["-v", "report", "results.ktap"]).unwrap().verbose);
    }
}
