//! The parser (see the module documentation of [`crate::ktap`]).

/// Every problem about results that never appeared starts with this, so the
/// host can tell a crashed or hung guest from a merely malformed report.
pub const TRUNCATED: &str = "truncated:";

/// The result of one test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Outcome {
    /// `ok` without a directive that says otherwise.
    Pass,
    /// `not ok` (also with `# TIMEOUT`, `# ERROR` or an unknown directive).
    Fail,
    /// `ok` or `not ok` with a `# SKIP` directive.
    Skip,
    /// `# TODO` (or kselftest's `# XFAIL`): not expected to pass yet.
    Todo,
}

/// One test result line, with what was printed before it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct TestCase {
    /// The number on the result line (1-based within its level).
    pub number: u32,
    /// The description on the result line (without a leading `- `).
    pub name: String,
    /// What the result line says happened.
    pub outcome: Outcome,
    /// For `# SKIP` / `# TODO` / `# XFAIL`, the text after the keyword; for any
    /// other text after `#` (e.g. `TIMEOUT 30 seconds`), all of it. `None` when
    /// there is no such text.
    pub directive: Option<String>,
    /// `#` lines (without the leading `# `) and unknown lines seen at this
    /// level since the previous result, in order. For a case with subtests this
    /// also holds the subtest's header lines before its plan (e.g.
    /// `module: foo`) and the lines after its last result.
    pub diagnostics: Vec<String>,
    /// Nested results, for a test that has subtests.
    pub subtests: Vec<TestCase>,
}

/// Everything [`parse`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// The top-level plan (`1..N`), summed over concatenated documents; `None`
    /// if there was none (e.g. when the only plan belongs to a `# Subtest:`).
    pub plan: Option<u32>,
    /// The top-level results.
    pub cases: Vec<TestCase>,
    /// The reason given on the first `Bail out!` line, if any.
    pub bail_out: Option<String>,
    /// The text after `#` on the first top-level plan line, if any (a skipped
    /// run's `1..0 # SKIP reason`).
    pub plan_directive: Option<String>,
    /// Structural problems, in readable English. Those about missing results
    /// start with [`TRUNCATED`].
    pub problems: Vec<String>,
}

/// Numbers of top-level results by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Counts {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that were skipped (including `TODO`).
    pub skipped: usize,
}

/// The verdict on a whole report, in the terms of the kernel's own parser
/// (`tools/testing/kunit/kunit_parser.py`'s `TestStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Status {
    /// Every case passed or was skipped, and at least one passed.
    Passed,
    /// A case failed, the document bailed out or is malformed.
    Failed,
    /// Results are missing: the output ends early (see [`TRUNCATED`]).
    Crashed,
    /// There were cases and every one was skipped (or `TODO`).
    Skipped,
    /// No case at all: a `1..0` plan, or nothing but a header.
    NoTests,
}

impl Report {
    /// The verdict: missing results first, then failures, then whether any
    /// case ran and passed.
    pub fn status(&self) -> Status {
        let counts = self.counts();
        if self.is_truncated() {
            Status::Crashed
        } else if counts.failed > 0 || self.bail_out.is_some() {
            Status::Failed
        } else if self.cases.is_empty() {
            Status::NoTests
        } else if !self.problems.is_empty() {
            Status::Failed
        } else if counts.passed == 0 {
            Status::Skipped
        } else {
            Status::Passed
        }
    }

    /// Counts the top-level cases by outcome (`Todo` counts as skipped).
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for case in &self.cases {
            match case.outcome {
                Outcome::Pass => counts.passed += 1,
                Outcome::Fail => counts.failed += 1,
                Outcome::Skip | Outcome::Todo => counts.skipped += 1,
            }
        }
        counts
    }

    /// Whether results are missing: the output ended inside a subtest, or a
    /// plan promised more results than appeared.
    pub fn is_truncated(&self) -> bool {
        self.problems.iter().any(|p| p.starts_with(TRUNCATED))
    }
}

/// Parses KTAP text (already extracted from a log, see [`extract`]).
pub fn parse(text: &str) -> Report {
    let mut parser = Parser::new();
    for raw in text.lines() {
        let (indent, line) = classify(raw);
        match line {
            Line::Blank => {}
            Line::Diag(text) | Line::Unknown(text) => parser.note(text),
            Line::BailOut(reason) => {
                if parser.bail_out.is_none() {
                    parser.bail_out = Some(reason.to_string());
                }
            }
            Line::Version => parser.structural(indent, Structural::Version),
            Line::Subtest(name) => parser.structural(indent, Structural::Subtest(name)),
            Line::Plan(n, comment) => parser.structural(indent, Structural::Plan(n, comment)),
            Line::Result(r) => parser.structural(indent, Structural::Result(r)),
        }
    }
    parser.finish()
}

/// Finds the KTAP output in a whole console or kernel log.
///
/// The first line containing `KTAP version N` or `TAP version N` starts it;
/// the text before the marker on that line is the prefix every KTAP line
/// carries (e.g. a printk timestamp). Following lines have the prefix removed;
/// lines without it are dropped. A prefix made of `[...]` groups (printk
/// timestamps such as `[    1.234567] `, optionally with a caller id) matches
/// any line starting with the same number of bracketed groups followed by the
/// same text, so changing timestamps are handled. Returns `None` if there is no
/// version line. Like the kernel's `kunit_parser`, everything after the header
/// that carries the prefix is kept; [`parse`] keeps unknown lines as
/// diagnostics.
pub fn extract(log: &str) -> Option<String> {
    let mut lines = log.lines();
    let (prefix, first) = loop {
        let line = lines.next()?;
        if let Some(pos) = version_marker(line) {
            break (Prefix::new(&line[..pos]), &line[pos..]);
        }
    };
    let mut out = String::new();
    out.push_str(first.trim_end());
    out.push('\n');
    for line in lines {
        if let Some(rest) = prefix.strip(line) {
            out.push_str(rest.trim_end());
            out.push('\n');
        }
    }
    Some(out)
}

/// Byte offset of a `KTAP version N` / `TAP version N` marker that ends the
/// line.
fn version_marker(line: &str) -> Option<usize> {
    for (pos, _) in line.match_indices("TAP version ") {
        let rest = line[pos + "TAP version ".len()..].trim_end();
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if pos > 0 && line.as_bytes()[pos - 1] == b'K' {
            return Some(pos - 1);
        }
        return Some(pos);
    }
    None
}

/// The prefix in front of every KTAP line of a log.
struct Prefix {
    /// Number of leading `[...]` groups (timestamps, caller ids).
    brackets: usize,
    /// Literal text after those groups.
    rest: String,
}

impl Prefix {
    fn new(prefix: &str) -> Self {
        let mut brackets = 0;
        let mut rest = prefix;
        while let Some(after) = strip_bracket_group(rest) {
            brackets += 1;
            rest = after;
        }
        Prefix {
            brackets,
            rest: rest.to_string(),
        }
    }

    fn strip<'a>(&self, line: &'a str) -> Option<&'a str> {
        let mut line = line;
        for _ in 0..self.brackets {
            line = strip_bracket_group(line)?;
        }
        line.strip_prefix(self.rest.as_str())
    }
}

/// Removes one leading `[...]` group.
fn strip_bracket_group(s: &str) -> Option<&str> {
    let inner = s.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(&inner[end + 1..])
}

