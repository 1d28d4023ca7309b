//! Guest programs for an architecture other than the host's: the guest
//! runner, cross-built from the sources lkmlab carries, and a static
//! busybox from a pinned Debian package.

use crate::arch::Arch;
use crate::doctor::Check;
use crate::fetch::Fetcher;
use crate::paths::Paths;
use crate::project::Project;
use anyhow::{bail, Result};
use std::path::PathBuf;

pub fn runner(arch: Arch, _paths: &Paths) -> Result<Vec<u8>> {
    bail!("no runner for {arch} yet")
}

pub fn busybox(
    arch: Arch,
    _project: &Project,
    _paths: &Paths,
    _fetcher: &Fetcher,
) -> Result<PathBuf> {
    bail!("no busybox for {arch} yet")
}

pub fn doctor_checks(_arch: Arch, _project: &Project) -> Vec<Check> {
    Vec::new()
}
