//! JUnit XML for CI systems, from a parsed KTAP report plus failures found
//! elsewhere (kernel log findings, timeouts).

use crate::ktap::{Outcome, Report, TestCase};
use std::fmt::Write as _;

/// One `<testcase>`.
struct Row {
    name: String,
    result: RowResult,
}

enum RowResult {
    Pass,
    Fail { message: String, text: String },
    Skip { message: String },
}

/// Renders a JUnit XML document with one `<testsuite>` named `suite`.
///
/// There is one `<testcase>` per leaf case of `report`; subtests are named
/// `parent.child`. A failed case's `<failure>` holds its diagnostics (for a
/// leaf also its parent's diagnostics that start with `leafname:`, where
/// KUnit prints assertion messages). A parent that failed although none of
/// its leaves did gets a failed testcase of its own. Each `extra_failures`
/// entry `(name, text)` becomes a failed testcase, and the report's bail-out
/// and structural problems become a failed testcase named `ktap.structure`
/// unless `extra_failures` already has one of that name. `time_secs` is the
/// suite's duration.
pub fn render(
    suite: &str,
    report: &Report,
    extra_failures: &[(String, String)],
    time_secs: f64,
) -> String {
    let mut rows = Vec::new();
    for case in &report.cases {
        collect(case, "", &[], &mut rows);
    }
    for (name, text) in extra_failures {
        rows.push(Row {
            name: name.clone(),
            result: RowResult::Fail {
                message: text.lines().next().unwrap_or("failed").to_string(),
                text: text.clone(),
            },
        });
    }
    let structure_given = extra_failures.iter().any(|(n, _)| n == "ktap.structure");
    if !structure_given && (report.bail_out.is_some() || !report.problems.is_empty()) {
        let mut lines = Vec::new();
        if let Some(reason) = &report.bail_out {
            lines.push(format!("Bail out! {reason}"));
        }
        lines.extend(report.problems.iter().cloned());
        rows.push(Row {
            name: "ktap.structure".to_string(),
            result: RowResult::Fail {
                message: lines[0].clone(),
                text: lines.join("\n"),
            },
        });
    }

    let tests = rows.len();
    let failures = rows
        .iter()
        .filter(|r| matches!(r.result, RowResult::Fail { .. }))
        .count();
    let skipped = rows
        .iter()
        .filter(|r| matches!(r.result, RowResult::Skip { .. }))
        .count();
    let time = if time_secs.is_finite() && time_secs > 0.0 {
        time_secs
    } else {
        0.0
    };
    let suite_attr = escape(suite, true);
    let counts =
        format!("tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\"");

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"{suite_attr}\" {counts}>");
    let _ = writeln!(out, "  <testsuite name=\"{suite_attr}\" {counts}>");
    for row in &rows {
        let name = escape(&row.name, true);
        let head = format!("    <testcase classname=\"{suite_attr}\" name=\"{name}\"");
        match &row.result {
            RowResult::Pass => {
                let _ = writeln!(out, "{head}/>");
            }
            RowResult::Skip { message } => {
                let _ = writeln!(out, "{head}>");
                let _ = writeln!(
                    out,
                    "      <skipped message=\"{}\"/>",
                    escape(message, true)
                );
                out.push_str("    </testcase>\n");
            }
            RowResult::Fail { message, text } => {
                let _ = writeln!(out, "{head}>");
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\">{}</failure>",
                    escape(message, true),
                    escape(text, false)
                );
                out.push_str("    </testcase>\n");
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn case_name(case: &TestCase) -> String {
    if case.name.is_empty() {
        format!("#{}", case.number)
    } else {
        case.name.clone()
    }
}

/// Adds the rows for `case` and its subtests; returns whether any failed.
fn collect(case: &TestCase, prefix: &str, parent_diags: &[String], rows: &mut Vec<Row>) -> bool {
    let name = case_name(case);
    let path = if prefix.is_empty() {
        name.clone()
    } else {
        format!("{prefix}.{name}")
    };
    if case.subtests.is_empty() {
        let result = match case.outcome {
            Outcome::Pass => RowResult::Pass,
            Outcome::Skip | Outcome::Todo => RowResult::Skip {
                message: case.directive.clone().unwrap_or_else(|| {
                    if case.outcome == Outcome::Todo {
                        "TODO".to_string()
                    } else {
                        "skipped".to_string()
                    }
                }),
            },
            Outcome::Fail => {
                let own = format!("{name}:");
                let diags: Vec<&str> = case
                    .diagnostics
                    .iter()
                    .chain(parent_diags.iter().filter(|d| d.starts_with(&own)))
                    .map(String::as_str)
                    .collect();
                failure(case, &diags)
            }
        };
        let failed = matches!(result, RowResult::Fail { .. });
        rows.push(Row { name: path, result });
        return failed;
    }
    let mut any_failed = false;
    for sub in &case.subtests {
        any_failed |= collect(sub, &path, &case.diagnostics, rows);
    }
    if case.outcome == Outcome::Fail && !any_failed {
        let diags: Vec<&str> = case.diagnostics.iter().map(String::as_str).collect();
        rows.push(Row {
            name: path,
            result: failure(case, &diags),
        });
        any_failed = true;
    }
    any_failed
}

fn failure(case: &TestCase, diags: &[&str]) -> RowResult {
    let line = format!("not ok {} {}", case.number, case.name)
        .trim_end()
        .to_string();
    let message = case
        .directive
        .clone()
        .or_else(|| {
            diags
                .iter()
                .find(|d| d.to_ascii_uppercase().contains("FAIL"))
                .or_else(|| diags.first())
                .map(|d| d.to_string())
        })
        .unwrap_or_else(|| line.clone());
    let mut text = line;
    if let Some(directive) = &case.directive {
        let _ = write!(text, " # {directive}");
    }
    for d in diags {
        text.push('\n');
        text.push_str(d);
    }
    RowResult::Fail { message, text }
}

/// Escapes text for XML. Control characters other than tab, newline and
/// carriage return (which XML 1.0 cannot carry, or which are unhelpful) are
/// dropped; in attributes, tab, newline and carriage return become character
/// references so they survive attribute-value normalisation.
fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' if attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\t' | '\n' | '\r' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ktap;

    fn attr<'a>(xml: &'a str, tag: &str, name: &str) -> &'a str {
        let start = xml.find(&format!("<{tag} ")).unwrap();
        let key = format!(" {name}=\"");
        let at = start + xml[start..].find(&key).unwrap() + key.len();
        let len = xml[at..].find('"').unwrap();
        &xml[at..at + len]
    }

    fn testcases(xml: &str) -> Vec<&str> {
        xml.match_indices("<testcase ")
            .map(|(i, _)| {
                let key = " name=\"";
                let at = i + xml[i..].find(key).unwrap() + key.len();
                &xml[at..at + xml[at..].find('"').unwrap()]
            })
            .collect()
    }

    const KTAP: &str = "\
KTAP version 1
# Subtest: scull_buffer
# module: scull
1..4
    ok 1 append_within_capacity
    ok 2 write_past_capacity_is_truncated
    # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
    not ok 3 clear_empties_buffer
    ok 4 needs_hardware # SKIP no device
