//! Kconfig fragments (the project's `kernel-config/*.config`) and the
//! kernel's `.config`: parsing, merging (later fragments win, as with
//! `scripts/kconfig/merge_config.sh`), applying to a `.config` before
//! `make olddefconfig`, and checking afterwards that nothing was dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The value of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `=y`
    Yes,
    /// `=m`
    Module,
    /// `# CONFIG_X is not set` (or `CONFIG_X=n` in a fragment).
    No,
    /// `="..."`, holding the string without quotes or escapes.
    Str(String),
    /// Anything else, raw: decimal or hex numbers in fragments.
    Other(String),
}

impl Value {
    /// The right-hand side as `.config` writes it: `y`, `m`, `n`, `"quoted"`
    /// (with `"` and `\` escaped) or the raw text.
    pub fn to_dotconfig_rhs(&self) -> String {
        match self {
            Value::Yes => "y".to_string(),
            Value::Module => "m".to_string(),
            Value::No => "n".to_string(),
            Value::Str(s) => {
                let mut out = String::with_capacity(s.len() + 2);
                out.push('"');
                for c in s.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
                out
            }
            Value::Other(raw) => raw.clone(),
        }
    }

    /// The value without quoting: strings raw, everything else as in
    /// [`Value::to_dotconfig_rhs`].
    fn unquoted(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            other => other.to_dotconfig_rhs(),
        }
    }
}

/// One option requested by a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The option's name, with the `CONFIG_` prefix.
    pub name: String,
    /// The requested value.
    pub value: Value,
    /// Where it was requested, as `file:line`.
    pub origin: String,
}

/// What the line for `name` = `value` looks like in a `.config`.
fn dotconfig_line(name: &str, value: &Value) -> String {
    match value {
        Value::No => format!("# {name} is not set"),
        other => format!("{name}={}", other.to_dotconfig_rhs()),
    }
}

/// Why a fragment could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentError {
    /// A line that is neither blank, a comment, nor an option.
    Syntax {
        /// `file:line`
        origin: String,
        /// The offending line.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same option given twice with different values.
    Conflict {
        /// The first time, with its origin.
        first: Box<Entry>,
        /// The second time.
        second: Box<Entry>,
    },
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::Syntax {
                origin,
                text,
                reason,
            } => write!(
                f,
                "{origin}: cannot read `{text}`: {reason}; a valid line looks like \
                 `CONFIG_NAME=y` (or m, n, \"string\", 123, 0x1f) or \
                 `# CONFIG_NAME is not set`"
            ),
            FragmentError::Conflict { first, second } => write!(
                f,
                "{}: `{}` conflicts with `{}` at {}; give {} once",
                second.origin,
                dotconfig_line(&second.name, &second.value),
                dotconfig_line(&first.name, &first.value),
                first.origin,
                first.name,
            ),
        }
    }
}

impl std::error::Error for FragmentError {}

/// Splits `CONFIG_NAME...` into the name and the rest, if the name is valid.
fn split_name(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("CONFIG_")?;
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if len == 0 {
        return None;
    }
    let end = "CONFIG_".len() + len;
    Some((&line[..end], &line[end..]))
}

/// The name in a `# CONFIG_X is not set` line (trailing text after `is not
/// set` must be blank or a comment).
fn not_set_name(line: &str) -> Option<&str> {
    let (name, rest) = split_name(line.strip_prefix("# ")?)?;
    let tail = rest.strip_prefix(" is not set")?.trim_start();
    (tail.is_empty() || tail.starts_with('#')).then_some(name)
}

