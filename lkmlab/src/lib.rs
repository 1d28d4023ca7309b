//! lkmlab: build a pinned kernel, build Rust modules against exactly its tree,
//! and test them in a VM.

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
