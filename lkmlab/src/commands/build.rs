//! The commands that fetch and build: `fetch`, `kernel`, `config`,
//! `module`, `doc`, `lint`, `rust-analyzer`, `clean`; and where module builds go.

use super::{Ctx, Done};
use crate::build::kernel::{self, KernelTree};
use crate::build::module::{self, ModuleBuild};
use crate::build::partial::{self, Outcome};
use crate::build::rustdoc;
use crate::cli::TargetArg;
use crate::config::target::Target;
use crate::{build::toolchain, lab::clean, lab::lint};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(super) fn kernel(ctx: &Ctx, target: &TargetArg) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
    crate::outln!("{}", tree.dir.display())?;
    Ok(Done::Ok)
}

pub(super) fn module(
    ctx: &Ctx,
    target: &TargetArg,
    dir: Option<&Path>,
    make_vars: &[String],
) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    let src = ctx.module_dir(dir)?;
    let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
    for ko in build_module(ctx, &tree, Some(&src), make_vars)? {
        crate::outln!("{}", ko.display())?;
    }
    Ok(Done::Ok)
}

/// `lkmlab doc`: the path of the kernel crate's documentation (or of an
/// item's page in it), built once; `--open` also opens it.
pub(super) fn doc(ctx: &Ctx, target: &TargetArg, item: Option<&str>, open: bool) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    if let Some(item) = item {
        check_item(item)?;
    }
    let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
    let (docs, _) = rustdoc::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &tree)?;
    let page = match item {
        None => docs.index(),
        Some(item) => item_page(&docs, item, &tree)?,
    };
    crate::outln!("{}", page.display())?;
    if open {
        open_page(&page)?;
    }
    Ok(Done::Ok)
}

/// An item path as `lkmlab doc` takes it: `kernel::alloc::KVec`, `KVec`.
fn check_item(item: &str) -> Result<()> {
    let ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && p.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    if !item.trim_start_matches("::").split("::").all(ident) {
        bail!(
            "{item:?} is not a Rust item path: give one such as kernel::alloc::KVec, \
             kernel::sync or KVec"
        );
    }
    Ok(())
}

/// The page of `item` in `docs`; a name without `::` is looked for as a
/// crate, then in `kernel::prelude`, then in `kernel`.
fn item_page(docs: &rustdoc::Docs, item: &str, tree: &KernelTree) -> Result<PathBuf> {
    let candidates: Vec<String> = if item.contains("::") {
        vec![item.to_string()]
    } else {
        vec![
            item.to_string(),
            format!("kernel::prelude::{item}"),
            format!("kernel::{item}"),
        ]
    };
    let found: Vec<(PathBuf, bool)> = candidates.iter().filter_map(|c| docs.page_of(c)).collect();
    if let Some((page, _)) = found.iter().find(|(_, exact)| *exact) {
        return Ok(page.clone());
    }
    let kernel = format!("{} ({})", tree.release, tree.target.name());
    match found.into_iter().next() {
        Some((page, _)) => {
            crate::notice!(
                "{item} has no page in the documentation of kernel {kernel}: it is misspelled, or \
                 behind a #[cfg(CONFIG_…)] this configuration does not enable (lkmlab doc \
                 documents only what it enables); printing the page of the nearest module"
            );
            Ok(page)
        }
        None => bail!(
            "{item} is in no crate of the documentation of kernel {kernel} (kernel, macros, \
             pin_init, ffi, core, …); its front page: {}",
            docs.index().display()
        ),
    }
}

/// Open `page` with xdg-open when there is a display to open it on; else
/// say that the path printed is all there is.
fn open_page(page: &Path) -> Result<()> {
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    match (display, crate::util::which("xdg-open")) {
        (true, Some(xdg_open)) => {
            crate::process::run_quiet(Command::new(xdg_open).arg(page), "xdg-open")?;
            crate::status!("opened {} with xdg-open", page.display());
        }
        (false, _) => crate::notice!(
            "--open: no display (DISPLAY and WAYLAND_DISPLAY are unset), so the path above is \
             printed and not opened: open it in a browser (a text one such as w3m or lynx works)"
        ),
        (true, None) => crate::notice!(
            "--open: xdg-open is not installed (Debian: apt-get install xdg-utils), so the path \
             above is printed and not opened"
        ),
    }
    Ok(())
}

/// The `lkmlab doc` command line that documents `target`: the shortest one
/// that selects it.
pub(super) fn doc_command(ctx: &Ctx, target: &Target) -> String {
    if ctx.project.default_target().is_ok_and(|t| &t == target) {
        "lkmlab doc".to_string()
    } else if ctx.project.targets().is_ok_and(|all| all.contains(target)) {
        format!("lkmlab doc --target {}", target.name())
    } else {
        format!(
            "lkmlab doc --kernel-name {} --arch {} --flavor {}",
            target.kernel.name, target.arch, target.flavor_name
        )
    }
}

