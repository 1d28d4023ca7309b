//! The pinned kernel: unpack the source, configure it from the fragments
//! (verifying every requested option), and build it into a cached tree.

use crate::build::kconfig;
use crate::build::progress::run_logged;
use crate::build::toolchain;
use crate::config::paths::Paths;
use crate::config::pin::Compiler;
use crate::config::project::Project;
use crate::config::target::{KernelPin, Target};
use crate::lock;
use crate::process::run_quiet;
use crate::source::fetch::{extract_from_deb, hex, verify, Fetcher};
use crate::util::{human_duration, write_atomic};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Bump when the way lkmlab configures or builds the kernel changes, so old
/// cached trees are not taken for new ones.
const RECIPE: &str = "lkmlab-kernel-recipe-4";
const STAMP: &str = "lkmlab-build.json";

/// A built kernel tree: `make -C dir M=…` builds modules against it.
#[derive(Debug, Clone)]
pub struct KernelTree {
    pub dir: PathBuf,
    pub release: String,
    /// What it was built for (architecture and flavor).
    pub target: Target,
    /// What the tree was built with, from its `.config` (`CONFIG_CC_IS_CLANG`).
    pub compiler: Compiler,
    /// `CONFIG_CC_VERSION_TEXT`: the first line of the compiler's `--version`.
    pub cc_version_text: String,
    /// The make variable that builds with that compiler (`LLVM=…`).
    pub compiler_var: String,
    /// The tree's `.config`.
    pub config: BTreeMap<String, kconfig::Value>,
    /// Whether its Kbuild puts an external module's objects where `MO=`
    /// says (6.13 and later); an older one writes them beside the sources.
    pub module_output: bool,
}

impl KernelTree {
    /// The bootable image (`bzImage`, `Image`).
    pub fn image(&self) -> PathBuf {
        self.dir.join(self.target.arch.image_path())
    }

    /// Whether the tree's `.config` has `option` (`CONFIG_…`) set to `y`.
    pub fn enabled(&self, option: &str) -> bool {
        self.config.get(option) == Some(&kconfig::Value::Yes)
    }
}

/// The unpacked, verified source tree of a kernel of the pin, unpacking it if
/// needed (once, whichever lkmlab asks first: [`lock::fill_once`]).
pub fn source(k: &KernelPin, paths: &Paths, fetcher: &Fetcher) -> Result<PathBuf> {
    const MARKER: &str = ".lkmlab-unpacked";
    let root = paths.kernel_source(&k.tarball.sha256);
    let done = |root: &Path| root.join(MARKER).is_file() && root.join(&k.tarball.top_dir).is_dir();
    if !done(&root) {
        let deb = fetcher.get(&k.deb)?;
        lock::fill_once(&root, "unpacking the kernel source", done, |staging| {
            crate::status!("extracting {} from {}", k.tarball.path, k.deb.file);
            extract_from_deb(&deb, &k.tarball.path, staging)?;
            let tarball = staging.join(&k.tarball.path);
            verify(&tarball, &k.tarball.sha256).with_context(|| {
                format!(
                    "the kernel tarball inside the pinned .deb does not match {} tarball.sha256",
                    k.table()
                )
            })?;
            crate::status!("unpacking the kernel source (about a minute)");
            run_quiet(
                Command::new("tar")
                    .arg("-xf")
                    .arg(&tarball)
                    .arg("-C")
                    .arg(staging),
                "tar",
            )?;
            std::fs::remove_file(&tarball)
                .with_context(|| format!("removing {}", tarball.display()))?;
            if !staging.join(&k.tarball.top_dir).is_dir() {
                bail!(
                    "{} has no top directory {}; fix {} tarball.top_dir",
                    k.tarball.path,
                    k.tarball.top_dir,
                    k.table()
                );
            }
            std::fs::write(staging.join(MARKER), k.tarball.sha256.as_str())
                .with_context(|| format!("writing in {}", staging.display()))
        })?;
    }
    Ok(root.join(&k.tarball.top_dir))
}

