//! Where lkmlab keeps downloads, unpacked sources and kernel builds.

use crate::config::pin::Sha256;
use std::path::PathBuf;

/// The cache directory layout: `$LKMLAB_CACHE`, else `$XDG_CACHE_HOME/lkmlab`,
/// else `~/.cache/lkmlab`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub cache: PathBuf,
}

impl Paths {
    pub fn from_env(cache: Option<PathBuf>) -> Paths {
        let cache = cache
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(|d| PathBuf::from(d).join("lkmlab"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("lkmlab"))
            })
            .unwrap_or_else(|| PathBuf::from(".lkmlab-cache"));
        Paths { cache }
    }

    pub fn downloads(&self) -> PathBuf {
        self.cache.join("downloads")
    }

    /// Unpacked kernel source, keyed by the tarball's sha256.
    pub fn kernel_source(&self, tarball_sha256: &Sha256) -> PathBuf {
        self.cache
            .join("src")
            .join(format!("linux-{}", tarball_sha256.short()))
    }

    /// Unpacked rust-src package, keyed by its sha256.
    pub fn rust_src(&self, deb_sha256: &Sha256) -> PathBuf {
        self.cache.join("rust-src").join(deb_sha256.short())
    }

    /// A kernel build tree (`O=`), keyed by the hash of every input.
    pub fn kernel_build(&self, flavor: &str, key: &str) -> PathBuf {
        self.cache
            .join("kernel")
            .join(format!("{flavor}-{}", &key[..16]))
    }

    /// The kernel crate's documentation of each kernel tree (`lkmlab doc`),
    /// in a folder named as the tree's.
    pub fn rustdoc(&self) -> PathBuf {
        self.cache.join("rustdoc")
    }

    /// The KVM probe's verdict for this boot of the host.
    pub fn kvm_probe(&self) -> PathBuf {
        self.cache.join("kvm-probe")
    }
}
