//! A failure found outside the KTAP cases — the VM broke, the results are
//! malformed, the kernel log shows trouble — as a kind with a stable ID and
//! the text that explains it.
//!
//! The ID (`vm.timeout`, `kernel_log.memory_error_(KASAN)`, …) is what the
//! JUnit testcase, the JSON verdict and the report's list of failures name,
//! and what `docs/troubleshooting.md` documents: it belongs to the kind, not
//! to its display text, so relabelling a kind never renames it for users.

use crate::judge::logscan::FindingKind;
use std::borrow::Cow;

/// What kind of failure it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The VM did not finish within the timeout.
    VmTimeout,
    /// The VM did not finish within the timeout, and the guest runner's
    /// watchdog had found the case that was running still running: the
    /// text quotes what it dumped (the case's tasks, the blocked tasks, the
    /// CPUs). Takes the place of [`FailureKind::VmTimeout`].
    VmCaseHung,
    /// QEMU exited with an error.
    VmQemu,
    /// The guest wrote no KTAP at all.
    VmNoResults,
    /// The guest stopped (or the kernel panicked) before the runner finished.
    VmCrash,
    /// The KTAP is malformed (missing plan, numbering, a parent over a
    /// failed child, …).
    KtapStructure,
    /// The KTAP said `Bail out!`.
    KtapBailOut,
    /// The plan was `1..0`: nothing ran.
    KtapNoTests,
    /// Every case was skipped.
    KtapAllSkipped,
    /// A finding of the kernel log scan.
    KernelLog(FindingKind),
}

impl FailureKind {
    /// The stable machine ID.
    pub fn id(&self) -> Cow<'static, str> {
        match self {
            FailureKind::VmTimeout => "vm.timeout".into(),
            FailureKind::VmCaseHung => "vm.case_hung".into(),
            FailureKind::VmQemu => "vm.qemu".into(),
            FailureKind::VmNoResults => "vm.no_results".into(),
            FailureKind::VmCrash => "vm.crash".into(),
            FailureKind::KtapStructure => "ktap.structure".into(),
            FailureKind::KtapBailOut => "ktap.bail_out".into(),
            FailureKind::KtapNoTests => "ktap.no_tests".into(),
            FailureKind::KtapAllSkipped => "ktap.all_skipped".into(),
            FailureKind::KernelLog(kind) => format!("kernel_log.{}", kind.id()).into(),
        }
    }

    /// Whether the run itself broke (JUnit `<error>`: a crash, a timeout,
    /// QEMU failing, no or malformed results) rather than finding a problem
    /// in what ran (`<failure>`: a kernel log finding, a run that passed
    /// nothing).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            FailureKind::VmTimeout
                | FailureKind::VmCaseHung
                | FailureKind::VmQemu
                | FailureKind::VmNoResults
                | FailureKind::VmCrash
                | FailureKind::KtapStructure
                | FailureKind::KtapBailOut
        )
    }
}

/// The stable ID of a planned case that did not run because the run
/// stopped before it (an oops with `oops=panic`, a hang, a crash): no
/// failure of its own, listed with the reason (JSON `not_run`, JUnit
/// `<skipped type="not_run">`).
pub const NOT_RUN_ID: &str = "not_run";

/// One failure outside the cases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// What happened, quoted for the user (may span lines).
    pub text: String,
}

impl Failure {
    pub fn new(kind: FailureKind, text: impl Into<String>) -> Self {
        Failure {
            kind,
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every ID users see: docs/troubleshooting.md documents them, CI
    /// systems key on them. A change here renames a test for every user.
    #[test]
    fn the_documented_ids_stay_as_they_are() {
        let ids = the_ids();
        assert_eq!(
            ids,
            [
                "vm.timeout",
                "vm.case_hung",
                "vm.qemu",
                "vm.no_results",
                "vm.crash",
                "ktap.structure",
                "ktap.bail_out",
                "ktap.no_tests",
                "ktap.all_skipped",
                "kernel_log.kernel_BUG",
                "kernel_log.kernel_warning",
                "kernel_log.kernel_oops",
                "kernel_log.kernel_panic",
                "kernel_log.memory_error_(KASAN)",
                "kernel_log.memory_error_(KFENCE)",
                "kernel_log.heap_corruption_(SLUB)",
                "kernel_log.stack_overflow",
                "kernel_log.undefined_behaviour_(UBSAN)",
                "kernel_log.Rust_panic",
                "kernel_log.memory_leak_(kmemleak)",
                "kernel_log.locking_problem_(lockdep)",
                "kernel_log.hang_or_stall",
                "kernel_log.out_of_memory",
                "kernel_log.code_ran_after_unload",
                "kernel_log.driver_probe_failed",
                "kernel_log.kernel_tainted_(PX)",
            ]
        );
    }

    /// A case that did not run is named so in the JSON verdict and JUnit.
    #[test]
    fn the_not_run_id_stays_as_it_is() {
        assert_eq!(NOT_RUN_ID, "not_run");
    }

    /// The IDs the docs name are IDs lkmlab can produce.
    #[test]
    fn every_id_in_the_docs_is_one_lkmlab_produces() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let known = the_ids();
        let mut seen = 0;
        for entry in std::fs::read_dir(&docs).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for id in documented_ids(&text) {
                seen += 1;
                let generic = id.replace("_(X)", "_(PX)");
                assert!(
                    known.contains(&generic),
                    "{}: {id} is no ID lkmlab produces",
                    path.display()
                );
            }
        }
        assert!(seen > 20, "only {seen} IDs found in the docs");
    }

    /// The ID of every kind (one taint, `PX`, for all of them).
    fn the_ids() -> Vec<String> {
        // A new kind does not compile here until it is added to the list
        // below (and its ID pinned above).
        match FailureKind::VmTimeout {
            FailureKind::VmTimeout
            | FailureKind::VmCaseHung
            | FailureKind::VmQemu
            | FailureKind::VmNoResults
            | FailureKind::VmCrash
            | FailureKind::KtapStructure
            | FailureKind::KtapBailOut
            | FailureKind::KtapNoTests
            | FailureKind::KtapAllSkipped
            | FailureKind::KernelLog(_) => {}
        }
        let mut kinds = vec![
            FailureKind::VmTimeout,
            FailureKind::VmCaseHung,
            FailureKind::VmQemu,
            FailureKind::VmNoResults,
            FailureKind::VmCrash,
            FailureKind::KtapStructure,
            FailureKind::KtapBailOut,
            FailureKind::KtapNoTests,
            FailureKind::KtapAllSkipped,
        ];
        kinds.extend(
            FindingKind::ALL_BUT_TAINT
                .iter()
                .cloned()
                .chain([FindingKind::Taint("PX".into())])
                .map(FailureKind::KernelLog),
        );
        kinds.iter().map(|k| k.id().into_owned()).collect()
    }

    /// `vm.x`, `ktap.x`, `kernel_log.x` in backquotes.
    fn documented_ids(text: &str) -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                ["vm.", "ktap.", "kernel_log."]
                    .iter()
                    .any(|p| s.starts_with(p))
                    && !s.contains(' ')
                    // File names (`vm.rs`) are not IDs.
                    && ![".rs", ".sh", ".md"].iter().any(|ext| s.ends_with(ext))
            })
            .map(str::to_string)
            .collect()
    }
}
