//! The test plan: what the host packed into the initramfs and how the runner
//! is to run it. The host writes it ([`Plan::render`]) to
//! [`layout::PLAN`](crate::layout::PLAN); the runner reads it
//! ([`Plan::parse`]).
//!
//! One item a line, in this order: `option NAME`, `module NAME PATH`,
//! `example SUITE` for each of the runner's built-in example suites
//! ([`ExampleSuite`]) that replaces the generic suite of the module it is
//! written for,
//! `test NAME PATH`, `load TEST MODULE [PARAMETERS]` (the rest of the
//! line, as the kernel takes module parameters) for each module a test needs
//! loaded first, in the order they load, and `defers MODULE FUNCTION...` for
//! each module that can run its own code later ([`Deferrer`]). `#` starts a
//! comment line.

use std::fmt;
use std::path::{Path, PathBuf};

/// A module or a guest test in the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    /// Where it is in the guest.
    pub path: PathBuf,
}

/// A module a guest test needs loaded first (`guest-tests/<test>.load`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preload {
    pub test: String,
    pub module: String,
    /// As the kernel takes them (`capacity=64 name="a b"`); may be empty.
    pub params: String,
}

/// A module that can make the kernel call its own code later, from a
/// timer, a work item, an RCU callback, a tasklet or a kernel thread: it
/// imports a kernel function that schedules one. After its last unload the
/// runner gives such callbacks a bounded time to run, so that one the
/// module forgot to cancel runs (and faults in its freed code) inside the
/// run rather than after the VM is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferrer {
    pub module: String,
    /// The functions it imports that schedule a callback (`mod_timer`,
    /// `queue_work_on`, …).
    pub imports: Vec<String>,
}

/// The suites built into the runner for lkmlab's own example modules
/// (`module/hello.rs`, `module/scull.rs`). A module gets one only when the
/// project says so (`[module] example_suites` in `lkmlab.toml`), never
/// because of its name: any other module gets the generic load/unload suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum ExampleSuite {
    Hello,
    Scull,
}

impl ExampleSuite {
    pub const ALL: [ExampleSuite; 2] = [ExampleSuite::Hello, ExampleSuite::Scull];

    /// Its name in the pin and the plan; also the name of the module it is
    /// written for.
    pub fn name(self) -> &'static str {
        match self {
            ExampleSuite::Hello => "hello",
            ExampleSuite::Scull => "scull",
        }
    }

    pub fn from_name(name: &str) -> Option<ExampleSuite> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for ExampleSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything the runner is told.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// `option fault-injection`: each module's suite ends with the
    /// fault-injection sweep of its load.
    pub fault_injection: bool,
    /// The modules under test, in the order their suites run.
    pub modules: Vec<Item>,
    /// The built-in example suites that replace the generic suite of the
    /// module of the same name.
    pub examples: Vec<ExampleSuite>,
    /// The module's own guest tests, run after the modules' suites.
    pub tests: Vec<Item>,
    /// The modules guest tests need loaded before they run, in load order.
    pub preloads: Vec<Preload>,
    /// The modules that can make the kernel call their code later.
    pub deferrers: Vec<Deferrer>,
}

/// A plan line the runner cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub line: String,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: cannot read line {:?}",
            crate::layout::PLAN,
            self.line
        )
    }
}

impl std::error::Error for PlanError {}

const HEADER: &str = "# lkmlab test plan: modules, then guest tests";
const OPTION_FAULT_INJECTION: &str = "fault-injection";

impl Plan {
    /// The plan as the runner reads it.
    pub fn render(&self) -> String {
        let mut lines = vec![HEADER.to_string()];
        if self.fault_injection {
            lines.push(format!("option {OPTION_FAULT_INJECTION}"));
        }
        for m in &self.modules {
            lines.push(format!("module {} {}", m.name, m.path.display()));
        }
        for e in &self.examples {
            lines.push(format!("example {e}"));
        }
        for t in &self.tests {
            lines.push(format!("test {} {}", t.name, t.path.display()));
        }
        for p in &self.preloads {
            let line = format!("load {} {} {}", p.test, p.module, p.params);
            lines.push(line.trim_end().to_string());
        }
        for d in &self.deferrers {
            lines.push(format!("defers {} {}", d.module, d.imports.join(" ")));
        }
        lines.push(String::new());
        lines.join("\n")
    }

