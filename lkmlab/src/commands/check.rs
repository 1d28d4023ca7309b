//! `lkmlab check` over several targets: each target's kernel, module and VM
//! test in turn, each verdict as `lkmlab test` prints it, then one module ×
//! target table and the counts of all of them.

use super::test::build_and_test;
use super::{print_verdict, Ctx, Done};
use crate::build::partial::BUILD_CASE;
use crate::cli::{Format, TargetArg, VmArgs};
use crate::config::target::Target;
use crate::doctor;
use crate::judge::report::Verdict;
use crate::ktap::Outcome;
use crate::timings::Timings;
use anyhow::{bail, Result};
use std::fmt::Write as _;

/// What one target's run came to.
pub enum TargetRun {
    Judged(Verdict),
    /// The kernel or the module could not be built, or the VM not started.
    Broken(String),
}

/// A module's result on one target, from the cases of its suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Pass,
    Fail,
    Skip,
    /// None of its cases ran (the VM crashed or timed out before them).
    NotRun,
    /// The target's run broke before the module was tested.
    Error,
}

impl Cell {
    fn word(self) -> &'static str {
        match self {
            Cell::Pass => "pass",
            Cell::Fail => "FAIL",
            Cell::Skip => "skip",
            Cell::NotRun => "not run",
            Cell::Error => "error",
        }
    }
}

/// `lkmlab check`: doctor (printed when something fails), fetch, then every
/// target the selection names, or every declared one.
pub(super) fn run(ctx: &Ctx, selection: &TargetArg, vm: &VmArgs) -> Result<Done> {
    let targets = ctx.project.check_targets(&selection.selection())?;
    let module_dir = ctx.module_dir(None)?;
    let mut devices = Vec::new();
    for target in &targets {
        crate::vm::limits::check(&ctx.project, Some(target))?;
        devices.push(ctx.devices(&module_dir, target.arch)?);
    }
    crate::vm::limits::check_timeout(&ctx.project.pin.vm, vm.timeout)?;
    let accel = super::accel_choice(ctx, vm.accel)?;
    for target in &targets {
        crate::vm::accel::check_possible(accel, target.arch)?;
    }
    let checks = doctor::run(&ctx.project, &ctx.paths, &targets);
    if checks.iter().any(|c| c.status == doctor::Status::Fail) {
        doctor::print(&checks)?;
        bail!("the pipeline cannot run on this machine yet (see the fixes above)");
    }
    super::build::fetch(ctx)?;
    run_targets(ctx, &targets, &module_dir, &devices, vm)
}

/// `devices`: each target's checked devices, in the order of `targets`.
fn run_targets(
    ctx: &Ctx,
    targets: &[Target],
    module_dir: &std::path::Path,
    devices: &[Vec<crate::vm::devices::Checked>],
    vm: &VmArgs,
) -> Result<Done> {
    let several = targets.len() > 1;
    let mut runs = Vec::new();
    for (target, devices) in targets.iter().zip(devices) {
        if several {
            crate::status!("=== target {} ===", target.name());
        }
        let mut vm = vm.clone();
        if several {
            vm.out = vm.out.map(|o| o.join(target.label()));
        }
        let mut timings = Timings::new();
        let run = match build_and_test(ctx, target, &vm, module_dir, devices, None, &mut timings) {
            Ok(verdict) => {
                if !several || vm.format == Format::Text {
                    print_verdict(&verdict, vm.format)?;
                }
                TargetRun::Judged(verdict)
            }
            // One target's broken build does not hide the others' results.
            Err(e) if several => {
                let why = format!("{e:#}");
                crate::notice!("target {} failed: {why}", target.name());
                TargetRun::Broken(why)
            }
            Err(e) => return Err(e),
        };
        if vm.timings {
            crate::notice!("{} ({})", timings.line(), target.name());
        }
        runs.push((target.clone(), run));
    }
    if !several {
        let Some((_, TargetRun::Judged(verdict))) = runs.first() else {
            unreachable!("one target: an error returned above")
        };
        return Ok(super::done(verdict));
    }
    let modules = module_names(&runs);
    match vm.format {
        Format::Text => crate::out!("{}", matrix(&modules, &runs))?,
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&to_json(&modules, &runs))?
        )?,
    }
    if let Some((target, _)) = runs.iter().find(|(_, r)| matches!(r, TargetRun::Broken(_))) {
        bail!(
            "target {} could not be tested (its error is above); the others' results are in the \
             table",
            target.name()
        );
    }
    let all_passed = runs
        .iter()
        .all(|(_, r)| matches!(r, TargetRun::Judged(v) if v.passed()));
    Ok(if all_passed {
        Done::Ok
    } else {
        Done::TestsFailed
    })
}

