//! lkmlab: build a pinned kernel, build Rust modules against exactly its tree,
//! and test them in a VM.
//!
//! Output goes through [`output`] (results: `out!`/`outln!`), never
//! `print!`/`eprint!`, which panic on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod doctor;
pub mod judge;
pub mod lab;
/// The KTAP parser, which lkmlab shares with its guest runner.
pub use lkmlab_protocol::ktap;
pub mod lock;
pub mod output;
pub mod process;
pub mod source;
pub mod timings;
pub mod util;
pub mod vm;
