use clap::Parser;
use lkmlab::cli::Cli;
use lkmlab::commands::{self, Done};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(Done::Ok) => ExitCode::SUCCESS,
        Ok(Done::TestsFailed) => ExitCode::from(1),
        Ok(Done::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lkmlab: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