/// The modules the runs tested, in the order their suites ran.
fn module_names(runs: &[(Target, TargetRun)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, run) in runs {
        let TargetRun::Judged(v) = run else { continue };
        let not_run = v.not_run.iter().flat_map(|n| &n.cases);
        for name in v.ktap.cases.iter().map(|c| &c.name).chain(not_run) {
            let Some((suite, _)) = name.split_once('.') else {
                continue;
            };
            let not_a_module = [
                lkmlab_protocol::GUEST_TESTS_SUITE,
                lkmlab_protocol::KERNEL_SUITE,
            ];
            if !not_a_module.contains(&suite) && !names.iter().any(|n| n == suite) {
                names.push(suite.to_string());
            }
        }
    }
    names
}

/// A suite's result in one verdict: failed if any case failed, passed if one
/// passed, skipped if every case was, not run if it has none.
fn cell(run: &TargetRun, suite: &str) -> Cell {
    let TargetRun::Judged(v) = run else {
        return Cell::Error;
    };
    let prefix = format!("{suite}.");
    let cases: Vec<_> = (v.ktap.cases.iter())
        .filter(|c| c.name.starts_with(&prefix))
        .collect();
    if cases.is_empty() {
        Cell::NotRun
    } else if cases.iter().any(|c| c.outcome == Outcome::Fail) {
        Cell::Fail
    } else if cases.iter().any(|c| c.outcome == Outcome::Pass) {
        Cell::Pass
    } else {
        Cell::Skip
    }
}

/// The whole run of a target: what its verdict says (the kernel log and the
/// VM included).
fn overall(run: &TargetRun) -> Cell {
    match run {
        TargetRun::Judged(v) if v.passed() => Cell::Pass,
        TargetRun::Judged(_) => Cell::Fail,
        TargetRun::Broken(_) => Cell::Error,
    }
}