/// Parses a `"..."` string (backslash escapes the next character, as
/// Kconfig reads it); returns the value and the text after the closing quote.
fn parse_string(rhs: &str) -> Result<(String, &str), String> {
    let mut chars = rhs.char_indices();
    if !matches!(chars.next(), Some((_, '"'))) {
        return Err("a string must start with '\"'".to_string());
    }
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &rhs[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("the string has no closing '\"'".to_string())
}

fn is_number(s: &str) -> bool {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Parses the right-hand side of `CONFIG_X=` in a fragment.
fn parse_fragment_rhs(rhs: &str) -> Result<Value, String> {
    if rhs.starts_with('"') {
        let (s, tail) = parse_string(rhs)?;
        let tail = tail.trim_start();
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err(format!("unexpected `{tail}` after the string"));
        }
        return Ok(Value::Str(s));
    }
    let value = rhs.split('#').next().unwrap_or("").trim();
    match value {
        "y" => Ok(Value::Yes),
        "m" => Ok(Value::Module),
        "n" => Ok(Value::No),
        "" => Err("the value is missing".to_string()),
        v if is_number(v) => Ok(Value::Other(v.to_string())),
        v => Err(format!("`{v}` is not y, m, n, a quoted string or a number")),
    }
}

/// Parses a Kconfig fragment. `file` names it in origins and errors.
///
/// Blank lines and `#` comments are allowed; options are `CONFIG_X=y|m|n`,
/// `CONFIG_X="string"`, `CONFIG_X=123`, `CONFIG_X=0x1f` or
/// `# CONFIG_X is not set`, optionally followed by a `# comment`. Giving the
/// same option twice with different values is an error; giving it twice with
/// the same value keeps the first.
pub fn parse_fragment(text: &str, file: &str) -> Result<Vec<Entry>, FragmentError> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let line = raw.trim();
        let syntax = |reason: String| FragmentError::Syntax {
            origin: origin.clone(),
            text: line.to_string(),
            reason,
        };
        let (name, value) = if line.is_empty() {
            continue;
        } else if line.starts_with('#') {
            match not_set_name(line) {
                Some(name) => (name, Value::No),
                None => continue,
            }
        } else {
            let (name, rest) = split_name(line)
                .ok_or_else(|| syntax("this is neither an option nor a comment".to_string()))?;
            let rhs = rest
                .strip_prefix('=')
                .ok_or_else(|| syntax(format!("expected `=` after {name}")))?;
            (name, parse_fragment_rhs(rhs).map_err(syntax)?)
        };
        if let Some(first) = entries.iter().find(|e| e.name == name) {
            if first.value != value {
                return Err(FragmentError::Conflict {
                    first: Box::new(first.clone()),
                    second: Box::new(Entry {
                        name: name.to_string(),
                        value,
                        origin,
                    }),
                });
            }
            continue;
        }
        entries.push(Entry {
            name: name.to_string(),
            value,
            origin,
        });
    }
    Ok(entries)
}

/// Merges fragments in order; an option in a later fragment replaces the
/// same option from an earlier one.
pub fn merge(fragments: &[Vec<Entry>]) -> BTreeMap<String, Entry> {
    let mut merged = BTreeMap::new();
    for entry in fragments.iter().flatten() {
        merged.insert(entry.name.clone(), entry.clone());
    }
    merged
}

/// The option a `.config` line sets, and to what. Unreadable lines are
/// `None`.
fn dotconfig_entry(line: &str) -> Option<(&str, Value)> {
    let line = line.trim_end();
    if let Some(name) = not_set_name(line) {
        return Some((name, Value::No));
    }
    let (name, rest) = split_name(line)?;
    let rhs = rest.strip_prefix('=')?;
    let value = match rhs {
        "y" => Value::Yes,
        "m" => Value::Module,
        "n" => Value::No,
        _ if rhs.starts_with('"') => match parse_string(rhs) {
            Ok((s, _)) => Value::Str(s),
            Err(_) => Value::Other(rhs.to_string()),
        },
        _ => Value::Other(rhs.to_string()),
    };
    Some((name, value))
}

/// Reads a `.config` into option → value; other lines are ignored and a
/// later line for the same option wins.
pub fn parse_dotconfig(text: &str) -> BTreeMap<String, Value> {
    text.lines()
        .filter_map(dotconfig_entry)
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// Returns `dotconfig` with every requested option set: its line is
/// replaced in place whichever form it had (`CONFIG_X=...` or
/// `# CONFIG_X is not set`), further lines for it are dropped, and options
/// not present are appended in name order. Other lines are kept as they are.
/// The result is meant for `make olddefconfig`.
pub fn apply(dotconfig: &str, requested: &BTreeMap<String, Entry>) -> String {
    let mut out = String::with_capacity(dotconfig.len() + requested.len() * 32);
    let mut done = std::collections::BTreeSet::new();
    for line in dotconfig.lines() {
        match dotconfig_entry(line).and_then(|(name, _)| requested.get(name)) {
            Some(entry) => {
                if done.insert(entry.name.as_str()) {
                    out.push_str(&dotconfig_line(&entry.name, &entry.value));
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for entry in requested.values() {
        if !done.contains(entry.name.as_str()) {
            out.push_str(&dotconfig_line(&entry.name, &entry.value));
            out.push('\n');
        }
    }
    out
}

/// A requested option that the final `.config` does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The option, with `CONFIG_` prefix.
    pub name: String,
    /// What was asked for.
    pub wanted: Value,
    /// What the `.config` has (`None` if the option is absent).
    pub got: Option<Value>,
    /// Where it was asked for (`file:line`).
    pub origin: String,
    /// Why, when Kconfig could tell (see [`explain`]).
    pub reason: Option<Reason>,
}

/// Why Kconfig dropped a requested option, in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `KCONFIG_WARN_UNKNOWN_SYMBOLS` says: no such symbol.
    NoSuchSymbol,
    /// Its direct dependencies (`depends on`, enclosing `if` and menus) are
    /// not met: the terms that fail, as Kconfig prints them (`BLK_DEV [=n]`),
    /// and whether they still allow `m`.
    Unmet { terms: String, allows_m: bool },
    /// Its dependencies are met, yet Kconfig did not take the value.
    DependenciesMet,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoSuchSymbol => f.write_str("no such symbol in this kernel"),
            Reason::Unmet {
                terms,
                allows_m: false,
            } => write!(f, "dependency not met: {terms}"),
            Reason::Unmet {
                terms,
                allows_m: true,
            } => write!(f, "dependency not met for =y (it allows only =m): {terms}"),
            Reason::DependenciesMet => f.write_str(
                "its dependencies are met, so Kconfig dropped the value for another reason (an \
                 option without a prompt, which only a `select` or a default sets; a bool asked \
                 to be m; a choice)",
            ),
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} ({}) ended up ",
            self.name,
            self.wanted.to_dotconfig_rhs(),
            self.origin
        )?;
        match &self.got {
            None | Some(Value::No) => f.write_str("not set")?,
            Some(value) => write!(f, "={}", value.to_dotconfig_rhs())?,
        }
        match &self.reason {
            Some(reason) => write!(f, ": {reason}"),
            None => Ok(()),
        }
    }
}

