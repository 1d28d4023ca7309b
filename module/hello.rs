// SPDX-License-Identifier: GPL-2.0

//! The simplest useful Rust loadable kernel module.
//!
//! It says hello when loaded and goodbye when unloaded, and takes one integer
//! parameter: `insmod hello.ko greeting_count=3`.
//!
//! It also builds on kernels older than Rust module parameters (6.19), such
//! as 6.12 (the one tried): there it has no parameter and greets once.
//! `module/Kbuild` tells rustc about such a kernel (`--cfg
//! no_module_params`), the way a C module tests `LINUX_VERSION_CODE`.

use kernel::prelude::*;

#[cfg(not(no_module_params))]
module! {
    type: Hello,
    name: "hello",
    authors: ["lkmlab"],
    description: "The simplest useful Rust LKM: init and exit messages, one parameter",
    license: "GPL",
    params: {
        greeting_count: i64 {
            default: 1,
            description: "How many times to greet (shown in the init message)",
        },
    },
}

#[cfg(no_module_params)]
module! {
    type: Hello,
    name: "hello",
    author: "lkmlab",
    description: "The simplest useful Rust LKM: init and exit messages",
    license: "GPL",
}

/// The `greeting_count` parameter (`insmod hello.ko greeting_count=3`).
#[cfg(not(no_module_params))]
fn greeting_count() -> i64 {
    module_parameters::greeting_count.value()
}

/// A kernel without module parameters: greet once.
#[cfg(no_module_params)]
fn greeting_count() -> i64 {
    1
}

struct Hello {
    count: i64,
}

impl kernel::Module for Hello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let count = greeting_count();
        pr_info!("Hello from Rust! greeting_count={}\n", count);
        Ok(Hello { count })
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        pr_info!("Goodbye from Rust! (greeted {} times)\n", self.count);
    }
}
