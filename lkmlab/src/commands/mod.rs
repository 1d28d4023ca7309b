//! What each subcommand does, on top of the library modules: one file per
//! group of commands (`build`: fetch, kernel, module, doc, lint, clean; `test`:
//! test and watch; `check`; `vm`; `info`: init, doctor, report, show), the
//! context they share here.

use crate::cli::{Cli, Cmd, Format};
use crate::config::arch::Arch;
use crate::config::paths::Paths;
use crate::config::pin::AccelChoice;
use crate::config::project::Project;
use crate::source::fetch::Fetcher;
use crate::timings::Timings;
use crate::{judge::report, vm::devices, vm::guest};
use anyhow::Result;
use lkmlab_protocol::plan::ExampleSuite;
use std::path::{Path, PathBuf};

mod build;
mod check;
mod info;
mod test;
mod vm;

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

    /// The module directory a command builds: `--module DIR` when given,
    /// else `[module] dir`; refused before any work (fetch, kernel build)
    /// unless Kbuild can build in it.
    fn module_dir(&self, given: Option<&Path>) -> Result<PathBuf> {
        let (dir, what) = match given {
            Some(dir) => (dir.to_path_buf(), "--module"),
            None => (self.default_module_dir(), "lkmlab.toml [module] dir"),
        };
        crate::build::module_dir::check_buildable(&dir, what)?;
        Ok(dir)
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
                crate::vm::cross::busybox(arch, &self.project, &self.paths, &self.fetcher())
            })
        } else {
            Box::new(guest::find_busybox)
        };
        guest::GuestTools { arch, busybox }
    }

    /// The devices of a test of `module_dir` on `arch`, checked against
    /// its QEMU (before anything is built: a typo costs no kernel build).
    fn devices(&self, module_dir: &Path, arch: Arch) -> Result<Vec<devices::Checked>> {
        let declared = devices::declared(
            &self.project.pin.vm.devices,
            &self.project.root.join(crate::config::pin::PIN_FILE),
            module_dir,
        )?;
        devices::check(arch, &declared)
    }

    fn fetcher(&self) -> Fetcher<'_> {
        Fetcher {
            paths: &self.paths,
            mirror: self.mirror.clone(),
        }
    }
}

pub fn run(cli: Cli) -> Result<Done> {
    // `init` makes a project and `report` reads files only: neither needs one.
    match &cli.command {
        Cmd::Init {
            dir,
            name,
            module_dir,
            lkmlab_url,
        } => {
            return info::init(
                dir.as_deref(),
                name.as_deref(),
                module_dir.as_deref(),
                lkmlab_url.as_deref(),
            )
            .map(|()| Done::Ok)
        }
        Cmd::Report {
            file,
            console,
            format,
        } => return info::report_files(file, console.as_deref(), *format),
        _ => {}
    }
    let ctx = Ctx {
        project: Project::discover(cli.project.as_deref())?,
        paths: Paths::from_env(cli.cache.clone()),
        mirror: cli.mirror.clone().filter(|m| !m.as_os_str().is_empty()),
    };
    match cli.command {
        Cmd::Fetch => build::fetch(&ctx).map(|()| Done::Ok),
        Cmd::Doctor => info::doctor(&ctx),
        Cmd::Kernel { target } => build::kernel(&ctx, &target),
        Cmd::Config {
            target,
            source,
            output,
            make_vars,
        } => build::config(&ctx, &target, &source, &output, &make_vars).map(|()| Done::Ok),
        Cmd::Module {
            target,
            module,
            make_vars,
        } => build::module(&ctx, &target, module.as_deref(), &make_vars),
        Cmd::Doc { target, item, open } => build::doc(&ctx, &target, item.as_deref(), open),
        Cmd::Test {
            target,
            vm,
            module,
            kernel,
            modules,
            runner,
            allow_foreign_modules,
        } => test::test(
            &ctx,
            &target,
            &vm,
            &test::Given {
                module,
                kernel: kernel.zip(modules),
                runner,
                allow_foreign_modules,
            },
        ),
        Cmd::Check { target, vm } => check::run(&ctx, &target, &vm),
        Cmd::Vm(args) => vm::run(&ctx, &args),
        Cmd::Watch {
            target,
            vm,
            module,
            runs,
        } => test::watch(&ctx, &target, &vm, module, runs),
        Cmd::Lint {
            target,
            module,
            fix,
        } => build::lint(&ctx, &target, module, fix),
        Cmd::RustAnalyzer {
            target,
            module,
            output,
            check,
            rust_analyzer,
        } => build::rust_analyzer(
            &ctx,
            &target,
            &build::AnalyzerArgs {
                module,
                output,
                check,
                rust_analyzer,
            },
        ),
        Cmd::Clean { dry_run } => build::clean(&ctx, dry_run).map(|()| Done::Ok),
        Cmd::Show { what } => info::show(&ctx, what),
        Cmd::Report { .. } | Cmd::Init { .. } => unreachable!("handled above"),
    }
}

fn done(verdict: &report::Verdict) -> Done {
    if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    }
}

/// The accelerator asked for, else the pin's `[vm] accel`.
fn accel_choice(ctx: &Ctx, asked: Option<AccelChoice>) -> Result<AccelChoice> {
    match asked {
        Some(c) => Ok(c),
        None => Ok(ctx.project.pin.vm.accel),
    }
}

/// The verdict on standard output, as text or JSON.
fn print_verdict(verdict: &report::Verdict, format: Format) -> Result<()> {
    match format {
        Format::Text => crate::out!("{}", report::render(verdict)),
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report::to_json(verdict))?
        ),
    }
}

/// The end of one test run: its verdict printed as asked, then (with
/// `--timings`) where the time went; the run's exit status.
fn finish(verdict: &report::Verdict, format: Format, timings: Option<&Timings>) -> Result<Done> {
    print_verdict(verdict, format)?;
    if let Some(t) = timings {
        crate::notice!("{}", t.line());
    }
    Ok(done(verdict))
}
