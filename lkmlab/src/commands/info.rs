//! The commands that tell: `init` (a new project), `doctor`, `report`
//! (saved results), `show`.

use super::{print_verdict, Ctx, Done};
use crate::cli::{Format, ShowWhat};
use crate::{build::kconfig, build::kernel, doctor, judge::report, ktap, vm::qemu};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::Duration;

pub(super) fn doctor(ctx: &Ctx) -> Result<Done> {
    let targets = ctx.project.targets()?;
    if doctor::print(&doctor::run(&ctx.project, &ctx.paths, &targets))? {
        Ok(Done::Ok)
    } else {
        bail!("the pipeline cannot run on this machine yet (see the fixes above)")
    }
}

pub(super) fn show(ctx: &Ctx, what: ShowWhat) -> Result<Done> {
    let json = match what {
        ShowWhat::Pin { kernel_name } => {
            let k = match kernel_name {
                Some(name) => ctx.project.kernel(&name)?,
                None => ctx.project.default_kernel(),
            };
            serde_json::json!({"version": k.version, "deb": k.deb, "tarball": k.tarball})
        }
        ShowWhat::Targets => serde_json::Value::Array(
            ctx.project
                .targets()?
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name(),
                        "kernel": t.kernel.name,
                        "arch": t.arch.name(),
                        "flavor": t.flavor_name,
                        "compiler": t.flavor.compiler,
                    })
                })
                .collect(),
        ),
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
    crate::outln!("{}", serde_json::to_string_pretty(&json)?)?;
    Ok(Done::Ok)
}

/// `lkmlab init`: the new project's directory on standard output.
pub(super) fn init(
    dir: Option<&Path>,
    name: Option<&str>,
    module_dir: Option<&Path>,
    lkmlab_url: Option<&str>,
) -> Result<()> {
    // Checked first: a refused URL writes nothing.
    let lkmlab = match lkmlab_url {
        Some(url) => crate::lab::init::LkmlabUrl::parse(url)?,
        None => crate::lab::init::LkmlabUrl::template(),
    };
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    if let Some(module_dir) = module_dir {
        let (files, module_dir) = crate::lab::init::init_existing(&dir, module_dir)?;
        crate::status!(
            "wrote lkmlab.toml ([module] dir = {:?}) and kernel-config/, {} files in {}; add \
             /target/ to .gitignore (lkmlab's builds and results go there); next: cd {} && \
             lkmlab check",
            module_dir.display().to_string(),
            files.len(),
            dir.display(),
            dir.display()
        );
        return crate::outln!("{}", dir.display());
    }
    let name = match name {
        Some(n) => n.to_string(),
        None => crate::lab::init::default_name(&dir)?,
    };
    let files = crate::lab::init::init(&dir, &name, &lkmlab)?;
    crate::status!(
        "created module {name} with {} files in {}; next: cd {} && lkmlab check",
        files.len(),
        dir.display(),
        dir.display()
    );
    crate::outln!("{}", dir.display())
}

/// `lkmlab report`: the verdict on saved files, printed as asked. When there
/// is none to give (a file that cannot be read or holds no KTAP), the error
/// goes to standard error as always and, with `--format json`, standard
/// output still gets a JSON object: `{"passed": false, "error": "…"}`.
pub(super) fn report_files(file: &Path, console: Option<&Path>, format: Format) -> Result<Done> {
    let verdict = match judge_files(file, console) {
        Ok(verdict) => verdict,
        Err(e) => {
            if matches!(format, Format::Json) {
                let json = serde_json::json!({ "passed": false, "error": format!("{e:#}") });
                crate::outln!("{}", serde_json::to_string_pretty(&json)?)?;
            }
            return Err(e);
        }
    };
    print_verdict(&verdict, format)?;
    Ok(if verdict.passed() {
        Done::Ok
    } else {
        Done::TestsFailed
    })
}

/// The verdict on a saved KTAP file or console log (and `console`, the
/// kernel log to scan).
fn judge_files(file: &Path, console: Option<&Path>) -> Result<report::Verdict> {
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
    Ok(report::evaluate(
        &ktap_text,
        &console_text,
        &qemu::Ending::Saved,
        Duration::ZERO,
    ))
}