pub(super) fn lint(ctx: &Ctx, target: &TargetArg, dir: Option<PathBuf>, fix: bool) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    let src = ctx.module_dir(dir.as_deref())?;
    let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
    let out = module_out_dir(ctx, &tree.target, &src, "lint")?;
    lint::run(&lint::Lint {
        tree: &tree,
        src: &src,
        out: &out,
        env: &toolchain::make_env(&ctx.project, None),
        fix,
    })?;
    Ok(Done::Ok)
}

/// `lkmlab rust-analyzer`'s own options.
pub(super) struct AnalyzerArgs {
    pub module: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub check: bool,
    pub rust_analyzer: Option<PathBuf>,
}

pub(super) fn rust_analyzer(ctx: &Ctx, target: &TargetArg, a: &AnalyzerArgs) -> Result<Done> {
    let src = ctx.module_dir(a.module.as_deref())?;
    crate::lab::rust_analyzer::run(&crate::lab::rust_analyzer::Request {
        project: &ctx.project,
        paths: &ctx.paths,
        fetcher: &ctx.fetcher(),
        target: &ctx.project.select(&target.selection())?,
        src: &src,
        out_dir: &|tree: &KernelTree| module_out_dir(ctx, &tree.target, &src, "rust-analyzer"),
        output: a.output.as_deref(),
        check: a.check,
        rust_analyzer: a.rust_analyzer.as_deref(),
    })
    .map(|clean| if clean { Done::Ok } else { Done::TestsFailed })
}

pub(super) fn clean(ctx: &Ctx, dry_run: bool) -> Result<()> {
    let used = clean::in_use(&ctx.project, &ctx.paths)?;
    for (label, why) in &used.unknown_targets {
        crate::notice!(
            "keeping every kernel tree of {label}: its current one cannot be worked out \
             here ({why})"
        );
    }
    let stale = clean::stale(&ctx.paths, &used)?;
    let done = clean::remove(&stale, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for (path, bytes) in &done.removed {
        crate::outln!("{verb} {} ({})", path.display(), clean::human_bytes(*bytes))?;
    }
    for path in &done.busy {
        crate::notice!(
            "{} is being written by another lkmlab (a build, fetch or unpack): left alone",
            path.display()
        );
    }
    let total: u64 = done.removed.iter().map(|(_, b)| b).sum();
    crate::outln!(
        "lkmlab clean: {verb} {} item(s), {}; kept {} kernel tree(s) in use and the pinned sources in {}",
        done.removed.len(),
        clean::human_bytes(total),
        used.kernel_trees.iter().filter(|t| t.exists()).count(),
        ctx.paths.cache.display()
    )
}

pub(super) fn fetch(ctx: &Ctx) -> Result<()> {
    // The source of every kernel a declared target builds.
    let targets = ctx.project.targets()?;
    let mut kernels: Vec<&crate::config::target::KernelPin> = Vec::new();
    for t in &targets {
        if !kernels.contains(&&t.kernel) {
            kernels.push(&t.kernel);
        }
    }
    for k in kernels {
        let src = kernel::source(k, &ctx.paths, &ctx.fetcher())?;
        crate::status!("kernel {} source: {}", k.name, src.display());
    }
    let lib = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    crate::status!("Rust library source: {}", lib.display());
    // The pinned busybox of each declared target of another architecture.
    for target in targets.iter().filter(|t| t.arch.is_foreign()) {
        if let Some(deb) = ctx.project.pin.toolchain.busybox.get(&target.arch) {
            let path = ctx.fetcher().get(deb)?;
            crate::status!("busybox for {}: {}", target.arch, path.display());
        }
    }
    Ok(())
}

pub(super) fn config(
    ctx: &Ctx,
    target: &TargetArg,
    source: &Path,
    output: &Path,
    make_vars: &[String],
) -> Result<()> {
    let target = &ctx.project.select(&target.selection())?;
    let rust_lib_src = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    let env = kernel::MakeSetup::new(&ctx.project, target, Some(&rust_lib_src))
        .with_compiler_vars(make_vars);
    let dir = crate::util::temp_dir("config")?;
    kernel::configure(&ctx.project, target, source, dir.path(), &env)?;
    std::fs::copy(dir.path().join(".config"), output)
        .with_context(|| format!("writing {}", output.display()))?;
    crate::status!("wrote verified .config to {}", output.display());
    Ok(())
}

pub(super) fn build_module(
    ctx: &Ctx,
    tree: &KernelTree,
    dir: Option<&Path>,
    make_vars: &[String],
) -> Result<Vec<PathBuf>> {
    let src = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ctx.default_module_dir());
    module_build(ctx, tree, &src, make_vars, module::build)
}

