//! `lkmlab doc`: the HTML documentation (`make rustdoc`) of the `kernel`
//! crate and its siblings (`macros`, `pin_init`, `ffi`, `core`, …) of one
//! kernel tree, built once into the cache and read offline.
//!
//! It documents the crate as this tree's configuration compiles it: an item
//! behind a `#[cfg(CONFIG_…)]` that the configuration leaves out is not in it.
//!
//! `make rustdoc` runs Kbuild's `prepare` and rebuilds the Rust libraries it
//! documents against whenever anything about them looks out of date to make
//! (another `awk` on the host regenerates a header in another order, and the
//! bindings follow). In the cached tree that would replace objects that the
//! kernel image was linked with and that modules build against. So the docs
//! are built in a copy of the tree, which is removed afterwards, and go to
//! `<cache>/rustdoc/<the tree's directory name>/`: keyed like the tree,
//! which is never written to.

use crate::build::kernel::{self, KernelTree};
use crate::build::progress::run_logged;
use crate::config::paths::Paths;
use crate::config::project::Project;
use crate::process::run_quiet;
use crate::source::fetch::Fetcher;
use crate::util::human_duration;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Written into a complete documentation folder, last.
const STAMP: &str = "lkmlab-rustdoc.txt";

/// The kinds of item page rustdoc writes (`struct.Name.html`, …).
const ITEM_KINDS: &[&str] = &[
    "struct",
    "enum",
    "type",
    "trait",
    "fn",
    "macro",
    "constant",
    "static",
    "union",
    "attr",
    "derive",
    "traitalias",
];

/// The documentation folder of one kernel tree (`make rustdoc`'s output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Docs {
    pub dir: PathBuf,
}

/// Where the documentation of the kernel tree at `tree_dir` (a tree of the
/// cache, `<cache>/kernel/<name>`) goes: `<cache>/rustdoc/<name>`.
pub fn dir_of(tree_dir: &Path) -> Option<PathBuf> {
    let name = tree_dir.file_name()?;
    let kernels = tree_dir.parent()?;
    if kernels.file_name()? != "kernel" {
        return None;
    }
    Some(
        Paths {
            cache: kernels.parent()?.to_path_buf(),
        }
        .rustdoc()
        .join(name),
    )
}

impl Docs {
    /// The documentation of the tree at `tree_dir`, if it has been built.
    pub fn built(tree_dir: &Path) -> Option<Docs> {
        let dir = dir_of(tree_dir)?;
        is_complete(&dir).then_some(Docs { dir })
    }

    /// The `kernel` crate's front page.
    pub fn index(&self) -> PathBuf {
        self.dir.join("kernel").join("index.html")
    }

    /// The page of an item given by its path (`kernel::alloc::KVec`,
    /// `kernel::sync`, `pin_init::PinInit`): the item's own page when there
    /// is one, else the page of the nearest module that exists on the way
    /// to it (with `false`: the item itself has no page there, say because
    /// it is configured out or misspelled). `None` when not even its crate
    /// was documented.
    pub fn page_of(&self, item: &str) -> Option<(PathBuf, bool)> {
        let parts: Vec<&str> = item
            .trim_start_matches("::")
            .split("::")
            .filter(|p| !p.is_empty())
            .collect();
        let (name, modules) = parts.split_last()?;
        let module_index = |mods: &[&str]| {
            let mut dir = self.dir.clone();
            dir.extend(mods);
            Some(dir.join("index.html")).filter(|p| p.is_file())
        };
        // A module.
        if let Some(index) = module_index(&parts) {
            return Some((index, true));
        }
        let parent = module_index(modules);
        if let Some(parent) = &parent {
            let dir = parent.parent()?;
            // An item defined in that module.
            for kind in ITEM_KINDS {
                let page = dir.join(format!("{kind}.{name}.html"));
                if page.is_file() {
                    return Some((page, true));
                }
            }
            // An item re-exported there (`kernel::alloc::KVec` is defined in
            // `kernel::alloc::kvec`): the module page links to its page.
            if let Some(page) = reexported(parent, name) {
                return Some((page, true));
            }
        }
        // The nearest module that exists.
        (0..modules.len())
            .rev()
            .find_map(|n| module_index(&modules[..=n]))
            .map(|index| (index, false))
    }
}

