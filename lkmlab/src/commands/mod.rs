//! What each subcommand does, on top of the library modules.

use crate::accel::{self, AccelChoice};
use crate::arch::Arch;
use crate::clean;
use crate::cli::{Cli, Cmd, Format, ShowWhat, VmArgs, VmCmd};
use crate::fetch::Fetcher;
use crate::kernel::{self, KernelTree};
use crate::module::{self, ModuleBuild};
use crate::paths::Paths;
use crate::project::Project;
use crate::target::Target;
use crate::timings::Timings;
use crate::{doctor, guest, junit, kconfig, ktap, lint, qemu, report, toolchain, vng, watch};
use anyhow::{bail, Context, Result};
use lkmlab_protocol::plan::ExampleSuite;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a command ended, when it did not fail outright.
pub enum Done {
    Ok,
    /// Tests ran and some failed, or a check found problems (exit status 1).
    TestsFailed,
    /// `lkmlab vm --exec`: the command's own exit status.
    Exit(u8),
}

struct Ctx {
    project: Project,
    paths: Paths,
    mirror: Option<PathBuf>,
}

impl Ctx {
    fn default_module_dir(&self) -> PathBuf {
        self.project.root.join(&self.project.pin.module.dir)
    }

    /// The built-in example suites for the modules in `module_dir`: the
    /// pin's `[module] example_suites` when it is the pin's own module
    /// directory, none for any other.
    fn example_suites(&self, module_dir: &Path) -> &[ExampleSuite] {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same(module_dir, &self.default_module_dir()) {
            &self.project.pin.module.example_suites
        } else {
            &[]
        }
    }

    /// The guest's architecture and where its busybox comes from: the
    /// host's own, or a pinned one for another architecture.
    fn guest_tools(&self, arch: Arch) -> guest::GuestTools<'_> {
        let busybox: Box<dyn Fn() -> Result<PathBuf> + '_> = if arch.is_foreign() {
            Box::new(move || {
                crate::cross::busybox(arch, &self.project, &self.paths, &self.fetcher())
            })
        } else {
            Box::new(guest::find_busybox)
        };
        guest::GuestTools { arch, busybox }
    }

    fn fetcher(&self) -> Fetcher<'_> {
        Fetcher {
            paths: &self.paths,
            mirror: self.mirror.clone(),
        }
    }
}

mod check;