/// Every option the fragments of `target` request, merged in order.
pub fn requested_options(
    project: &Project,
    target: &Target,
) -> Result<BTreeMap<String, kconfig::Entry>> {
    let mut parsed = Vec::new();
    for path in project.fragments(target)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading Kconfig fragment {}", path.display()))?;
        let rel = path.strip_prefix(&project.root).unwrap_or(&path);
        parsed.push(kconfig::parse_fragment(&text, &rel.display().to_string())?);
    }
    Ok(kconfig::merge(&parsed))
}

/// What every `make` of a kernel build runs with: the environment, the
/// architecture (`ARCH=…`) and the compiler variable (`LLVM=…`), or the
/// caller's own compiler variables in its place.
pub struct MakeSetup {
    pub env: Vec<(String, OsString)>,
    pub arch_var: String,
    pub compiler_var: String,
    /// Given by the caller (`lkmlab config CC=… LD=…`): passed instead of
    /// `compiler_var`, since they name the compiler themselves.
    caller_vars: Vec<String>,
}

impl MakeSetup {
    pub fn new(project: &Project, target: &Target, rust_lib_src: Option<&Path>) -> Self {
        MakeSetup {
            env: toolchain::make_env(project, rust_lib_src),
            arch_var: format!("ARCH={}", target.arch.kbuild()),
            compiler_var: toolchain::compiler_var(project, target.compiler()),
            caller_vars: Vec::new(),
        }
    }

    /// Configure with the caller's make variables (the kernel build's own
    /// CC=…, LD=…, CROSS_COMPILE=…) in place of lkmlab's compiler variable.
    pub fn with_compiler_vars(mut self, vars: &[String]) -> Self {
        self.caller_vars = vars.to_vec();
        self
    }

    /// The make arguments that choose the compiler.
    fn compiler_args(&self) -> &[String] {
        if self.caller_vars.is_empty() {
            std::slice::from_ref(&self.compiler_var)
        } else {
            &self.caller_vars
        }
    }

    /// Adds what makes the build independent of when, where and by whom it
    /// runs (Documentation/kbuild/reproducible-builds.rst; see
    /// [`reproducible_env`]).
    pub fn reproducible(mut self, src: &Path, out: &Path, rust_lib_src: &Path) -> Result<Self> {
        self.env.extend(reproducible_env(src, out, rust_lib_src)?);
        Ok(self)
    }
}

/// Everything a kernel build of a flavor runs `make` with.
pub struct BuildSetup {
    /// The unpacked source tree (`make -C`).
    pub src: PathBuf,
    /// The Rust library source (`RUST_LIB_SRC`).
    pub rust_lib_src: PathBuf,
    pub make: MakeSetup,
}

/// The setup of a build of `target` into `dir` (fetching and unpacking the
/// pinned sources when needed).
pub fn build_setup(
    project: &Project,
    paths: &Paths,
    fetcher: &Fetcher,
    target: &Target,
    dir: &Path,
) -> Result<BuildSetup> {
    let src = source(&target.kernel, paths, fetcher)?;
    let rust_lib_src = toolchain::rust_lib_src(project, paths, fetcher)?;
    let make = MakeSetup::new(project, target, Some(&rust_lib_src)).reproducible(
        &src,
        dir,
        &rust_lib_src,
    )?;
    Ok(BuildSetup {
        src,
        rust_lib_src,
        make,
    })
}

impl BuildSetup {
    /// The setup as JSON, for `lkmlab show build-env` (what
    /// tests/e2e/reproducible.sh replays).
    pub fn to_json(&self, dir: &Path) -> serde_json::Value {
        let env: serde_json::Map<String, serde_json::Value> = self
            .make
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned().into()))
            .collect();
        serde_json::json!({
            "source": self.src,
            "tree": dir,
            "rust_lib_src": self.rust_lib_src,
            "make_args": [self.make.arch_var, self.make.compiler_var],
            "env": env,
        })
    }
}