/// A classified input line.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Version,
    Subtest(Option<&'a str>),
    /// `1..N` and the text after a `#` on it.
    Plan(u32, Option<&'a str>),
    Result(ResultLine<'a>),
    BailOut(&'a str),
    Diag(&'a str),
    Unknown(&'a str),
}

/// The parts of an `ok` / `not ok` line.
#[derive(Debug, PartialEq, Eq)]
struct ResultLine<'a> {
    ok: bool,
    number: Option<u32>,
    name: &'a str,
    comment: Option<&'a str>,
}

/// The lines that shape the test tree.
enum Structural<'a> {
    Version,
    Subtest(Option<&'a str>),
    Plan(u32, Option<&'a str>),
    Result(ResultLine<'a>),
}

/// Indentation width (a tab counts as four spaces) and kind of a line.
fn classify(raw: &str) -> (usize, Line<'_>) {
    let mut indent = 0;
    for c in raw.chars() {
        match c {
            ' ' => indent += 1,
            '\t' => indent += 4,
            _ => break,
        }
    }
    let line = raw.trim();
    if line.is_empty() {
        return (indent, Line::Blank);
    }
    let kind = if is_version(line) {
        Line::Version
    } else if let Some(rest) = line.strip_prefix("# Subtest") {
        match rest.strip_prefix(':') {
            Some(name) => {
                let name = name.trim();
                Line::Subtest((!name.is_empty()).then_some(name))
            }
            None if rest.is_empty() => Line::Subtest(None),
            None => Line::Diag(diag_text(line)),
        }
    } else if let Some(rest) = line.strip_prefix("Bail out!") {
        Line::BailOut(rest.trim())
    } else if line.starts_with('#') {
        Line::Diag(diag_text(line))
    } else if let Some((n, comment)) = parse_plan(line) {
        Line::Plan(n, comment)
    } else if let Some(r) = parse_result(line) {
        Line::Result(r)
    } else {
        Line::Unknown(line)
    };
    (indent, kind)
}

fn diag_text(line: &str) -> &str {
    let text = line.strip_prefix('#').unwrap_or(line);
    text.strip_prefix(' ').unwrap_or(text)
}

fn is_version(line: &str) -> bool {
    let rest = line
        .strip_prefix("KTAP version ")
        .or_else(|| line.strip_prefix("TAP version "));
    matches!(rest, Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `1..N`, optionally followed by a `# comment` (e.g. `1..0 # SKIP reason`):
/// the count and the comment's text.
fn parse_plan(line: &str) -> Option<(u32, Option<&str>)> {
    let rest = line.strip_prefix("1..")?;
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n = rest[..digits_end].parse().ok()?;
    let tail = rest[digits_end..].trim_start();
    if tail.is_empty() {
        return Some((n, None));
    }
    let comment = tail.strip_prefix('#')?.trim();
    Some((n, (!comment.is_empty()).then_some(comment)))
}

/// `ok|not ok [N] [- ]description[ # directive]`.
fn parse_result(line: &str) -> Option<ResultLine<'_>> {
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok") {
        (false, rest)
    } else {
        (true, line.strip_prefix("ok")?)
    };
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let rest = rest.trim_start();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = if digits_end == 0 {
        None
    } else {
        Some(rest[..digits_end].parse().ok()?)
    };
    let rest = &rest[digits_end..];
    if number.is_some() && !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = if rest == "-" {
        ""
    } else {
        rest.strip_prefix("- ").unwrap_or(rest)
    };
    let (name, comment) = match rest.split_once('#') {
        Some((name, comment)) => (name, Some(comment.trim())),
        None => (rest, None),
    };
    Some(ResultLine {
        ok,
        number,
        name: name.trim(),
        comment,
    })
}

/// Outcome and directive text of a result line.
fn interpret(ok: bool, comment: Option<&str>) -> (Outcome, Option<String>) {
    let base = if ok { Outcome::Pass } else { Outcome::Fail };
    let Some(comment) = comment.filter(|c| !c.is_empty()) else {
        return (base, None);
    };
    let (word, rest) = comment
        .split_once(char::is_whitespace)
        .unwrap_or((comment, ""));
    let word = word.to_ascii_uppercase();
    let rest = rest.trim();
    let rest = (!rest.is_empty()).then(|| rest.to_string());
    if word.starts_with("SKIP") {
        (Outcome::Skip, rest)
    } else if word.starts_with("TODO") || word == "XFAIL" {
        (Outcome::Todo, rest)
    } else {
        (base, Some(comment.to_string()))
    }
}

/// A `# Subtest:` line (and the plan after it) at some level, waiting for
/// the indented block it introduces.
struct PendingHeader {
    name: Option<String>,
    plan: Option<u32>,
}

/// One open level of the test tree.
#[derive(Default)]
struct Doc {
    /// Indentation of the level's results.
    indent: usize,
    /// Indentation of the level's header: lines indented less end the level.
    /// It equals `indent` unless the level's results sit deeper than its
    /// header (see [`Doc::takes_deeper_results`]).
    floor: usize,
    /// Name from the doc's own `# Subtest:` line.
    label: Option<String>,
    /// Sum of the plans of completed sections.
    plan_total: Option<u32>,
    /// Plan and result count of the current section (documents restart the
    /// section when a new version line follows results).
    section_plan: Option<u32>,
    section_results: u32,
    /// Whether results or nested blocks were seen at this level.
    has_results: bool,
    expected_next: u32,
    cases: Vec<TestCase>,
    /// The first case whose own result line said `not ok` (a failure the
    /// parser made up for a missing result line is reported otherwise).
    first_failure: Option<String>,
    /// Diagnostics of a subtest before its plan: they describe the parent.
    header_diags: Vec<String>,
    /// Diagnostics waiting for the next result at this level.
    pending_diags: Vec<String>,
    pending_header: Option<PendingHeader>,
}

impl Doc {
    fn new(indent: usize) -> Self {
        Doc {
            indent,
            floor: indent,
            expected_next: 1,
            ..Doc::default()
        }
    }

    fn in_header(&self) -> bool {
        self.section_plan.is_none() && !self.has_results
    }

    /// Whether a result line indented deeper than this level is this level's
    /// first result rather than a subtest of its own: the level has printed
    /// its plan and nothing else yet. A subtest starts with its header
    /// (version, `# Subtest:` or plan line, as ktap.rst has it); a bare result
    /// can only answer the plan. (kunit's test_data has such a document,
    /// `test_is_test_passed-failure-nested.log`, and kunit.py reads it so.)
    fn takes_deeper_results(&self) -> bool {
        self.section_plan.is_some() && !self.has_results && self.pending_header.is_none()
    }

    /// Closes the current section; returns `(plan, results)` if they differ.
    fn finish_section(&mut self) -> Option<(u32, u32)> {
        let results = std::mem::take(&mut self.section_results);
        let plan = self.section_plan.take()?;
        self.plan_total = Some(self.plan_total.unwrap_or(0).saturating_add(plan));
        (plan != results).then_some((plan, results))
    }
}

struct Parser {
    /// The open levels above `cur`; `parents[0]` (or `cur` when there are no
    /// parents) is the top level.
    parents: Vec<Doc>,
    cur: Doc,
    started: bool,
    problems: Vec<String>,
    bail_out: Option<String>,
    plan_directive: Option<String>,
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn count_problem(subject: &str, plan: u32, results: u32) -> String {
    if results < plan {
        format!(
            "{TRUNCATED} {subject}plan 1..{plan} but only {results} result{}",
            plural(results)
        )
    } else {
        format!(
            "{subject}plan 1..{plan} but {results} result{}",
            plural(results)
        )
    }
}

impl Parser {
    fn new() -> Self {
        Parser {
            parents: Vec::new(),
            cur: Doc::new(0),
            started: false,
            problems: Vec::new(),
            bail_out: None,
            plan_directive: None,
        }
    }

    fn nested(&self) -> bool {
        !self.parents.is_empty()
    }

    fn push(&mut self, doc: Doc) {
        let parent = std::mem::replace(&mut self.cur, doc);
        self.parents.push(parent);
    }

    fn pop(&mut self) -> Option<Doc> {
        let parent = self.parents.pop()?;
        Some(std::mem::replace(&mut self.cur, parent))
    }

    /// Dotted name of `leaf` as a subtest of the current level.
    fn path(&self, leaf: &str) -> String {
        let mut parts: Vec<&str> = self
            .parents
            .iter()
            .skip(1)
            .chain(self.nested().then_some(&self.cur))
            .map(|d| d.label.as_deref().unwrap_or("?"))
            .collect();
        parts.push(leaf);
        parts.join(".")
    }

    /// "subtest 'a.b' " for a nested current level, "" for the top level.
    fn subject(&self) -> String {
        if self.nested() {
            let path = self.path("");
            format!("subtest '{}' ", path.trim_end_matches('.'))
        } else {
            String::new()
        }
    }

    /// A diagnostic or unknown line.
    fn note(&mut self, text: &str) {
        if self.nested() && self.cur.in_header() {
            self.cur.header_diags.push(text.to_string());
        } else {
            self.cur.pending_diags.push(text.to_string());
        }
    }

    fn structural(&mut self, indent: usize, line: Structural<'_>) {
        if !self.started {
            self.started = true;
            self.cur.indent = indent;
            self.cur.floor = indent;
            if !matches!(line, Structural::Version) {
                self.problems.push("missing KTAP version line".to_string());
            }
        }

        // Leave the levels this line is outdented from.
        let mut closed = None;
        while self.nested() && indent < self.cur.floor {
            let Some(child) = self.pop() else { break };
            if self.nested() && indent < self.cur.floor {
                // Its parent ends too, so it cannot get a result line.
                self.attach_unfinished(child, false);
            } else {
                closed = Some(child);
            }
        }

        // Results deeper than their level's header belong to that level.
        if indent > self.cur.indent
            && closed.is_none()
            && matches!(line, Structural::Result(_))
            && self.cur.takes_deeper_results()
        {
            self.cur.indent = indent;
        }

        // Enter a deeper level.
        let entered = indent > self.cur.indent;
        if entered {
            if let Some(child) = closed.take() {
                self.attach_unfinished(child, false);
            }
            self.cur.has_results = true;
            let mut doc = Doc::new(indent);
            if let Some(header) = self.cur.pending_header.take() {
                doc.label = header.name;
                doc.section_plan = header.plan;
            }
            self.push(doc);
        }

        if let Structural::Result(result) = line {
            self.result(result, closed);
            return;
        }
        if let Some(child) = closed {
            self.attach_unfinished(child, false);
        }
        match line {
            // The version line that opens a level is its header.
            Structural::Version if entered => {}
            Structural::Version => self.version(),
            Structural::Subtest(name) => self.subtest(name),
            Structural::Plan(n, comment) => self.plan(n, comment),
            Structural::Result(_) => {}
        }
    }

    /// A version line after a plan or results starts a new document at the
    /// same level (as when each module load prints its own header, after the
    /// boot-time `1..0` of a kernel with no built-in suite); elsewhere it is
    /// just the header of the current level.
    fn version(&mut self) {
        if self.cur.has_results || self.cur.section_plan.is_some() {
            let mismatch = self.cur.finish_section();
            self.cur.expected_next = 1;
            if let Some((plan, results)) = mismatch {
                let subject = self.subject();
                self.problems.push(count_problem(&subject, plan, results));
            }
        }
    }

    fn subtest(&mut self, name: Option<&str>) {
        let doc = &mut self.cur;
        if !self.parents.is_empty()
            && doc.label.is_none()
            && doc.in_header()
            && doc.pending_header.is_none()
        {
            doc.label = name.map(str::to_string);
        } else {
            doc.pending_header = Some(PendingHeader {
                name: name.map(str::to_string),
                plan: None,
            });
        }
    }

    fn plan(&mut self, n: u32, comment: Option<&str>) {
        let top = !self.nested();
        let doc = &mut self.cur;
        if let Some(header) = doc.pending_header.as_mut().filter(|h| h.plan.is_none()) {
            header.plan = Some(n);
        } else if doc.section_plan.is_none() {
            doc.section_plan = Some(n);
            if top && self.plan_directive.is_none() {
                self.plan_directive = comment.map(str::to_string);
            }
        } else {
            let subject = self.subject();
            self.problems
                .push(format!("{subject}has a second plan line 1..{n}"));
        }
    }

    fn result(&mut self, r: ResultLine<'_>, closed: Option<Doc>) {
        let (outcome, directive) = interpret(r.ok, r.comment);
        let doc = &mut self.cur;
        let expected = doc.expected_next;
        let number = r.number.unwrap_or(expected);
        doc.expected_next = number.saturating_add(1);
        let mut case = TestCase {
            number,
            name: r.name.to_string(),
            outcome,
            directive,
            diagnostics: std::mem::take(&mut doc.pending_diags),
            subtests: Vec::new(),
        };
        let mut child_mismatch = None;
        let mut failed_child = None;
        if let Some(mut child) = closed {
            child_mismatch = child.finish_section();
            failed_child = child.first_failure.take();
            case.diagnostics.append(&mut child.header_diags);
            case.diagnostics.append(&mut child.pending_diags);
            case.subtests = child.cases;
        } else if let Some(header) = doc.pending_header.take() {
            if header.name.as_deref() == Some(r.name) {
                // A subtest that printed its header and plan but no results.
                child_mismatch = header.plan.filter(|&p| p != 0).map(|p| (p, 0));
            } else if doc.section_plan.is_none() {
                // Header and plan at this level with results at this level:
                // a flat TAP 14 document.
                doc.section_plan = header.plan;
            }
        }
        doc.section_results += 1;
        doc.has_results = true;
        if outcome == Outcome::Fail && doc.first_failure.is_none() {
            doc.first_failure = Some(r.name.to_string());
        }
        doc.cases.push(case);

        if number != expected {
            let subject = self.subject();
            let place = if subject.is_empty() {
                String::new()
            } else {
                format!(" in {}", subject.trim_end())
            };
            self.problems.push(format!(
                "result numbers out of order{place}: expected {expected}, got {number}"
            ));
        }
        if let Some((plan, results)) = child_mismatch {
            let subject = format!("subtest '{}' ", self.path(r.name));
            self.problems.push(count_problem(&subject, plan, results));
        }
        // ktap.rst: "If one of the subtests fail, for example, the parent
        // test should also fail" (kunit.py fails the run).
        let said = match outcome {
            Outcome::Pass => Some("ok"),
            Outcome::Skip => Some("skipped"),
            Outcome::Fail | Outcome::Todo => None,
        };
        if let (Some(said), Some(child)) = (said, failed_child) {
            self.problems.push(format!(
                "test '{}' is {said} but its subtest '{child}' failed; a test with a failed \
                 subtest fails",
                self.path(r.name)
            ));
        }
    }

    /// Turns a subtest that never got its result line into a failed case of
    /// the current level.
    fn attach_unfinished(&mut self, mut child: Doc, eof: bool) {
        if eof {
            self.push(child);
            self.close_pending_header();
            child = match self.pop() {
                Some(child) => child,
                None => return,
            };
        }
        let fallback = if eof {
            "<unfinished subtest>"
        } else {
            "<subtest without result line>"
        };
        let name = child.label.clone().unwrap_or_else(|| fallback.to_string());
        let path = self.path(&name);
        if let Some((plan, results)) = child.finish_section() {
            self.problems
                .push(count_problem(&format!("subtest '{path}' "), plan, results));
        }
        self.problems.push(if eof {
            format!("{TRUNCATED} output ends inside subtest '{path}'")
        } else {
            format!("subtest '{path}' has no result line")
        });
        let doc = &mut self.cur;
        let mut diagnostics = std::mem::take(&mut doc.pending_diags);
        diagnostics.append(&mut child.header_diags);
        diagnostics.append(&mut child.pending_diags);
        doc.cases.push(TestCase {
            number: doc.expected_next,
            name,
            outcome: Outcome::Fail,
            directive: None,
            diagnostics,
            subtests: child.cases,
        });
        doc.expected_next = doc.expected_next.saturating_add(1);
        doc.section_results += 1;
        doc.has_results = true;
    }

    /// At the end of input, a `# Subtest:` header of the current level whose
    /// block never started is an unfinished subtest.
    fn close_pending_header(&mut self) {
        if let Some(header) = self.cur.pending_header.take() {
            let mut child = Doc::new(self.cur.indent);
            child.label = header.name;
            child.section_plan = header.plan;
            self.attach_unfinished(child, true);
        }
    }

    fn finish(mut self) -> Report {
        let unfinished = "<unfinished subtest>";
        for doc in self.parents.iter_mut().skip(1) {
            doc.label.get_or_insert_with(|| unfinished.to_string());
        }
        if self.nested() {
            self.cur.label.get_or_insert_with(|| unfinished.to_string());
        }
        while let Some(child) = self.pop() {
            self.attach_unfinished(child, true);
        }
        self.close_pending_header();
        let mut top = self.cur;
        if let Some((plan, results)) = top.finish_section() {
            self.problems.push(count_problem("", plan, results));
        }
        if !self.started {
            self.problems
                .push("no KTAP output: no version line, plan or results".to_string());
        } else if top.cases.is_empty() && top.plan_total.is_none() {
            self.problems
                .push("no test plan and no results".to_string());
        }
        Report {
            plan: top.plan_total,
            cases: top.cases,
            bail_out: self.bail_out,
            plan_directive: self.plan_directive,
            problems: self.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(cases: &[TestCase]) -> Vec<&str> {
        cases.iter().map(|c| c.name.as_str()).collect()
    }

    fn outcomes(cases: &[TestCase]) -> Vec<Outcome> {
        cases.iter().map(|c| c.outcome).collect()
    }

    /// Suite results as older kernels wrote them to debugfs: suite header and
    /// plan at column 0, the suite's cases indented.
    #[test]
    fn kunit_debugfs_results() {
        let text = "\
KTAP version 1
# Subtest: scull_buffer
# module: scull
1..3
    ok 1 append_within_capacity
    ok 2 write_past_capacity_is_truncated
    not ok 3 clear_empties_buffer
    # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
# scull_buffer: pass:2 fail:1 skip:0 total:3
# Totals: pass:2 fail:1 skip:0 total:3
not ok 1 scull_buffer
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, None);
        assert_eq!(report.bail_out, None);
        assert_eq!(report.cases.len(), 1);
        let suite = &report.cases[0];
        assert_eq!(suite.number, 1);
        assert_eq!(suite.name, "scull_buffer");
        assert_eq!(suite.outcome, Outcome::Fail);
        assert_eq!(
            names(&suite.subtests),
            [
                "append_within_capacity",
                "write_past_capacity_is_truncated",
                "clear_empties_buffer"
            ]
        );
        assert_eq!(
            outcomes(&suite.subtests),
            [Outcome::Pass, Outcome::Pass, Outcome::Fail]
        );
        assert_eq!(
            suite.subtests.iter().map(|c| c.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(
            suite.diagnostics,
            [
                "module: scull",
                "clear_empties_buffer: ASSERTION FAILED at scull.rs:120",
                "scull_buffer: pass:2 fail:1 skip:0 total:3",
                "Totals: pass:2 fail:1 skip:0 total:3",
            ]
        );
        assert_eq!(
            report.counts(),
            Counts {
                passed: 0,
                failed: 1,
                skipped: 0
            }
        );
        assert!(!report.is_truncated());
    }

    /// What the lkmlab guest runner writes: its own cases at the top level,
    /// a current kernel's debugfs `results` file for a suite nested one level
    /// deeper inside the case that ran it.
    #[test]
    fn guest_runner_wrapping_debugfs_results() {
        let text = "\
KTAP version 1
1..2
# running hello.loads
ok 1 hello.loads
# running scull.kunit
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: scull_buffer
        1..3
        ok 1 append_within_capacity
        ok 2 write_past_capacity_is_truncated
        # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
        Expected buf.len() == 0, but
            buf.len() == 3 (0x3)
        not ok 3 clear_empties_buffer
    # scull_buffer: pass:2 fail:1 skip:0 total:3
    not ok 1 scull_buffer
not ok 2 scull.kunit
# lkmlab-guest: done
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report.cases), ["hello.loads", "scull.kunit"]);
        assert_eq!(report.cases[0].diagnostics, ["running hello.loads"]);
        let kunit = &report.cases[1];
        assert_eq!(kunit.outcome, Outcome::Fail);
        assert_eq!(kunit.diagnostics, ["running scull.kunit"]);
        let suite = &kunit.subtests[0];
        assert_eq!(suite.name, "scull_buffer");
        assert_eq!(
            suite.diagnostics,
            ["scull_buffer: pass:2 fail:1 skip:0 total:3"]
        );
        let failed = &suite.subtests[2];
        assert_eq!(failed.outcome, Outcome::Fail);
        assert_eq!(
            failed.diagnostics,
            [
                "clear_empties_buffer: ASSERTION FAILED at scull.rs:120",
                "Expected buf.len() == 0, but",
                "buf.len() == 3 (0x3)",
            ]
        );
        assert_eq!(
            report.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
    }

    /// The guest died while a case was running.
    #[test]
    fn guest_runner_crash_mid_case() {
        let text = "\
KTAP version 1
1..3
# running hello.loads
ok 1 hello.loads
# running scull.kunit
    KTAP version 1
    1..1
        KTAP version 1
        # Subtest: scull_buffer
        1..3
        ok 1 append_within_capacity
";
        let report = parse(text);
        assert!(report.is_truncated());
        assert_eq!(
            names(&report.cases),
            ["hello.loads", "<unfinished subtest>"]
        );
        assert_eq!(report.cases[1].diagnostics, ["running scull.kunit"]);
        assert_eq!(report.cases[1].subtests[0].name, "scull_buffer");
        assert!(report
            .problems
            .contains(&"truncated: plan 1..3 but only 2 results".to_string()));
    }

    /// KUnit console output of a current kernel (a Rust `#[kunit_tests]`
    /// suite and a parameterised C test).
    #[test]
    fn kunit_console_output() {
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: rust_doctests_kernel
    # module: kernel
    1..2
    # rust_doctest_kernel_alloc_0.location: rust/kernel/alloc.rs:12
    ok 1 rust_doctest_kernel_alloc_0
    # rust_doctest_kernel_sync_1.location: rust/kernel/sync.rs:40
    ok 2 rust_doctest_kernel_sync_1
# rust_doctests_kernel: pass:2 fail:0 skip:0 total:2
ok 1 rust_doctests_kernel
    KTAP version 1
    # Subtest: example
    # module: kunit_example_test
    1..3
    # example_simple_test: initializing
    # example_simple_test: cleaning up
    ok 1 example_simple_test
    # example_skip_test: initializing
    ok 2 example_skip_test # SKIP this test should be skipped
        KTAP version 1
        # Subtest: example_params_test
        ok 1 example value 3 # SKIP unsupported param value 3
        ok 2 example value 2
        not ok 3 example value 1
    # example_params_test: pass:1 fail:1 skip:1 total:3
    not ok 3 example_params_test
# example: pass:1 fail:1 skip:1 total:3
# Totals: pass:1 fail:1 skip:1 total:3
not ok 2 example
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report.cases), ["rust_doctests_kernel", "example"]);
        assert_eq!(outcomes(&report.cases), [Outcome::Pass, Outcome::Fail]);

        let doctests = &report.cases[0];
        assert_eq!(doctests.diagnostics[0], "module: kernel");
        assert_eq!(
            doctests.subtests[0].diagnostics,
            ["rust_doctest_kernel_alloc_0.location: rust/kernel/alloc.rs:12"]
        );

        let example = &report.cases[1];
        assert_eq!(
            names(&example.subtests),
            [
                "example_simple_test",
                "example_skip_test",
                "example_params_test"
            ]
        );
        assert_eq!(
            example.subtests[0].diagnostics,
            [
                "example_simple_test: initializing",
                "example_simple_test: cleaning up"
            ]
        );
        let skipped = &example.subtests[1];
        assert_eq!(skipped.outcome, Outcome::Skip);
        assert_eq!(
            skipped.directive.as_deref(),
            Some("this test should be skipped")
        );
        let params = &example.subtests[2];
        assert_eq!(params.outcome, Outcome::Fail);
        assert_eq!(
            names(&params.subtests),
            ["example value 3", "example value 2", "example value 1"]
        );
        assert_eq!(
            outcomes(&params.subtests),
            [Outcome::Skip, Outcome::Pass, Outcome::Fail]
        );
        assert_eq!(
            params.diagnostics,
            ["example_params_test: pass:1 fail:1 skip:1 total:3"]
        );
        assert_eq!(
            report.counts(),
            Counts {
                passed: 1,
                failed: 1,
                skipped: 0
            }
        );
    }

    /// The "Example KTAP output" of ktap.rst (two-space indentation).
    #[test]
    fn spec_example() {
        let text = "\
KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(1));
        assert_eq!(names(&report.cases), ["main_test"]);
        let main = &report.cases[0];
        assert_eq!(main.outcome, Outcome::Fail);
        assert_eq!(
            names(&main.subtests),
            ["example_test_1", "example_test_2", "example_test_3"]
        );
        assert_eq!(
            outcomes(&main.subtests),
            [Outcome::Pass, Outcome::Pass, Outcome::Fail]
        );
        let t1 = &main.subtests[0].subtests[0];
        assert_eq!(t1.name, "test_1");
        assert_eq!(t1.diagnostics, ["test_1: initializing test_1"]);
        let ex2 = &main.subtests[1];
        assert_eq!(outcomes(&ex2.subtests), [Outcome::Skip, Outcome::Pass]);
        assert_eq!(ex2.subtests[0].directive.as_deref(), Some("test_1 skipped"));
        let ex3 = &main.subtests[2];
        assert_eq!(
            outcomes(&ex3.subtests),
            [Outcome::Pass, Outcome::Fail, Outcome::Skip]
        );
        assert_eq!(ex3.subtests[1].diagnostics, ["test_2: FAIL"]);
    }

    /// The second nesting example of ktap.rst, where a subtest's results and
    /// its siblings' sit at different depths.
    #[test]
    fn spec_multiple_levels() {
        let text = "\
KTAP version 1
1..2
  KTAP version 1
  1..2
    KTAP version 1
    1..2
    not ok 1 test_1
    ok 2 test_2
  not ok 1 test_3
  ok 2 test_4 # SKIP
not ok 1 example_test_1
ok 2 example_test_2
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases), ["example_test_1", "example_test_2"]);
        let first = &report.cases[0];
        assert_eq!(names(&first.subtests), ["test_3", "test_4"]);
        assert_eq!(names(&first.subtests[0].subtests), ["test_1", "test_2"]);
        assert_eq!(first.subtests[1].outcome, Outcome::Skip);
        assert_eq!(first.subtests[1].directive, None);
        assert!(report.cases[1].subtests.is_empty());
    }

    /// The first nesting example: a diagnostic at the outer level after the
    /// subtest's results belongs to the parent's result.
    #[test]
    fn spec_two_nested_subtests() {
        let text = "\
KTAP version 1
1..1
  KTAP version 1
  1..2
  ok 1 test_1
  not ok 2 test_2
# example failed
not ok 1 example
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.cases[0].diagnostics, ["example failed"]);
        assert_eq!(
            outcomes(&report.cases[0].subtests),
            [Outcome::Pass, Outcome::Fail]
        );
    }

    #[test]
    fn old_kunit_tap14_format() {
        let text = "\
TAP version 14
1..1
    # Subtest: example
    1..2
    # example_simple_test: initializing
    ok 1 - example_simple_test
    ok 2 - example_skip_test # SKIP this test should be skipped
ok 1 - example
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases), ["example"]);
        let suite = &report.cases[0];
        assert_eq!(
            names(&suite.subtests),
            ["example_simple_test", "example_skip_test"]
        );
        assert_eq!(outcomes(&suite.subtests), [Outcome::Pass, Outcome::Skip]);
        assert_eq!(
            suite.subtests[0].diagnostics,
            ["example_simple_test: initializing"]
        );
    }

    #[test]
    fn flat_tap13_with_subtest_header() {
        let text = "\
TAP version 13
# Subtest: flat
1..2
ok 1 a
ok 2 b
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report.cases), ["a", "b"]);
    }

    #[test]
    fn tab_indentation() {
        let text = "KTAP version 1\n1..1\n\tKTAP version 1\n\t1..1\n\tok 1 inner\nok 1 outer\n";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases[0].subtests), ["inner"]);
    }

    #[test]
    fn directives() {
        let text = "\
KTAP version 1
1..9
ok 1 plain
not ok 2 failed
ok 3 skipped # SKIP necessary dependency unavailable
not ok 4 skipped_too # SKIP
ok 5 todo # TODO not implemented yet
not ok 6 xfail # XFAIL known bug
not ok 7 timeout # TIMEOUT 30 seconds
ok 8 check return code # rcode=0
ok 9 lowercase # skip no hardware
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        let got: Vec<(Outcome, Option<&str>)> = report
            .cases
            .iter()
            .map(|c| (c.outcome, c.directive.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Outcome::Pass, None),
                (Outcome::Fail, None),
                (Outcome::Skip, Some("necessary dependency unavailable")),
                (Outcome::Skip, None),
                (Outcome::Todo, Some("not implemented yet")),
                (Outcome::Todo, Some("known bug")),
                (Outcome::Fail, Some("TIMEOUT 30 seconds")),
                (Outcome::Pass, Some("rcode=0")),
                (Outcome::Skip, Some("no hardware")),
            ]
        );
        assert_eq!(report.cases[7].name, "check return code");
        assert_eq!(
            report.counts(),
            Counts {
                passed: 2,
                failed: 2,
                skipped: 5
            }
        );
    }

    #[test]
    fn unknown_lines_are_diagnostics() {
        // Kernel messages interleaved at any indentation do not end a subtest.
        let text = "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: suite
    1..2
random: crng init done
    ok 1 first
        some deeply indented noise
    Expected 1 == 2, but
    not ok 2 second
not ok 1 suite
trailing noise
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        let suite = &report.cases[0];
        assert_eq!(suite.outcome, Outcome::Fail);
        assert_eq!(suite.subtests[0].diagnostics, ["random: crng init done"]);
        assert_eq!(
            suite.subtests[1].diagnostics,
            ["some deeply indented noise", "Expected 1 == 2, but"]
        );
    }

    #[test]
    fn bail_out() {
        let text = "\
KTAP version 1
1..3
ok 1 first
Bail out! cannot open /dev/scull0
";
        let report = parse(text);
        assert_eq!(report.bail_out.as_deref(), Some("cannot open /dev/scull0"));
        assert_eq!(report.cases.len(), 1);
        assert_eq!(report.problems, ["truncated: plan 1..3 but only 1 result"]);
    }

    #[test]
    fn truncated_top_level() {
        let report = parse("KTAP version 1\n1..5\nok 1 a\nok 2 b\nnot ok 3 c\n");
        assert_eq!(report.plan, Some(5));
        assert_eq!(report.cases.len(), 3);
        assert_eq!(report.problems, ["truncated: plan 1..5 but only 3 results"]);
        assert!(report.is_truncated());
    }

    #[test]
    fn truncated_inside_subtest() {
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: scull_buffer
    1..3
    ok 1 append_within_capacity
    # write_past_capacity_is_truncated: initializing
";
        let report = parse(text);
        assert_eq!(report.cases.len(), 1);
        let suite = &report.cases[0];
        assert_eq!(suite.name, "scull_buffer");
        assert_eq!(suite.number, 1);
        assert_eq!(suite.outcome, Outcome::Fail);
        assert_eq!(names(&suite.subtests), ["append_within_capacity"]);
        assert_eq!(
            suite.diagnostics,
            ["write_past_capacity_is_truncated: initializing"]
        );
        assert_eq!(
            report.problems,
            [
                "truncated: subtest 'scull_buffer' plan 1..3 but only 1 result",
                "truncated: output ends inside subtest 'scull_buffer'",
                "truncated: plan 1..2 but only 1 result",
            ]
        );
        assert!(report.is_truncated());
    }

    #[test]
    fn truncated_unnamed_nested_subtests() {
        let text = "\
KTAP version 1
1..1
  KTAP version 1
  1..2
    KTAP version 1
    1..2
    ok 1 deep
";
        let report = parse(text);
        let outer = &report.cases[0];
        assert_eq!(outer.name, "<unfinished subtest>");
        assert_eq!(outer.outcome, Outcome::Fail);
        let inner = &outer.subtests[0];
        assert_eq!(inner.name, "<unfinished subtest>");
        assert_eq!(names(&inner.subtests), ["deep"]);
        assert!(report
            .problems
            .contains(&"truncated: output ends inside subtest '<unfinished subtest>'".to_string()));
        assert!(report.problems.contains(
            &"truncated: output ends inside subtest '<unfinished subtest>.<unfinished subtest>'"
                .to_string()
        ));
    }

    #[test]
    fn truncated_debugfs_layout() {
        let text = "\
KTAP version 1
# Subtest: scull_buffer
1..3
    ok 1 append_within_capacity
";
        let report = parse(text);
        assert_eq!(names(&report.cases), ["scull_buffer"]);
        assert_eq!(report.cases[0].outcome, Outcome::Fail);
        assert_eq!(report.cases[0].subtests.len(), 1);
        assert!(report.is_truncated());
    }

    #[test]
    fn truncated_after_suite_header() {
        let report = parse("KTAP version 1\n1..1\n# Subtest: scull_buffer\n1..3\n");
        assert_eq!(names(&report.cases), ["scull_buffer"]);
        assert_eq!(report.cases[0].outcome, Outcome::Fail);
        assert!(report.cases[0].subtests.is_empty());
        assert_eq!(
            report.problems,
            [
                "truncated: subtest 'scull_buffer' plan 1..3 but only 0 results",
                "truncated: output ends inside subtest 'scull_buffer'",
            ]
        );
    }

    #[test]
    fn more_results_than_planned() {
        let report = parse("KTAP version 1\n1..1\nok 1 a\nok 2 b\n");
        assert_eq!(report.problems, ["plan 1..1 but 2 results"]);
        assert!(!report.is_truncated());
    }

    #[test]
    fn numbers_out_of_order() {
        let text = "\
KTAP version 1
1..3
ok 1 a
ok 3 c
    KTAP version 1
    # Subtest: s
    1..2
    ok 2 x
    ok 3 y
ok 4 s
";
        let report = parse(text);
        assert_eq!(
            report.problems,
            [
                "result numbers out of order: expected 2, got 3",
                "result numbers out of order in subtest 's': expected 1, got 2",
            ]
        );
        assert_eq!(
            report.cases.iter().map(|c| c.number).collect::<Vec<_>>(),
            [1, 3, 4]
        );
    }

    #[test]
    fn missing_version_line() {
        let report = parse("1..1\nok 1 a\n");
        assert_eq!(report.problems, ["missing KTAP version line"]);
        assert_eq!(names(&report.cases), ["a"]);
    }

    #[test]
    fn subtest_without_parent_result_line() {
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: first
    1..1
    ok 1 a
# Subtest: second
1..1
    ok 1 b
ok 2 second
";
        let report = parse(text);
        assert_eq!(report.problems, ["subtest 'first' has no result line"]);
        assert_eq!(names(&report.cases), ["first", "second"]);
        assert_eq!(outcomes(&report.cases), [Outcome::Fail, Outcome::Pass]);
        assert_eq!(names(&report.cases[0].subtests), ["a"]);
        assert_eq!(names(&report.cases[1].subtests), ["b"]);
    }

    /// kunit's `test_is_test_passed-failure-nested.log`: each subtest's header
    /// at one indentation, its result one level deeper. The deeper `ok 1 test
    /// 1` answers the subtest's `1..1`; it is not a subtest of its own.
    #[test]
    fn results_indented_deeper_than_their_header() {
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    1..1
        ok 1 test 1
not ok 1 subtest 1
    KTAP version 1
    1..1
        not ok 1 subsubtest 1
not ok 2 subtest 2
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases), ["subtest 1", "subtest 2"]);
        assert_eq!(names(&report.cases[0].subtests), ["test 1"]);
        assert_eq!(outcomes(&report.cases[0].subtests), [Outcome::Pass]);
        assert_eq!(names(&report.cases[1].subtests), ["subsubtest 1"]);
        assert!(report
            .cases
            .iter()
            .all(|c| c.subtests[0].subtests.is_empty()));
        assert_eq!(report.status(), Status::Failed);
    }

    /// The same at the top level: a bare result after the plan answers it,
    /// however deep; a line back at the header's depth stays at that level.
    #[test]
    fn top_level_results_deeper_than_the_plan() {
        let report = parse("KTAP version 1\n1..2\n    ok 1 a\n  ok 2 b\n");
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases), ["a", "b"]);
        assert!(report.cases.iter().all(|c| c.subtests.is_empty()));
        // Without a plan there is nothing to answer: a headerless subtest.
        let report = parse("KTAP version 1\n    ok 1 a\nok 1 outer\n");
        assert_eq!(names(&report.cases), ["outer"]);
        assert_eq!(names(&report.cases[0].subtests), ["a"]);
    }

    #[test]
    fn the_status_of_a_report() {
        let status = |text: &str| parse(text).status();
        assert_eq!(
            status("KTAP version 1\n1..2\nok 1 a\nok 2 b # SKIP\n"),
            Status::Passed
        );
        assert_eq!(
            status("KTAP version 1\n1..2\nok 1 a\nnot ok 2 b\n"),
            Status::Failed
        );
        assert_eq!(
            status("KTAP version 1\n1..1\nok 1 a\nBail out! x\n"),
            Status::Failed
        );
        assert_eq!(status("KTAP version 1\n1..2\nok 1 a\n"), Status::Crashed);
        assert_eq!(
            status("KTAP version 1\n1..2\nok 1 a # SKIP\nnot ok 2 b # TODO\n"),
            Status::Skipped
        );
        assert_eq!(status("KTAP version 1\n1..0\n"), Status::NoTests);
        assert_eq!(status("KTAP version 1\n"), Status::NoTests);
        assert_eq!(status("KTAP version 1\n1..1\nok 3 a\n"), Status::Failed);
    }

    #[test]
    fn the_top_level_plan_keeps_its_directive() {
        let report = parse("TAP version 13\n1..0 # SKIP not on this machine\n");
        assert_eq!(
            report.plan_directive.as_deref(),
            Some("SKIP not on this machine")
        );
        let report = parse("KTAP version 1\n1..1\n  KTAP version 1\n  1..0 # SKIP inner\nok 1 a\n");
        assert_eq!(report.plan_directive, None, "a subtest's plan is its own");
    }

    #[test]
    fn concatenated_documents() {
        // Each module load prints its own header.
        let text = "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: scull
    1..1
    ok 1 a
ok 1 scull
KTAP version 1
1..1
    KTAP version 1
    # Subtest: hello
    1..1
    ok 1 b
ok 1 hello
";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report.cases), ["scull", "hello"]);
    }

    /// A console log of lkmlab's own: the kernel's boot-time KUnit run with
    /// no suite (`1..0`), then one document each time a module with a KUnit
    /// suite is loaded. The `1..0` document once swallowed the next one's
    /// version line ("has a second plan line 1..1", "plan 1..0 but 1
    /// result").
    #[test]
    fn concatenated_documents_after_an_empty_one() {
        let suite = "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: scull_buffer
    1..1
    ok 1 new_buffer_is_empty
# scull_buffer: pass:1 fail:0 skip:0 total:1
ok 1 scull_buffer
";
        let text = format!("KTAP version 1\n1..0\n{suite}{suite}");
        let report = parse(&text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(2));
        assert_eq!(names(&report.cases), ["scull_buffer", "scull_buffer"]);
        assert_eq!(report.status(), Status::Passed);
        // A document that promised results and gave none is still short.
        let report = parse(&format!("KTAP version 1\n1..2\n{suite}"));
        assert_eq!(report.problems, ["truncated: plan 1..2 but only 0 results"]);
    }

    /// ktap.rst: a test fails when one of its subtests does; kunit.py fails
    /// such a run (of `ok 1 s` over `ok 1 a`, `not ok 2 b`: "Ran 2 tests:
    /// passed: 1, failed: 1", exit status 1). An `ok` (or skipped) parent
    /// over a `not ok` child is a problem, named by the first failed child.
    #[test]
    fn a_parent_that_passes_over_a_failed_subtest_is_a_problem() {
        let text = "\
KTAP version 1
1..2
    KTAP version 1
    # Subtest: outer
    1..1
        KTAP version 1
        # Subtest: inner
        1..3
        ok 1 a
        not ok 2 b
        not ok 3 c
    ok 1 inner
ok 1 outer
    KTAP version 1
    # Subtest: skipped
    1..1
    not ok 1 d
ok 2 skipped # SKIP not here
";
        let report = parse(text);
        assert_eq!(
            report.problems,
            [
                "test 'outer.inner' is ok but its subtest 'b' failed; a test with a failed \
                 subtest fails",
                "test 'skipped' is skipped but its subtest 'd' failed; a test with a failed \
                 subtest fails",
            ]
        );
        assert_eq!(report.status(), Status::Failed);
        // A failed parent, an expected failure (TODO) or a skipped child is fine.
        let fine = "\
KTAP version 1
1..3
    KTAP version 1
    1..1
    not ok 1 a
not ok 1 x
    KTAP version 1
    1..1
    not ok 1 b # TODO known bug
ok 2 y
    KTAP version 1
    1..1
    ok 1 c # SKIP no device
ok 3 z
";
        let report = parse(fine);
        assert_eq!(report.problems, Vec::<String>::new());
        // A child that never printed its result is reported as that alone.
        let cut = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..1\n\
                   \x20       KTAP version 1\n        1..1\n        ok 1 t\nok 1 s\n";
        let report = parse(cut);
        assert_eq!(
            report.problems,
            ["subtest 's.<subtest without result line>' has no result line"]
        );
    }

    #[test]
    fn empty_suite_with_header_and_result() {
        let text = "KTAP version 1\n1..1\n# Subtest: empty\n1..0\nok 1 empty # SKIP no cases\n";
        let report = parse(text);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.plan, Some(1));
        assert_eq!(report.cases[0].outcome, Outcome::Skip);
    }

    #[test]
    fn skip_all_plan() {
        let report = parse("TAP version 13\n1..0 # SKIP not on this machine\n");
        assert_eq!(report.plan, Some(0));
        assert!(report.cases.is_empty());
        assert_eq!(report.problems, Vec::<String>::new());
    }

    #[test]
    fn empty_and_headerless_input() {
        let report = parse("");
        assert_eq!(
            report.problems,
            ["no KTAP output: no version line, plan or results"]
        );
        let report = parse("KTAP version 1\n");
        assert_eq!(report.problems, ["no test plan and no results"]);
    }

    #[test]
    fn crlf_and_blank_lines() {
        let report = parse("KTAP version 1\r\n\r\n1..1\r\nok 1 a\r\n");
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(names(&report.cases), ["a"]);
    }

    #[test]
    fn result_line_syntax() {
        assert_eq!(
            parse_result("ok 1 - name # SKIP why"),
            Some(ResultLine {
                ok: true,
                number: Some(1),
                name: "name",
                comment: Some("SKIP why"),
            })
        );
        assert_eq!(
            parse_result("not ok 12"),
            Some(ResultLine {
                ok: false,
                number: Some(12),
                name: "",
                comment: None,
            })
        );
        assert_eq!(
            parse_result("ok"),
            Some(ResultLine {
                ok: true,
                number: None,
                name: "",
                comment: None,
            })
        );
        assert_eq!(parse_result("okay then"), None);
        assert_eq!(parse_result("ok 1x"), None);
        assert_eq!(parse_result("not okay"), None);
        assert_eq!(parse_result("ok 99999999999999999999 overflow"), None);
        assert_eq!(classify("  1..3"), (2, Line::Plan(3, None)));
        assert_eq!(
            classify("1..0 # SKIP no hardware"),
            (0, Line::Plan(0, Some("SKIP no hardware")))
        );
        assert_eq!(
            classify("1..3 trailing"),
            (0, Line::Unknown("1..3 trailing"))
        );
        assert_eq!(
            classify("KTAP version x"),
            (0, Line::Unknown("KTAP version x"))
        );
        assert_eq!(classify("# Subtest"), (0, Line::Subtest(None)));
        assert_eq!(
            classify("# Subtests run: 3"),
            (0, Line::Diag("Subtests run: 3"))
        );
        assert_eq!(classify("#no space"), (0, Line::Diag("no space")));
    }

    #[test]
    fn numberless_results_are_numbered() {
        let report = parse("TAP version 13\n1..2\nok - a\nnot ok - b\n");
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(
            report.cases.iter().map(|c| c.number).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(names(&report.cases), ["a", "b"]);
    }

    #[test]
    fn extract_with_printk_timestamps() {
        let log = "\
[    0.000000] Linux version 7.3.4 (nix@builder) #1 SMP
[    1.100000] Run /init as init process
[    1.234567] KTAP version 1
[    1.234570] 1..1
[    1.234600]     KTAP version 1
[    1.234601]     # Subtest: scull_buffer
[    1.234602]     1..1
this line has no timestamp and is dropped
[   10.500000]     ok 1 append_within_capacity
[  100.000001] ok 1 scull_buffer
";
        let ktap = extract(log).unwrap();
        assert_eq!(
            ktap,
            "\
KTAP version 1
1..1
    KTAP version 1
    # Subtest: scull_buffer
    1..1
    ok 1 append_within_capacity
ok 1 scull_buffer
"
        );
        let report = parse(&ktap);
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.cases[0].subtests.len(), 1);
    }

    #[test]
    fn extract_with_caller_id_and_crlf() {
        let log = "boot\r\n[    1.2][    T1] KTAP version 1\r\n[    1.3][    T1] 1..1\r\n[    1.4][   T42] ok 1 a\r\n";
        assert_eq!(
            extract(log).as_deref(),
            Some("KTAP version 1\n1..1\nok 1 a\n")
        );
    }

    #[test]
    fn extract_literal_prefix() {
        let log = "\
guest: starting
guest: TAP version 14
guest: 1..1
kernel noise
guest: ok 1 - hello
";
        assert_eq!(
            extract(log).as_deref(),
            Some("TAP version 14\n1..1\nok 1 - hello\n")
        );
    }

    #[test]
    fn extract_without_prefix_keeps_everything() {
        let log = "noise\nKTAP version 1\n1..1\nrandom: crng init done\nok 1 a\n";
        assert_eq!(
            extract(log).as_deref(),
            Some("KTAP version 1\n1..1\nrandom: crng init done\nok 1 a\n")
        );
    }

    #[test]
    fn extract_needs_a_header() {
        assert_eq!(extract(""), None);
        assert_eq!(extract("ok 1 a\nnot ok 2 b\n"), None);
        assert_eq!(extract("we talk about TAP version control\n"), None);
    }

    /// Whether each level's numbers run 1, 2, 3 … (restarting at 1 where
    /// another document begins).
    fn numbered_in_order(cases: &[TestCase]) -> bool {
        cases
            .windows(2)
            .all(|w| w[1].number == w[0].number + 1 || w[1].number == 1)
            && cases.first().is_none_or(|c| c.number == 1)
            && cases.iter().all(|c| numbered_in_order(&c.subtests))
    }

    /// Random mixtures of KTAP-ish lines at random depths never panic; the
    /// counts add up to the cases; and a report without problems has every
    /// level numbered in order (so a number out of place is always reported).
    #[test]
    fn garbage_never_panics_and_bad_numbering_is_reported() {
        let pieces = [
            "KTAP version 1",
            "TAP version 14",
            "1..2",
            "1..0 # SKIP",
            "ok 1 a",
            "not ok 2 b # TODO",
            "ok 7",
            "not ok",
            "# Subtest: s",
            "# Subtest",
            "# diag",
            "Bail out!",
            "noise \u{1b}[0m ünï",
            "ok 4294967295 max",
            "",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..500 {
            let mut text = String::new();
            for _ in 0..(seed % 30) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let piece = pieces[(seed >> 33) as usize % pieces.len()];
                let depth = (seed >> 50) as usize % 4;
                text.push_str(&" ".repeat(depth * 4));
                text.push_str(piece);
                text.push('\n');
            }
            let report = parse(&text);
            let counts = report.counts();
            assert_eq!(
                counts.passed + counts.failed + counts.skipped,
                report.cases.len(),
                "{text}"
            );
            if report.is_truncated() {
                assert_eq!(report.status(), Status::Crashed, "{text}");
            }
            if report.problems.is_empty() {
                assert!(numbered_in_order(&report.cases), "{text}\n{report:#?}");
            }
            let _ = extract(&text).map(|k| parse(&k));
        }
    }
}
/// The kernel's own parser tests as conformance fixtures: every log of
/// `tools/testing/kunit/test_data/` (copied into `protocol/tests/ktap-conformance/`,
/// see its README), with what `python3 tools/testing/kunit/kunit.py parse FILE`
/// of the pinned 7.3.4 tree says beside what this parser says. Where the two
/// differ, `differs` says why.
#[cfg(test)]
mod conformance {
    use super::*;

