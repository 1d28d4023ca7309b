//! `lkmlab vm`: the interactive lab, a shell (or one command) in a VM on
//! the lab's kernel, through virtme-ng.

use super::build::{build_module, kos_in};
use super::{accel_choice, Ctx, Done};
use crate::cli::VmCmd;
use crate::config::target::Target;
use crate::timings::Timings;
use crate::{build::kernel, build::toolchain, lab::vng, vm::accel, vm::limits};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) fn run(ctx: &Ctx, o: &VmCmd) -> Result<Done> {
    let mut timings = Timings::new();
    let done = run_timed(ctx, o, &mut timings);
    if o.timings {
        crate::notice!("{}", timings.line());
    }
    done
}

fn run_timed(ctx: &Ctx, o: &VmCmd, timings: &mut Timings) -> Result<Done> {
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
    // The devices of the module directory (its devices.toml) and the
    // project's, checked before anything is built; with --modules, the
    // project's and the default module directory's.
    let module_dir = match o.modules {
        None => ctx.module_dir(o.module.as_deref())?,
        Some(_) => ctx.default_module_dir(),
    };
    let devices = ctx.devices(&module_dir, target.arch)?;
    let built = o.kernel.is_none().then_some(&target);
    limits::check(&ctx.project, built)?;
    // `--timeout 0` is no limit; the pin's default is a test run's.
    if o.exec.is_some() && o.timeout.is_none() {
        limits::check_timeout(&ctx.project.pin.vm, None)?;
    }
    let vng = vng::find_vng()?;
    if o.exec.is_some() && vng::find_udevd().is_none() {
        bail!(
            "`lkmlab vm --exec` needs udev on the host (the guest runs the host's systemd-udevd \
             to find the virtio ports that carry the command's output and exit status): \
             sudo apt-get install udev"
        );
    }
    let (image, modules, release) = kernel_and_modules(ctx, o, &target, timings)?;
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
        devices: &devices,
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
    let waited = timings.stage("vng", || {
        vng::run_exec(&spec, cwd, (secs > 0).then(|| Duration::from_secs(secs)))
    })?;
    exec_status(waited, secs)
}

/// The kernel image to boot, the directory of `.ko` files to offer, and the
/// release when lkmlab built the kernel: `--kernel`/`--modules` as given,
/// else the target's kernel and the module built against it.
fn kernel_and_modules(
    ctx: &Ctx,
    o: &VmCmd,
    target: &Target,
    timings: &mut Timings,
) -> Result<(PathBuf, PathBuf, Option<String>)> {
    let given = o.kernel.as_deref().zip(o.modules.as_deref());
    let (image, modules, release) = match given {
        Some((k, m)) => {
            kos_in(m)?;
            (k.to_path_buf(), m.to_path_buf(), None)
        }
        None => {
            let tree = timings.stage("kernel", || {
                kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), target)
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
    Ok((image, modules, release))
}

/// `lkmlab vm --exec`'s exit status: the command's own.
fn exec_status(waited: crate::process::Waited, secs: u64) -> Result<Done> {
    match waited {
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
                     (a kernel panic, or QEMU refusing its options or a declared device: its \
                     message is above); rerun with `-- --verbose` to see the guest's console"
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