/// The page a module's index links to for an item called `name` that it
/// re-exports (`href="kvec/type.KVec.html"`), resolved from the module's
/// folder.
fn reexported(index: &Path, name: &str) -> Option<PathBuf> {
    let html = std::fs::read_to_string(index).ok()?;
    let dir = index.parent()?;
    html.split("href=\"").skip(1).find_map(|rest| {
        let href = rest.split('"').next()?;
        let file = href.rsplit('/').next()?;
        let (kind, rest) = file.split_once('.')?;
        if !ITEM_KINDS.contains(&kind) || rest != format!("{name}.html") || href.contains(':') {
            return None;
        }
        let page = normalize(&dir.join(href));
        page.is_file().then_some(page)
    })
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_complete(dir: &Path) -> bool {
    dir.join(STAMP).is_file() && dir.join("kernel").join("index.html").is_file()
}

/// The documentation of `tree`, building it when it is not there yet (once,
/// whichever lkmlab asks first), and whether it was built now.
pub fn build(
    project: &Project,
    paths: &Paths,
    fetcher: &Fetcher,
    tree: &KernelTree,
) -> Result<(Docs, bool)> {
    let dir = dir_of(&tree.dir).with_context(|| {
        format!(
            "{} is not a kernel tree of lkmlab's cache: lkmlab documents only the trees it builds",
            tree.dir.display()
        )
    })?;
    if is_complete(&dir) {
        return Ok((Docs { dir }, false));
    }
    if !tree.enabled("CONFIG_RUST") {
        bail!(
            "kernel {} ({}) is configured without CONFIG_RUST: it has no `kernel` crate to document",
            tree.release,
            tree.target.name()
        );
    }
    if crate::util::which("rustdoc").is_none() {
        bail!(
            "rustdoc is not on PATH: the kernel's `make rustdoc` needs the rustdoc of the \
             rustc that built the kernel (rustup installs both; `lkmlab doctor` checks rustc)"
        );
    }
    let started = Instant::now();
    let name = dir.file_name().unwrap_or_default().to_os_string();
    let log = dir.with_file_name({
        let mut n = name.clone();
        n.push(".log");
        n
    });
    let mut built_now = false;
    crate::lock::fill_once(
        &dir,
        "building this kernel's Rust documentation",
        is_complete,
        |staging| {
            built_now = true;
            make_rustdoc(project, paths, fetcher, tree, staging, &log)
        },
    )?;
    if built_now {
        crate::status!(
            "documented the kernel crate of {} ({}) in {}: {}",
            tree.release,
            tree.target.name(),
            human_duration(started.elapsed()),
            dir.display()
        );
    }
    Ok((Docs { dir }, built_now))
}

/// `make rustdoc` in a copy of `tree`, with the tree's own make setup, its
/// output going to `output` (Kbuild's `rustdoc_output`, overridden on the
/// command line); the copy is removed afterwards.
fn make_rustdoc(
    project: &Project,
    paths: &Paths,
    fetcher: &Fetcher,
    tree: &KernelTree,
    output: &Path,
    log: &Path,
) -> Result<()> {
    let parent = output
        .parent()
        .context("the documentation folder's parent")?;
    let copy_root = tempfile::Builder::new()
        .prefix(".tree-copy-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let copy = copy_root.path().join("tree");
    crate::status!(
        "documenting the kernel crate of {} ({}): copying the tree (the cached one is never \
         written to), then make rustdoc (some minutes; log: {})",
        tree.release,
        tree.target.name(),
        log.display()
    );
    run_quiet(
        Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&tree.dir)
            .arg(&copy),
        "cp",
    )?;
    let setup = kernel::build_setup(project, paths, fetcher, &tree.target, &copy)?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = kernel::make(&setup.src, &copy, &setup.make);
    cmd.arg(format!("-j{jobs}"))
        .arg("rustdoc")
        .arg(format!("rustdoc_output={}", output.display()));
    run_logged(&mut cmd, log, "make rustdoc")?;
    if !output.join("kernel").join("index.html").is_file() {
        bail!(
            "make rustdoc left no kernel/index.html in {}; see {}",
            output.display(),
            log.display()
        );
    }
    std::fs::write(
        output.join(STAMP),
        format!(
            "make rustdoc of kernel {} ({}), tree {}\n",
            tree.release,
            tree.target.name(),
            tree.dir.display()
        ),
    )
    .with_context(|| format!("writing in {}", output.display()))?;
    drop(copy_root);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A documentation folder laid out as rustdoc lays it out.
    fn docs() -> (tempfile::TempDir, Docs) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rustdoc/default-0123456789abcdef");
        let files = [
            ("kernel/index.html", ""),
            (
                "kernel/alloc/index.html",
                r#"<a href="kvec/type.KVec.html">KVec</a> <a href="https://x/struct.Vec.html">"#,
            ),
            ("kernel/alloc/kvec/index.html", ""),
            ("kernel/alloc/kvec/type.KVec.html", ""),
            ("kernel/alloc/struct.Flags.html", ""),
            ("kernel/sync/index.html", ""),
            ("kernel/prelude/index.html", ""),
            ("pin_init/index.html", ""),
            ("pin_init/trait.PinInit.html", ""),
            (STAMP, ""),
        ];
        for (file, text) in files {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        (dir, Docs { dir: root })
    }

    #[test]
    fn an_item_is_found_on_its_page_or_its_nearest_module() {
        let (_tmp, docs) = docs();
        let page = |item: &str| {
            docs.page_of(item).map(|(p, exact)| {
                let rel = p.strip_prefix(&docs.dir).unwrap().display().to_string();
                (rel, exact)
            })
        };
        let exact = |s: &str| Some((s.to_string(), true));
        assert_eq!(
            page("kernel::alloc::Flags"),
            exact("kernel/alloc/struct.Flags.html")
        );
        // Re-exported: the module links to where it is defined.
        assert_eq!(
            page("kernel::alloc::KVec"),
            exact("kernel/alloc/kvec/type.KVec.html")
        );
        assert_eq!(page("kernel::prelude"), exact("kernel/prelude/index.html"));
        assert_eq!(
            page("pin_init::PinInit"),
            exact("pin_init/trait.PinInit.html")
        );
        // Misspelled or configured out: the module it was looked for in.
        assert_eq!(
            page("kernel::sync::Mutexx"),
            Some(("kernel/sync/index.html".into(), false))
        );
        assert_eq!(
            page("kernel::net::phy::Driver"),
            Some(("kernel/index.html".into(), false))
        );
        assert_eq!(page("std::vec::Vec"), None);
        assert_eq!(
            page("kernel::alloc::Vec"),
            Some(("kernel/alloc/index.html".into(), false))
        );
    }

    #[test]
    fn the_docs_of_a_cached_tree_are_beside_the_kernel_folder() {
        assert_eq!(
            dir_of(Path::new("/c/lkmlab/kernel/arm64-debug-0123456789abcdef")),
            Some(PathBuf::from(
                "/c/lkmlab/rustdoc/arm64-debug-0123456789abcdef"
            ))
        );
        assert_eq!(dir_of(Path::new("/nix/store/abc-linux-dev")), None);
        let (_tmp, docs) = docs();
        let tree = docs
            .dir
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("kernel")
            .join(docs.dir.file_name().unwrap());
        assert_eq!(Docs::built(&tree), Some(docs.clone()));
        std::fs::remove_file(docs.dir.join(STAMP)).unwrap();
        assert_eq!(
            Docs::built(&tree),
            None,
            "an interrupted build is not the docs"
        );
    }
}
