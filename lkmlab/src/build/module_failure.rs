//! What a failed module build's log says beyond its error lines: which
//! objects compiled and which did not (Kbuild runs with `make -k`, so every
//! object is tried), and the Kconfig options whose absence left out an item
//! the module uses (rustc's note "found an item that was configured out").

use crate::build::kconfig::Value;
use crate::build::kernel::KernelTree;
use crate::config::pin::PIN_FILE;

/// The paragraphs a failed module build adds to its error lines: the
/// objects that failed and those that compiled, then the fix for each
/// Kconfig option a `#[cfg]` needed (`shared_fragments`: the pin's
/// `[kconfig] fragments`, which the advice names).
pub fn explain(log: &str, tree: &KernelTree, shared_fragments: &[String]) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let objects = Objects::of(log);
    if objects.compiled.len() + objects.failed.len() > 1 && !objects.failed.is_empty() {
        let compiled = if objects.compiled.is_empty() {
            "none".to_string()
        } else {
            objects.compiled.join(", ")
        };
        paragraphs.push(format!(
            "Every object was tried (make -k): failed: {}; compiled: {compiled}. No module is \
             linked until all of them compile.",
            objects.failed.join(", ")
        ));
    }
    let mut gates = gates(log);
    gates.dedup();
    paragraphs.extend(gates.iter().map(|g| advice(g, tree, shared_fragments)));
    paragraphs
}

/// The objects of a module build: those Kbuild compiled (a step line such
/// as `  RUSTC [M] a.o` without a failure) and those make reports failed
/// (`make[3]: *** [….build:366: a.o] Error 1`), each once, in log order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Objects {
    pub failed: Vec<String>,
    pub compiled: Vec<String>,
}

impl Objects {
    pub fn of(log: &str) -> Objects {
        let mut tried: Vec<&str> = Vec::new();
        let mut failed: Vec<String> = Vec::new();
        for line in log.lines() {
            if let Some(object) = step_object(line) {
                if !tried.contains(&object) {
                    tried.push(object);
                }
            } else if let Some(object) = failed_object(line) {
                if !failed.iter().any(|f| f == object) {
                    failed.push(object.to_string());
                }
            }
        }
        let compiled = (tried.into_iter())
            .filter(|o| !failed.iter().any(|f| f == o))
            .map(str::to_string)
            .collect();
        Objects { failed, compiled }
    }
}

/// The object of a Kbuild compile step, `  RUSTC [M] a.o` or `  CC [M]  a.o`
/// (not the `.mod.o` of the link stage).
fn step_object(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("  ")?;
    let mut words = rest.split_whitespace();
    let step = words.next()?;
    if !step.chars().all(|c| c.is_ascii_uppercase()) || words.next()? != "[M]" {
        return None;
    }
    let object = words.next()?;
    (object.ends_with(".o") && !object.ends_with(".mod.o")).then_some(object)
}

/// The object of make's `*** [FILE:LINE: a.o] Error N` line.
fn failed_object(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once("*** [")?;
    let (inside, after) = rest.split_once(']')?;
    if !after.trim_start().starts_with("Error ") {
        return None;
    }
    let object = inside.rsplit(": ").next()?;
    (object.ends_with(".o") && !object.ends_with(".mod.o")).then_some(object)
}

/// What an item's `#[cfg(…)]` needs, from rustc's note on an item that was
/// configured out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// `#[cfg(CONFIG_X)]` (the option set, `y` or `m`) or
    /// `#[cfg(CONFIG_X="y")]` (the option set to that value).
    Option { name: String, value: Option<String> },
    /// Any other predicate that names Kconfig options (`any(…)`, `not(…)`,
    /// one spread over several lines): its text and the options it names.
    Other { text: String, options: Vec<String> },
}

