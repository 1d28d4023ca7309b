//! `lkmlab clean`: remove from the cache what this project no longer uses.
//!
//! The cache keeps one kernel tree per flavor and set of inputs, so every
//! change of a fragment's options, of the toolchain or of the pin leaves the
//! old tree behind (about half a gigabyte each). A kernel tree, an unpacked
//! source or a download is stale when the current pin, fragments and
//! toolchain would not use it. A cache shared with a checkout whose pin
//! differs holds that checkout's trees too, and they are stale from here:
//! `--dry-run` lists before anything is removed.

use crate::build::{kernel, toolchain};
use crate::config::arch::Arch;
use crate::config::paths::Paths;
use crate::config::project::Project;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What the current project uses in the cache.
#[derive(Debug, Default)]
pub struct InUse {
    pub kernel_trees: BTreeSet<PathBuf>,
    /// Targets whose current tree cannot be worked out here (their compiler
    /// is missing, say), by their label ([`crate::config::target::Target::label`]):
    /// every tree of theirs is kept, with the reason.
    pub unknown_targets: Vec<(String, String)>,
    /// The unpacked source of every kernel of the pin.
    pub sources: BTreeSet<PathBuf>,
    pub rust_src: PathBuf,
    pub downloads: BTreeSet<PathBuf>,
    /// The current guest runners cross-built for other architectures, and
    /// the unpacked pinned busyboxes.
    pub guest_programs: BTreeSet<PathBuf>,
}

/// The current tree of every flavor (`default` and those of the pin) of
/// every kernel of the pin on every architecture the pin declares a target
/// or fragments for, the pinned sources and rust-src, and the pinned
/// downloads.
pub fn in_use(project: &Project, paths: &Paths) -> Result<InUse> {
    let mut flavors: BTreeSet<&str> = project
        .pin
        .kconfig
        .flavors
        .keys()
        .map(String::as_str)
        .collect();
    flavors.insert(crate::config::target::DEFAULT_FLAVOR);
    let mut arches: BTreeSet<Arch> = project.pin.kconfig.arch.keys().copied().collect();
    arches.extend(project.pin.targets.iter().map(|t| t.arch));
    arches.insert(Arch::X86_64);
    let kernels = project.kernels()?;
    let mut kernel_trees = BTreeSet::new();
    let mut unknown_targets = Vec::new();
    for kernel_pin in &kernels {
        for arch in arches.iter().copied() {
            for flavor in &flavors {
                let target = project.target_of(kernel_pin.clone(), arch, flavor)?;
                match kernel::current_tree(project, paths, &target) {
                    Ok((dir, _)) => {
                        kernel_trees.insert(dir);
                    }
                    Err(e) => unknown_targets.push((target.label(), format!("{e:#}"))),
                }
            }
        }
    }
    let pin = &project.pin;
    let busybox = pin.toolchain.busybox.values();
    let mut guest_programs: BTreeSet<PathBuf> = busybox
        .clone()
        .map(|deb| paths.cache.join("busybox").join(deb.sha256.short()))
        .collect();
    let lib = toolchain::rust_lib_src_path(project, paths);
    for arch in arches.iter().filter(|a| a.is_foreign()) {
        // Without the tools to key it (rustc, clang), none is current.
        if let Ok(dir) = crate::vm::cross::runner_dir(*arch, project, paths, &lib) {
            guest_programs.insert(dir);
        }
    }
    Ok(InUse {
        kernel_trees,
        unknown_targets,
        sources: kernels
            .iter()
            .map(|k| paths.kernel_source(&k.tarball.sha256))
            .collect(),
        rust_src: paths.rust_src(&pin.toolchain.rust_src.deb.sha256),
        downloads: kernels
            .iter()
            .map(|k| &k.deb)
            .chain([&pin.toolchain.rust_src.deb])
            .chain(busybox)
            .map(|deb| paths.downloads().join(&deb.file))
            .collect(),
        guest_programs,
    })
}

/// The entries of `dir` (none if it does not exist), sorted.
fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in read {
        out.push(
            entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path(),
        );
    }
    out.sort();
    Ok(out)
}

