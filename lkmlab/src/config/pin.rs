//! The types of `lkmlab.toml`, the single pin: each value is checked as the
//! file is read ([`parse_pin`]), so a bad one is refused naming its key, and
//! nothing later parses a pin string again. [`crate::config::project::Project`] is a
//! pin with the directory it was found in.

use crate::config::arch::Arch;
use lkmlab_protocol::plan::ExampleSuite;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

pub const PIN_FILE: &str = "lkmlab.toml";

/// A sha256 as the pin writes it: 64 hex digits, kept in lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256(String);

impl Sha256 {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 16 digits: enough to name a cache directory.
    pub fn short(&self) -> &str {
        &self.0[..16]
    }
}

impl TryFrom<String> for Sha256 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256(s.to_ascii_lowercase()))
        } else {
            Err(format!("a sha256 is 64 hex digits, got {s:?}"))
        }
    }
}

impl From<Sha256> for String {
    fn from(s: Sha256) -> String {
        s.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Sha256 {
    fn eq(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

/// A file pinned by name, size and sha256, with the URLs it can come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    pub file: String,
    pub size: u64,
    pub sha256: Sha256,
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tarball {
    pub path: String,
    pub sha256: Sha256,
    pub top_dir: String,
}

/// `[kernel]`: the default kernel, whose minimum tool versions are
/// `[toolchain]`'s.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub version: String,
    pub deb: PinnedFile,
    pub tarball: Tarball,
}

/// `[kernels.NAME]`: another kernel a target can name (`[[targets]] kernel =
/// "NAME"`), with the minimum tool versions of its own tree and the Kconfig
/// fragments only it needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKernel {
    pub version: String,
    pub deb: PinnedFile,
    pub tarball: Tarball,
    pub toolchain: Minimums,
    /// Applied after the architecture's fragments, before the flavor's.
    #[serde(default)]
    pub fragments: Vec<String>,
}

/// A kernel's minimum tool versions: `scripts/min-tool-version.sh` in its
/// tree (`rustc`, `bindgen`, `llvm`; libclang's is LLVM's or higher).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minimums {
    pub rustc_min: Version,
    pub bindgen_min: Version,
    pub libclang_min: Version,
    pub llvm_min: Version,
}

/// The configuration the fragments apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    /// `make tinyconfig`: the smallest kernel (the only base lkmlab supports).
    Tinyconfig,
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Base::Tinyconfig => "tinyconfig",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kconfig {
    pub base: Base,
    pub fragments: Vec<String>,
    /// Each architecture's own fragments, applied after `fragments`.
    #[serde(default)]
    pub arch: BTreeMap<Arch, ArchKconfig>,
    #[serde(default)]
    pub flavors: BTreeMap<String, Flavor>,
}

/// `[kconfig.arch.<arch>]`: the options only that architecture has (its
/// serial console, its image's compression, paravirtualisation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchKconfig {
    pub fragments: Vec<String>,
}

/// One `[[targets]]` entry: an architecture, a flavor and a kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetCfg {
    pub arch: Arch,
    #[serde(default = "default_flavor")]
    pub flavor: String,
    /// A `[kernels.NAME]`, or the series of `[kernel]` (its default).
    #[serde(default)]
    pub kernel: Option<String>,
}

impl Default for TargetCfg {
    fn default() -> Self {
        TargetCfg {
            arch: Arch::X86_64,
            flavor: default_flavor(),
            kernel: None,
        }
    }
}

fn default_flavor() -> String {
    crate::config::target::DEFAULT_FLAVOR.to_string()
}

/// The compiler a kernel flavor (and every module built against it) is built with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compiler {
    /// GCC and binutils (Kbuild's default).
    #[default]
    Gcc,
    /// clang, lld and the LLVM binutils (`make LLVM=…`): what KASAN with Rust needs.
    Llvm,
}

impl std::fmt::Display for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compiler::Gcc => "gcc",
            Compiler::Llvm => "llvm",
        })
    }
}

/// One kernel flavor: fragments on top of `[kconfig] fragments`, and its compiler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    #[serde(default)]
    pub fragments: Vec<String>,
    #[serde(default)]
    pub compiler: Compiler,
}