/// The options a Kconfig probe can explain with `select`: those asked to be
/// `y` or `m` (a `select` takes only bool and tristate symbols) and not
/// reported unknown.
pub fn probe_candidates<'a>(dropped: &'a [Dropped], unknown: &BTreeSet<String>) -> Vec<&'a str> {
    dropped
        .iter()
        .filter(|d| matches!(d.wanted, Value::Yes | Value::Module))
        .filter(|d| !unknown.contains(&d.name))
        .map(|d| d.name.as_str())
        .collect()
}

/// A top-level Kconfig file: the kernel's own (`top`, the text of its
/// `Kconfig`) plus a symbol that `select`s each of `options` (`CONFIG_X`).
/// Kconfig then warns "unmet direct dependencies detected for X" with X's
/// dependencies and their values, its own evaluation of why X was dropped.
pub fn probe_kconfig(top: &str, options: &[&str]) -> String {
    let mut text = top.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("\nconfig LKMLAB_WHY_DROPPED\n\tdef_bool y\n");
    for option in options {
        let name = option.strip_prefix("CONFIG_").unwrap_or(option);
        text.push_str(&format!("\tselect {name}\n"));
    }
    text
}

/// The symbols Kconfig's `KCONFIG_WARN_UNKNOWN_SYMBOLS=1` warns about in its
/// output (`.config:12:warning: unknown symbol: FOO`), as `CONFIG_FOO`.
pub fn unknown_symbols(conf_output: &str) -> BTreeSet<String> {
    conf_output
        .lines()
        .filter_map(|l| l.split_once("warning: unknown symbol: "))
        .map(|(_, name)| format!("CONFIG_{}", name.trim()))
        .collect()
}

/// Kconfig's "unmet direct dependencies" warnings in its output: option
/// (`CONFIG_X`) → what its dependencies evaluate to (`n` or `m`) and the
/// expression, as printed (`BLK_DEV [=n] && VIRTIO [=y]`).
pub fn unmet_dependencies(conf_output: &str) -> BTreeMap<String, (char, String)> {
    let mut found = BTreeMap::new();
    let mut lines = conf_output.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("WARNING: unmet direct dependencies detected for ")
        else {
            continue;
        };
        let Some(deps) = lines.next().map(str::trim) else {
            break;
        };
        let parsed = deps
            .strip_prefix("Depends on [")
            .and_then(|rest| rest.split_once("]: "))
            .and_then(|(value, expr)| Some((value.chars().next()?, expr.to_string())));
        if let Some(entry) = parsed {
            found.insert(format!("CONFIG_{}", name.trim()), entry);
        }
    }
    found
}

/// The reasons for what `explain`'s two Kconfig runs said: `unknown` from
/// the one with `KCONFIG_WARN_UNKNOWN_SYMBOLS`, `probe` the output of the one
/// with [`probe_kconfig`] over `probed` (`None` if that run failed).
pub fn explain(
    dropped: &mut [Dropped],
    unknown: &BTreeSet<String>,
    probed: &[String],
    probe: Option<&str>,
) {
    let unmet = probe.map(unmet_dependencies).unwrap_or_default();
    for d in dropped.iter_mut() {
        d.reason = if unknown.contains(&d.name) {
            Some(Reason::NoSuchSymbol)
        } else if let Some((value, expr)) = unmet.get(&d.name) {
            let wanted_m = d.wanted == Value::Module;
            Some(Reason::Unmet {
                terms: failing_terms(expr, if wanted_m { 1 } else { 2 }),
                allows_m: *value == 'm' && !wanted_m,
            })
        } else if probe.is_some() && probed.contains(&d.name) {
            Some(Reason::DependenciesMet)
        } else {
            None
        };
    }
}

