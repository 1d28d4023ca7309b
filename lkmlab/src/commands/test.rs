//! `lkmlab test` and `lkmlab watch`: build (or take) a kernel and modules,
//! boot the test VM, judge the run.

use super::build::kos_in;
use super::{accel_choice, finish, print_verdict, Ctx, Done};
use crate::build::kernel::{self, KernelTree};
use crate::build::partial::{self, Unbuilt};
use crate::build::{module, module_dir};
use crate::cli::{Format, TargetArg, VmArgs};
use crate::config::target::Target;
use crate::timings::Timings;
use crate::vm::{accel, devices, guest, limits, qemu};
use crate::{judge::junit, judge::report, lab::watch};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `lkmlab test` was given instead of building it.
pub(super) struct Given {
    /// The module directory (its guest tests run) [default: `[module] dir`].
    pub module: Option<PathBuf>,
    /// `--kernel IMAGE --modules DIR`: boot these, build nothing.
    pub kernel: Option<(PathBuf, PathBuf)>,
    pub runner: Option<PathBuf>,
    pub allow_foreign_modules: bool,
}

pub(super) fn test(ctx: &Ctx, target: &TargetArg, vm: &VmArgs, given: &Given) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    let mut timings = Timings::new();
    let module_dir = match (&given.kernel, &given.module) {
        // Nothing is built: the module directory only brings its guest tests.
        (Some(_), Some(dir)) => {
            module_dir::check_dir(dir, "--module")?;
            dir.clone()
        }
        (Some(_), None) => ctx.default_module_dir(),
        (None, dir) => ctx.module_dir(dir.as_deref())?,
    };
    let built = given.kernel.is_none().then_some(&target);
    limits::check(&ctx.project, built)?;
    limits::check_timeout(&ctx.project.pin.vm, vm.timeout)?;
    let devices = ctx.devices(&module_dir, target.arch)?;
    let runner = given.runner.as_deref();
    let verdict = match &given.kernel {
        Some((image, modules)) => {
            // Nothing is built here, so nothing guarantees the match:
            // refuse modules for another release before booting.
            let kos = kos_in(modules)?;
            let release = target.arch.image_release(image)?;
            for ko in kos.iter().filter(|_| !given.allow_foreign_modules) {
                module::check_vermagic(ko, &release)?;
            }
            // On a kernel other than the default one, what the build of
            // the given modules left out (its log beside them says) is
            // skipped with the compiler's reason, as `lkmlab check` does.
            let unbuilt = if target.kernel.is_default {
                Vec::new()
            } else {
                partial::unbuilt_in_given(modules)?
            };
            let payload = guest::Payload::with_unbuilt(
                kos,
                unbuilt,
                Some(&module_dir),
                ctx.example_suites(&module_dir),
                &ctx.guest_tools(target.arch),
            )?;
            let boot = Boot {
                image: image.clone(),
                tree: None,
            };
            let run = VmRun {
                vm,
                payload: &payload,
                devices: &devices,
                runner,
            };
            run_vm_test(ctx, &target, &boot, &run, &mut timings)?
        }
        None => build_and_test(
            ctx,
            &target,
            vm,
            &module_dir,
            &devices,
            runner,
            &mut timings,
        )?,
    };
    finish(&verdict, vm.format, vm.timings.then_some(&timings))
}