/// The Rust library source for a rustc that lacks it: a Debian `rust-src`
/// package. In the pin its file's keys stand beside `rustc` and `library`.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RustSrcToml")]
pub struct RustSrc {
    /// The rustc the package matches.
    pub rustc: Version,
    /// The package.
    pub deb: PinnedFile,
    /// The `library` directory inside it.
    pub library: String,
}

/// `[toolchain.rust_src]` as written (serde's `flatten` cannot refuse
/// unknown keys, so the table is read whole and split).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RustSrcToml {
    rustc: Version,
    library: String,
    file: String,
    size: u64,
    sha256: Sha256,
    urls: Vec<String>,
}

impl From<RustSrcToml> for RustSrc {
    fn from(t: RustSrcToml) -> RustSrc {
        RustSrc {
            rustc: t.rustc,
            library: t.library,
            deb: PinnedFile {
                file: t.file,
                size: t.size,
                sha256: t.sha256,
                urls: t.urls,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    pub rustc_min: Version,
    pub bindgen_min: Version,
    pub libclang_min: Version,
    pub bindgen_cli: Version,
    pub libclang_path: String,
    /// The kernel's minimum LLVM (for flavors with `compiler = "llvm"`).
    pub llvm_min: Version,
    /// Kbuild's `LLVM=` value for those flavors: `-19` runs clang-19,
    /// ld.lld-19, llvm-ar-19, …; `1` runs the unsuffixed tools.
    pub llvm: LlvmValue,
    /// crates.io `ra_ap_rust-analyzer` version for `lkmlab rust-analyzer
    /// --check` (installed by `scripts/setup-debian.sh --with-rust-analyzer`).
    pub rust_analyzer: Version,
    pub rust_src: RustSrc,
    /// A static busybox for guest test scripts on another architecture
    /// than the host's (whose own busybox serves its guests): Debian's
    /// `busybox-static` package for it.
    #[serde(default)]
    pub busybox: BTreeMap<Arch, PinnedFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleCfg {
    pub dir: String,
    /// Modules of `dir` that run one of the guest runner's built-in example
    /// suites (lkmlab's own `hello` and `scull`) instead of the generic
    /// load/unload suite. Only lkmlab's own pin sets it.
    #[serde(default)]
    pub example_suites: Vec<ExampleSuite>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout_secs: u64,
    pub accel: AccelChoice,
    /// Devices every test VM of the project gets (`[[vm.devices]]`).
    #[serde(default, deserialize_with = "crate::vm::devices::deserialize_list")]
    pub devices: Vec<crate::vm::devices::Device>,
}

/// A value Kbuild takes for `LLVM=` (Documentation/kbuild/llvm.rst): `1`, a
/// version suffix such as `-19`, or a directory ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LlvmValue(String);

impl LlvmValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LlvmValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LlvmValue {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "1" || (s.len() > 1 && (s.starts_with('-') || s.ends_with('/'))) {
            Ok(LlvmValue(s))
        } else {
            Err(format!(
                "{s:?} is not a value Kbuild takes for LLVM=: use \"1\", a version suffix \
                 such as \"-19\", or a directory ending in \"/\""
            ))
        }
    }
}

/// A dotted version number such as `1.95.0`; missing parts count as 0. In
/// the pin it is a string of dotted numbers (`"1.85.0"`), refused otherwise.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(pub Vec<u32>);

impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Version::parse(&s).ok_or_else(|| {
            format!("{s:?} is not a version: use dotted numbers, such as \"1.85.0\"")
        })
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl Version {
    /// Parse the first dotted number in `text` (`rustc 1.95.0 (…)` → 1.95.0).
    pub fn find_in(text: &str) -> Option<Version> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|w| w.contains('.'))
            .find_map(|w| Version::parse(w.trim_matches('.')))
    }

    pub fn parse(s: &str) -> Option<Version> {
        let parts: Option<Vec<u32>> = s.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(Version)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        let get = |v: &Version, i: usize| v.0.get(i).copied().unwrap_or(0);
        (0..n)
            .map(|i| get(self, i).cmp(&get(other, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// The accelerator asked for, on the command line (`--accel`) or in the pin
/// (`[vm] accel`): one type for both, so both take the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    /// KVM if the probe shows it works, else TCG (with a notice).
    Auto,
    /// KVM, or an error saying why it cannot be used.
    Kvm,
    /// Software emulation.
    Tcg,
}

/// The whole of `lkmlab.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub kernel: Kernel,
    /// Other kernels targets can name; `kernel` is the default one.
    #[serde(default)]
    pub kernels: BTreeMap<String, NamedKernel>,
    pub kconfig: Kconfig,
    pub toolchain: Toolchain,
    pub module: ModuleCfg,
    pub vm: Vm,
    /// What `lkmlab check` builds and tests, in order; the first is every
    /// other command's default. None: x86-64 with the default flavor.
    #[serde(default)]
    pub targets: Vec<TargetCfg>,
}

/// Parse `lkmlab.toml`: every value is checked as it is read, and a bad one
/// is refused with its key named.
pub fn parse_pin(text: &str) -> anyhow::Result<Pin> {
    toml::from_str(text).map_err(|e| match e.span().and_then(|s| key_at(text, s.start)) {
        Some(key) => anyhow::anyhow!("{key}: {}\n{e}", e.message()),
        None => e.into(),
    })
}

/// The key whose value starts at byte `at`, with its table: `[kernel.deb]
/// sha256` (toml's own error shows the line, not the table).
fn key_at(text: &str, at: usize) -> Option<String> {
    let before = text.get(..at)?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let key = before[line_start..].split_once('=')?.0.trim();
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'));
    Some(match table {
        Some(t) => format!("{t} {key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_pin() -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PIN_FILE);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_repository_pin_parses() {
        let pin = parse_pin(&repo_pin()).unwrap();
        assert_eq!(pin.kernel.version, "7.3.4");
        assert_eq!(pin.kconfig.base, Base::Tinyconfig);
        assert!(!pin.kernel.deb.urls.is_empty());
    }

    #[test]
    fn a_malformed_sha256_is_refused_by_name() {
        let text = repo_pin().replace(
            "703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3",
            "703e369d",
        );
        let err = parse_pin(&text).unwrap_err().to_string();
        assert!(err.contains("[kernel.deb] sha256"), "{err}");
    }

    /// The error of the pin with `from` replaced by `to`.
    fn refusal(from: &str, to: &str) -> String {
        let text = repo_pin();
        assert!(text.contains(from), "{from}");
        format!("{:#}", parse_pin(&text.replacen(from, to, 1)).unwrap_err())
    }

    #[test]
    fn a_bad_value_is_refused_when_the_pin_is_read_naming_its_key() {
        for (table, key, from, to, says) in [
            (
                "[toolchain]",
                "rustc_min",
                "rustc_min = \"1.85.0\"",
                "rustc_min = \"1.85.x\"",
                "\"1.85.x\" is not a version",
            ),
            (
                "[vm]",
                "accel",
                "accel = \"auto\"",
                "accel = \"hvf\"",
                "unknown variant `hvf`, expected one of `auto`, `kvm`, `tcg`",
            ),
            (
                "[toolchain]",
                "llvm",
                "llvm = \"-19\"",
                "llvm = \"19\"",
                "\"19\" is not a value Kbuild takes for LLVM=",
            ),
            (
                "[kconfig]",
                "base",
                "base = \"tinyconfig\"",
                "base = \"defconfig\"",
                "unknown variant `defconfig`, expected `tinyconfig`",
            ),
            (
                "[toolchain.rust_src]",
                "rustc",
                "rustc = \"1.95.0\"",
                "rustc = \"latest\"",
                "\"latest\" is not a version",
            ),
        ] {
            let err = refusal(from, to);
            assert!(err.contains(says), "{to}: {err}");
            // The key with its table, then toml's own quote of the line.
            assert!(err.starts_with(&format!("{table} {key}: ")), "{err}");
            assert!(err.contains(&format!("| {to}")), "{to} not quoted: {err}");
        }
    }

    #[test]
    fn the_rust_src_table_is_one_pinned_file_and_refuses_unknown_keys() {
        let pin = parse_pin(&repo_pin()).unwrap();
        let rs = &pin.toolchain.rust_src;
        assert_eq!(rs.rustc, Version::parse("1.95.0").unwrap());
        assert!(rs.deb.file.starts_with("rust-src_") && rs.deb.size > 0);
        assert!(rs.library.ends_with("/library"));
        let err = refusal("library = ", "libary = \"x\"\nlibrary = ");
        assert!(err.contains("unknown field `libary`"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = repo_pin().replace("[module]", "[module]\ndirr = \"x\"");
        assert!(parse_pin(&text).is_err());
    }
}