pub fn run(cli: Cli) -> Result<Done> {
    // `init` makes a project and `report` reads files only: neither needs one.
    if let Cmd::Init { dir, name } = &cli.command {
        return init(dir.as_deref(), name.as_deref()).map(|()| Done::Ok);
    }
    // `report` reads files only: it needs no project.
    if let Cmd::Report {
        file,
        console,
        format,
    } = &cli.command
    {
        return report_files(file, console.as_deref(), *format);
    }
    let ctx = Ctx {
        project: Project::discover(cli.project.as_deref())?,
        paths: Paths::from_env(cli.cache.clone()),
        mirror: cli.mirror.clone().filter(|m| !m.as_os_str().is_empty()),
    };
    match cli.command {
        Cmd::Fetch => fetch(&ctx).map(|()| Done::Ok),
        Cmd::Doctor => {
            let targets = ctx.project.targets()?;
            let ok = doctor::print(&doctor::run(&ctx.project, &ctx.paths, &targets));
            if ok {
                Ok(Done::Ok)
            } else {
                bail!("the pipeline cannot run on this machine yet (see the fixes above)")
            }
        }
        Cmd::Kernel { target } => {
            let target = ctx.project.select(&target.selection())?;
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
            println!("{}", tree.dir.display());
            Ok(Done::Ok)
        }
        Cmd::Config {
            target,
            source,
            output,
        } => {
            let target = ctx.project.select(&target.selection())?;
            config(&ctx, &target, &source, &output).map(|()| Done::Ok)
        }
        Cmd::Module {
            target,
            module,
            make_vars,
        } => {
            let target = ctx.project.select(&target.selection())?;
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
            for ko in build_module(&ctx, &tree, module.as_deref(), &make_vars)? {
                println!("{}", ko.display());
            }
            Ok(Done::Ok)
        }
        Cmd::Test {
            target,
            vm,
            module,
            kernel,
            modules,
            runner,
            allow_foreign_modules,
        } => {
            let target = ctx.project.select(&target.selection())?;
            let mut timings = Timings::new();
            let module_dir = module.clone().unwrap_or_else(|| ctx.default_module_dir());
            let verdict = match (kernel, modules) {
                (Some(k), Some(m)) => {
                    // Nothing is built here, so nothing guarantees the match:
                    // refuse modules for another release before booting.
                    let kos = kos_in(&m)?;
                    let release = target.arch.image_release(&k)?;
                    for ko in kos.iter().filter(|_| !allow_foreign_modules) {
                        module::check_vermagic(ko, &release)?;
                    }
                    let payload = guest::Payload::new(
                        kos,
                        Some(&module_dir),
                        ctx.example_suites(&module_dir),
                        &ctx.guest_tools(target.arch),
                    )?;
                    let boot = Boot {
                        image: k.clone(),
                        tree: None,
                    };
                    run_vm_test(
                        &ctx,
                        &target,
                        &vm,
                        &boot,
                        &payload,
                        runner.as_deref(),
                        &mut timings,
                    )?
                }
                _ => build_and_test(
                    &ctx,
                    &target,
                    &vm,
                    &module_dir,
                    runner.as_deref(),
                    &mut timings,
                )?,
            };
            print_verdict(&verdict, vm.format)?;
            if vm.timings {
                crate::notice!("{}", timings.line());
            }
            Ok(done(&verdict))
        }
        Cmd::Check { target, vm } => {
            let targets = ctx.project.check_targets(&target.selection())?;
            let checks = doctor::run(&ctx.project, &ctx.paths, &targets);
            if checks.iter().any(|c| c.status == doctor::Status::Fail) {
                doctor::print(&checks);
                bail!("the pipeline cannot run on this machine yet (see the fixes above)");
            }
            fetch(&ctx)?;
            check::run(&ctx, &targets, &vm)
        }
        Cmd::Vm(args) => run_vm(&ctx, &args),
        Cmd::Watch {
            target,
            vm,
            module,
            runs,
        } => {
            let target = ctx.project.select(&target.selection())?;
            let module_dir = module.unwrap_or_else(|| ctx.default_module_dir());
            let verdict = watch::run(
                &module_dir,
                runs,
                || {
                    let mut timings = Timings::new();
                    let verdict =
                        build_and_test(&ctx, &target, &vm, &module_dir, None, &mut timings);
                    if vm.timings {
                        crate::notice!("{}", timings.line());
                    }
                    verdict
                },
                |verdict| match vm.format {
                    // A passing run says so in one line; a failing one shows why.
                    Format::Text if verdict.passed() => {
                        println!("{}", verdict.summary_line());
                        Ok(())
                    }
                    format => print_verdict(verdict, format),
                },
            )?;
            match verdict {
                Some(true) => Ok(Done::Ok),
                Some(false) => Ok(Done::TestsFailed),
                None => bail!("the last run did not get to test the module (see the error above)"),
            }
        }
        Cmd::Lint {
            target,
            module,
            fix,
        } => {
            let target = ctx.project.select(&target.selection())?;
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)?;
            let src = module.unwrap_or_else(|| ctx.default_module_dir());
            let out = module_out_dir(&ctx, &tree.target, &src, "lint")?;
            lint::run(&lint::Lint {
                tree: &tree,
                src: &src,
                out: &out,
                env: &toolchain::make_env(&ctx.project, None),
                fix,
            })?;
            Ok(Done::Ok)
        }
        Cmd::RustAnalyzer {
            target,
            module,
            output,
            check,
            rust_analyzer,
        } => {
            let src = module.unwrap_or_else(|| ctx.default_module_dir());
            crate::rust_analyzer::run(&crate::rust_analyzer::Request {
                project: &ctx.project,
                paths: &ctx.paths,
                fetcher: &ctx.fetcher(),
                target: &ctx.project.select(&target.selection())?,
                src: &src,
                out_dir: &|tree: &KernelTree| {
                    module_out_dir(&ctx, &tree.target, &src, "rust-analyzer")
                },
                output: output.as_deref(),
                check,
                rust_analyzer: rust_analyzer.as_deref(),
            })
            .map(|clean| if clean { Done::Ok } else { Done::TestsFailed })
        }
        Cmd::Clean { dry_run } => clean(&ctx, dry_run).map(|()| Done::Ok),
        Cmd::Show { what } => {
            let json = match what {
                ShowWhat::Pin => {
                    let k = &ctx.project.pin.kernel;
                    serde_json::json!({"version": k.version, "deb": k.deb, "tarball": k.tarball})
                }
                ShowWhat::Kconfig { target } => {
                    let target = ctx.project.select(&target.selection())?;
                    serde_json::Value::Object(kconfig::to_json_map(&kernel::requested_options(
                        &ctx.project,
                        &target,
                    )?))
                }
                ShowWhat::BuildEnv { target } => {
                    let target = ctx.project.select(&target.selection())?;
                    let (dir, _) = kernel::current_tree(&ctx.project, &ctx.paths, &target)?;
                    kernel::build_setup(&ctx.project, &ctx.paths, &ctx.fetcher(), &target, &dir)?
                        .to_json(&dir)
                }
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(Done::Ok)
        }
        Cmd::Report { .. } | Cmd::Init { .. } => unreachable!("handled above"),
    }
}

