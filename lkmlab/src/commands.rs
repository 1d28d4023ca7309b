//! What each subcommand does, on top of the library modules.

use crate::accel::{self, AccelChoice};
use crate::cli::{Cli, Cmd, ShowWhat, VmArgs};
use crate::fetch::Fetcher;
use crate::kernel::{self, KernelTree};
use crate::module::{self, ModuleBuild};
use crate::paths::Paths;
use crate::project::Project;
use crate::{doctor, guest, junit, kconfig, ktap, report, toolchain, vmtest};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a command ended, when it did not fail outright.
pub enum Done {
    Ok,
    /// Tests ran and some failed (exit status 1).
    TestsFailed,
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

    fn fetcher(&self) -> Fetcher<'_> {
        Fetcher {
            paths: &self.paths,
            mirror: self.mirror.clone(),
        }
    }
}

pub fn run(cli: Cli) -> Result<Done> {
    // `report` reads files only: it needs no project.
    if let Cmd::Report { file, console } = &cli.command {
        return report_files(file, console.as_deref());
    }
    let ctx = Ctx {
        project: Project::discover(cli.project.as_deref())?,
        paths: Paths::from_env(cli.cache.clone()),
        mirror: cli.mirror.clone().filter(|m| !m.as_os_str().is_empty()),
    };
    match cli.command {
        Cmd::Fetch => fetch(&ctx).map(|()| Done::Ok),
        Cmd::Doctor => {
            let ok = doctor::print(&doctor::run(&ctx.project, &ctx.paths));
            if ok {
                Ok(Done::Ok)
            } else {
                bail!("the pipeline cannot run on this machine yet (see the fixes above)")
            }
        }
        Cmd::Kernel { flavor } => {
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &flavor.flavor)?;
            println!("{}", tree.dir.display());
            Ok(Done::Ok)
        }
        Cmd::Config {
            flavor,
            source,
            output,
        } => config(&ctx, &flavor.flavor, &source, &output).map(|()| Done::Ok),
        Cmd::Module {
            flavor,
            module,
            make_vars,
        } => {
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &flavor.flavor)?;
            for ko in build_module(&ctx, &tree, module.as_deref(), &make_vars)? {
                println!("{}", ko.display());
            }
            Ok(Done::Ok)
        }
        Cmd::Test {
            flavor,
            vm,
            module,
            kernel,
            modules,
            runner,
        } => {
            let module_dir = module.clone().unwrap_or_else(|| ctx.default_module_dir());
            let (bzimage, kos) = match (kernel, modules) {
                (Some(k), Some(m)) => (k, kos_in(&m)?),
                _ => {
                    let tree =
                        kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &flavor.flavor)?;
                    let kos = build_module(&ctx, &tree, Some(&module_dir), &[])?;
                    (tree.bzimage(), kos)
                }
            };
            let payload = guest::Payload::new(kos, Some(&module_dir))?;
            test(
                &ctx,
                &flavor.flavor,
                &vm,
                &bzimage,
                &payload,
                runner.as_deref(),
            )
        }
        Cmd::Check { flavor, vm } => {
            let checks = doctor::run(&ctx.project, &ctx.paths);
            if checks.iter().any(|c| c.status == doctor::Status::Fail) {
                doctor::print(&checks);
                bail!("the pipeline cannot run on this machine yet (see the fixes above)");
            }
            fetch(&ctx)?;
            let tree = kernel::build(&ctx.project, &ctx.paths, &ctx.fetcher(), &flavor.flavor)?;
            let kos = build_module(&ctx, &tree, None, &[])?;
            let payload = guest::Payload::new(kos, Some(&ctx.default_module_dir()))?;
            test(&ctx, &flavor.flavor, &vm, &tree.bzimage(), &payload, None)
        }
        Cmd::Show { what } => {
            let json = match what {
                ShowWhat::Pin => {
                    let k = &ctx.project.pin.kernel;
                    serde_json::json!({"version": k.version, "deb": k.deb, "tarball": k.tarball})
                }
                ShowWhat::Kconfig { flavor } => serde_json::Value::Object(kconfig::to_json_map(
                    &kernel::requested_options(&ctx.project, &flavor.flavor)?,
                )),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(Done::Ok)
        }
        Cmd::Report { .. } => unreachable!("handled above"),
    }
}

