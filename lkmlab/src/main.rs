#![deny(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use lkmlab::cli::Cli;
use lkmlab::commands::{self, Done};
use lkmlab::output;
use std::process::ExitCode;

/// The environment variables behind global options, for which empty means
/// unset (`LKMLAB_MIRROR= lkmlab fetch`): clap would take an empty value as
/// an option given without its argument.
const OPTION_VARIABLES: &[&str] = &["LKMLAB_CACHE", "LKMLAB_MIRROR", "LKMLAB_RUST_ANALYZER"];

fn main() -> ExitCode {
    for name in OPTION_VARIABLES {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            // Single-threaded still: nothing else reads the environment yet.
            std::env::remove_var(name);
        }
    }
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => output::Verbosity::Quiet,
        (_, true) => output::Verbosity::Verbose,
        _ => output::Verbosity::Normal,
    };
    output::init(verbosity, cli.color);
    lkmlab::process::on_interrupt_kill_children();
    match commands::run(cli) {
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::TestsFailed) => ExitCode::from(1),
        Ok(Done::Exit(code)) => ExitCode::from(code),
        // Nobody is left to read the rest: end quietly, as a program that
        // SIGPIPE killed (see `output`).
        Err(e) if output::closed_stdout(&e) => ExitCode::from(output::CLOSED_STDOUT_STATUS),
        Err(e) => {
            output::error(&e);
            ExitCode::from(2)
        }
    }
}