pub(super) fn watch(
    ctx: &Ctx,
    target: &TargetArg,
    vm: &VmArgs,
    module: Option<PathBuf>,
    runs: Option<u32>,
) -> Result<Done> {
    let target = ctx.project.select(&target.selection())?;
    let module_dir = ctx.module_dir(module.as_deref())?;
    limits::check(&ctx.project, Some(&target))?;
    limits::check_timeout(&ctx.project.pin.vm, vm.timeout)?;
    // Checked now, before the first build, and again each run: the module
    // directory's devices.toml is one of the files watched.
    ctx.devices(&module_dir, target.arch)?;
    let verdict = watch::run(
        &module_dir,
        runs,
        || {
            let mut timings = Timings::new();
            let devices = ctx.devices(&module_dir, target.arch)?;
            let verdict =
                build_and_test(ctx, &target, vm, &module_dir, &devices, None, &mut timings);
            if vm.timings {
                crate::notice!("{}", timings.line());
            }
            verdict
        },
        |verdict| match vm.format {
            // A passing run says so in one line; a failing one shows why.
            Format::Text if verdict.passed() => {
                crate::outln!("{}", verdict.summary_line())
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

/// `lkmlab test` on the pinned kernel: build the kernel (cached) and the
/// module, then run the VM test. `lkmlab watch` runs exactly this.
pub(super) fn build_and_test(
    ctx: &Ctx,
    target: &Target,
    vm: &VmArgs,
    module_dir: &Path,
    devices: &[devices::Checked],
    runner: Option<&Path>,
    timings: &mut Timings,
) -> Result<report::Verdict> {
    accel::check_possible(accel_choice(ctx, vm.accel)?, target.arch)?;
    let tree = timings.stage("kernel", || {
        kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), target)
    })?;
    let built = timings.stage("module", || {
        super::build::build_module_for_test(ctx, &tree, module_dir)
    })?;
    let payload = guest::Payload::with_unbuilt(
        built.kos,
        built.unbuilt,
        Some(module_dir),
        ctx.example_suites(module_dir),
        &ctx.guest_tools(target.arch),
    )?;
    let run = VmRun {
        vm,
        payload: &payload,
        devices,
        runner,
    };
    run_vm_test(ctx, target, &Boot::tree(&tree), &run, timings)
}

/// What a test boot runs, beside the kernel: the options, the initramfs's
/// payload, the declared devices, the guest runner if one was given.
struct VmRun<'a> {
    vm: &'a VmArgs,
    payload: &'a guest::Payload,
    devices: &'a [devices::Checked],
    runner: Option<&'a Path>,
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

/// Boot the VM with the test initramfs and judge the run; writes
/// console.log, results.ktap and junit.xml.
fn run_vm_test(
    ctx: &Ctx,
    target: &Target,
    boot: &Boot,
    run: &VmRun,
    timings: &mut Timings,
) -> Result<report::Verdict> {
    let VmRun {
        vm,
        payload,
        devices,
        runner,
    } = *run;
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
    let lock = lock_results(&out)?;
    let initramfs = out.join("initramfs.cpio");
    let options = guest::RunOptions {
        fault_injection: vm.fault_injection,
    };
    timings.stage("initramfs", || -> Result<()> {
        let runner = guest::runner(runner, target.arch, || {
            crate::vm::cross::runner(target.arch, &ctx.project, &ctx.paths, &ctx.fetcher())
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
        out_lock: &lock,
        cmdline_extra: &cmdline_extra,
        watchdog_at: lkmlab_protocol::watchdog_at(timeout),
        devices,
    })?;
    let first = run.first_ktap.unwrap_or(run.elapsed);
    let done = run.done.unwrap_or(run.elapsed).max(first);
    timings.record("boot", first);
    timings.record("tests", done - first);
    timings.record("shutdown", run.elapsed.saturating_sub(done));
    let verdict = timings.stage("verdict", || {
        judge(&run, timeout, &out, target, &payload.not_built)
    })?;
    crate::status!(
        "VM finished in {:.2}s under {accel}; results in {} (console.log, results.ktap, junit.xml)",
        run.elapsed.as_secs_f64(),
        out.display()
    );
    Ok(verdict)
}

/// The results folder, made and locked: one run at a time writes its
/// initramfs, boots it and writes its results there; a second lkmlab testing
/// into the same folder waits. QEMU holds the lock too (see
/// [`qemu::VmTest::out_lock`]), so the folder is not free before QEMU is
/// gone, whatever ended lkmlab.
fn lock_results(out: &Path) -> Result<crate::lock::Lock> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    crate::lock::exclusive(
        &out.join(".lkmlab-lock"),
        &format!("testing into {}", out.display()),
    )
}

/// The verdict on what the VM left (KTAP, console log, how QEMU ended) and
/// on the modules that did not build for its kernel (each a skipped case,
/// `MODULE.build`), and its JUnit file beside them.
fn judge(
    run: &qemu::VmRun,
    timeout: Duration,
    out: &Path,
    target: &Target,
    not_built: &[Unbuilt],
) -> Result<report::Verdict> {
    let ktap_text = std::fs::read_to_string(&run.ktap).unwrap_or_default();
    let console = std::fs::read_to_string(&run.console).unwrap_or_default();
    let mut verdict = report::evaluate(&ktap_text, &console, &run.ending, timeout);
    for u in not_built {
        verdict.add_skip(
            &u.case_name(),
            &format!(
                "does not build for kernel {}: {}",
                target.kernel.version, u.reason
            ),
        );
    }
    let junit_path = out.join("junit.xml");
    std::fs::write(
        &junit_path,
        junit::render(
            &target.junit_suite(),
            &verdict.ktap,
            &verdict.extra_failures,
            verdict.not_run.as_ref(),
            run.elapsed.as_secs_f64(),
        ),
    )
    .with_context(|| format!("writing {}", junit_path.display()))?;
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
