//! A project: the directory that holds `lkmlab.toml`, and its pin.

use crate::config::pin::{parse_pin, Pin, PIN_FILE};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A loaded project: its root directory and its pin.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub pin: Pin,
}

impl Project {
    /// Load the project at `dir`, or the nearest directory above the current
    /// one that holds `lkmlab.toml`.
    pub fn discover(dir: Option<&Path>) -> Result<Project> {
        let root = match dir {
            Some(d) => {
                if !d.join(PIN_FILE).is_file() {
                    bail!(
                        "{} has no {PIN_FILE}; --project must name an lkmlab project directory",
                        d.display()
                    );
                }
                d.to_path_buf()
            }
            None => {
                let cwd = std::env::current_dir().context("reading the current directory")?;
                cwd.ancestors()
                    .find(|d| d.join(PIN_FILE).is_file())
                    .map(Path::to_path_buf)
                    .with_context(|| {
                        format!(
                            "no {PIN_FILE} in {} or any directory above it; run lkmlab inside \
                             an lkmlab project or pass --project DIR",
                            cwd.display()
                        )
                    })?
            }
        };
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        let path = root.join(PIN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let pin = parse_pin(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(Project { root, pin })
    }

    /// Where build products and results of this project go.
    pub fn target_dir(&self) -> PathBuf {
        self.root.join("target").join("lkmlab")
    }
}