/// The module × target table, then the counts over every target.
pub fn matrix(modules: &[String], runs: &[(Target, TargetRun)]) -> String {
    let mut rows: Vec<(String, Vec<Cell>)> = modules
        .iter()
        .map(|m| (m.clone(), runs.iter().map(|(_, r)| cell(r, m)).collect()))
        .collect();
    // The suites that are not a module's, where any target ran them.
    for (label, suite) in [
        ("guest tests", lkmlab_protocol::GUEST_TESTS_SUITE),
        ("kernel (kmemleak)", lkmlab_protocol::KERNEL_SUITE),
    ] {
        let cells: Vec<Cell> = runs.iter().map(|(_, r)| cell(r, suite)).collect();
        if cells
            .iter()
            .any(|c| !matches!(c, Cell::NotRun | Cell::Error))
        {
            rows.push((label.into(), cells));
        }
    }
    rows.push((
        "whole run".into(),
        runs.iter().map(|(_, r)| overall(r)).collect(),
    ));
    let first = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(6);
    let widths: Vec<usize> = runs.iter().map(|(t, _)| t.name().len().max(5)).collect();
    let mut out = String::from("\nmodule × target:\n");
    let mut header = format!("  {:first$}", "");
    for ((t, _), w) in runs.iter().zip(&widths) {
        let _ = write!(header, "  {:w$}", t.name());
    }
    out.push_str(header.trim_end());
    out.push('\n');
    for (name, cells) in &rows {
        let mut line = format!("  {name:first$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(line, "  {:w$}", c.word());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for (t, r) in runs {
        match r {
            TargetRun::Judged(v) => {
                let _ = writeln!(out, "  {}: {}", t.name(), v.summary_line());
                // Why a module is skipped there: it does not build for
                // that target's kernel.
                for case in v.ktap.cases.iter().filter(|c| c.outcome == Outcome::Skip) {
                    let Some((module, BUILD_CASE)) = case.name.split_once('.') else {
                        continue;
                    };
                    let why = case.directive.as_deref().unwrap_or_default();
                    let _ = writeln!(out, "    {module} skipped: {why}");
                }
            }
            TargetRun::Broken(why) => {
                let first_line = why.lines().next().unwrap_or_default();
                let _ = writeln!(out, "  {}: not tested: {first_line}", t.name());
            }
        }
    }
    let (mut passed, mut failed, mut skipped, mut not_run) = (0, 0, 0, 0);
    for (_, r) in runs {
        match r {
            TargetRun::Judged(v) => {
                let (p, f, s) = v.counts();
                passed += p;
                failed += f;
                skipped += s;
                not_run += v.not_run_count();
            }
            TargetRun::Broken(_) => failed += 1,
        }
    }
    let _ = write!(out, "{passed} passed, {failed} failed");
    if skipped > 0 {
        let _ = write!(out, ", {skipped} skipped");
    }
    if not_run > 0 {
        let _ = write!(out, ", {not_run} not run");
    }
    out.push('\n');
    out
}

fn to_json(modules: &[String], runs: &[(Target, TargetRun)]) -> serde_json::Value {
    let targets: Vec<serde_json::Value> = runs
        .iter()
        .map(|(t, r)| {
            let cells: serde_json::Map<String, serde_json::Value> = modules
                .iter()
                .map(|m| (m.clone(), cell(r, m).word().to_lowercase().into()))
                .collect();
            let mut entry = serde_json::json!({
                "target": t.name(),
                "arch": t.arch.name(),
                "flavor": t.flavor_name,
                "modules": cells,
                "result": overall(r).word().to_lowercase(),
            });
            match r {
                TargetRun::Judged(v) => entry["verdict"] = crate::judge::report::to_json(v),
                TargetRun::Broken(why) => entry["error"] = why.clone().into(),
            }
            entry
        })
        .collect();
    serde_json::json!({
        "passed": runs.iter().all(|(_, r)| overall(r) == Cell::Pass),
        "targets": targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::arch::Arch;
    use crate::vm::qemu::Ending;
    use std::time::Duration;

    fn target(arch: Arch) -> Target {
        Target::example(arch)
    }

    fn judged(ktap: &str) -> TargetRun {
        let ending = Ending::Saved;
        TargetRun::Judged(crate::judge::report::evaluate(
            ktap,
            "",
            &ending,
            Duration::from_secs(1),
        ))
    }

    #[test]
    fn the_table_has_a_row_per_module_and_a_column_per_target() {
        let runs = vec![
            (
                target(Arch::X86_64),
                judged(
                    "KTAP version 1\n1..3\nok 1 hello.insmod\nok 2 scull.insmod\n\
                     ok 3 guest_tests.a\n",
                ),
            ),
            (
                target(Arch::Arm64),
                judged(
                    "KTAP version 1\n1..3\nok 1 hello.insmod\nnot ok 2 scull.insmod\n\
                     ok 3 guest_tests.a # SKIP no shell\n",
                ),
            ),
        ];
        let modules = module_names(&runs);
        assert_eq!(modules, ["hello", "scull"]);
        let text = matrix(&modules, &runs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().all(|l| l.trim_end() == *l), "{text:?}");
        assert_eq!(lines[1], "module × target:");
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["x86_64", "arm64"]
        );
        let row = |name: &str| -> Vec<String> {
            let line = lines
                .iter()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap();
            line[line.find(name).unwrap() + name.len()..]
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(row("hello"), ["pass", "pass"]);
        assert_eq!(row("scull"), ["pass", "FAIL"]);
        assert_eq!(row("guest tests"), ["pass", "skip"]);
        assert_eq!(row("whole run"), ["pass", "FAIL"]);
        assert_eq!(lines.last(), Some(&"4 passed, 1 failed, 1 skipped"));
    }

    /// A module that does not build for a target's kernel is a skip in its
    /// column, and the run still passes on what did build.
    #[test]
    fn a_module_that_does_not_build_on_a_kernel_is_skipped_there() {
        let mut older = judged("KTAP version 1\n1..1\nok 1 hello.insmod\n");
        if let TargetRun::Judged(v) = &mut older {
            v.add_skip(
                "scull.build",
                "does not build for kernel 6.12.117: scull.rs:56: …",
            );
            assert!(v.passed(), "a skip is not a failure");
        }
        let runs = vec![
            (
                target(Arch::X86_64),
                judged("KTAP version 1\n1..2\nok 1 hello.insmod\nok 2 scull.insmod\n"),
            ),
            (target(Arch::Arm64), older),
        ];
        let modules = module_names(&runs);
        assert_eq!(modules, ["hello", "scull"]);
        let text = matrix(&modules, &runs);
        let scull = text
            .lines()
            .find(|l| l.trim_start().starts_with("scull"))
            .unwrap();
        assert_eq!(
            scull.split_whitespace().collect::<Vec<_>>(),
            ["scull", "pass", "skip"],
            "{text}"
        );
        assert!(
            text.contains(
                "\n    scull skipped: does not build for kernel 6.12.117: scull.rs:56: …\n"
            ),
            "{text}"
        );
    }

    /// The debug kernel's kmemleak suite is the kernel's, not a module's;
    /// a module whose cases never ran (the VM died first) is not skipped.
    #[test]
    fn kernel_checks_have_their_own_row_and_unrun_modules_say_so() {
        let runs = vec![
            (
                target(Arch::X86_64),
                judged(
                    "KTAP version 1\n1..3\nok 1 hello.insmod\nok 2 scull.insmod\n\
                     ok 3 kernel.kmemleak_no_leaks\n",
                ),
            ),
            (
                target(Arch::Arm64),
                judged("KTAP version 1\n1..3\nnot ok 1 hello.insmod\n"),
            ),
        ];
        let modules = module_names(&runs);
        assert_eq!(modules, ["hello", "scull"]);
        let text = matrix(&modules, &runs);
        assert!(
            text.contains("\n  scull              pass    not run\n"),
            "{text}"
        );
        assert!(
            text.contains("\n  kernel (kmemleak)  pass    not run\n"),
            "{text}"
        );
    }

    #[test]
    fn a_target_that_could_not_be_tested_is_an_error_column() {
        let runs = vec![
            (
                target(Arch::X86_64),
                judged("KTAP version 1\n1..1\nok 1 hello.insmod\n"),
            ),
            (
                target(Arch::Arm64),
                TargetRun::Broken("kernel build failed\nmore".into()),
            ),
        ];
        let modules = module_names(&runs);
        let text = matrix(&modules, &runs);
        assert!(
            text.contains("arm64: not tested: kernel build failed\n"),
            "{text}"
        );
        assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
        let json = to_json(&modules, &runs);
        assert_eq!(json["passed"], false);
        assert_eq!(json["targets"][1]["result"], "error");
        assert_eq!(json["targets"][0]["modules"]["hello"], "pass");
    }
}
