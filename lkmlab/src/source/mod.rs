//! Getting the pinned inputs: verified downloads and reading Debian packages.

pub mod ar;
pub mod fetch;
