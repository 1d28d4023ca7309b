//! What the user configures and lkmlab resolves from it: the pin (`lkmlab.toml`), the project it is found in, the cache's layout, targets and the architecture record.

pub mod arch;
pub mod paths;
pub mod pin;
pub mod project;
pub mod target;