fn fetch(ctx: &Ctx) -> Result<()> {
    let src = kernel::source(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    eprintln!("lkmlab: kernel source: {}", src.display());
    let lib = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    eprintln!("lkmlab: Rust library source: {}", lib.display());
    Ok(())
}

fn config(ctx: &Ctx, flavor: &str, source: &Path, output: &Path) -> Result<()> {
    let rust_lib_src = toolchain::rust_lib_src(&ctx.project, &ctx.paths, &ctx.fetcher())?;
    let env = toolchain::make_env(&ctx.project, Some(&rust_lib_src));
    let dir = std::env::temp_dir().join(format!("lkmlab-config-{}", std::process::id()));
    let result = kernel::configure(&ctx.project, flavor, source, &dir, &env).and_then(|()| {
        std::fs::copy(dir.join(".config"), output)
            .with_context(|| format!("writing {}", output.display()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    eprintln!("lkmlab: wrote verified .config to {}", output.display());
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
    let name = src
        .canonicalize()
        .with_context(|| format!("module directory {}", src.display()))?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    let out = ctx
        .project
        .target_dir()
        .join(&tree.flavor)
        .join("modules")
        .join(name);
    let env = toolchain::make_env(&ctx.project, None);
    eprintln!(
        "lkmlab: building {} against {}",
        src.display(),
        tree.dir.display()
    );
    module::build(&ModuleBuild {
        tree,
        src: &src,
        out: &out,
        env: &env,
        extra: make_vars,
    })
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

fn test(
    ctx: &Ctx,
    flavor: &str,
    vm: &VmArgs,
    bzimage: &Path,
    payload: &guest::Payload,
    runner: Option<&Path>,
) -> Result<Done> {
    let out = vm
        .out
        .clone()
        .unwrap_or_else(|| ctx.project.target_dir().join(flavor).join("test"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let runner = match runner {
        Some(r) => {
            guest::check_static(r)?;
            r.to_path_buf()
        }
        None => guest::build_runner(&ctx.project.root, &out.join("runner-build.log"))?,
    };
    let initramfs = out.join("initramfs.cpio");
    guest::write_initramfs(&initramfs, &runner, payload)?;

    let choice = match &vm.accel {
        Some(c) => *c,
        None => ctx
            .project
            .pin
            .vm
            .accel
            .parse::<AccelChoice>()
            .map_err(|e| anyhow::anyhow!("lkmlab.toml [vm] accel: {e}"))?,
    };
    let accel = accel::choose(choice, &ctx.paths)?;
    let timeout = Duration::from_secs(vm.timeout.unwrap_or(ctx.project.pin.vm.timeout_secs));
    eprintln!(
        "lkmlab: booting {} under {accel} with {} module(s) and {} guest test(s)",
        bzimage.display(),
        payload.modules.len(),
        payload.tests.len()
    );
    let run = vmtest::run(&vmtest::VmTest {
        bzimage,
        initramfs: &initramfs,
        accel,
        memory_mib: ctx.project.pin.vm.memory_mib,
        cpus: ctx.project.pin.vm.cpus,
        timeout,
        out: &out,
    })?;
    let ktap_text = std::fs::read_to_string(&run.ktap).unwrap_or_default();
    let console = std::fs::read_to_string(&run.console).unwrap_or_default();
    let verdict = report::evaluate(&ktap_text, &console, &run.ending, timeout);
    let junit_path = out.join("junit.xml");
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
    eprintln!(
        "lkmlab: VM finished in {:.2}s under {accel}; results in {} (console.log, results.ktap, junit.xml)",
        run.elapsed.as_secs_f64(),
        out.display()
    );
    print!("{}", report::render(&verdict));
    Ok(if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    })
}

fn report_files(file: &Path, console: Option<&Path>) -> Result<Done> {
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
        &vmtest::Ending::Saved,
        Duration::ZERO,
    );
    print!("{}", report::render(&verdict));
    Ok(if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    })
}
