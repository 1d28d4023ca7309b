//! The project: where `lkmlab.toml` lives, and the pin it holds.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PIN_FILE: &str = "lkmlab.toml";

/// A file pinned by name, size and sha256, with the URLs it can come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedFile {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub urls: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tarball {
    pub path: String,
    pub sha256: String,
    pub top_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kernel {
    pub version: String,
    pub deb: PinnedFile,
    pub tarball: Tarball,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kconfig {
    pub base: String,
    pub fragments: Vec<String>,
    #[serde(default)]
    pub flavors: BTreeMap<String, Flavor>,
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
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavor {
    #[serde(default)]
    pub fragments: Vec<String>,
    #[serde(default)]
    pub compiler: Compiler,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustSrc {
    pub rustc: String,
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub urls: Vec<String>,
    pub library: String,
}

impl RustSrc {
    pub fn pinned_file(&self) -> PinnedFile {
        PinnedFile {
            file: self.file.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            urls: self.urls.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    pub rustc_min: String,
    pub bindgen_min: String,
    pub libclang_min: String,
    pub bindgen_cli: String,
    pub libclang_path: String,
    /// The kernel's minimum LLVM (for flavors with `compiler = "llvm"`).
    pub llvm_min: String,
    /// Kbuild's `LLVM=` value for those flavors: `-19` runs clang-19,
    /// ld.lld-19, llvm-ar-19, …; `1` runs the unsuffixed tools.
    pub llvm: String,
    /// crates.io `ra_ap_rust-analyzer` version for `lkmlab rust-analyzer
    /// --check` (installed by `scripts/setup-debian.sh --with-rust-analyzer`).
    pub rust_analyzer: String,
    pub rust_src: RustSrc,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleCfg {
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout_secs: u64,
    pub accel: String,
}

/// The whole of `lkmlab.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub kernel: Kernel,
    pub kconfig: Kconfig,
    pub toolchain: Toolchain,
    pub module: ModuleCfg,
    pub vm: Vm,
}

/// A loaded project: its root directory and its pin.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub pin: Pin,
}

impl Project {
    /// Load the project at `dir`, or the nearest directory above the current
    /// one that holds `lkmlab.toml`.
    pub fn discover(dir: Option<&Path>) -> Result<Project> {
        let root = match dir {
            Some(d) => {
                if !d.join(PIN_FILE).is_file() {
                    bail!(
                        "{} has no {PIN_FILE}; --project must name an lkmlab project directory",
                        d.display()
                    );
                }
                d.to_path_buf()
            }
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                cwd.ancestors()
                    .find(|d| d.join(PIN_FILE).is_file())
                    .map(Path::to_path_buf)
                    .with_context(|| {
                        format!(
                            "no {PIN_FILE} in {} or any directory above it; run lkmlab inside \
                             an lkmlab project or pass --project DIR",
                            cwd.display()
                        )
                    })?
            }
        };
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let path = root.join(PIN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let pin = parse_pin(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(Project { root, pin })
    }

    /// A flavor by name; `default` exists even when the pin does not list it.
    pub fn flavor(&self, flavor: &str) -> Result<Flavor> {
        match self.pin.kconfig.flavors.get(flavor) {
            Some(f) => Ok(f.clone()),
            None if flavor == "default" => Ok(Flavor::default()),
            None => bail!(
                "unknown flavor {flavor:?}; {PIN_FILE} [kconfig.flavors] defines: {}",
                self.pin
                    .kconfig
                    .flavors
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The fragment files of a flavor, in the order they apply.
    pub fn fragments(&self, flavor: &str) -> Result<Vec<PathBuf>> {
        let extra = self.flavor(flavor)?.fragments;
        Ok(self
            .pin
            .kconfig
            .fragments
            .iter()
            .chain(&extra)
            .map(|f| self.root.join(f))
            .collect())
    }

    /// Where build products and results of this project go.
    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target").join("lkmlab")
    }
}

/// Parse and sanity-check the text of `lkmlab.toml`.
pub fn parse_pin(text: &str) -> Result<Pin> {
    let pin: Pin = toml::from_str(text)?;
    for (what, sha) in [
        ("[kernel.deb] sha256", &pin.kernel.deb.sha256),
        ("[kernel.tarball] sha256", &pin.kernel.tarball.sha256),
        (
            "[toolchain.rust_src] sha256",
            &pin.toolchain.rust_src.sha256,
        ),
    ] {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{what} must be 64 hex digits, got {sha:?}");
        }
    }
    if !crate::toolchain::valid_llvm_value(&pin.toolchain.llvm) {
        bail!(
            "[toolchain] llvm = {:?} is not a value Kbuild takes for LLVM=: use \"1\", a \
             version suffix such as \"-19\", or a directory ending in \"/\"",
            pin.toolchain.llvm
        );
    }
    if pin.kconfig.base != "tinyconfig" {
        bail!(
            "[kconfig] base = {:?} is not supported; lkmlab starts from \"tinyconfig\"",
            pin.kconfig.base
        );
    }
    Ok(pin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_pin() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PIN_FILE);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_repository_pin_parses() {
        let pin = parse_pin(&repo_pin()).unwrap();
        assert_eq!(pin.kernel.version, "7.3.4");
        assert_eq!(pin.kconfig.base, "tinyconfig");
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

    #[test]
    fn unknown_keys_are_refused() {
        let text = repo_pin().replace("[module]", "[module]\ndirr = \"x\"");
        assert!(parse_pin(&text).is_err());
    }
}