fn clean(ctx: &Ctx, dry_run: bool) -> Result<()> {
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
        println!("{verb} {} ({})", path.display(), clean::human_bytes(*bytes));
    }
    for path in &done.busy {
        crate::notice!(
            "{} is being written by another lkmlab (a build, fetch or unpack): left alone",
            path.display()
        );
    }
    let total: u64 = done.removed.iter().map(|(_, b)| b).sum();
    println!(
        "lkmlab clean: {verb} {} item(s), {}; kept {} kernel tree(s) in use and the pinned sources in {}",
        done.removed.len(),
        clean::human_bytes(total),
        used.kernel_trees.iter().filter(|t| t.exists()).count(),
        ctx.paths.cache.display()
    );
    Ok(())
}

fn fetch(ctx: &Ctx) -> Result<()> {
    let src = kernel::source(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    crate::status!("kernel source: {}", src.display());
    let lib = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    crate::status!("Rust library source: {}", lib.display());
    Ok(())
}

fn config(ctx: &Ctx, target: &Target, source: &Path, output: &Path) -> Result<()> {
    let rust_lib_src = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    let env = kernel::MakeSetup::new(&ctx.project, target, Some(&rust_lib_src));
    let dir = crate::util::temp_dir("config")?;
    kernel::configure(&ctx.project, target, source, dir.path(), &env)?;
    std::fs::copy(dir.path().join(".config"), output)
        .with_context(|| format!("writing {}", output.display()))?;
    crate::status!("wrote verified .config to {}", output.display());
    Ok(())
}

fn build_module(
    ctx: &Ctx,
    tree: &KernelTree,
    dir: Option<&Path>,
    make_vars: &[String],
) -> Result<Vec<PathBuf>> {
    let src = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ctx.default_module_dir());
    let out = module_out_dir(ctx, &tree.target, &src, "modules")?;
    let _lock = lock_out_dir(&out)?;
    let env = toolchain::make_env(&ctx.project, None);
    let (kos, built) = module::build(&ModuleBuild {
        tree,
        src: &src,
        out: &out,
        env: &env,
        extra: make_vars,
    })?;
    if built == module::Built::UpToDate {
        crate::status!(
            "{} is up to date against {}: nothing to build",
            src.display(),
            tree.dir.display()
        );
    }
    Ok(kos)
}

/// Where Kbuild puts a module's objects (`MO=`):
/// `target/lkmlab/<target label>/<kind>/<dir name>-<hash>` (see
/// [`Target::label`], [`out_dir_name`]).
fn module_out_dir(ctx: &Ctx, target: &Target, src: &Path, kind: &str) -> Result<PathBuf> {
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
    format!("{name}-{}", &crate::fetch::hex(&hash)[..8])
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

fn kos_in(dir: &Path) -> Result<Vec<PathBuf>> {
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

fn done(verdict: &report::Verdict) -> Done {
    if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    }
}

/// `lkmlab test` on the pinned kernel: build the kernel (cached) and the
/// module, then run the VM test. `lkmlab watch` runs exactly this.
fn build_and_test(
    ctx: &Ctx,
    target: &Target,
    vm: &VmArgs,
    module_dir: &Path,
    runner: Option<&Path>,
    timings: &mut Timings,
) -> Result<report::Verdict> {
    let tree = timings.stage("kernel", || {
        kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), target)
    })?;
    let kos = timings.stage("module", || build_module(ctx, &tree, Some(module_dir), &[]))?;
    let payload = guest::Payload::new(
        kos,
        Some(module_dir),
        ctx.example_suites(module_dir),
        &ctx.guest_tools(target.arch),
    )?;
    run_vm_test(
        ctx,
        target,
        vm,
        &Boot::tree(&tree),
        &payload,
        runner,
        timings,
    )
}

