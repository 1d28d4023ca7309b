//! Test cases, suites and the environment they run in.

/// A case prints nested KTAP (e.g. a KUnit suite's results) as stdout lines
/// with this prefix; the runner indents them under the case's result line.
pub const SUBTEST_PREFIX: &str = "ktap: ";

/// The line the runner writes to the kernel log before it runs the case
/// `SUITE.CASE` (`lkmlab: case guest_tests.NAME` for a guest test): in
/// console.log it tells what the runner was doing around the kernel's own
/// lines, and a guest test's log starts after it ([`crate::test_log`]).
pub fn log_marker(name: &str) -> String {
    lkmlab_protocol::kernel_log::case_marker(name)
}

/// What a case that did not fail reports.
#[derive(Debug)]
pub enum Outcome {
    Pass,
    /// Not run, with the reason (KTAP `# SKIP`).
    Skip(String),
}

/// A case's verdict: `Err` carries the failure message quoted in the report.
pub type Verdict = Result<Outcome, String>;

/// One named check. Each case runs in a process of its own, so a case that
/// is killed by a signal fails alone and the runner (PID 1) carries on; a
/// kernel oops ends the VM (`oops=panic`).
pub struct Case {
    pub name: String,
    pub run: Box<dyn Fn(&Env) -> Verdict>,
}

impl Case {
    pub fn new(name: impl Into<String>, run: impl Fn(&Env) -> Verdict + 'static) -> Self {
        Case {
            name: name.into(),
            run: Box::new(run),
        }
    }
}

/// The tests of one module, named after it.
pub struct Suite {
    pub name: String,
    pub cases: Vec<Case>,
}

/// What the host put into the initramfs: the test plan
/// ([`lkmlab_protocol::layout::PLAN`]).
pub type Env = lkmlab_protocol::plan::Plan;
pub use lkmlab_protocol::plan::Preload;

/// Fail a case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