    struct Fixture {
        file: &'static str,
        /// kunit.py's summary line (after `Testing complete. `) and exit status.
        kunit_py: &'static str,
        kunit_py_exit: i32,
        /// This parser's verdict; `None` where [`extract`] finds no KTAP
        /// (`lkmlab report` then stops with exit status 2: not a test result).
        status: Option<Status>,
        /// Tests counted as kunit.py counts them, `[passed, failed, skipped]`:
        /// leaf cases, plus a failed case whose subtests all passed.
        tests: [usize; 3],
        /// Top-level cases, what `lkmlab report` counts.
        top: [usize; 3],
        /// Why lkmlab's verdict or counts differ from kunit.py's, if they do.
        differs: Option<&'static str>,
    }

    const fn agrees(
        file: &'static str,
        kunit_py: &'static str,
        kunit_py_exit: i32,
        status: Status,
        tests: [usize; 3],
        top: [usize; 3],
    ) -> Fixture {
        Fixture {
            file,
            kunit_py,
            kunit_py_exit,
            status: Some(status),
            tests,
            top,
            differs: None,
        }
    }

    use Status::*;

    const FIXTURES: &[Fixture] = &[
        agrees(
            "test_config_printk_time.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        Fixture {
            file: "test_insufficient_memory.log",
            kunit_py: "Ran 0 tests: errors: 1",
            kunit_py_exit: 1,
            status: None,
            tests: [0, 0, 0],
            top: [0, 0, 0],
            // The file is empty. kunit.py fails the run; `lkmlab report`
            // refuses the file (exit 2, "holds no KTAP"): lkmlab's exit
            // status 1 means tests ran, and here none did.
            differs: Some("an empty file is not a test result"),
        },
        // Kernel messages between the results, and a panic after them: the
        // results are complete, so both pass. (`lkmlab report --console`
        // on the same log would also fail the run on the panic.)
        agrees(
            "test_interrupted_tap_output.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        agrees(
            "test_is_test_passed-all_passed.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [2, 0, 0],
        ),
        agrees(
            "test_is_test_passed-all_passed_nested.log",
            "Ran 7 tests: passed: 7",
            0,
            Passed,
            [7, 0, 0],
            [2, 0, 0],
        ),
        // Results indented deeper than their subtest's header (see
        // `results_indented_deeper_than_their_header`).
        agrees(
            "test_is_test_passed-failure-nested.log",
            "Ran 3 tests: passed: 1, failed: 2",
            1,
            Failed,
            [1, 2, 0],
            [0, 2, 0],
        ),
        agrees(
            "test_is_test_passed-failure.log",
            "Ran 10 tests: passed: 9, failed: 1",
            1,
            Failed,
            [9, 1, 0],
            [1, 1, 0],
        ),
        // `ok 3 # SKIP selftests: …`: a result without a name.
        agrees(
            "test_is_test_passed-kselftest.log",
            "Ran 3 tests: passed: 2, skipped: 1",
            0,
            Passed,
            [2, 0, 1],
            [2, 0, 1],
        ),
        // No top-level plan: neither parser requires one.
        agrees(
            "test_is_test_passed-missing_plan.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [2, 0, 0],
        ),
        // kunit.py adds an error ("case: 0 tests run!") for the empty
        // `# Subtest: case` header but still passes; lkmlab takes the header
        // with no plan and no results as a case without subtests. Same
        // verdict and counts.
        agrees(
            "test_is_test_passed-no_tests_no_plan.log",
            "Ran 1 tests: passed: 1, errors: 1",
            0,
            Passed,
            [1, 0, 0],
            [1, 0, 0],
        ),
        Fixture {
            file: "test_is_test_passed-no_tests_run_no_header.log",
            kunit_py: "Ran 0 tests: errors: 1",
            kunit_py_exit: 1,
            status: None,
            tests: [0, 0, 0],
            top: [0, 0, 0],
            // A boot log without any KTAP header: as for the empty file.
            differs: Some("a log without KTAP is not a test result"),
        },
        // `1..0`: kunit.py's "main: 0 tests run!"; `lkmlab report` fails
        // with `ktap.no_tests`.
        agrees(
            "test_is_test_passed-no_tests_run_with_header.log",
            "Ran 0 tests: errors: 1",
            1,
            NoTests,
            [0, 0, 0],
            [0, 0, 0],
        ),
        Fixture {
            file: "test_kernel_panic_interrupt.log",
            kunit_py: "Ran 10 tests: passed: 8, crashed: 2, errors: 3",
            kunit_py_exit: 1,
            status: Some(Crashed),
            tests: [8, 1, 0],
            top: [2, 1, 0],
            // Both say crashed. kunit.py invents a crashed test for each
            // result the plan promised; lkmlab reports the shortfall as a
            // problem ("truncated: subtest 'string-stream-test' plan 1..3 but
            // only 1 result") and fails the unfinished suite itself.
            differs: Some("missing results are a problem, not crashed tests"),
        },
        agrees(
            "test_multiple_prefixes.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        agrees(
            "test_output_isolated_correctly.log",
            "Ran 2 tests: passed: 2",
            0,
            Passed,
            [2, 0, 0],
            [1, 0, 0],
        ),
        agrees(
            "test_output_with_prefix_isolated_correctly.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        agrees(
            "test_parse_attributes.log",
            "Ran 1 tests: passed: 1",
            0,
            Passed,
            [1, 0, 0],
            [1, 0, 0],
        ),
        agrees(
            "test_parse_ktap_output.log",
            "Ran 3 tests: passed: 3",
            0,
            Passed,
            [3, 0, 0],
            [1, 0, 0],
        ),
        agrees(
            "test_parse_subtest_header.log",
            "Ran 1 tests: passed: 1",
            0,
            Passed,
            [1, 0, 0],
            [1, 0, 0],
        ),
        agrees(
            "test_pound_no_prefix.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        agrees(
            "test_pound_sign.log",
            "Ran 10 tests: passed: 10",
            0,
            Passed,
            [10, 0, 0],
            [3, 0, 0],
        ),
        // Every test skipped: kunit.py exits 1 (SKIPPED is not SUCCESS), and
        // so does `lkmlab report` (`ktap.all_skipped`).
        agrees(
            "test_skip_all_tests.log",
            "Ran 5 tests: skipped: 5",
            1,
            Skipped,
            [0, 0, 5],
            [0, 0, 2],
        ),
        agrees(
            "test_skip_tests.log",
            "Ran 5 tests: passed: 4, skipped: 1",
            0,
            Passed,
            [4, 0, 1],
            [2, 0, 0],
        ),
        agrees(
            "test_strip_hyphen.log",
            "Ran 2 tests: passed: 2",
            0,
            Passed,
            [2, 0, 0],
            [2, 0, 0],
        ),
    ];