/// Every gate rustc's "found an item that was configured out" notes show,
/// in log order. rustc underlines the part of the `#[cfg]` that does not
/// hold (in `all(A, B)`, the one that fails) on the source line above its
/// "the item is gated here" (or "…gated behind the `y` feature") line;
/// without the source to show, it prints no predicate and no gate is found.
pub fn gates(log: &str) -> Vec<Gate> {
    let lines: Vec<&str> = log.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.contains("found an item that was configured out") {
            continue;
        }
        let block = lines[i + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty() && !starts_diagnostic(l));
        let mut snippet: Vec<&str> = Vec::new();
        for (j, l) in block.enumerate() {
            if !l.contains("the item is gated") {
                snippet.push(l);
                continue;
            }
            let source = (j > 0).then(|| lines[i + j]);
            if let Some(gate) = source.and_then(|s| underlined_gate(s, l)) {
                found.push(gate);
            } else if let Some(gate) = gate_in_snippet(&snippet) {
                found.push(gate);
            }
            break;
        }
    }
    found
}

/// A line that starts another diagnostic (or a part of this one that is not
/// its snippet).
fn starts_diagnostic(line: &str) -> bool {
    ["error", "warning", "note:", "help:"]
        .iter()
        .any(|p| line.starts_with(p))
}

/// The gate underlined (`-----`) on `marker` in the source line above it.
/// Both lines share rustc's gutter, so the columns match.
fn underlined_gate(source: &str, marker: &str) -> Option<Gate> {
    let source: Vec<char> = source.chars().collect();
    let marker: Vec<char> = marker.chars().collect();
    let bar = marker.iter().position(|&c| c == '|')?;
    if source.get(bar) != Some(&'|') {
        return None;
    }
    let start = bar + marker[bar..].iter().position(|&c| c == '-')?;
    let len = marker[start..].iter().take_while(|&&c| c == '-').count();
    // A span over several lines ends in a single `-` after underscores.
    if len < 2 || marker[bar + 1..start].contains(&'_') {
        return None;
    }
    let text: String = source.get(start..start + len)?.iter().collect();
    let before: String = source[bar + 1..start].iter().collect();
    let negated = before.trim_end().ends_with("not");
    let text = text.trim();
    let text = (text.strip_prefix('(').and_then(|t| t.strip_suffix(')'))).unwrap_or(text);
    if negated {
        return other_gate(&format!("not({text})"));
    }
    match option_gate(text) {
        Some(gate) => Some(gate),
        None => other_gate(text),
    }
}

/// `CONFIG_X` or `CONFIG_X="v"` (spaces allowed around `=`).
fn option_gate(text: &str) -> Option<Gate> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => {
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            (name.trim(), Some(value.to_string()))
        }
        None => (text, None),
    };
    is_option(name).then(|| Gate::Option {
        name: name.to_string(),
        value,
    })
}