    /// Reads a plan; a line that is not one of the forms above is an error.
    pub fn parse(text: &str) -> Result<Plan, PlanError> {
        let mut plan = Plan::default();
        let unreadable = |line: &str| PlanError {
            line: line.to_string(),
        };
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("load ") {
                plan.preloads
                    .push(parse_load(rest).ok_or_else(|| unreadable(line))?);
                continue;
            }
            let item = |name: &str, path: &str| Item {
                name: name.to_string(),
                path: PathBuf::from(path),
            };
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["module", name, path] => plan.modules.push(item(name, path)),
                ["test", name, path] => plan.tests.push(item(name, path)),
                ["example", suite] => plan
                    .examples
                    .push(ExampleSuite::from_name(suite).ok_or_else(|| unreadable(line))?),
                ["option", OPTION_FAULT_INJECTION] => plan.fault_injection = true,
                ["defers", module, imports @ ..] if !imports.is_empty() => {
                    plan.deferrers.push(Deferrer {
                        module: module.to_string(),
                        imports: imports.iter().map(|s| s.to_string()).collect(),
                    })
                }
                _ => return Err(unreadable(line)),
            }
        }
        Ok(plan)
    }

    /// The modules `test` needs loaded first, in load order.
    pub fn preloads_of<'a>(&'a self, test: &'a str) -> impl Iterator<Item = &'a Preload> + 'a {
        self.preloads.iter().filter(move |p| p.test == test)
    }

    /// The built-in example suite `module` runs, if the plan gives it one.
    pub fn example_of(&self, module: &str) -> Option<ExampleSuite> {
        self.examples.iter().copied().find(|e| e.name() == module)
    }

    /// The `.ko` of a module named in the plan.
    pub fn ko(&self, module: &str) -> Result<&Path, String> {
        self.modules
            .iter()
            .find(|m| m.name == module)
            .map(|m| m.path.as_path())
            .ok_or_else(|| format!("module {module} is not in the test plan"))
    }
}

/// `TEST MODULE [PARAMETERS]`: the parameters are the rest of the line, as
/// written (the kernel parses their quotes).
fn parse_load(rest: &str) -> Option<Preload> {
    let (test, rest) = rest.trim().split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let (module, params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    (!module.is_empty()).then(|| Preload {
        test: test.to_string(),
        module: module.to_string(),
        params: params.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;

    fn example() -> Plan {
        Plan {
            fault_injection: true,
            modules: vec![Item {
                name: "scull".into(),
                path: layout::module("scull").into(),
            }],
            examples: vec![ExampleSuite::Scull],
            tests: vec![Item {
                name: "needs-scull".into(),
                path: layout::test("needs-scull").into(),
            }],
            preloads: vec![
                Preload {
                    test: "needs-scull".into(),
                    module: "scull".into(),
                    params: "capacity=64 name=\"a b\"".into(),
                },
                Preload {
                    test: "needs-scull".into(),
                    module: "hello".into(),
                    params: String::new(),
                },
            ],
            deferrers: vec![Deferrer {
                module: "scull".into(),
                imports: vec!["mod_timer".into(), "queue_work_on".into()],
            }],
        }
    }

    #[test]
    fn a_plan_reads_back_as_it_was_written() {
        let plan = example();
        assert_eq!(Plan::parse(&plan.render()), Ok(plan));
        assert_eq!(Plan::parse(&Plan::default().render()), Ok(Plan::default()));
    }

    #[test]
    fn the_written_plan_is_line_per_item() {
        assert_eq!(
            example().render(),
            "# lkmlab test plan: modules, then guest tests\n\
             option fault-injection\n\
             module scull /lkmlab/modules/scull.ko\n\
             example scull\n\
             test needs-scull /lkmlab/tests/needs-scull\n\
             load needs-scull scull capacity=64 name=\"a b\"\n\
             load needs-scull hello\n\
             defers scull mod_timer queue_work_on\n"
        );
    }

    #[test]
    fn preloads_and_modules_are_found_by_name() {
        let plan = example();
        let loads: Vec<(&str, &str)> = plan
            .preloads_of("needs-scull")
            .map(|p| (p.module.as_str(), p.params.as_str()))
            .collect();
        assert_eq!(
            loads,
            [("scull", "capacity=64 name=\"a b\""), ("hello", "")]
        );
        assert_eq!(plan.preloads_of("other").count(), 0);
        assert_eq!(plan.example_of("scull"), Some(ExampleSuite::Scull));
        assert_eq!(plan.example_of("hello"), None);
        assert_eq!(plan.ko("scull"), Ok(Path::new("/lkmlab/modules/scull.ko")));
        assert_eq!(
            plan.ko("hello"),
            Err("module hello is not in the test plan".to_string())
        );
    }

    #[test]
    fn a_line_the_runner_cannot_read_is_an_error_naming_it() {
        for line in [
            "load only-a-test",
            "modul x y",
            "test a",
            "option colour",
            "example demo",
            "defers scull",
        ] {
            let err = Plan::parse(line).unwrap_err();
            assert_eq!(err.line, line);
            assert!(
                err.to_string().contains("/lkmlab/plan: cannot read line"),
                "{err}"
            );
        }
    }
}
