//! What a failed module build's log says beyond its error lines: which
//! objects compiled and which did not (Kbuild runs with `make -k`, so every
//! object is tried), and the Kconfig options whose absence left out an item
//! the module uses (rustc's note "found an item that was configured out"),
//! and where the errors are about the kernel crate's API: the collections a
//! module has instead of `std`'s, and the documentation of the items named
//! (`lkmlab doc`).

use crate::build::kconfig::Value;
use crate::build::kernel::KernelTree;
use crate::build::rustdoc::Docs;
use crate::config::pin::PIN_FILE;

/// The paragraphs a failed module build adds to its error lines: the
/// objects that failed and those that compiled, the fix for each Kconfig
/// option a `#[cfg]` needed (`shared_fragments`: the pin's `[kconfig]
/// fragments`, which the advice names), then what the errors say about the
/// kernel crate's API ([`api_hints`]; `doc_command` is the `lkmlab doc`
/// that documents this kernel; its documentation is linked when it is
/// already built, never built here).
pub fn explain(
    log: &str,
    tree: &KernelTree,
    shared_fragments: &[String],
    doc_command: &str,
) -> Vec<String> {
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
    let docs = Docs::built(&tree.dir);
    paragraphs.extend(
        api_hints(log)
            .iter()
            .map(|h| api_advice(h, docs.as_ref(), doc_command)),
    );
    paragraphs
}

/// What rustc's errors say about the kernel crate's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiHint {
    /// Code written for `std`'s (or `alloc`'s) collections, which a module
    /// does not have: the kernel crate's own take an allocator and a GFP
    /// flag (`flags_missing`: rustc said a `kernel::alloc::Flags` argument
    /// is missing).
    StdCollections {
        used: Vec<StdItem>,
        flags_missing: bool,
    },
    /// Errors name these items of the `kernel` crate (`kernel::sync::Mutexx`,
    /// `kernel::alloc::Flags`), in log order, each once.
    KernelItems(Vec<String>),
}

/// A `std` item a module's code uses, as rustc's errors show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StdItem {
    /// `Vec<T>` (rustc's hint: `Vec<T, A>`, the kernel's `Vec` taking an
    /// allocator).
    Vec,
    /// `Box<T>` (the kernel's `Box<T, A>`).
    Box,
    String,
    /// `vec![…]`.
    VecMacro,
    /// `format!(…)`.
    Format,
    /// `println!`, `eprintln!`, `print!`.
    Print,
    /// `HashMap`, `BTreeMap`.
    Map,
    Rc,
}

impl StdItem {
    fn of_name(name: &str) -> Option<StdItem> {
        Some(match name {
            "Vec" => StdItem::Vec,
            "Box" => StdItem::Box,
            "String" | "ToString" => StdItem::String,
            "vec" => StdItem::VecMacro,
            "format" => StdItem::Format,
            "println" | "eprintln" | "print" | "eprint" => StdItem::Print,
            "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" => StdItem::Map,
            "Rc" => StdItem::Rc,
            _ => return None,
        })
    }

    /// What the module uses instead, in this kernel's crate.
    fn instead(self) -> &'static str {
        match self {
            StdItem::Vec => {
                "`Vec<T>` → `KVec<T>` (kmalloc; `VVec<T>` for vmalloc, `KVVec<T>` for either), \
                 `KVec::new()` then `v.push(x, GFP_KERNEL)?` (rustc's `Vec<T, A>` hint means \
                 the allocator `A`: `KVec<T>` is `Vec<T, Kmalloc>`)"
            }
            StdItem::Box => "`Box<T>` → `KBox<T>`: `KBox::new(x, GFP_KERNEL)?`",
            StdItem::String => {
                "`String` → `CString` (`kernel::str`): \
                 `CString::try_from_fmt(fmt!(\"{x}\"))?`"
            }
            StdItem::VecMacro => "`vec![…]` → `kernel::kvec![…]?` (it allocates with GFP_KERNEL)",
            StdItem::Format => "`format!` → `fmt!` (prelude), into a `CString::try_from_fmt(…)?`",
            StdItem::Print => "`println!` → `pr_info!` (and `pr_err!`, `pr_warn!`, …)",
            StdItem::Map => "`HashMap`/`BTreeMap` → `kernel::rbtree::RBTree`",
            StdItem::Rc => "`Rc<T>` → `kernel::sync::Arc<T>`: `Arc::new(x, GFP_KERNEL)?`",
        }
    }
}