/// The user, host and version the kernel records for itself (`uname -v`,
/// `/proc/version`), fixed so that they do not depend on the machine.
pub const BUILD_USER: &str = "lkmlab";
pub const BUILD_HOST: &str = "lkmlab";

/// The environment that makes a kernel build reproducible to the bit:
/// - `KBUILD_BUILD_TIMESTAMP`: the build date in `UTS_VERSION` and the mtime
///   of the built-in initramfs's entries, from the pinned source (the
///   modification time of its top-level Makefile, kept by tar), not the clock;
/// - `KBUILD_BUILD_USER`, `KBUILD_BUILD_HOST`: fixed, not `whoami`/`uname -n`;
/// - `KBUILD_BUILD_VERSION`: `#1`, not a count of the tree's links;
/// - `KRUSTFLAGS=--remap-path-prefix`: the Rust library source (whose paths
///   `core`'s panic locations carry) and the build tree, whose place in the
///   cache depends on the machine. Kbuild already maps the source tree itself
///   (`--remap-path-prefix=$(srctree)/=` for O= builds, `-fmacro-prefix-map`
///   for C).
pub fn reproducible_env(
    src: &Path,
    out: &Path,
    rust_lib_src: &Path,
) -> Result<Vec<(String, OsString)>> {
    let makefile = src.join("Makefile");
    let mtime = std::fs::metadata(&makefile)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading the modification time of {}", makefile.display()))?;
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let timestamp = build_timestamp(secs)?;
    let remap = |from: &Path, to: &str| format!("--remap-path-prefix={}={to}", from.display());
    Ok(vec![
        ("KBUILD_BUILD_TIMESTAMP".into(), timestamp.into()),
        ("KBUILD_BUILD_USER".into(), BUILD_USER.into()),
        ("KBUILD_BUILD_HOST".into(), BUILD_HOST.into()),
        ("KBUILD_BUILD_VERSION".into(), "1".into()),
        (
            "KRUSTFLAGS".into(),
            format!(
                "{} {}",
                remap(rust_lib_src, "library"),
                remap(&out.join(""), "")
            )
            .into(),
        ),
    ])
}

/// A Unix time as Kbuild's `KBUILD_BUILD_TIMESTAMP` shows it (`date`'s
/// default format in UTC, e.g. `Sun Nov 15 22:30:52 UTC 2026`), which
/// `date -d` reads back for the initramfs.
pub fn build_timestamp(secs: u64) -> Result<String> {
    let secs = i64::try_from(secs).context("a timestamp past the year 292 billion")?;
    let at = time::OffsetDateTime::from_unix_timestamp(secs).context("timestamp out of range")?;
    at.format(time::macros::format_description!(
        "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] UTC [year]"
    ))
    .context("formatting the build timestamp")
}

