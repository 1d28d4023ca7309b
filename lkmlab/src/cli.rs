//! The command line.

use crate::accel::AccelChoice;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "lkmlab",
    version,
    about = "A reproducible VM lab for Linux kernel modules written in Rust",
    long_about = "Builds the kernel pinned in lkmlab.toml with Rust support, builds your \
                  out-of-tree Rust modules against exactly that tree, and tests them in a \
                  QEMU VM.\n\nExit status: 0 success; 1 tests failed; 2 anything else \
                  (bad input, missing tool, build failure).",
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
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Args, Debug, Clone)]
pub struct FlavorArg {
    /// Kernel flavor: `default`, or a name from [kconfig.flavors] in lkmlab.toml.
    #[arg(long, default_value = "default")]
    pub flavor: String,
}

#[derive(Args, Debug, Clone)]
pub struct VmArgs {
    /// Accelerator: auto uses KVM only after a probe shows it works, else TCG.
    #[arg(long, value_name = "auto|kvm|tcg")]
    pub accel: Option<AccelChoice>,
    /// Seconds before the VM is killed and the run fails [default: [vm] timeout_secs].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Where console.log, results.ktap and junit.xml go [default: target/lkmlab/<flavor>/test].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Get every pinned input (kernel source, rust-src when needed) into the cache, sha256-verified.
    Fetch,
    /// Check every tool the pipeline needs and print the fix for each problem.
    Doctor,
    /// Configure (tinyconfig + fragments, verified) and build the pinned kernel; cached by inputs.
    Kernel {
        #[command(flatten)]
        flavor: FlavorArg,
    },
    /// Write the verified .config for a kernel source tree (used by the Nix flake).
    Config {
        #[command(flatten)]
        flavor: FlavorArg,
        /// An unpacked kernel source tree.
        #[arg(long, value_name = "DIR")]
        source: PathBuf,
        /// Where to write the resulting .config.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Build an out-of-tree module against the pinned kernel and print its .ko paths.
    Module {
        #[command(flatten)]
        flavor: FlavorArg,
        /// The module directory (with a Kbuild file) [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Extra make variables, e.g. CLIPPY=1.
        #[arg(value_name = "VAR=VALUE")]
        make_vars: Vec<String>,
    },
    /// Boot the kernel in QEMU, load, exercise and unload the modules; report KTAP and JUnit.
    Test {
        #[command(flatten)]
        flavor: FlavorArg,
        #[command(flatten)]
        vm: VmArgs,
        /// The module directory [default: [module] dir].
        #[arg(long, value_name = "DIR")]
        module: Option<PathBuf>,
        /// Use this bzImage instead of building the pinned kernel (with --modules).
        #[arg(long, value_name = "FILE", requires = "modules")]
        kernel: Option<PathBuf>,
        /// Use the .ko files in this directory instead of building the module.
        #[arg(long, value_name = "DIR", requires = "kernel")]
        modules: Option<PathBuf>,
        /// Use this static guest runner instead of building tests/runner.
        #[arg(long, value_name = "FILE")]
        runner: Option<PathBuf>,
    },
    /// Everything: doctor, fetch, kernel, module, test. The one command users and CI run.
    Check {
        #[command(flatten)]
        flavor: FlavorArg,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Read results back from a saved KTAP file or console log and print the verdict.
    Report {
        /// A results.ktap, or a console log with KTAP in it (printk prefixes are stripped).
        file: PathBuf,
        /// Also scan this kernel console log for warnings, oopses and leaks.
        #[arg(long, value_name = "FILE")]
        console: Option<PathBuf>,
    },
    /// Print what lkmlab reads from the pin, as JSON (cross-checked against the Nix side).
    Show {
        #[command(subcommand)]
        what: ShowWhat,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShowWhat {
    /// The pinned kernel source: version, .deb and inner tarball.
    Pin,
    /// The merged Kconfig options the fragments request: {"CONFIG_X": "y", …}.
    Kconfig {
        #[command(flatten)]
        flavor: FlavorArg,
    },
}
