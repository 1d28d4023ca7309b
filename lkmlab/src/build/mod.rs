//! Building: the host toolchain, Kconfig fragments and configuration, the cached kernel, the out-of-tree module, long builds with logs, the kernel crate's documentation.

pub mod kconfig;
pub mod kernel;
pub mod module;
pub mod module_dir;
pub mod module_failure;
pub mod partial;
pub mod progress;
pub mod rustdoc;
pub mod toolchain;