    fn dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ktap-conformance")
    }

    /// What `lkmlab report` reads: the KTAP of the file, if any.
    fn parse_file(file: &str) -> Option<Report> {
        let bytes = std::fs::read(dir().join(file)).unwrap();
        extract(&String::from_utf8_lossy(&bytes)).map(|k| parse(&k))
    }

    /// Counts tests as kunit.py does (`bubble_up_test_results`).
    fn kunit_tally(cases: &[TestCase], tally: &mut [usize; 3]) {
        for case in cases {
            if case.subtests.is_empty() {
                tally[match case.outcome {
                    Outcome::Pass => 0,
                    Outcome::Fail => 1,
                    Outcome::Skip | Outcome::Todo => 2,
                }] += 1;
                continue;
            }
            let before = tally[1];
            kunit_tally(&case.subtests, tally);
            if case.outcome == Outcome::Fail && tally[1] == before {
                tally[1] += 1;
            }
        }
    }

    /// kunit.py's `passed: N, failed: N, skipped: N` (absent means 0).
    fn kunit_py_counts(summary: &str) -> [usize; 3] {
        let count = |what: &str| {
            summary
                .split(&[':', ','][..])
                .map(str::trim)
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0].ends_with(what))
                .map_or(0, |w| w[1].parse().unwrap())
        };
        [count("passed"), count("failed"), count("skipped")]
    }

    /// `lkmlab report`'s exit status for a verdict.
    fn lkmlab_exit(status: Option<Status>) -> i32 {
        match status {
            Some(Status::Passed) => 0,
            Some(_) => 1,
            None => 2,
        }
    }

    #[test]
    fn every_fixture_has_an_expectation() {
        let mut on_disk: Vec<String> = std::fs::read_dir(dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".log"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = FIXTURES.iter().map(|f| f.file).collect();
        assert_eq!(on_disk, listed);
    }

    #[test]
    fn each_fixture_gets_its_expected_verdict() {
        for f in FIXTURES {
            let report = parse_file(f.file);
            let status = report.as_ref().map(Report::status);
            assert_eq!(status, f.status, "{}", f.file);
            let Some(report) = report else { continue };
            let c = report.counts();
            assert_eq!([c.passed, c.failed, c.skipped], f.top, "{}: top", f.file);
            let mut tally = [0; 3];
            kunit_tally(&report.cases, &mut tally);
            assert_eq!(tally, f.tests, "{}: tests", f.file);
        }
    }

    /// Where a fixture says it agrees with kunit.py, it does; where it does
    /// not, it says why.
    #[test]
    fn the_verdicts_agree_with_kunit_py_unless_justified() {
        for f in FIXTURES {
            let same_exit = lkmlab_exit(f.status) == f.kunit_py_exit;
            let same_counts = f.tests == kunit_py_counts(f.kunit_py);
            assert_eq!(
                same_exit && same_counts,
                f.differs.is_none(),
                "{}: exit {} vs kunit.py's {}, tests {:?} vs kunit.py's {:?}",
                f.file,
                lkmlab_exit(f.status),
                f.kunit_py_exit,
                f.tests,
                kunit_py_counts(f.kunit_py)
            );
        }
    }
}
