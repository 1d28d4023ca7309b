//! Parser for KTAP v1 test output (`Documentation/dev-tools/ktap.rst` in the
//! kernel), as written by KUnit and kselftest.
//!
//! The parser is forgiving: it never fails. Whatever it could make sense of is
//! returned as a [`Report`], and anything structurally wrong (a missing version
//! line, fewer results than planned, a subtest without a result line, ...) is
//! listed in [`Report::problems`] in plain English.
//!
//! # Structure
//!
//! Besides the `KTAP version 1` header, `TAP version 13` and `TAP version 14`
//! are accepted as KUnit's own parser does. Nesting is recognised by
//! indentation, whatever its width (the spec uses two spaces, KUnit four, some
//! producers a tab): a block of lines indented deeper than the current level is
//! a subtest, and the next result line back at the outer level is its parent's
//! result. A level that has printed its plan and no result yet is the
//! exception: a result line deeper than it is its own first result (its
//! results are indented deeper than its header), since a subtest starts with
//! a header of its own. Only version, `# Subtest:`, plan and result lines take
//! part in the structure. Diagnostic (`# ...`) and unknown lines may be
//! indented any way and never end a subtest; they are attached, in order, to
//! the next result at the innermost open level (see [`TestCase::diagnostics`]).
//!
//! The older KUnit layout with `# Subtest: name` lines is understood both
//! where the header is indented with the subtest's results and where the
//! header and plan are at the outer level and only the results are indented
//! (as older kernels wrote `/sys/kernel/debug/kunit/<suite>/results`).
//!
//! A subtest that never gets its result line becomes a failed case named
//! from its `# Subtest:` line, or `<unfinished subtest>` when the input ends
//! inside it (a problem starting with [`TRUNCATED`] says so) and
//! `<subtest without result line>` when the output goes on at an outer level.
//!
//! Several documents one after the other (each module load prints its own
//! `KTAP version 1` / `1..1` header, after the kernel's boot-time `KTAP
//! version 1` / `1..0` when no suite is built in) are read as one: a version
//! line at a level that has its plan or results starts the next document,
//! numbering restarts and the plans add up.
//!
//! A test is failed when one of its subtests is (ktap.rst's rule, and
//! kunit.py's): a result line that says `ok` (or `# SKIP`) over a subtest
//! that says `not ok` is a problem.
//!
//! [`Report::status`] sums a report up as the kernel's `kunit.py` does
//! (passed, failed, crashed, skipped, no tests). The logs of the kernel's own
//! parser tests (`tools/testing/kunit/test_data/`) are conformance fixtures
//! in `protocol/tests/ktap-conformance/`, each with kunit.py's verdict beside
//! this parser's (see the `conformance` tests below).
//!
//! [`Writer`] writes what the guest runner reports in this format.

mod parse;
mod write;

pub use parse::*;
pub use write::{CaseReport, Writer};