/// The kernel a test boots: a built tree, or an image given on the command
/// line (whose configuration lkmlab does not know).
struct Boot<'a> {
    image: PathBuf,
    tree: Option<&'a KernelTree>,
}

impl<'a> Boot<'a> {
    fn tree(tree: &'a KernelTree) -> Self {
        Boot {
            image: tree.image(),
            tree: Some(tree),
        }
    }
}

/// The accelerator asked for, else the pin's `[vm] accel`.
fn accel_choice(ctx: &Ctx, asked: Option<AccelChoice>) -> Result<AccelChoice> {
    match asked {
        Some(c) => Ok(c),
        None => Ok(ctx.project.pin.vm.accel),
    }
}

/// Boot the VM with the test initramfs and judge the run; writes
/// console.log, results.ktap and junit.xml.
fn run_vm_test(
    ctx: &Ctx,
    target: &Target,
    vm: &VmArgs,
    boot: &Boot,
    payload: &guest::Payload,
    runner: Option<&Path>,
    timings: &mut Timings,
) -> Result<report::Verdict> {
    let image = boot.image.as_path();
    if let Some(tree) = boot
        .tree
        .filter(|t| vm.fault_injection && !t.enabled("CONFIG_FAULT_INJECTION"))
    {
        bail!(
            "--fault-injection needs a kernel with fault injection (CONFIG_FAULT_INJECTION, \
             FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS), and the {} flavor's has none: \
             add --flavor debug",
            tree.target.flavor_name
        );
    }
    let out = vm
        .out
        .clone()
        .unwrap_or_else(|| ctx.project.target_dir().join(target.label()).join("test"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // One run at a time writes its initramfs, boots it and writes its results
    // here: a second lkmlab testing into the same folder waits.
    let _lock = crate::lock::exclusive(
        &out.join(".lkmlab-lock"),
        &format!("testing into {}", out.display()),
    )?;
    let initramfs = out.join("initramfs.cpio");
    let options = guest::RunOptions {
        fault_injection: vm.fault_injection,
    };
    timings.stage("initramfs", || -> Result<()> {
        let runner = guest::runner(runner, target.arch, || {
            crate::cross::runner(target.arch, &ctx.project, &ctx.paths, &ctx.fetcher())
        })?;
        guest::write_initramfs(&initramfs, &runner, payload, &options)
    })?;
    let cmdline_extra = boot.tree.map(debug_cmdline).unwrap_or_default();

    let choice = accel_choice(ctx, vm.accel)?;
    let accel = timings.stage("accel", || accel::choose(choice, &ctx.paths, target.arch))?;
    let timeout = Duration::from_secs(vm.timeout.unwrap_or(ctx.project.pin.vm.timeout_secs));
    crate::status!(
        "booting {} under {accel} with {} module(s) and {} guest test(s)",
        image.display(),
        payload.modules.len(),
        payload.tests.len()
    );
    let run = qemu::run(&qemu::VmTest {
        arch: target.arch,
        image,
        initramfs: &initramfs,
        accel,
        memory_mib: ctx.project.pin.vm.memory_mib,
        cpus: ctx.project.pin.vm.cpus,
        timeout,
        out: &out,
        cmdline_extra: &cmdline_extra,
    })?;
    let first = run.first_ktap.unwrap_or(run.elapsed);
    let done = run.done.unwrap_or(run.elapsed).max(first);
    timings.record("boot", first);
    timings.record("tests", done - first);
    timings.record("shutdown", run.elapsed.saturating_sub(done));
    let junit_path = out.join("junit.xml");
    let verdict = timings.stage("verdict", || -> Result<report::Verdict> {
        let ktap_text = std::fs::read_to_string(&run.ktap).unwrap_or_default();
        let console = std::fs::read_to_string(&run.console).unwrap_or_default();
        let verdict = report::evaluate(&ktap_text, &console, &run.ending, timeout);
        std::fs::write(
            &junit_path,
            junit::render(
                "lkmlab",
                &verdict.ktap,
                &verdict.extra_failures,
                run.elapsed.as_secs_f64(),
            ),
        )
        .with_context(|| format!("writing {}", junit_path.display()))?;
        Ok(verdict)
    })?;
    crate::status!(
        "VM finished in {:.2}s under {accel}; results in {} (console.log, results.ktap, junit.xml)",
        run.elapsed.as_secs_f64(),
        out.display()
    );
    Ok(verdict)
}

/// Kernel parameters for a tree's detectors: KASAN prints only its first
/// report of a boot unless told otherwise, and a lab run wants every one.
fn debug_cmdline(tree: &KernelTree) -> Vec<&'static str> {
    if tree.enabled("CONFIG_KASAN") {
        vec!["kasan_multi_shot"]
    } else {
        Vec::new()
    }
}

fn run_vm(ctx: &Ctx, o: &VmCmd) -> Result<Done> {
    let mut timings = Timings::new();
    let done = run_vm_timed(ctx, o, &mut timings);
    if o.timings {
        crate::notice!("{}", timings.line());
    }
    done
}

fn run_vm_timed(ctx: &Ctx, o: &VmCmd, timings: &mut Timings) -> Result<Done> {
    let target = ctx.project.select(&o.target.selection())?;
    if target.arch.is_foreign() {
        bail!(
            "lkmlab vm boots the host's own filesystem with virtme-ng, which needs a kernel for \
             the host's architecture; {} is another. Test on it with `lkmlab test --target {}` \
             (or --arch {})",
            target.arch,
            target.name(),
            target.arch
        );
    }
    let vng = vng::find_vng()?;
    if o.exec.is_some() && vng::find_udevd().is_none() {
        bail!(
            "`lkmlab vm --exec` needs udev on the host (the guest runs the host's systemd-udevd \
             to find the virtio ports that carry the command's output and exit status): \
             sudo apt-get install udev"
        );
    }
    let given = o.kernel.as_deref().zip(o.modules.as_deref());
    let (image, modules, release) = match given {
        Some((k, m)) => {
            kos_in(m)?;
            (k.to_path_buf(), m.to_path_buf(), None)
        }
        None => {
            let tree = timings.stage("kernel", || {
                kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &target)
            })?;
            vng::check_kernel_config(&tree.dir.join(".config"), o.exec.is_some())?;
            let kos = timings.stage("module", || {
                build_module(ctx, &tree, o.module.as_deref(), &[])
            })?;
            let dir = kos
                .first()
                .and_then(|k| k.parent())
                .map(Path::to_path_buf)
                .context("the module build returned no .ko files")?;
            (tree.image(), dir, Some(tree.release))
        }
    };
    if !image.is_file() {
        bail!(
            "{} does not exist: pass a {} to --kernel",
            image.display(),
            target.arch.image_target()
        );
    }
    let modules = modules
        .canonicalize()
        .with_context(|| format!("module directory {}", modules.display()))?;
    let reload = vng::write_reload_script(&ctx.paths.cache.join("vm"))?;
    let choice = accel_choice(ctx, o.accel)?;
    let accel = timings.stage("accel", || accel::choose(choice, &ctx.paths, target.arch))?;
    // `vng --version` starts Python (0.2 s): remembered per vng script.
    let version = timings.stage("vng-version", || {
        toolchain::remembered(&ctx.paths, "vng", std::slice::from_ref(&vng), || {
            vng::vng_version(&vng)
        })
    })?;
    if version != vng::VNG_TESTED {
        crate::notice!(
            "note: virtme-ng {version} (lkmlab is tested with {}; \
             scripts/setup-debian.sh installs it)",
            vng::VNG_TESTED
        );
    }
    let cwd = &ctx.project.root;
    let mut rodirs: Vec<&Path> = vec![cwd];
    if !modules.starts_with(cwd) {
        rodirs.push(&modules);
    }
    let spec = vng::VmSpec {
        vng: &vng,
        image: &image,
        modules: &modules,
        reload: &reload,
        rodirs: &rodirs,
        accel,
        memory_mib: ctx.project.pin.vm.memory_mib,
        cpus: ctx.project.pin.vm.cpus,
        exec: o.exec.as_deref(),
        extra: &o.vng_options,
    };
    let kernel_name = release.map_or_else(
        || image.display().to_string(),
        |r| format!("kernel {r} ({})", target.label()),
    );
    let names: Vec<String> = kos_in(&modules)?
        .iter()
        .filter_map(|k| k.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let Some(cmd) = o.exec.as_deref() else {
        let first = names
            .first()
            .map(|n| n.trim_end_matches(".ko").to_string())
            .unwrap_or_else(|| "NAME".into());
        crate::status!(
            "booting {kernel_name} under {accel} with virtme-ng {version}\n\
             lkmlab:   guest shell: root in {cwd}, the host filesystem read-only (writable overlays on /etc, /tmp, /usr, …)\n\
             lkmlab:   modules:     {modules} = $LKMLAB_MODULES ({names})\n\
             lkmlab:   load:        insmod $LKMLAB_MODULES/{first}.ko\n\
             lkmlab:   reload:      `lkmlab module` on the host, then in the guest: $LKMLAB_RELOAD {first}\n\
             lkmlab:                ({reload}: unloads {first} unless it is in use, loads the new .ko)\n\
             lkmlab:   leave:       exit (or Ctrl-D); Ctrl-A x kills the VM",
            cwd = cwd.display(),
            modules = modules.display(),
            names = names.join(", "),
            reload = reload.display(),
        );
        let status = timings.stage("vng", || vng::run_shell(&spec, cwd))?;
        if !status.success() {
            bail!("vng exited with {status}; run `vng --help` or see the messages above");
        }
        return Ok(Done::Ok);
    };
    crate::status!(
        "running in the VM ({kernel_name} under {accel}, $LKMLAB_MODULES={}): {cmd}",
        modules.display()
    );
    let secs = o.timeout.unwrap_or(ctx.project.pin.vm.timeout_secs);
    let timeout = (secs > 0).then(|| Duration::from_secs(secs));
    match timings.stage("vng", || vng::run_exec(&spec, cwd, timeout))? {
        crate::process::Waited::TimedOut => bail!(
            "the VM did not finish within {secs}s (--timeout {secs}); it was killed. \
             Give the command more time with --timeout SECS (0: no limit); if the command had \
             finished, the kernel cannot power off (it needs CONFIG_ACPI=y)"
        ),
        crate::process::Waited::Exited(status) => {
            let code = status.code().unwrap_or(255);
            if code == 255 {
                crate::notice!(
                    "the command exited with 255, or the VM ended without its exit status \
                     (a kernel panic?); rerun with `-- --verbose` to see the guest's console"
                );
            }
            Ok(match u8::try_from(code) {
                Ok(0) => Done::Ok,
                Ok(code) => Done::Exit(code),
                Err(_) => Done::Exit(255),
            })
        }
    }
}

/// `lkmlab init`: the new project's directory on standard output.
fn init(dir: Option<&Path>, name: Option<&str>) -> Result<()> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let name = match name {
        Some(n) => n.to_string(),
        None => crate::init::default_name(&dir).with_context(|| {
            format!(
                "{} does not make a module name: give one with --name NAME",
                dir.display()
            )
        })?,
    };
    let files = crate::init::init(&dir, &name)?;
    crate::status!(
        "created module {name} with {} files in {}; next: cd {} && lkmlab check",
        files.len(),
        dir.display(),
        dir.display()
    );
    println!("{}", dir.display());
    Ok(())
}

/// The verdict on standard output, as text or JSON.
fn print_verdict(verdict: &report::Verdict, format: Format) -> Result<()> {
    match format {
        Format::Text => print!("{}", report::render(verdict)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::to_json(verdict))?
        ),
    }
    Ok(())
}

fn report_files(file: &Path, console: Option<&Path>, format: Format) -> Result<Done> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let ktap_text = if text.trim_start().starts_with("KTAP version") {
        text.clone()
    } else {
        ktap::extract(&text)
            .with_context(|| format!("{} holds no KTAP (no `KTAP version` line)", file.display()))?
    };
    let console_text = match console {
        Some(c) => {
            std::fs::read_to_string(c).with_context(|| format!("reading {}", c.display()))?
        }
        None => String::new(),
    };
    // A saved log carries no QEMU status: judge the KTAP and the log alone.
    let verdict = report::evaluate(
        &ktap_text,
        &console_text,
        &qemu::Ending::Saved,
        Duration::ZERO,
    );
    print_verdict(&verdict, format)?;
    Ok(if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    })
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