/// The [`ApiHint`]s of a build log's errors (warnings aside): the `std`
/// collections its code uses, then the `kernel` items they name.
pub fn api_hints(log: &str) -> Vec<ApiHint> {
    let lines = error_message_lines(log);
    let mut used: Vec<StdItem> = Vec::new();
    let mut flags_missing = false;
    let mut kernel_items: Vec<String> = Vec::new();
    let mut push_item = |item: String| {
        if !kernel_items.contains(&item) {
            kernel_items.push(item);
        }
    };
    for (i, line) in lines.iter().enumerate() {
        if line.contains("of type `kernel::alloc::Flags` is missing") {
            flags_missing = true;
        }
        for item in std_items_in(line, lines.get(i + 1).copied()) {
            if !used.contains(&item) {
                used.push(item);
            }
        }
        for item in kernel_items_in(line) {
            push_item(item);
        }
    }
    let mut hints = Vec::new();
    if !used.is_empty() || flags_missing {
        used.sort();
        hints.push(ApiHint::StdCollections {
            used,
            flags_missing,
        });
    }
    if !kernel_items.is_empty() {
        hints.push(ApiHint::KernelItems(kernel_items));
    }
    hints
}

/// The lines of a log's error diagnostics that are rustc's own words: not
/// those of a warning, and not the quoted source (`16 |     code`) nor
/// suggested edits (`6 + use …;`).
fn error_message_lines(log: &str) -> Vec<&str> {
    let mut in_error = false;
    let mut out = Vec::new();
    for line in log.lines() {
        if line.starts_with("error") {
            in_error = true;
        } else if line.starts_with("warning") || line.starts_with("make") {
            in_error = false;
        }
        if in_error && !is_source_line(line) {
            out.push(line);
        }
    }
    out
}

/// `16 |     numbers: Vec<i32>,`, `6 + use kernel::sync::Mutex;`.
fn is_source_line(line: &str) -> bool {
    let trimmed = line.trim_start();
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    digits > 0
        && trimmed[digits..]
            .trim_start()
            .starts_with(['|', '+', '-', '~'])
}

/// The spans of `line` between backticks.
fn quoted(line: &str) -> impl Iterator<Item = &str> {
    line.split('`').skip(1).step_by(2)
}

/// The `std` items one error line shows a module uses: paths of `std` or
/// `alloc` (`std::vec::Vec`, an unresolved `std`), names rustc cannot find
/// (`cannot find type `String``), and the kernel's `Vec`/`Box` given one
/// generic argument where they take two (rustc's note on the next line
/// points into `rust/kernel/alloc/kvec.rs` or `kbox.rs`).
fn std_items_in(line: &str, next: Option<&str>) -> Vec<StdItem> {
    let mut found = Vec::new();
    for span in quoted(line) {
        let path = span.split(['<', ' ', '(']).next().unwrap_or("");
        if let Some(rest) = path
            .strip_prefix("std::")
            .or_else(|| path.strip_prefix("alloc::"))
        {
            found.extend(rest.rsplit("::").next().and_then(StdItem::of_name));
        }
    }
    let cannot_find = [
        "cannot find type `",
        "use of undeclared type `",
        "cannot find macro `",
    ];
    for prefix in cannot_find {
        if let Some((_, rest)) = line.split_once(prefix) {
            let name = rest.split('`').next().unwrap_or("");
            found.extend(StdItem::of_name(name));
        }
    }
    if line.contains("generic parameters: `T`, `A`") {
        let file = next.unwrap_or("");
        if file.contains("kernel/alloc/kvec.rs") {
            found.push(StdItem::Vec);
        } else if file.contains("kernel/alloc/kbox.rs") {
            found.push(StdItem::Box);
        }
    }
    found
}