/// `make -C src O=out ARCH=… LLVM=…` with the setup's environment.
pub fn make(src: &Path, out: &Path, setup: &MakeSetup) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(src)
        .arg(format!("O={}", out.display()))
        .arg(&setup.arch_var)
        .args(setup.compiler_args());
    cmd.envs(setup.env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// `tinyconfig` + fragments + `olddefconfig` in `out`, then verify that every
/// requested option survived.
pub fn configure(
    project: &Project,
    target: &Target,
    src: &Path,
    out: &Path,
    env: &MakeSetup,
) -> Result<()> {
    let requested = requested_options(project, target)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    run_quiet(make(src, out, env).arg("tinyconfig"), "make tinyconfig")?;
    let config_path = out.join(".config");
    let base = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let applied = kconfig::apply(&base, &requested);
    std::fs::write(&config_path, &applied)
        .with_context(|| format!("writing {}", config_path.display()))?;
    run_quiet(make(src, out, env).arg("olddefconfig"), "make olddefconfig")?;
    let actual = kconfig::parse_dotconfig(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    );
    let mut dropped = kconfig::verify(&requested, &actual);
    if dropped.is_empty() {
        return Ok(());
    }
    explain_dropped(src, out, env, &applied, &mut dropped);
    let mut msg = format!(
        "{} requested Kconfig option(s) did not survive `make olddefconfig` in {} for {}:",
        dropped.len(),
        target.kernel.version,
        target.arch
    );
    for d in &dropped {
        msg.push_str(&format!("\n  {d}"));
    }
    if dropped.iter().any(|d| d.name == "CONFIG_RUST") {
        let why = run_quiet(make(src, out, env).arg("rustavailable"), "make rustavailable")
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_else(|| "`make rustavailable` says Rust is available: check RUST's other dependencies (MODVERSIONS, RANDSTRUCT, DEBUG_INFO_BTF)".into());
        msg.push_str(&format!(
            "\nCONFIG_RUST needs a usable Rust toolchain: {why}"
        ));
    }
    msg.push('\n');
    msg.push_str(&fix_the_fragment(src, env));
    bail!(msg)
}

/// The advice that ends a dropped-options error: a `menuconfig` with the
/// make variables the build used (the flavor's `LLVM=…` among them: a clang
/// flavor's options are not those of a gcc configuration).
fn fix_the_fragment(src: &Path, env: &MakeSetup) -> String {
    format!(
        "Fix the fragment: enable the missing dependency (the values in [=…] are this \
         configuration's), or drop the option. To browse the options, configure a tree of \
         your own: make -C {} O=/tmp/kconfig {} {} tinyconfig menuconfig (search \
         with /).",
        src.display(),
        env.arch_var,
        env.compiler_args().join(" ")
    )
}

/// Ask Kconfig why each dropped option was dropped (see [`kconfig::explain`]),
/// with two more `olddefconfig` runs on a copy of the configuration before
/// it (`applied`): one that warns about unknown symbols, one with a probe
/// that `select`s the others, which makes Kconfig print their unmet
/// dependencies. A run that fails only leaves those reasons out.
fn explain_dropped(
    src: &Path,
    out: &Path,
    env: &MakeSetup,
    applied: &str,
    dropped: &mut [kconfig::Dropped],
) {
    let scratch = out.join("lkmlab-why.config");
    let kconfig_run = |extra: &[(&str, &Path)]| -> Option<String> {
        std::fs::write(&scratch, applied).ok()?;
        let mut cmd = make(src, out, env);
        cmd.arg(format!("KCONFIG_CONFIG={}", scratch.display()))
            .env("KCONFIG_WARN_UNKNOWN_SYMBOLS", "1");
        for (var, path) in extra {
            cmd.arg(format!("{var}={}", path.display()));
        }
        let output = crate::process::captured(cmd.arg("olddefconfig"), "make olddefconfig").ok()?;
        output.status.success().then(|| {
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr)
        })
    };
    let unknown = kconfig_run(&[])
        .map(|output| kconfig::unknown_symbols(&output))
        .unwrap_or_default();
    let probed: Vec<String> = kconfig::probe_candidates(dropped, &unknown)
        .into_iter()
        .map(str::to_string)
        .collect();
    let probe = if probed.is_empty() {
        None
    } else {
        let top = out.join("lkmlab-why.Kconfig");
        std::fs::read_to_string(src.join("Kconfig"))
            .ok()
            .map(|text| {
                let names: Vec<&str> = probed.iter().map(String::as_str).collect();
                kconfig::probe_kconfig(&text, &names)
            })
            .and_then(|text| std::fs::write(&top, text).ok())
            .and_then(|()| kconfig_run(&[("KBUILD_KCONFIG", &top)]))
    };
    kconfig::explain(dropped, &unknown, &probed, probe.as_deref());
    let _ = std::fs::remove_file(&scratch);
    let _ = std::fs::remove_file(out.join("lkmlab-why.Kconfig"));
}