/// [`build_module`] for a test run: on a kernel other than the pin's
/// default one, a module that does not build is skipped with the
/// compiler's reason and the others are tested; on the default kernel every
/// module must build.
pub(super) fn build_module_for_test(ctx: &Ctx, tree: &KernelTree, dir: &Path) -> Result<Outcome> {
    if tree.target.kernel.is_default {
        let kos = module_build(ctx, tree, dir, &[], module::build)?;
        let unbuilt = Vec::new();
        return Ok(Outcome { kos, unbuilt });
    }
    module_build(ctx, tree, dir, &[], partial::build_what_builds)
}

/// Build the module directory `src` against `tree` with `build`, into its
/// locked output folder, saying when nothing needed building.
fn module_build<T>(
    ctx: &Ctx,
    tree: &KernelTree,
    src: &Path,
    make_vars: &[String],
    build: impl FnOnce(&ModuleBuild) -> Result<(T, module::Built)>,
) -> Result<T> {
    let out = module_out_dir(ctx, &tree.target, src, "modules")?;
    let _lock = lock_out_dir(&out)?;
    let env = toolchain::make_env(&ctx.project, None);
    let (built, how) = build(&ModuleBuild {
        tree,
        src,
        out: &out,
        env: &env,
        extra: make_vars,
        shared_fragments: &ctx.project.pin.kconfig.fragments,
        doc_command: &doc_command(ctx, &tree.target),
    })?;
    if how == module::Built::UpToDate {
        crate::status!(
            "{} is up to date against {}: nothing to build",
            src.display(),
            tree.dir.display()
        );
    }
    Ok(built)
}

/// Where Kbuild puts a module's objects (`MO=`):
/// `target/lkmlab/<target label>/<kind>/<dir name>-<hash>` (see
/// [`Target::label`], [`out_dir_name`]).
pub(super) fn module_out_dir(
    ctx: &Ctx,
    target: &Target,
    src: &Path,
    kind: &str,
) -> Result<PathBuf> {
    let src = src
        .canonicalize()
        .with_context(|| format!("module directory {}", src.display()))?;
    let root = ctx
        .project
        .root
        .canonicalize()
        .unwrap_or_else(|_| ctx.project.root.clone());
    Ok(ctx
        .project
        .target_dir()
        .join(target.label())
        .join(kind)
        .join(out_dir_name(&root, &src)))
}

/// The name of a module's output folder: its directory's name, to be read,
/// then 8 hex digits of the sha256 of its path, so that two modules in
/// directories of the same name (two `module/`s) do not share one. The path
/// hashed is relative to the project root `root` when the module is inside
/// it, so the name is the same in every checkout (`module` gives
/// `module-120970d8`), else absolute. Both paths are canonical.
fn out_dir_name(root: &Path, src: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    let name = src
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    let key = src.strip_prefix(root).unwrap_or(src);
    let hash = Sha256::digest(key.as_os_str().as_bytes());
    format!("{name}-{}", &crate::source::fetch::hex(&hash)[..8])
}

/// Build into a module's output folder alone: a second lkmlab building the
/// same module waits for the first (Kbuild in one `MO=` twice at once
/// corrupts it). The lock is `.lkmlab-lock` inside the folder.
fn lock_out_dir(out: &Path) -> Result<crate::lock::Lock> {
    crate::lock::exclusive(
        &out.join(".lkmlab-lock"),
        &format!("building into {}", out.display()),
    )
}

pub(super) fn kos_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut kos: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "ko"))
        .collect();
    kos.sort();
    if kos.is_empty() {
        bail!("{} holds no .ko files", dir.display());
    }
    Ok(kos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_in_directories_of_the_same_name_get_folders_of_their_own() {
        let root = Path::new("/home/you/lkmlab");
        let a = out_dir_name(root, &root.join("module"));
        let b = out_dir_name(root, &root.join("tests/fixtures/module"));
        let outside = out_dir_name(root, Path::new("/tmp/x/module"));
        assert_ne!(a, b);
        assert_ne!(a, outside);
        assert_ne!(b, outside);
        for name in [&a, &b, &outside] {
            let (dir, hash) = name.rsplit_once('-').unwrap();
            assert_eq!(dir, "module", "{name}");
            assert!(
                hash.len() == 8 && hash.bytes().all(|c| c.is_ascii_hexdigit()),
                "{name}"
            );
        }
        assert_eq!(a, out_dir_name(root, &root.join("module")), "stable");
    }

    #[test]
    fn a_build_locks_its_output_folder_from_inside() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("modules/module-120970d8");
        let lock = lock_out_dir(&out).unwrap();
        assert_eq!(lock.path(), out.join(".lkmlab-lock"));
        let other = std::fs::File::open(lock.path()).unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
    }

    /// The name shown in the docs, in every checkout.
    #[test]
    fn a_module_in_the_project_is_named_alike_in_every_checkout() {
        let here = out_dir_name(Path::new("/a/lkmlab"), Path::new("/a/lkmlab/module"));
        let there = out_dir_name(Path::new("/b/wt"), Path::new("/b/wt/module"));
        assert_eq!(here, there);
        assert_eq!(here, "module-120970d8");
    }
}