/// The `kernel` items one error line names: `kernel::…` paths in its
/// quoted spans (generics and a trailing `::` dropped), and
/// `` `x` in `kernel::a` `` (what rustc could not find where) as
/// `kernel::a::x`.
fn kernel_items_in(line: &str) -> Vec<String> {
    let mut items = Vec::new();
    for span in quoted(line) {
        let mut rest = span;
        while let Some(at) = rest.find("kernel::") {
            let before = rest[..at].chars().next_back();
            let tail = &rest[at..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            let path = tail[..len].trim_end_matches(':');
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                && path.len() > "kernel::".len()
            {
                items.push(path.to_string());
            }
            rest = &tail[len..];
        }
    }
    // `could not find `net` in `kernel``, `cannot find type `X` in module `kernel::sync``.
    let spans: Vec<&str> = quoted(line).collect();
    let words: Vec<&str> = line.split('`').collect();
    for (i, pair) in spans.windows(2).enumerate() {
        let between = words.get(2 * i + 2).copied().unwrap_or("");
        let (name, module) = (pair[0], pair[1]);
        let is_path = |p: &str| p == "kernel" || p.starts_with("kernel::");
        if matches!(between.trim(), "in" | "in module" | "in crate")
            && is_path(module)
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        {
            let item = format!("{module}::{name}");
            if !items.contains(&item) {
                items.push(item);
            }
        }
    }
    items
}

/// The most `kernel` items one paragraph names.
const ITEMS_SHOWN: usize = 4;

/// The advice for one [`ApiHint`]: `docs` when this kernel's documentation
/// is built (each item's page is then named), else the command that builds it.
pub fn api_advice(hint: &ApiHint, docs: Option<&Docs>, doc_command: &str) -> String {
    match hint {
        ApiHint::StdCollections {
            used,
            flags_missing,
        } => {
            let mut text = if used.is_empty() {
                String::from(
                    "The `kernel` crate's collections (`kernel::alloc`: `KVec`, `KBox`, …) take a \
                     GFP flag on each allocation, which can fail: the missing \
                     `kernel::alloc::Flags` argument is that flag, `GFP_KERNEL` where the code \
                     may sleep, `GFP_ATOMIC` where it may not, and the result needs a `?` \
                     (`KBox::new(x, GFP_KERNEL)?`, `v.push(x, GFP_KERNEL)?`).",
                )
            } else {
                let list: Vec<&str> = used.iter().map(|u| u.instead()).collect();
                let flag = if *flags_missing {
                    " (the missing `kernel::alloc::Flags` argument)"
                } else {
                    ""
                };
                format!(
                    "A kernel module has no `std` or `alloc` crate: the `kernel` crate's \
                     collections (`kernel::alloc`, in the prelude) take an allocator, and each \
                     allocation takes a GFP flag{flag}, `GFP_KERNEL` where the code may sleep, \
                     `GFP_ATOMIC` where it may not, and can fail (`?`): {}.",
                    list.join("; ")
                )
            };
            text.push_str(&format!(
                " Their documentation for this kernel: `{doc_command} kernel::alloc`."
            ));
            text
        }
        ApiHint::KernelItems(items) => {
            let shown = &items[..items.len().min(ITEMS_SHOWN)];
            let more = match items.len() - shown.len() {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            match docs {
                Some(docs) => {
                    let pages: Vec<String> = shown
                        .iter()
                        .map(|item| match docs.page_of(item) {
                            Some((page, true)) => format!("`{item}`: {}", page.display()),
                            Some((page, false)) => format!(
                                "`{item}` has no page (misspelled, or configured out); its \
                                 module: {}",
                                page.display()
                            ),
                            None => format!("`{item}`: not documented"),
                        })
                        .collect();
                    format!(
                        "The `kernel` crate's documentation of this kernel (`{doc_command}`): \
                         {}{more}.",
                        pages.join("; ")
                    )
                }
                None => {
                    let names: Vec<String> = shown.iter().map(|i| format!("`{i}`")).collect();
                    format!(
                        "The errors name items of the `kernel` crate ({}{more}): `{doc_command}` \
                         builds its documentation for exactly this kernel and configuration \
                         (once, some minutes) and prints its path; `{doc_command} {}` prints \
                         that item's page.",
                        names.join(", "),
                        shown[0]
                    )
                }
            }
        }
    }
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
        let text = explain(LOG, &debug, &kconfig, "lkmlab doc");
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
        let text = explain(LOG, &tree("default", &[]), &kconfig, "lkmlab doc");
        assert!(
            text[0].contains(
                "or to a fragment of its own listed in [kconfig.flavors.default] fragments \
                 for this flavor only"
            ),
            "{}",
            text[0]
        );
        // One object: nothing to tell about the others; the last paragraph
        // is about the `kernel::net` that could not be found.
        assert_eq!(text.len(), 6, "{text:#?}");
        assert!(text[5].contains("(`kernel::net`)"), "{}", text[5]);
    }

    #[test]
    fn several_objects_are_accounted_for() {
        let log = "  RUSTC [M] a.o\n  RUSTC [M] b.o\n\
                   make[3]: *** [/k/scripts/Makefile.build:366: a.o] Error 1\n";
        let text = explain(log, &tree("default", &[]), &[], "lkmlab doc");
        assert_eq!(
            text,
            [
                "Every object was tried (make -k): failed: a.o; compiled: b.o. No module is \
              linked until all of them compile."
            ]
        );
    }

    /// The real log of `lkmlab module --module tests/fixtures/std-collections`
    /// against 7.3.4 (rustc 1.95): `Vec<i32>`, `push(1)`, `String::from`.
    const STD_COLLECTIONS: &str =
        include_str!("../../../tests/fixtures/build-logs/std-collections.log");
    /// The real log of `tests/fixtures/unresolved-import`: a misspelt
    /// `kernel::sync::Mutexx`, a `kernel::allocator` that is not public, a
    /// `Box::new` without its flag.
    const UNRESOLVED_IMPORT: &str =
        include_str!("../../../tests/fixtures/build-logs/unresolved-import.log");

    #[test]
    fn std_collections_are_told_apart_from_kernel_ones() {
        assert_eq!(
            api_hints(STD_COLLECTIONS),
            [
                ApiHint::StdCollections {
                    used: vec![StdItem::Vec, StdItem::String],
                    flags_missing: true
                },
                ApiHint::KernelItems(vec!["kernel::alloc::Flags".into()]),
            ]
        );
        let text = api_advice(&api_hints(STD_COLLECTIONS)[0], None, "lkmlab doc");
        assert!(
            text.starts_with("A kernel module has no `std` or `alloc` crate")
                && text.contains("`Vec<T>` → `KVec<T>`")
                && text.contains("`v.push(x, GFP_KERNEL)?`")
                && text.contains("rustc's `Vec<T, A>` hint")
                && text.contains("`String` → `CString`")
                && text
                    .ends_with("Their documentation for this kernel: `lkmlab doc kernel::alloc`."),
            "{text}"
        );
    }

    #[test]
    fn the_kernel_items_errors_name_are_listed_in_order() {
        assert_eq!(
            api_hints(UNRESOLVED_IMPORT),
            [
                ApiHint::StdCollections {
                    used: vec![],
                    flags_missing: true
                },
                ApiHint::KernelItems(
                    [
                        "kernel::sync::Mutexx",
                        "kernel::allocator",
                        "kernel::alloc::Flags",
                        "kernel::fmt::Display",
                        "kernel::alloc::Box",
                        "kernel::alloc::AllocError",
                    ]
                    .map(String::from)
                    .into()
                ),
            ]
        );
        let hints = api_hints(UNRESOLVED_IMPORT);
        let flag = api_advice(&hints[0], None, "lkmlab doc");
        assert!(
            flag.contains("the missing `kernel::alloc::Flags` argument is that flag"),
            "{flag}"
        );
        let text = api_advice(&hints[1], None, "lkmlab doc --target 6.12-x86_64");
        assert_eq!(
            text,
            "The errors name items of the `kernel` crate (`kernel::sync::Mutexx`, \
             `kernel::allocator`, `kernel::alloc::Flags`, `kernel::fmt::Display` and 2 more): \
             `lkmlab doc --target 6.12-x86_64` builds its documentation for exactly this kernel \
             and configuration (once, some minutes) and prints its path; `lkmlab doc --target \
             6.12-x86_64 kernel::sync::Mutexx` prints that item's page."
        );
    }

    /// Built, the documentation is linked page by page.
    #[test]
    fn built_documentation_is_linked_item_by_item() {
        let dir = tempfile::tempdir().unwrap();
        let docs = Docs {
            dir: dir.path().to_path_buf(),
        };
        for file in [
            "kernel/index.html",
            "kernel/sync/index.html",
            "kernel/alloc/index.html",
            "kernel/alloc/struct.Flags.html",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let hint = ApiHint::KernelItems(vec![
            "kernel::sync::Mutexx".into(),
            "kernel::alloc::Flags".into(),
        ]);
        let text = api_advice(&hint, Some(&docs), "lkmlab doc");
        let d = dir.path().display();
        assert_eq!(
            text,
            format!(
                "The `kernel` crate's documentation of this kernel (`lkmlab doc`): \
                 `kernel::sync::Mutexx` has no page (misspelled, or configured out); its module: \
                 {d}/kernel/sync/index.html; `kernel::alloc::Flags`: {d}/kernel/alloc/struct.Flags.html."
            )
        );
    }

    /// Warnings, quoted source and suggested edits are not rustc's errors.
    #[test]
    fn only_errors_count() {
        let log = "warning: unused import: `kernel::sync::Mutex`\n\
                   error[E0308]: mismatched types\n \
                   --> m.rs:3:5\n  |\n3 |     let v: Vec<u8> = kernel::foo::bar();\n  |\n\
                   help: try\n  |\n3 + use kernel::baz::Qux;\n";
        assert_eq!(api_hints(log), []);
    }
}
