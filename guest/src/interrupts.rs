//! The interrupt handlers the kernel lists in `/proc/interrupts`: a module
//! that leaves one registered after it is unloaded leaves the kernel a
//! pointer into code that is gone, which runs (and crashes) the next time
//! that interrupt fires. The generic suite notes the handlers before
//! `insmod`, and before `rmmod` unbinds the module's devices and checks that
//! none registered since remains.

use std::collections::BTreeSet;

const PROC_INTERRUPTS: &str = "/proc/interrupts";

/// One handler: its interrupt number and the name it was requested with
/// (`request_irq`'s `name`: usually the driver's or the device's).
pub type Handler = (u32, String);

/// The handlers `/proc/interrupts` lists now (none if it cannot be read).
pub fn handlers() -> BTreeSet<Handler> {
    std::fs::read_to_string(PROC_INTERRUPTS)
        .map(|text| parse(&text))
        .unwrap_or_default()
}

/// Parse `/proc/interrupts`: a header of CPU columns, then per numbered
/// interrupt `N: COUNT… CHIP HWIRQ-TYPE NAME[, NAME…]`. Lines of the
/// architecture's own counters (`LOC:`, `NMI:`, …) have no handler.
pub fn parse(text: &str) -> BTreeSet<Handler> {
    let mut lines = text.lines();
    let cpus = lines.next().map_or(0, |h| h.split_whitespace().count());
    let mut found = BTreeSet::new();
    for line in lines {
        let mut words = line.split_whitespace();
        let Some(irq) = words
            .next()
            .and_then(|w| w.strip_suffix(':'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // Counts, then the chip and the hardware IRQ with its trigger type
        // (`4-edge` on x86-64; arm64's GIC shows it as a word of its own,
        // `27 Level`: kernel/irq/proc.c, GENERIC_IRQ_SHOW_LEVEL).
        let mut rest: Vec<&str> = words.skip(cpus + 2).collect();
        if matches!(rest.first(), Some(&("Level" | "Edge"))) {
            rest.remove(0);
        }
        let names = rest.join(" ");
        for name in names.split(", ").map(str::trim).filter(|n| !n.is_empty()) {
            found.insert((irq, name.to_string()));
        }
    }
    found
}

/// Unbind every device bound to a driver of `module` (the drivers under
/// `/sys/module/MODULE/drivers/`, each a `BUS:NAME` link to the driver's
/// directory, whose device links are named by address), returning
/// `ADDRESS (DRIVER)` for each.
pub fn unbind_devices(module: &str) -> Result<Vec<String>, String> {
    let drivers = std::path::Path::new("/sys/module")
        .join(module)
        .join("drivers");
    let Ok(entries) = std::fs::read_dir(&drivers) else {
        return Ok(Vec::new());
    };
    let mut unbound = Vec::new();
    for driver in entries.flatten() {
        let dir = driver.path();
        let Ok(devices) = std::fs::read_dir(&dir) else {
            continue;
        };
        for device in devices.flatten() {
            let name = device.file_name().to_string_lossy().into_owned();
            // A bound device is a link to it; the driver's own files
            // (bind, unbind, uevent, new_id, …) and its `module` link are not.
            let is_device = device.file_type().is_ok_and(|t| t.is_symlink())
                && name != "module"
                && device.path().join("uevent").exists();
            if !is_device {
                continue;
            }
            std::fs::write(dir.join("unbind"), &name)
                .map_err(|e| format!("unbinding {name} from {}: {e}", dir.display()))?;
            // `pci:NAME` in /sys/module/MODULE/drivers: the driver's name
            // without its bus.
            let link = driver.file_name().to_string_lossy().into_owned();
            let driver_name = link.split_once(':').map_or(link.as_str(), |(_, n)| n);
            unbound.push(format!("{name} ({driver_name})"));
        }
    }
    Ok(unbound)
}

/// Serialised for the file that carries the set from one case to the next
/// (each case runs in a process of its own).
pub fn to_text(set: &BTreeSet<Handler>) -> String {
    set.iter()
        .map(|(irq, name)| format!("{irq} {name}\n"))
        .collect()
}

pub fn from_text(text: &str) -> BTreeSet<Handler> {
    text.lines()
        .filter_map(|l| {
            let (irq, name) = l.split_once(' ')?;
            Some((irq.parse().ok()?, name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "           CPU0       CPU1       \n  \
          4:        120          0   IO-APIC   4-edge      ttyS0\n \
         10:          0          0   IO-APIC  10-fasteoi   acpi\n\
        NMI:          0          0   Non-maskable interrupts\n\
        LOC:        884        790   Local timer interrupts\n";

    #[test]
    fn each_numbered_interrupt_gives_its_handlers() {
        let set = parse(BEFORE);
        assert_eq!(
            set,
            BTreeSet::from([(4, "ttyS0".to_string()), (10, "acpi".to_string())])
        );
        let shared = BEFORE.replace("10-fasteoi   acpi", "10-fasteoi   acpi, edu");
        let after = parse(&shared);
        let new: Vec<&Handler> = after.difference(&set).collect();
        assert_eq!(new, [&(10, "edu".to_string())]);
    }

    #[test]
    fn arm64s_trigger_word_is_not_a_name() {
        let text = "           CPU0       CPU1       \n 45:          0          0     GICv3  36 Level     rust_edu\n";
        assert_eq!(parse(text), BTreeSet::from([(45, "rust_edu".to_string())]));
    }

    #[test]
    fn the_set_survives_its_file() {
        let set = parse(BEFORE);
        assert_eq!(from_text(&to_text(&set)), set);
    }
}