fn is_option(name: &str) -> bool {
    name.strip_prefix("CONFIG_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// The Kconfig options `text` names, in order, each once.
fn options_in(text: &str) -> Vec<String> {
    let mut options: Vec<String> = Vec::new();
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if is_option(word) && !options.iter().any(|o| o == word) {
            options.push(word.to_string());
        }
    }
    options
}

fn other_gate(text: &str) -> Option<Gate> {
    let options = options_in(text);
    (!options.is_empty()).then(|| Gate::Other {
        text: text.to_string(),
        options,
    })
}

/// Without an underline to go by (a predicate over several lines), the
/// `#[cfg(…)]` of the snippet's source lines (after rustc's gutter).
fn gate_in_snippet(snippet: &[&str]) -> Option<Gate> {
    let source: String = snippet
        .iter()
        .filter_map(|l| l.split_once(" | ").map(|(_, code)| code))
        .map(|code| code.trim_start_matches(['|', ' ', '_', '-', '/', '\\']))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    let start = source.find("#[cfg(")? + "#[cfg(".len();
    let end = source[start..]
        .find(")]")
        .map_or(source.len(), |e| start + e);
    let text = source[start..end].trim();
    option_gate(text).or_else(|| other_gate(text))
}

/// The fix for one gate: the option to set and the fragments it can go in.
fn advice(gate: &Gate, tree: &KernelTree, shared_fragments: &[String]) -> String {
    let target = &tree.target;
    let kernel = format!(
        "this kernel ({}, {}, flavor {})",
        tree.release, target.arch, target.flavor_name
    );
    let (what, line) = match gate {
        Gate::Option { name, value } => {
            let now = match tree.config.get(name) {
                None | Some(Value::No) => "is not set".to_string(),
                Some(v) => format!("is {}", v.to_dotconfig_rhs()),
            };
            let needs = value.as_deref().unwrap_or("y");
            (
                format!(
                    "`{name}` {now} in {kernel}, and `#[cfg({})]` leaves out an item the \
                     module uses",
                    match value {
                        Some(v) => format!("{name}=\"{v}\""),
                        None => name.clone(),
                    }
                ),
                format!("`{name}={needs}`"),
            )
        }
        Gate::Other { text, options } => (
            format!(
                "`#[cfg({text})]` does not hold in {kernel} and leaves out an item the module \
                 uses"
            ),
            format!(
                "the setting of {} that makes it hold",
                options
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    };
    let shared = if shared_fragments.is_empty() {
        format!("a fragment listed in {PIN_FILE} [kconfig] fragments")
    } else {
        format!(
            "one of {PIN_FILE}'s [kconfig] fragments ({})",
            shared_fragments.join(", ")
        )
    };
    let flavor = &target.flavor_name;
    let own = if target.flavor.fragments.is_empty() {
        format!("a fragment of its own listed in [kconfig.flavors.{flavor}] fragments")
    } else {
        format!(
            "{} ([kconfig.flavors.{flavor}] fragments)",
            target.flavor.fragments.join(", ")
        )
    };
    format!(
        "{what}: add {line} to {shared} for every target, or to {own} for this flavor only; \
         lkmlab then rebuilds the kernel."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// rustc 1.95's notes, as `rustc --crate-type lib` printed them for a
    /// crate using items behind `#[cfg(CONFIG_…)]` with no `--cfg` given.
    const LOG: &str = "  RUSTC [M] uses_net.o
error[E0433]: cannot find `net` in `kernel`
  --> uses_net.rs:16:13
   |
16 |     kernel::net::f();
   |             ^^^ could not find `net` in `kernel`
   |
note: found an item that was configured out
  --> rust/kernel/lib.rs:8:13
   |
 7 |     #[cfg(CONFIG_NET)]
   |           ---------- the item is gated here
 8 |     pub mod net {
   |             ^^^

error[E0425]: cannot find function `eq` in this scope
  --> uses_net.rs:12:14
   |
12 | pub fn u() { eq(); notz(); both(); }
   |              ^^ not found in this scope
   |
note: found an item that was configured out
  --> d.rs:3:8
   |
 2 | #[cfg(CONFIG_X=\"y\")]
   |       ------------ the item is gated behind the `y` feature
 3 | pub fn eq() {}
   |        ^^
help: consider importing this function
   |
 2 + use core::ptr::eq;
   |

error[E0425]: cannot find function `notz` in this scope
note: found an item that was configured out
  --> d.rs:5:8
   |
 4 | #[cfg(not(CONFIG_Z))]
   |          ---------- the item is gated here
 5 | pub fn notz() {}
   |        ^^^^

error[E0425]: cannot find function `both` in this scope
note: found an item that was configured out
  --> d.rs:7:8
   |
 6 | #[cfg(all(CONFIG_P, CONFIG_Q))]
   |           -------- the item is gated here
 7 | pub fn both() {}
   |        ^^^^

error[E0425]: cannot find function `anyof` in this scope
note: found an item that was configured out
 --> c.rs:6:8
  |
4 |   #[cfg(any(CONFIG_A,
  |  __________-
5 | |           CONFIG_B))]
  | |___________________- the item is gated here
6 |   pub fn anyof() {}
  |          ^^^^^

error[E0425]: cannot find function `only_with_foo` in crate `a`
note: found an item that was configured out
 --> a.rs:2:6
  |
  = note: the item is gated here

error: aborting due to 6 previous errors
make[3]: *** [/k/scripts/Makefile.build:366: uses_net.o] Error 1
";

    fn option(name: &str, value: Option<&str>) -> Gate {
        Gate::Option {
            name: name.into(),
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn the_gate_rustc_underlines_is_found() {
        assert_eq!(
            gates(LOG),
            [
                option("CONFIG_NET", None),
                option("CONFIG_X", Some("y")),
                Gate::Other {
                    text: "not(CONFIG_Z)".into(),
                    options: vec!["CONFIG_Z".into()]
                },
                // Of `all(P, Q)`, rustc underlines the one that fails.
                option("CONFIG_P", None),
                Gate::Other {
                    text: "any(CONFIG_A, CONFIG_B)".into(),
                    options: vec!["CONFIG_A".into(), "CONFIG_B".into()]
                },
            ]
        );
        assert_eq!(gates("error[E0308]: mismatched types\n"), []);
    }

    #[test]
    fn objects_that_failed_and_compiled_are_told_apart() {
        let log = "  RUSTC [M] a.o\n  RUSTC [M] b.o\n  CC [M]  c.o\nerror: x\n\
                   make[3]: *** [/k/scripts/Makefile.build:366: a.o] Error 1\n\
                   make[3]: *** [/k/scripts/Makefile.build:366: c.o] Error 1\n\
                   make[2]: *** [/k/Makefile:2253: .] Error 2\n\
                   make[3]: Target 'x' not remade because of errors.\n";
        assert_eq!(
            Objects::of(log),
            Objects {
                failed: vec!["a.o".into(), "c.o".into()],
                compiled: vec!["b.o".into()],
            }
        );
    }

    fn tree(flavor: &str, fragments: &[&str]) -> KernelTree {
        use crate::config::target::Target;
        KernelTree {
            dir: "/k".into(),
            release: "7.3.4".into(),
            target: Target {
                flavor_name: flavor.into(),
                flavor: crate::config::pin::Flavor {
                    fragments: fragments.iter().map(|f| f.to_string()).collect(),
                    ..Default::default()
                },
                ..Target::example(crate::config::arch::Arch::X86_64)
            },
            compiler: crate::config::pin::Compiler::Gcc,
            cc_version_text: "gcc 14".into(),
            compiler_var: "LLVM=".into(),
            config: [("CONFIG_X".to_string(), Value::Module)].into(),
            module_output: true,
        }
    }

    #[test]
    fn the_advice_names_the_option_and_the_fragments_it_can_go_in() {
        let kconfig = ["kernel-config/base.config".to_string()];
        let debug = tree("debug", &["kernel-config/debug.config"]);
        let text = explain(LOG, &debug, &kconfig);
        assert_eq!(
            text[0],
            "`CONFIG_NET` is not set in this kernel (7.3.4, x86_64, flavor debug), and \
             `#[cfg(CONFIG_NET)]` leaves out an item the module uses: add `CONFIG_NET=y` to \
             one of lkmlab.toml's [kconfig] fragments (kernel-config/base.config) for every \
             target, or to kernel-config/debug.config ([kconfig.flavors.debug] fragments) for \
             this flavor only; lkmlab then rebuilds the kernel."
        );
        assert!(
            text[1].starts_with("`CONFIG_X` is m in this kernel (7.3.4, x86_64, flavor debug), and `#[cfg(CONFIG_X=\"y\")]`")
                && text[1].contains("add `CONFIG_X=y` to"),
            "{}",
            text[1]
        );
        assert!(
            text[2].starts_with("`#[cfg(not(CONFIG_Z))]` does not hold")
                && text[2].contains("add the setting of `CONFIG_Z` that makes it hold"),
            "{}",
            text[2]
        );
        // A flavor without fragments of its own is told where one goes.
        let text = explain(LOG, &tree("default", &[]), &kconfig);
        assert!(
            text[0].contains(
                "or to a fragment of its own listed in [kconfig.flavors.default] fragments \
                 for this flavor only"
            ),
            "{}",
            text[0]
        );
        // One object: nothing to tell about the others.
        assert_eq!(text.len(), 5, "{text:#?}");
    }

    #[test]
    fn several_objects_are_accounted_for() {
        let log = "  RUSTC [M] a.o\n  RUSTC [M] b.o\n\
                   make[3]: *** [/k/scripts/Makefile.build:366: a.o] Error 1\n";
        let text = explain(log, &tree("default", &[]), &[]);
        assert_eq!(
            text,
            [
                "Every object was tried (make -k): failed: a.o; compiled: b.o. No module is \
              linked until all of them compile."
            ]
        );
    }
}
