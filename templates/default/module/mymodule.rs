// SPDX-License-Identifier: GPL-2.0

//! mymodule: a loadable kernel module in Rust, made by `lkmlab init`.
//!
//! It logs a line when loaded and when unloaded, takes one parameter
//! (`insmod mymodule.ko greeting_count=3`), and keeps its logic in a plain
//! function with a KUnit test, which runs when the module loads: `lkmlab
//! check` reports it under `mymodule.kunit`.

use kernel::prelude::*;

module! {
    type: MyModule,
    name: "mymodule",
    authors: ["you"],
    description: "A Rust kernel module made by lkmlab init",
    license: "GPL",
    params: {
        greeting_count: u32 {
            default: 1,
            description: "How many times to greet (shown in the load message)",
        },
    },
}

/// The module's state, from load to unload.
struct MyModule {
    greetings: u32,
}

/// The greeting for `count` greetings: your module's logic would go in
/// functions like this one, which KUnit can test on its own.
fn greeting(count: u32) -> &'static str {
    match count {
        0 => "silence",
        1 => "hello",
        _ => "hello, again",
    }
}

impl kernel::Module for MyModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let greetings = module_parameters::greeting_count.value();
        pr_info!(
            "loaded: {} (greeting_count={})\n",
            greeting(greetings),
            greetings
        );
        Ok(MyModule { greetings })
    }
}

impl Drop for MyModule {
    fn drop(&mut self) {
        pr_info!("unloaded after {} greeting(s)\n", self.greetings);
    }
}

#[kunit_tests(mymodule)]
mod tests {
    use super::*;

    #[test]
    fn greets_by_count() {
        assert_eq!(greeting(0), "silence");
        assert_eq!(greeting(1), "hello");
        assert_eq!(greeting(7), "hello, again");
    }
}