/// The `&&` terms of a dependency expression (as Kconfig prints it) that
/// evaluate below `needed` (0 n, 1 m, 2 y), joined by ` && `: what keeps the
/// option from being set. A term this cannot evaluate is kept; if none is
/// left, the whole expression is.
pub fn failing_terms(expr: &str, needed: u8) -> String {
    let failing: Vec<&str> = top_level_and_terms(expr)
        .into_iter()
        .filter(|term| tristate_value(term).is_none_or(|v| v < needed))
        .collect();
    if failing.is_empty() {
        expr.trim().to_string()
    } else {
        failing.join(" && ")
    }
}

/// `expr` split at the ` && ` outside parentheses.
fn top_level_and_terms(expr: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'&' if depth == 0 && expr[i..].starts_with("&&") => {
                terms.push(expr[start..i].trim());
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    terms.push(expr[start..].trim());
    terms.retain(|t| !t.is_empty());
    terms
}

/// The tristate value (0 n, 1 m, 2 y) of an expression as Kconfig prints
/// it: symbols with their values (`FOO [=y]`), `!`, `&&`, `||` and
/// parentheses. `None` for anything else (comparisons, strings).
fn tristate_value(expr: &str) -> Option<u8> {
    let tokens = tokenize(expr)?;
    let mut pos = 0;
    let value = or_expr(&tokens, &mut pos)?;
    (pos == tokens.len()).then_some(value)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Value(u8),
    Not,
    And,
    Or,
    Open,
    Close,
}

fn tokenize(expr: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut rest = expr.trim_start();
    while !rest.is_empty() {
        let (token, len) = if rest.starts_with("&&") {
            (Token::And, 2)
        } else if rest.starts_with("||") {
            (Token::Or, 2)
        } else if rest.starts_with('!') && !rest.starts_with("!=") {
            (Token::Not, 1)
        } else if rest.starts_with('(') {
            (Token::Open, 1)
        } else if rest.starts_with(')') {
            (Token::Close, 1)
        } else {
            // `NAME [=v]`: a symbol and its value.
            let end = rest.find(" [=")?;
            let name = &rest[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            let after = &rest[end + 3..];
            let close = after.find(']')?;
            let value = match &after[..close] {
                "y" => 2,
                "m" => 1,
                "n" => 0,
                _ => return None,
            };
            (Token::Value(value), end + 3 + close + 1)
        };
        tokens.push(token);
        rest = rest[len..].trim_start();
    }
    Some(tokens)
}

fn or_expr(tokens: &[Token], pos: &mut usize) -> Option<u8> {
    let mut value = and_expr(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::Or) {
        *pos += 1;
        value = value.max(and_expr(tokens, pos)?);
    }
    Some(value)
}

fn and_expr(tokens: &[Token], pos: &mut usize) -> Option<u8> {
    let mut value = unary(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::And) {
        *pos += 1;
        value = value.min(unary(tokens, pos)?);
    }
    Some(value)
}

fn unary(tokens: &[Token], pos: &mut usize) -> Option<u8> {
    let token = *tokens.get(*pos)?;
    *pos += 1;
    match token {
        Token::Not => Some(2 - unary(tokens, pos)?),
        Token::Value(v) => Some(v),
        Token::Open => {
            let value = or_expr(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Close) {
                return None;
            }
            *pos += 1;
            Some(value)
        }
        Token::And | Token::Or | Token::Close => None,
    }
}

/// Lists the requested options the final `.config` does not honour
/// (typically because a dependency is missing). A requested `No` is
/// satisfied by absence; every other value must match exactly.
pub fn verify(
    requested: &BTreeMap<String, Entry>,
    actual: &BTreeMap<String, Value>,
) -> Vec<Dropped> {
    requested
        .values()
        .filter_map(|entry| {
            let got = actual.get(&entry.name);
            let ok = match (&entry.value, got) {
                (Value::No, None | Some(Value::No)) => true,
                (wanted, Some(got)) => wanted == got,
                (_, None) => false,
            };
            (!ok).then(|| Dropped {
                name: entry.name.clone(),
                wanted: entry.value.clone(),
                got: got.cloned(),
                origin: entry.origin.clone(),
                reason: None,
            })
        })
        .collect()
}

/// `CONFIG_X` → the value as a JSON string (`"y"`, `"m"`, `"n"`, `"123"`, or
/// a string option's raw text without quotes), to compare with the Nix
/// side's `{ CONFIG_X = "y"; ... }`.
pub fn to_json_map(
    requested: &BTreeMap<String, Entry>,
) -> serde_json::Map<String, serde_json::Value> {
    requested
        .values()
        .map(|e| {
            (
                e.name.clone(),
                serde_json::Value::String(e.value.unquoted()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: Value, origin: &str) -> Entry {
        Entry {
            name: name.to_string(),
            value,
            origin: origin.to_string(),
        }
    }

    fn requested(entries: Vec<Entry>) -> BTreeMap<String, Entry> {
        merge(&[entries])
    }

    #[test]
    fn fragment_every_form() {
        let text = r#"
# Rust support
CONFIG_RUST=y
CONFIG_SCULL=m
CONFIG_MODVERSIONS=n
# CONFIG_DEBUG_INFO_BTF is not set
CONFIG_CMDLINE="console=ttyS0 \"quoted\" C:\\path # not a comment"
CONFIG_LOG_BUF_SHIFT=17
CONFIG_PHYSICAL_START=0x1000000
CONFIG_NEG=-1
CONFIG_KASAN=y  # why: catch use-after-free
  CONFIG_INDENTED=y
CONFIG_EMPTY_STRING=""
CONFIG_STR_COMMENT="a" # trailing comment
# CONFIG_FOO=y is a commented-out option, i.e. a comment
#CONFIG_BAR is not set
"#;
        let entries = parse_fragment(text, "kernel-config/base.config").unwrap();
        let got: Vec<(&str, &Value, &str)> = entries
            .iter()
            .map(|e| (e.name.as_str(), &e.value, e.origin.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("CONFIG_RUST", &Value::Yes, "kernel-config/base.config:3"),
                (
                    "CONFIG_SCULL",
                    &Value::Module,
                    "kernel-config/base.config:4"
                ),
                (
                    "CONFIG_MODVERSIONS",
                    &Value::No,
                    "kernel-config/base.config:5"
                ),
                (
                    "CONFIG_DEBUG_INFO_BTF",
                    &Value::No,
                    "kernel-config/base.config:6"
                ),
                (
                    "CONFIG_CMDLINE",
                    &Value::Str(r#"console=ttyS0 "quoted" C:\path # not a comment"#.to_string()),
                    "kernel-config/base.config:7"
                ),
                (
                    "CONFIG_LOG_BUF_SHIFT",
                    &Value::Other("17".to_string()),
                    "kernel-config/base.config:8"
                ),
                (
                    "CONFIG_PHYSICAL_START",
                    &Value::Other("0x1000000".to_string()),
                    "kernel-config/base.config:9"
                ),
                (
                    "CONFIG_NEG",
                    &Value::Other("-1".to_string()),
                    "kernel-config/base.config:10"
                ),
                ("CONFIG_KASAN", &Value::Yes, "kernel-config/base.config:11"),
                (
                    "CONFIG_INDENTED",
                    &Value::Yes,
                    "kernel-config/base.config:12"
                ),
                (
                    "CONFIG_EMPTY_STRING",
                    &Value::Str(String::new()),
                    "kernel-config/base.config:13"
                ),
                (
                    "CONFIG_STR_COMMENT",
                    &Value::Str("a".to_string()),
                    "kernel-config/base.config:14"
                ),
            ]
        );
    }

    #[test]
    fn fragment_errors_name_the_line() {
        let cases = [
            ("CONFIG_RUST=yes", "`yes` is not y, m, n"),
            ("CONFIG_RUST=", "the value is missing"),
            ("CONFIG_RUST", "expected `=` after CONFIG_RUST"),
            ("CONFIG_RUST y", "expected `=` after CONFIG_RUST"),
            ("RUST=y", "neither an option nor a comment"),
            ("CONFIG_=y", "neither an option nor a comment"),
            ("CONFIG_CMDLINE=\"unterminated", "no closing"),
            ("CONFIG_CMDLINE=\"a\" b", "unexpected `b` after the string"),
            ("CONFIG_X=0x", "`0x` is not"),
            ("CONFIG_X=1 2", "`1 2` is not"),
        ];
        for (line, reason) in cases {
            let text = format!("# header\n\n{line}\n");
            let err = parse_fragment(&text, "frag.config").unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("frag.config:3: cannot read"), "{shown}");
            assert!(shown.contains(&format!("`{line}`")), "{shown}");
            assert!(shown.contains(reason), "{line}: {shown}");
            assert!(shown.contains("# CONFIG_NAME is not set"), "{shown}");
            assert!(matches!(err, FragmentError::Syntax { .. }));
        }
    }

    #[test]
    fn fragment_conflicts() {
        let err = parse_fragment("CONFIG_RUST=y\n\nCONFIG_RUST=m\n", "a.config").unwrap_err();
        assert_eq!(
            err,
            FragmentError::Conflict {
                first: Box::new(entry("CONFIG_RUST", Value::Yes, "a.config:1")),
                second: Box::new(entry("CONFIG_RUST", Value::Module, "a.config:3")),
            }
        );
        assert_eq!(
            err.to_string(),
            "a.config:3: `CONFIG_RUST=m` conflicts with `CONFIG_RUST=y` at a.config:1; \
             give CONFIG_RUST once"
        );
        // `=n` and "is not set" are the same value.
        let ok = parse_fragment(
            "CONFIG_X=n\n# CONFIG_X is not set\nCONFIG_Y=y\nCONFIG_Y=y\n",
            "b",
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].origin, "b:1");
        let err = parse_fragment("# CONFIG_X is not set\nCONFIG_X=y\n", "c").unwrap_err();
        assert!(
            err.to_string().contains("`# CONFIG_X is not set` at c:1"),
            "{err}"
        );
        // The error is usable with `?` in anyhow code.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        assert!(boxed.to_string().starts_with("c:2:"));
    }

    #[test]
    fn merge_later_wins() {
        let base = parse_fragment("CONFIG_A=y\nCONFIG_B=y\n", "base.config").unwrap();
        let extra = parse_fragment("CONFIG_B=m\nCONFIG_C=\"x\"\n", "extra.config").unwrap();
        let merged = merge(&[base, extra]);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged["CONFIG_A"].value, Value::Yes);
        assert_eq!(
            merged["CONFIG_B"],
            entry("CONFIG_B", Value::Module, "extra.config:1")
        );
        assert_eq!(merged["CONFIG_C"].value, Value::Str("x".to_string()));
        assert!(merge(&[]).is_empty());
    }

    #[test]
    fn rhs_rendering() {
        assert_eq!(Value::Yes.to_dotconfig_rhs(), "y");
        assert_eq!(Value::Module.to_dotconfig_rhs(), "m");
        assert_eq!(Value::No.to_dotconfig_rhs(), "n");
        assert_eq!(Value::Other("0x1f".into()).to_dotconfig_rhs(), "0x1f");
        assert_eq!(
            Value::Str(r#"a "b" \c"#.into()).to_dotconfig_rhs(),
            r#""a \"b\" \\c""#
        );
        // Round trip through the fragment parser.
        let s = Value::Str(r#"a "b" \c # d"#.into());
        let parsed = parse_fragment(&format!("CONFIG_S={}", s.to_dotconfig_rhs()), "f").unwrap();
        assert_eq!(parsed[0].value, s);
    }

    #[test]
    fn dotconfig_parsing() {
        let text = r#"#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 7.3.4 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc (GCC) 14.2.0"
CONFIG_RUST=y
CONFIG_SCULL=m
# CONFIG_KASAN is not set
CONFIG_LOG_BUF_SHIFT=17
CONFIG_PHYSICAL_START=0x1000000
CONFIG_ODD=weird value

# General setup
CONFIG_RUST=m
"#;
        let config = parse_dotconfig(text);
        assert_eq!(config.len(), 7);
        assert_eq!(
            config["CONFIG_CC_VERSION_TEXT"],
            Value::Str("gcc (GCC) 14.2.0".into())
        );
        assert_eq!(config["CONFIG_RUST"], Value::Module, "later line wins");
        assert_eq!(config["CONFIG_SCULL"], Value::Module);
        assert_eq!(config["CONFIG_KASAN"], Value::No);
        assert_eq!(config["CONFIG_LOG_BUF_SHIFT"], Value::Other("17".into()));
        assert_eq!(
            config["CONFIG_PHYSICAL_START"],
            Value::Other("0x1000000".into())
        );
        assert_eq!(config["CONFIG_ODD"], Value::Other("weird value".into()));
    }

    #[test]
    fn apply_replaces_and_appends() {
        let dotconfig = "\
# comment stays
CONFIG_RUST=n
# CONFIG_KASAN is not set
CONFIG_KASAN_GENERIC=y
CONFIG_DEBUG_INFO=y
CONFIG_CMDLINE=\"old\"
CONFIG_DEBUG_INFO=y
CONFIG_UNTOUCHED=m
";
        let req = requested(vec![
            entry("CONFIG_RUST", Value::Yes, "f:1"),
            entry("CONFIG_KASAN", Value::Yes, "f:2"),
            entry("CONFIG_DEBUG_INFO", Value::No, "f:3"),
            entry(
                "CONFIG_CMDLINE",
                Value::Str("console=ttyS0 \"x\"".into()),
                "f:4",
            ),
            entry("CONFIG_ZNEW", Value::Other("0x10".into()), "f:5"),
            entry("CONFIG_ANEW", Value::No, "f:6"),
        ]);
        let out = apply(dotconfig, &req);
        assert_eq!(
            out,
            "\
# comment stays
CONFIG_RUST=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
# CONFIG_DEBUG_INFO is not set
CONFIG_CMDLINE=\"console=ttyS0 \\\"x\\\"\"
CONFIG_UNTOUCHED=m
# CONFIG_ANEW is not set
CONFIG_ZNEW=0x10
"
        );
        // Applying is idempotent and what was applied reads back verified.
        assert_eq!(apply(&out, &req), out);
        assert!(verify(&req, &parse_dotconfig(&out)).is_empty());
        // An empty .config without a final newline.
        assert_eq!(
            apply(
                "CONFIG_A=y",
                &requested(vec![entry("CONFIG_B", Value::Yes, "f:1")])
            ),
            "CONFIG_A=y\nCONFIG_B=y\n"
        );
    }

    #[test]
    fn verify_reports_dropped_options() {
        let req = requested(vec![
            entry("CONFIG_RUST", Value::Yes, "kernel-config/base.config:12"),
            entry("CONFIG_SCULL", Value::Yes, "kernel-config/base.config:13"),
            entry("CONFIG_GONE", Value::Module, "x.config:1"),
            entry("CONFIG_OFF", Value::No, "x.config:2"),
            entry("CONFIG_OFF_ABSENT", Value::No, "x.config:3"),
            entry("CONFIG_ON_BUT_WANTED_OFF", Value::No, "x.config:4"),
            entry("CONFIG_NUM", Value::Other("17".into()), "x.config:5"),
            entry("CONFIG_STR", Value::Str("a".into()), "x.config:6"),
        ]);
        let actual = parse_dotconfig(
            "# CONFIG_RUST is not set\nCONFIG_SCULL=m\n# CONFIG_OFF is not set\n\
             CONFIG_ON_BUT_WANTED_OFF=y\nCONFIG_NUM=17\nCONFIG_STR=\"b\"\n",
        );
        let dropped = verify(&req, &actual);
        let shown: Vec<String> = dropped.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "CONFIG_GONE=m (x.config:1) ended up not set",
                "CONFIG_ON_BUT_WANTED_OFF=n (x.config:4) ended up =y",
                "CONFIG_RUST=y (kernel-config/base.config:12) ended up not set",
                "CONFIG_SCULL=y (kernel-config/base.config:13) ended up =m",
                "CONFIG_STR=\"a\" (x.config:6) ended up =\"b\"",
            ]
        );
        assert_eq!(dropped[0].got, None);
        assert_eq!(dropped[2].got, Some(Value::No));
    }

    #[test]
    fn json_map_for_nix() {
        let req = requested(vec![
            entry("CONFIG_RUST", Value::Yes, "f:1"),
            entry("CONFIG_SCULL", Value::Module, "f:2"),
            entry("CONFIG_KASAN", Value::No, "f:3"),
            entry(
                "CONFIG_CMDLINE",
                Value::Str("console=ttyS0 \"q\"".into()),
                "f:4",
            ),
            entry("CONFIG_SHIFT", Value::Other("17".into()), "f:5"),
        ]);
        let map = to_json_map(&req);
        assert_eq!(
            serde_json::Value::Object(map),
            serde_json::json!({
                "CONFIG_RUST": "y",
                "CONFIG_SCULL": "m",
                "CONFIG_KASAN": "n",
                "CONFIG_CMDLINE": "console=ttyS0 \"q\"",
                "CONFIG_SHIFT": "17",
            })
        );
    }

    #[test]
    fn project_fragments_parse() {
        // The fragments shipped in the repository must stay valid.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-config");
        let Ok(read) = std::fs::read_dir(&dir) else {
            return;
        };
        for file in read {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "config") {
                let text = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = parse_fragment(&text, &path.display().to_string()) {
                    panic!("{e}");
                }
            }
        }
    }

    /// What `make olddefconfig` printed with a probe over KASAN and
    /// VIRTIO_BLK on a tinyconfig base (7.3.4).
    const PROBE_OUTPUT: &str = "\
/tmp/o/lkmlab-why.config:1448:warning: override: reassigning to symbol NR_CPUS

WARNING: unmet direct dependencies detected for KASAN
  Depends on [n]: ((HAVE_ARCH_KASAN [=y] && CC_HAS_KASAN_GENERIC [=y] || HAVE_ARCH_KASAN_SW_TAGS [=n] && CC_HAS_KASAN_SW_TAGS [=n]) && CC_HAS_WORKING_NOSANITIZE_ADDRESS [=y] || HAVE_ARCH_KASAN_HW_TAGS [=n]) && SYSFS [=n] && !SLUB_TINY [=y]
  Selected by [y]:
  - LKMLAB_WHY_DROPPED [=y]

WARNING: unmet direct dependencies detected for SLUB_DEBUG
  Depends on [n]: SYSFS [=n] && !SLUB_TINY [=y]
  Selected by [y]:
  - KASAN_GENERIC [=y] && KASAN [=y]

WARNING: unmet direct dependencies detected for VIRTIO_BLK
  Depends on [n]: BLK_DEV [=n] && VIRTIO [=y]
  Selected by [y]:
  - LKMLAB_WHY_DROPPED [=y]
";

    fn dropped(name: &str, wanted: Value) -> Dropped {
        Dropped {
            name: name.into(),
            wanted,
            got: None,
            origin: "kernel-config/base.config:62".into(),
            reason: None,
        }
    }

    #[test]
    fn kconfig_says_which_reason_applies() {
        let unknown = unknown_symbols(
            "/tmp/o/lkmlab-why.config:1444:warning: unknown symbol: LKMLAB_NO_SUCH_OPTION\n",
        );
        assert_eq!(
            unknown.iter().collect::<Vec<_>>(),
            ["CONFIG_LKMLAB_NO_SUCH_OPTION"]
        );
        let mut all = vec![
            dropped("CONFIG_LKMLAB_NO_SUCH_OPTION", Value::Yes),
            dropped("CONFIG_VIRTIO_BLK", Value::Yes),
            dropped("CONFIG_KASAN", Value::Yes),
            dropped("CONFIG_ZLIB_INFLATE", Value::Yes),
            dropped("CONFIG_NR_CPUS", Value::Other("4".into())),
        ];
        let probed: Vec<String> = probe_candidates(&all, &unknown)
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(
            probed,
            ["CONFIG_VIRTIO_BLK", "CONFIG_KASAN", "CONFIG_ZLIB_INFLATE"]
        );
        explain(&mut all, &unknown, &probed, Some(PROBE_OUTPUT));
        let lines: Vec<String> = all.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            lines[0],
            "CONFIG_LKMLAB_NO_SUCH_OPTION=y (kernel-config/base.config:62) ended up not set: \
             no such symbol in this kernel"
        );
        assert!(
            lines[1].ends_with("not set: dependency not met: BLK_DEV [=n]"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with("not set: dependency not met: SYSFS [=n] && !SLUB_TINY [=y]"),
            "{}",
            lines[2]
        );
        assert_eq!(all[3].reason, Some(Reason::DependenciesMet));
        assert_eq!(all[4].reason, None, "an int cannot be probed with select");
        // A probe that failed to run explains nothing it was to explain.
        let mut again = vec![dropped("CONFIG_VIRTIO_BLK", Value::Yes)];
        explain(&mut again, &BTreeSet::new(), &probed, None);
        assert_eq!(again[0].reason, None);
    }

    #[test]
    fn a_dependency_that_allows_only_m() {
        let mut d = vec![dropped("CONFIG_FOO", Value::Yes)];
        let out = "WARNING: unmet direct dependencies detected for FOO\n  Depends on [m]: BAR [=m] && BAZ [=y]\n";
        explain(&mut d, &BTreeSet::new(), &["CONFIG_FOO".into()], Some(out));
        assert_eq!(
            d[0].reason.as_ref().unwrap().to_string(),
            "dependency not met for =y (it allows only =m): BAR [=m]"
        );
    }

    #[test]
    fn the_probe_selects_each_option_after_the_kernels_own_kconfig() {
        let text = probe_kconfig(
            "mainmenu \"Linux\"\nsource \"init/Kconfig\"",
            &["CONFIG_A", "CONFIG_B"],
        );
        assert_eq!(
            text,
            "mainmenu \"Linux\"\nsource \"init/Kconfig\"\n\nconfig LKMLAB_WHY_DROPPED\n\tdef_bool y\n\tselect A\n\tselect B\n"
        );
    }

    #[test]
    fn failing_terms_of_a_dependency() {
        assert_eq!(
            failing_terms("BLK_DEV [=n] && VIRTIO [=y]", 2),
            "BLK_DEV [=n]"
        );
        assert_eq!(failing_terms("(A [=y] || B [=n]) && C [=m]", 2), "C [=m]");
        assert_eq!(
            failing_terms("(A [=y] || B [=n]) && C [=m]", 1),
            "(A [=y] || B [=n]) && C [=m]"
        );
        assert_eq!(
            failing_terms("!(A [=n] && B [=y]) && !C [=y]", 2),
            "!C [=y]"
        );
        // A comparison is not evaluated here: kept, to be safe.
        assert_eq!(
            failing_terms("X [=y] && CMDLINE [=]=\"\" && Y [=n]", 2),
            "CMDLINE [=]=\"\" && Y [=n]"
        );
        assert_eq!(failing_terms("garbage (", 2), "garbage (");
    }
}
