//! Any module: it loads, its KUnit suites pass (a module that has any gets
//! a `kunit` case: [`crate::elf::has_kunit_suites`]), it unloads cleanly
//! and leaves the kernel log clean.

use crate::case::{Case, Outcome, Suite, Verdict};
use crate::checks;
use crate::interrupts;
use std::collections::BTreeSet;

/// Where KUnit lists the suites that ran (with `CONFIG_KUNIT_DEBUGFS`): the
/// kernel's own are filtered away at boot, and a module's are removed when
/// it unloads.
const KUNIT_DEBUGFS: &str = "/sys/kernel/debug/kunit";

/// The suites listed just before the module's `insmod` (another module
/// left loaded keeps its own there): the module's are the ones added since.
fn before_file(module: &str) -> String {
    format!("/tmp/lkmlab-kunit-before-{module}")
}

/// The interrupt handlers listed just before the module's `insmod`.
fn irqs_before_file(module: &str) -> String {
    format!("/tmp/lkmlab-irqs-before-{module}")
}

/// The suite of `module`; with a `kunit` case when it has KUnit suites
/// (`has_kunit`), else none: a module without is not a skipped test in
/// every report, and its `insmod` case says so once, among its diagnostics.
pub fn suite(module: &str, has_kunit: bool) -> Suite {
    let (m1, m2, m3) = (module.to_string(), module.to_string(), module.to_string());
    let mut cases = vec![Case::new("insmod", move |env| {
        let before: Vec<String> = kunit_suites().unwrap_or_default().into_iter().collect();
        std::fs::write(before_file(&m1), before.join("\n"))
            .map_err(|e| format!("{}: {e}", before_file(&m1)))?;
        let irqs = interrupts::to_text(&interrupts::handlers());
        std::fs::write(irqs_before_file(&m1), irqs)
            .map_err(|e| format!("{}: {e}", irqs_before_file(&m1)))?;
        let loaded = checks::insmod(env, &m1, "")?;
        if !has_kunit {
            println!("{m1} has no KUnit suite: no {m1}.kunit case");
        }
        Ok(loaded)
    })];
    if has_kunit {
        cases.push(Case::new("kunit", move |_| kunit_suites_passed(&m2)));
    }
    cases.push(Case::new("rmmod", move |_| {
        handlers_freed_at_unbind(&m3)?;
        checks::unload(&m3)
    }));
    cases.push(Case::new("kernel_log_clean", |_| checks::log_clean()));
    Suite {
        name: module.to_string(),
        cases,
    }
}

/// A driver of the module frees at unbind every interrupt handler it
/// registered: its devices are unbound (through sysfs, so that their
/// remove runs as it would at rmmod), then `/proc/interrupts` must list no
/// handler that was not there before the module's `insmod`. Checked while
/// the module is still loaded: a handler's name lives in the module's
/// memory, so after unload even reading `/proc/interrupts` would fault.
/// A handler left behind fails the case, and the module is not unloaded.
/// Any handler registered since `insmod` counts, also one the module's init
/// requested for itself and its exit frees: such a module gets no generic
/// rmmod, its own guest tests do (see docs/drivers.md).
fn handlers_freed_at_unbind(module: &str) -> Result<(), String> {
    let Ok(text) = std::fs::read_to_string(irqs_before_file(module)) else {
        return Ok(());
    };
    let unbound = interrupts::unbind_devices(module)?;
    if unbound.is_empty() {
        return Ok(());
    }
    let before = interrupts::from_text(&text);
    let left: Vec<String> = interrupts::handlers()
        .difference(&before)
        .map(|(irq, name)| format!("IRQ {irq}: {name}"))
        .collect();
    if left.is_empty() {
        return Ok(());
    }
    Err(format!(
        "after unbinding {} from {module}'s drivers, /proc/interrupts still lists handlers \
         registered since it was loaded ({}): free every interrupt the driver requested when \
         its device goes away. {module} is left loaded: after rmmod the next such interrupt \
         would run its freed code",
        unbound.join(", "),
        left.join("; ")
    ))
}

/// The suites KUnit lists now, or `None` without KUnit's debugfs results.
fn kunit_suites() -> Option<BTreeSet<String>> {
    let entries = std::fs::read_dir(KUNIT_DEBUGFS).ok()?;
    Some(
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    )
}

/// Every KUnit suite the module ran at load passed (their results nested
/// under this case); none ran (KUnit's filter, a load that failed) skips.
fn kunit_suites_passed(module: &str) -> Verdict {
    let Some(now) = kunit_suites() else {
        return Ok(Outcome::Skip(format!(
            "no {KUNIT_DEBUGFS}: this kernel keeps no KUnit results (CONFIG_KUNIT_DEBUGFS)"
        )));
    };
    let before: BTreeSet<String> = std::fs::read_to_string(before_file(module))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let suites: Vec<&String> = now.difference(&before).collect();
    if suites.is_empty() {
        return Ok(Outcome::Skip("the module ran no KUnit suite".to_string()));
    }
    let failures: Vec<String> = suites
        .iter()
        .filter_map(|suite| checks::kunit_suite_passed(suite).err())
        .collect();
    if failures.is_empty() {
        Ok(Outcome::Pass)
    } else {
        Err(failures.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(suite: &Suite) -> Vec<&str> {
        suite.cases.iter().map(|c| c.name.as_str()).collect()
    }

    /// A module without KUnit suites adds no skipped case to every report;
    /// one with suites keeps the case that fails when they fail.
    #[test]
    fn only_a_module_with_kunit_suites_has_a_kunit_case() {
        assert_eq!(
            names(&suite("greeter", false)),
            ["insmod", "rmmod", "kernel_log_clean"]
        );
        assert_eq!(
            names(&suite("scull", true)),
            ["insmod", "kunit", "rmmod", "kernel_log_clean"]
        );
    }
}
