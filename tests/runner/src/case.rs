//! Test cases, suites and the environment they run in.

use std::path::PathBuf;

/// A case prints nested KTAP (e.g. a KUnit suite's results) as stdout lines
/// with this prefix; the runner indents them under the case's result line.
pub const SUBTEST_PREFIX: &str = "ktap: ";

/// What a case that did not fail reports.
pub enum Outcome {
    Pass,
    /// Not run, with the reason (KTAP `# SKIP`).
    Skip(String),
}

/// A case's verdict: `Err` carries the failure message quoted in the report.
pub type Verdict = Result<Outcome, String>;

/// One named check. Each case runs in a process of its own, so a case killed
/// by a kernel oops fails alone and the runner (PID 1) carries on.
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

/// A module a guest test needs loaded first (`guest-tests/<test>.load`): a
/// `load TEST MODULE [PARAMETERS]` line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub test: String,
    pub module: String,
    /// As the kernel takes them (`capacity=64 name="a b"`); may be empty.
    pub params: String,
}

/// What the host put into the initramfs, from `/lkmlab/plan`.
pub struct Env {
    /// Module name → path of its `.ko` in the initramfs.
    pub modules: Vec<(String, PathBuf)>,
    /// The module's own guest tests (name → executable), run after the suites.
    pub tests: Vec<(String, PathBuf)>,
    /// The modules guest tests need loaded before they run, in load order.
    pub preloads: Vec<Preload>,
    /// `lkmlab test --fault-injection`: each module's suite ends with the
    /// fault-injection sweep of its load.
    pub fault_injection: bool,
}

impl Env {
    /// The modules `test` needs loaded first, in load order.
    pub fn preloads_of<'a>(&'a self, test: &'a str) -> impl Iterator<Item = &'a Preload> + 'a {
        self.preloads.iter().filter(move |p| p.test == test)
    }

    /// The `.ko` of a module named in the plan.
    pub fn ko(&self, module: &str) -> Result<&PathBuf, String> {
        self.modules
            .iter()
            .find(|(name, _)| name == module)
            .map(|(_, path)| path)
            .ok_or_else(|| format!("module {module} is not in the test plan"))
    }
}

/// Fail a case with a formatted message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