/// Every input of a kernel build that lkmlab controls: recipe, source, the
/// options the flavor's fragments request and the Rust library source. The toolchain's
/// versions are added by [`cache_key`].
pub fn build_inputs(
    project: &Project,
    target: &Target,
    lib_src: &str,
) -> Result<Vec<(String, String)>> {
    let mut inputs = vec![
        ("recipe".to_string(), RECIPE.to_string()),
        ("arch".into(), target.arch.kbuild().into()),
        ("source".into(), target.kernel.tarball.sha256.to_string()),
        ("base".into(), project.pin.kconfig.base.to_string()),
        ("rust_lib_src".into(), lib_src.to_string()),
        (
            "compiler".into(),
            toolchain::compiler_var(project, target.compiler()),
        ),
    ];
    // The options the fragments request, merged: what the configuration is
    // made of. Comments, blank lines and the order of fragments that do not
    // overlap change nothing, so they do not cost a rebuild.
    let requested = requested_options(project, target)?;
    let options: Vec<String> = requested
        .values()
        .map(|e| format!("{}={}", e.name, e.value.to_dotconfig_rhs()))
        .collect();
    inputs.push(("kconfig".into(), options.join("\n")));
    Ok(inputs)
}

/// The key (sha256) of a list of inputs, and the readable form stored
/// beside the build to tell an up-to-date tree.
pub fn key_of(inputs: &[(String, String)]) -> Result<(String, String)> {
    let description = serde_json::to_string_pretty(
        &inputs.iter().cloned().collect::<BTreeMap<String, String>>(),
    )?;
    let mut h = Sha256::new();
    for (k, v) in inputs {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    Ok((hex(&h.finalize()), description))
}

/// The hash of every input of a kernel build, toolchain versions included.
pub fn cache_key(
    project: &Project,
    paths: &Paths,
    target: &Target,
    lib_src: &str,
) -> Result<(String, String)> {
    let mut inputs = build_inputs(project, target, lib_src)?;
    inputs.extend(toolchain::fingerprint(project, paths, target.compiler())?);
    key_of(&inputs)
}

/// Where `target`'s tree for the current inputs (pin, fragments, toolchain)
/// lives in the cache, and the description of those inputs.
pub fn current_tree(
    project: &Project,
    paths: &Paths,
    target: &Target,
) -> Result<(PathBuf, String)> {
    let lib_src_id = match toolchain::lib_src_source() {
        toolchain::LibSrc::Env(p) | toolchain::LibSrc::Sysroot(p) => p.display().to_string(),
        toolchain::LibSrc::Pinned => {
            format!("pinned {}", project.pin.toolchain.rust_src.deb.sha256)
        }
    };
    let (key, description) = cache_key(project, paths, target, &lib_src_id)?;
    Ok((paths.kernel_build(&target.label(), &key), description))
}

/// An up-to-date kernel tree for `target`, building it only when an input changed.
pub fn build(
    project: &Project,
    paths: &Paths,
    fetcher: &Fetcher,
    target: &Target,
) -> Result<KernelTree> {
    let started = Instant::now();
    let name = target.label();
    let (dir, description) = current_tree(project, paths, target)?;
    let stamp = dir.join(STAMP);
    let up_to_date =
        || std::fs::read_to_string(&stamp).ok().as_deref() == Some(description.as_str());
    let report_up_to_date = || -> Result<KernelTree> {
        let tree = tree(project, &dir, target)?;
        crate::status!(
            "kernel {} ({name}) is up to date: nothing to do ({}; {})",
            tree.release,
            human_duration(started.elapsed()),
            dir.display()
        );
        Ok(tree)
    };
    if up_to_date() {
        return report_up_to_date();
    }
    // One build per tree at a time: a second lkmlab waits, then finds it built.
    let lock = lock::exclusive(&lock::beside(&dir), "building this kernel")?;
    if up_to_date() {
        return report_up_to_date();
    }

    if target.compiler() == Compiler::Llvm {
        toolchain::check_llvm(project, &target.kernel.minimums.llvm_min).with_context(|| {
            if target.arch.is_foreign() {
                format!("{} is cross-built with clang/LLVM", target.name())
            } else {
                format!(
                    "flavor {} is built with LLVM (lkmlab.toml compiler = \"llvm\")",
                    target.flavor_name
                )
            }
        })?;
    }
    let BuildSetup { src, make: env, .. } = build_setup(project, paths, fetcher, target, &dir)?;
    crate::status!(
        "configuring kernel {} ({name}) in {}",
        target.kernel.version,
        dir.display()
    );
    if let Err(e) = configure(project, target, &src, &dir, &env) {
        // Nothing was built: leave no half-configured tree in the cache, nor
        // its lock (a waiting lkmlab notices, see `lock`).
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(lock.path());
        return Err(e);
    }
    let inputs = dir.join("lkmlab-inputs.json");
    std::fs::write(&inputs, &description)
        .with_context(|| format!("writing {}", inputs.display()))?;

    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let log = dir.join("build.log");
    let image = target.arch.image_target();
    crate::status!(
        "building {image} and modules with {jobs} jobs (several minutes; log: {})",
        log.display()
    );
    let mut cmd = make(&src, &dir, &env);
    cmd.arg(format!("-j{jobs}")).args([image, "modules"]);
    run_logged(&mut cmd, &log, "kernel build")?;
    if !dir.join("Module.symvers").is_file() {
        bail!(
            "the kernel build left no Module.symvers; out-of-tree modules cannot link. See {}",
            log.display()
        );
    }
    let tree = tree(project, &dir, target)?;
    if tree.release != target.kernel.version {
        bail!(
            "the pinned source builds kernel release {} but lkmlab.toml says version = {:?}; \
             fix {} version",
            tree.release,
            target.kernel.version,
            target.kernel.table()
        );
    }
    write_atomic(&stamp, description.as_bytes())?;
    crate::status!(
        "kernel {} ({name}) built in {}: {}",
        tree.release,
        human_duration(started.elapsed()),
        tree.image().display()
    );
    Ok(tree)
}

/// A configured and built tree at `dir`.
pub fn tree(project: &Project, dir: &Path, target: &Target) -> Result<KernelTree> {
    let release_file = dir.join("include/config/kernel.release");
    let release = std::fs::read_to_string(&release_file)
        .with_context(|| {
            format!(
                "{} is not a built kernel tree (no {})",
                dir.display(),
                release_file.display()
            )
        })?
        .trim()
        .to_string();
    let config_path = dir.join(".config");
    let config = kconfig::parse_dotconfig(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    );
    let cc_version_text = match config.get("CONFIG_CC_VERSION_TEXT") {
        Some(kconfig::Value::Str(text)) => text.clone(),
        _ => String::new(),
    };
    let compiler = if config.get("CONFIG_CC_IS_CLANG") == Some(&kconfig::Value::Yes) {
        Compiler::Llvm
    } else {
        Compiler::Gcc
    };
    Ok(KernelTree {
        dir: dir.to_path_buf(),
        release,
        target: target.clone(),
        compiler,
        cc_version_text,
        compiler_var: toolchain::compiler_var(project, compiler),
        config,
        module_output: takes_module_output(dir),
    })
}

/// Whether the kernel source of the build tree `dir` (its `source` link, or
/// the tree itself) reads `MO=` (Kbuild's `KBUILD_EXTMOD_OUTPUT`, 6.13).
fn takes_module_output(dir: &Path) -> bool {
    let makefile = |d: &Path| std::fs::read_to_string(d.join("Makefile")).ok();
    makefile(&dir.join("source"))
        .or_else(|| makefile(dir))
        .is_some_and(|text| text.contains("KBUILD_EXTMOD_OUTPUT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the repository's pin and fragments in a temporary directory.
    fn temp_project() -> (tempfile::TempDir, Project) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(repo.join("lkmlab.toml"), dir.path().join("lkmlab.toml")).unwrap();
        std::fs::create_dir(dir.path().join("kernel-config")).unwrap();
        for entry in std::fs::read_dir(repo.join("kernel-config")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path()
                    .join("kernel-config")
                    .join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        let project = Project::discover(Some(dir.path())).unwrap();
        (dir, project)
    }

    fn target(project: &Project, flavor: &str) -> Target {
        project
            .target_of(
                project.default_kernel(),
                crate::config::arch::Arch::X86_64,
                flavor,
            )
            .unwrap()
    }

    fn key(project: &Project, flavor: &str) -> String {
        key_of(&build_inputs(project, &target(project, flavor), "libsrc").unwrap())
            .unwrap()
            .0
    }

    /// The dropped-option advice's `menuconfig` runs with the build's own
    /// make variables: `LLVM=-19` for the clang-built debug flavor.
    #[test]
    fn the_menuconfig_advice_names_the_flavors_compiler() {
        let (_dir, project) = temp_project();
        let src = Path::new("/src/linux");
        let debug = MakeSetup::new(&project, &target(&project, "debug"), None);
        let text = fix_the_fragment(src, &debug);
        assert!(
            text.contains(
                "make -C /src/linux O=/tmp/kconfig ARCH=x86_64 LLVM=-19 tinyconfig menuconfig"
            ),
            "{text}"
        );
        assert!(text.ends_with('.'), "{text}");
        let default = MakeSetup::new(&project, &target(&project, "default"), None);
        assert!(fix_the_fragment(src, &default).contains(" ARCH=x86_64 LLVM= tinyconfig"));
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let (_dir, project) = temp_project();
        assert_eq!(key(&project, "default"), key(&project, "default"));
    }

    fn append(dir: &tempfile::TempDir, fragment: &str, text: &str) {
        let path = dir.path().join("kernel-config").join(fragment);
        let mut old = std::fs::read_to_string(&path).unwrap();
        old.push_str(text);
        std::fs::write(&path, old).unwrap();
    }

    #[test]
    fn changing_an_option_changes_the_key() {
        let (dir, project) = temp_project();
        let before = key(&project, "default");
        append(&dir, "base.config", "CONFIG_IKCONFIG=y\n");
        let added = key(&project, "default");
        assert_ne!(before, added);
        append(&dir, "virtme.config", "CONFIG_IKCONFIG=n\n");
        assert_ne!(
            added,
            key(&project, "default"),
            "a later fragment overrides"
        );
    }

    #[test]
    fn comments_and_repeats_do_not_cost_a_rebuild() {
        let (dir, project) = temp_project();
        let before = key(&project, "default");
        append(
            &dir,
            "base.config",
            "\n# Why PRINTK_TIME: timestamps.\nCONFIG_PRINTK_TIME=y\n",
        );
        assert_eq!(before, key(&project, "default"));
    }

    #[test]
    fn flavors_and_library_sources_have_keys_of_their_own() {
        let (_dir, project) = temp_project();
        assert_ne!(key(&project, "default"), key(&project, "debug"));
        let default = target(&project, "default");
        let a = key_of(&build_inputs(&project, &default, "/a").unwrap())
            .unwrap()
            .0;
        let b = key_of(&build_inputs(&project, &default, "/b").unwrap())
            .unwrap()
            .0;
        assert_ne!(a, b);
        let arm64 = project
            .target_of(
                project.default_kernel(),
                crate::config::arch::Arch::Arm64,
                "default",
            )
            .unwrap();
        let c = key_of(&build_inputs(&project, &arm64, "/a").unwrap())
            .unwrap()
            .0;
        assert_ne!(a, c, "an architecture has keys of its own");
    }

    #[test]
    fn the_build_timestamp_reads_like_date() {
        assert_eq!(
            build_timestamp(1_794_781_852).unwrap(),
            "Sun Nov 15 22:30:52 UTC 2026"
        );
        assert_eq!(build_timestamp(0).unwrap(), "Thu Jan  1 00:00:00 UTC 1970");
    }

    #[test]
    fn an_unknown_flavor_is_refused_by_name() {
        let (_dir, project) = temp_project();
        let err = project
            .target_of(
                project.default_kernel(),
                crate::config::arch::Arch::X86_64,
                "fast",
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown flavor \"fast\""), "{err}");
    }
}