/// Everything under the cache's kernel, documentation (`lkmlab doc`),
/// source, rust-src and download
/// directories that `used` does not name. A tree's lock file goes with it.
/// The KVM probe's verdict and the VM helper are left alone.
pub fn stale(paths: &Paths, used: &InUse) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    // Trees are named `<target label>-<16 hex digits of the key>`.
    let tree_kept = |tree: &Path| {
        let of_unknown_target = tree.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            used.unknown_targets.iter().any(|(f, _)| {
                n.strip_prefix(f.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|key| {
                        key.len() == 16 && key.bytes().all(|b| b.is_ascii_hexdigit())
                    })
            })
        });
        used.kernel_trees.contains(tree) || of_unknown_target
    };
    for path in entries(&paths.cache.join("kernel"))? {
        let tree = if path.extension().is_some_and(|e| e == "lock") {
            path.with_extension("")
        } else {
            path.clone()
        };
        if !tree_kept(&tree) {
            out.push(path);
        }
    }
    // A tree's documentation (`lkmlab doc`), its lock and its build log
    // are named as the tree; they go with it.
    for path in entries(&paths.rustdoc())? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let tree = name
            .strip_suffix(".lock")
            .or_else(|| name.strip_suffix(".log"))
            .unwrap_or(&name);
        if !tree_kept(&paths.cache.join("kernel").join(tree)) {
            out.push(path);
        }
    }
    for path in entries(&paths.cache.join("src"))? {
        if !used.sources.contains(&guarded(&path)) {
            out.push(path);
        }
    }
    for path in entries(&paths.cache.join("rust-src"))? {
        if guarded(&path) != used.rust_src {
            out.push(path);
        }
    }
    for path in entries(&paths.downloads())? {
        if !used.downloads.contains(&guarded(&path)) {
            out.push(path);
        }
    }
    for dir in ["runner", "busybox"] {
        for path in entries(&paths.cache.join(dir))? {
            if !used.guest_programs.contains(&guarded(&path)) {
                out.push(path);
            }
        }
    }
    Ok(out)
}

/// Bytes under `path`, not following symbolic links.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|read| read.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

/// `1.4 GiB`, `473 MiB`, `12 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} bytes"),
        _ if value < 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

/// What a lock file (`X.lock`, see [`crate::lock::beside`]) guards: `X`;
/// any other path is itself.
fn guarded(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    match name.strip_suffix(".lock") {
        Some(owner) if !owner.is_empty() => path.with_file_name(owner),
        _ => path.to_path_buf(),
    }
}

/// Whether a running lkmlab is writing `path`: its lock is held (a kernel
/// build, a fetch, an unpack), or, for a temporary entry (`.unpacking-…`,
/// `.FILE….partial`), any lock beside it is.
fn being_written(path: &Path) -> bool {
    let temporary = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    if temporary {
        let dir = path.parent().unwrap_or(Path::new("."));
        return entries(dir).unwrap_or_default().iter().any(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".lock"))
                && crate::lock::is_held(p)
        });
    }
    crate::lock::is_held(&crate::lock::beside(&guarded(path)))
}

/// What `remove` did.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub removed: Vec<(PathBuf, u64)>,
    /// Entries a running lkmlab is writing: left alone.
    pub busy: Vec<PathBuf>,
}

