// SPDX-License-Identifier: GPL-2.0

//! The simplest useful Rust loadable kernel module.
//!
//! It says hello when loaded and goodbye when unloaded, and takes one integer
//! parameter: `insmod hello.ko greeting_count=3`.

use kernel::prelude::*;

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

struct Hello {
    count: i64,
}

impl kernel::Module for Hello {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let count = module_parameters::greeting_count.value();
        pr_info!("Hello from Rust! greeting_count={}\n", count);
        Ok(Hello { count })
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        pr_info!("Goodbye from Rust! (greeted {} times)\n", self.count);
    }
}