# scull_buffer: pass:2 fail:1 skip:1 total:4
not ok 1 scull_buffer
";

    #[test]
    fn nested_cases_and_counts() {
        let report = ktap::parse(KTAP);
        let extra = vec![(
            "kernel_log.kernel_warning".to_string(),
            "console.log line 12:\nWARNING: CPU: 0 PID: 1 at a.c:1".to_string(),
        )];
        let xml = render("lkmlab", &report, &extra, 12.3456);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert_eq!(
            testcases(&xml),
            [
                "scull_buffer.append_within_capacity",
                "scull_buffer.write_past_capacity_is_truncated",
                "scull_buffer.clear_empties_buffer",
                "scull_buffer.needs_hardware",
                "kernel_log.kernel_warning",
            ]
        );
        for tag in ["testsuites", "testsuite"] {
            assert_eq!(attr(&xml, tag, "name"), "lkmlab");
            assert_eq!(attr(&xml, tag, "tests"), "5");
            assert_eq!(attr(&xml, tag, "failures"), "2");
            assert_eq!(attr(&xml, tag, "skipped"), "1");
            assert_eq!(attr(&xml, tag, "time"), "12.346");
        }
        assert_eq!(attr(&xml, "testcase", "classname"), "lkmlab");
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert_eq!(xml.matches("<skipped ").count(), 1);
        assert!(xml.contains(
            "<failure message=\"clear_empties_buffer: ASSERTION FAILED at scull.rs:120\">\
             not ok 3 clear_empties_buffer\nclear_empties_buffer: ASSERTION FAILED at scull.rs:120\
             </failure>"
        ));
        assert!(xml.contains("<skipped message=\"no device\"/>"));
        assert!(xml.contains(
            "<failure message=\"console.log line 12:\">console.log line 12:\n\
             WARNING: CPU: 0 PID: 1 at a.c:1</failure>"
        ));
        assert!(xml.ends_with("  </testsuite>\n</testsuites>\n"));
    }

    /// Older debugfs results print a case's messages after the results; they
    /// land on the suite, and the leaf's failure picks those naming it.
    #[test]
    fn leaf_failure_uses_parent_diagnostics_naming_it() {
        let report = ktap::parse(
            "\
KTAP version 1
# Subtest: scull_buffer
1..2
    ok 1 append_within_capacity
    not ok 2 clear_empties_buffer
    # clear_empties_buffer: ASSERTION FAILED at scull.rs:120
# scull_buffer: pass:1 fail:1 skip:0 total:2
not ok 1 scull_buffer
",
        );
        let xml = render("s", &report, &[], 1.0);
        assert_eq!(
            testcases(&xml),
            [
                "scull_buffer.append_within_capacity",
                "scull_buffer.clear_empties_buffer"
            ]
        );
        assert!(xml.contains(
            "<failure message=\"clear_empties_buffer: ASSERTION FAILED at scull.rs:120\">\
             not ok 2 clear_empties_buffer\nclear_empties_buffer: ASSERTION FAILED at scull.rs:120\
             </failure>"
        ));
    }

    #[test]
    fn deep_nesting_and_parent_only_failure() {
        let report = ktap::parse(
            "\
KTAP version 1
1..2
  KTAP version 1
  1..1
    KTAP version 1
    1..1
    ok 1 leaf
  ok 1 middle
# suite_init failed: -ENOMEM
not ok 1 outer
ok 2 top_leaf
",
        );
        assert_eq!(report.problems, Vec::<String>::new());
        let xml = render("s", &report, &[], 0.0);
        assert_eq!(testcases(&xml), ["outer.middle.leaf", "outer", "top_leaf"]);
        assert_eq!(attr(&xml, "testsuite", "failures"), "1");
        assert!(xml.contains("<failure message=\"suite_init failed: -ENOMEM\">"));
        assert_eq!(attr(&xml, "testsuite", "time"), "0.000");
    }

    #[test]
    fn problems_and_bail_out_become_ktap_structure() {
        let report = ktap::parse("KTAP version 1\n1..3\nok 1 a\nBail out! no /dev/scull0\n");
        let xml = render("s", &report, &[], 1.0);
        assert_eq!(testcases(&xml), ["a", "ktap.structure"]);
        assert!(xml.contains(
            "<failure message=\"Bail out! no /dev/scull0\">Bail out! no /dev/scull0\n\
             truncated: plan 1..3 but only 1 result</failure>"
        ));
        assert_eq!(attr(&xml, "testsuite", "failures"), "1");

        // Not twice when the caller already reported them.
        let extra = vec![("ktap.structure".to_string(), "truncated".to_string())];
        let xml = render("s", &report, &extra, 1.0);
        assert_eq!(testcases(&xml), ["a", "ktap.structure"]);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape("a & b < c > d \"e\" 'f'", false),
            "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;"
        );
        assert_eq!(escape("x\u{0}y\u{1b}[31mz\u{7f}\u{85}", false), "xy[31mz");
        assert_eq!(escape("l1\nl2\tx\r", false), "l1\nl2\tx\r");
        assert_eq!(escape("l1\nl2\tx\r", true), "l1&#10;l2&#9;x&#13;");
        assert_eq!(escape("ünïcödé ✓ \u{FFFF}", false), "ünïcödé ✓ ");

        let report = ktap::parse(
            "KTAP version 1\n1..2\n# <fail> & \"quote\" \u{1}\nnot ok 1 a<b>&'c'\nok 2 d # SKIP \"why\" <now>\n",
        );
        let xml = render(
            "suite \"<&>\"",
            &report,
            &[("x<y".into(), "bad\u{7}\n& worse".into())],
            1.0,
        );
        assert!(xml.contains("name=\"suite &quot;&lt;&amp;&gt;&quot;\""));
        assert!(xml.contains("name=\"a&lt;b&gt;&amp;&apos;c&apos;\""));
        assert!(xml.contains("message=\"&lt;fail&gt; &amp; &quot;quote&quot; \""));
        assert!(xml.contains("<skipped message=\"&quot;why&quot; &lt;now&gt;\"/>"));
        assert!(xml.contains("name=\"x&lt;y\""));
        assert!(xml.contains(">bad\n&amp; worse</failure>"));
        assert!(!xml.chars().any(|c| c.is_control() && c != '\n'));
    }

    #[test]
    fn unnamed_and_empty() {
        let report = ktap::parse("KTAP version 1\n1..1\nnot ok 1\n");
        let xml = render("s", &report, &[], f64::NAN);
        assert_eq!(testcases(&xml), ["#1"]);
        assert!(xml.contains("<failure message=\"not ok 1\">not ok 1</failure>"));
        assert_eq!(attr(&xml, "testsuite", "time"), "0.000");

        let xml = render("s", &ktap::Report::default(), &[], 2.0);
        assert_eq!(attr(&xml, "testsuite", "tests"), "0");
        assert!(testcases(&xml).is_empty());
    }
}