/// Remove `stale` (or, with `dry_run`, only measure it).
pub fn remove(stale: &[PathBuf], dry_run: bool) -> Result<Cleaned> {
    let mut done = Cleaned::default();
    for path in stale {
        if being_written(path) {
            done.busy.push(path.clone());
            continue;
        }
        let bytes = disk_usage(path);
        if !dry_run {
            let meta = std::fs::symlink_metadata(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if meta.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            }
            .with_context(|| format!("removing {}", path.display()))?;
        }
        done.removed.push((path.clone(), bytes));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; bytes]).unwrap();
    }

    #[test]
    fn only_what_the_project_does_not_use_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            cache: dir.path().to_path_buf(),
        };
        let k = paths.cache.join("kernel");
        touch(&k.join("default-aaaa/.config"), 10);
        touch(&k.join("default-aaaa.lock"), 0);
        touch(&k.join("default-old1/.config"), 20);
        touch(&k.join("default-old1.lock"), 0);
        touch(&k.join("debug-old2/vmlinux"), 30);
        touch(&paths.cache.join("src/linux-current/Makefile"), 1);
        touch(&paths.cache.join("src/linux-previous/Makefile"), 1);
        touch(&paths.cache.join("rust-src/current/x"), 1);
        touch(&paths.cache.join("src/linux-current.lock"), 0);
        touch(&paths.cache.join("src/.unpacking-x1y2/Makefile"), 2);
        touch(&paths.downloads().join("pinned.deb"), 1);
        touch(&paths.downloads().join("pinned.deb.lock"), 0);
        touch(&paths.downloads().join("old.deb"), 5);
        touch(&paths.downloads().join("old.deb.lock"), 0);
        touch(&paths.kvm_probe(), 1);
        touch(&paths.cache.join("runner/arm64-current/lkmlab-guest"), 1);
        touch(&paths.cache.join("runner/arm64-old/lkmlab-guest"), 4);
        touch(&paths.cache.join("runner/arm64-old.failed.log"), 1);
        touch(&paths.cache.join("busybox/pinned/bin/busybox"), 1);
        touch(&paths.cache.join("busybox/old/bin/busybox"), 6);
        // The flavor "llvm" has no known current tree (no clang here, say):
        // its trees stay, a look-alike of another flavor's does not.
        touch(&k.join("llvm-0123456789abcdef/vmlinux"), 7);
        touch(&k.join("llvm-extra-0123456789abcdef/vmlinux"), 3);
        let docs = paths.rustdoc();
        touch(&docs.join("default-aaaa/kernel/index.html"), 1);
        touch(&docs.join("default-aaaa.lock"), 0);
        touch(&docs.join("default-aaaa.log"), 1);
        touch(&docs.join("default-old1/kernel/index.html"), 8);
        touch(&docs.join("default-old1.lock"), 0);
        touch(&docs.join("default-old1.log"), 1);
        touch(&docs.join(".tree-copy-x1y2/tree/vmlinux"), 2);
        let used = InUse {
            kernel_trees: [k.join("default-aaaa")].into_iter().collect(),
            unknown_targets: vec![("llvm".into(), "clang-19 not found".into())],
            sources: [paths.cache.join("src/linux-current")]
                .into_iter()
                .collect(),
            rust_src: paths.cache.join("rust-src/current"),
            downloads: [paths.downloads().join("pinned.deb")].into_iter().collect(),
            guest_programs: [
                paths.cache.join("runner/arm64-current"),
                paths.cache.join("busybox/pinned"),
            ]
            .into_iter()
            .collect(),
        };
        let found = stale(&paths, &used).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(&paths.cache).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "kernel/debug-old2",
                "kernel/default-old1",
                "kernel/default-old1.lock",
                "kernel/llvm-extra-0123456789abcdef",
                "rustdoc/.tree-copy-x1y2",
                "rustdoc/default-old1",
                "rustdoc/default-old1.lock",
                "rustdoc/default-old1.log",
                "src/.unpacking-x1y2",
                "src/linux-previous",
                "downloads/old.deb",
                "downloads/old.deb.lock",
                "runner/arm64-old",
                "runner/arm64-old.failed.log",
                "busybox/old"
            ]
        );

        let dry = remove(&found, true).unwrap();
        assert_eq!(
            dry.removed.iter().map(|(_, b)| b).sum::<u64>(),
            20 + 30 + 3 + 2 + 8 + 1 + 2 + 1 + 5 + 4 + 1 + 6
        );
        assert!(k.join("default-old1").exists(), "a dry run removes nothing");

        let done = remove(&found, false).unwrap();
        assert_eq!(done.removed.len(), 15);
        assert!(!k.join("default-old1").exists() && !k.join("default-old1.lock").exists());
        assert!(k.join("default-aaaa/.config").exists() && paths.kvm_probe().exists());
        assert!(docs.join("default-aaaa/kernel/index.html").exists());
        assert!(stale(&paths, &used).unwrap().is_empty());
    }

    #[test]
    fn a_tree_being_built_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("kernel/default-old");
        touch(&tree.join(".config"), 1);
        touch(&tree.with_extension("lock"), 0);
        let lock = std::fs::OpenOptions::new()
            .write(true)
            .open(tree.with_extension("lock"))
            .unwrap();
        lock.lock().unwrap();
        let done = remove(std::slice::from_ref(&tree), false).unwrap();
        assert_eq!(done.busy, std::slice::from_ref(&tree));
        assert!(tree.exists());
    }

    #[test]
    fn a_download_being_fetched_is_left_alone_with_its_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let downloads = dir.path().join("downloads");
        let deb = downloads.join("old.deb");
        let partial = downloads.join(".old.deb.a1b2.partial");
        touch(&partial, 3);
        let _fetching = crate::lock::exclusive(&crate::lock::beside(&deb), "testing").unwrap();
        let done = remove(&[partial.clone(), deb.with_extension("deb.lock")], false).unwrap();
        assert_eq!(done.busy.len(), 2, "{:?}", done.removed);
        assert!(partial.exists());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(473 * 1024 * 1024), "473 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
