//! Devices the test VM gets for a driver to bind to: QEMU device models
//! with their properties, declared in `lkmlab.toml` (`[[vm.devices]]`, for
//! every test of the project) and in a module directory's `devices.toml`
//! (`[[devices]]`, for that directory's tests only).
//!
//! Each is checked against the QEMU that will run it (`-device help`, and
//! `-device MODEL,help` for its properties) before anything is built, and
//! its bus decides the machine: a PCI device needs a machine with a PCI bus
//! ([`Machine::Pci`]), which the architecture record turns into QEMU's
//! machine ([`crate::config::arch::Arch::machine_args`]).

use crate::config::arch::{Arch, Machine};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file of a module directory that declares its tests' devices.
pub const MODULE_DEVICES_FILE: &str = "devices.toml";

/// One device as declared: `device = "edu"`, `properties = { dma_mask = … }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// The QEMU device model (`qemu-system-… -device help` lists them).
    pub device: String,
    /// Its properties (`-device MODEL,help` lists them).
    #[serde(default)]
    pub properties: BTreeMap<String, Property>,
}

/// `[[vm.devices]]`: a list of tables; a single `[vm.devices]` table (one
/// pair of brackets) is refused saying so, rather than with serde's
/// "expected a sequence".
pub fn deserialize_list<'de, D>(deserializer: D) -> std::result::Result<Vec<Device>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = Vec<Device>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("[[vm.devices]] tables, one per device (double brackets)")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
        }
    }
    deserializer.deserialize_seq(List)
}

/// A property's value as TOML gives it: QEMU takes integers in decimal,
/// booleans as `on`/`off`, and text as it is (a comma doubled).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "an integer, a boolean or a string (a number beyond a signed 64-bit \
                 integer, such as a mask 0xffffffffffffffff, as a string: QEMU reads it)"
)]
pub enum Property {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Property::Bool(b) => f.write_str(if *b { "on" } else { "off" }),
            Property::Int(i) => write!(f, "{i}"),
            // QEMU's option syntax: a comma inside a value is written twice.
            Property::Text(s) => f.write_str(&s.replace(',', ",,")),
        }
    }
}

/// `devices.toml` of a module directory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleDevices {
    #[serde(default)]
    devices: Vec<Device>,
}

/// A declared device and where it was declared (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub device: Device,
    pub from: PathBuf,
}

/// A device the VM's QEMU has, with its bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub device: Device,
    pub bus: Bus,
}

/// The bus a device model plugs into, as `-device help` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    Pci,
    /// Any other (`ISA`, `usb-bus`, `virtio-bus`, `i2c-bus`, …), or none.
    Other(String),
}

/// The devices of a test of `module_dir`: the project's, then the
/// directory's own.
pub fn declared(
    project_devices: &[Device],
    pin_file: &Path,
    module_dir: &Path,
) -> Result<Vec<Declared>> {
    let mut all: Vec<Declared> = project_devices
        .iter()
        .map(|d| Declared {
            device: d.clone(),
            from: pin_file.to_path_buf(),
        })
        .collect();
    let file = module_dir.join(MODULE_DEVICES_FILE);
    if file.is_file() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let parsed: ModuleDevices = toml::from_str(&text).with_context(|| {
            format!(
                "in {}: expected [[devices]] tables with device = \"MODEL\" and optionally \
                 properties = {{ NAME = VALUE, … }}",
                file.display()
            )
        })?;
        all.extend(parsed.devices.into_iter().map(|device| Declared {
            device,
            from: file.clone(),
        }));
    }
    for d in &all {
        check_names(d)?;
    }
    Ok(all)
}

/// A model or property name is one word of QEMU's option syntax.
fn check_names(d: &Declared) -> Result<()> {
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !word(&d.device.device) {
        bail!(
            "{}: device {:?} is not a QEMU device model name (letters, digits, '-', '_', '.'); \
             `-device help` of the VM's QEMU lists them",
            d.from.display(),
            d.device.device
        );
    }
    if let Some(bad) = d.device.properties.keys().find(|k| !word(k)) {
        bail!(
            "{}: device {:?} has a property named {bad:?}, which is not a QEMU property name; \
             `-device {},help` lists them",
            d.from.display(),
            d.device.device,
            d.device.device
        );
    }
    Ok(())
}

/// Check each declared device against `arch`'s QEMU: the model exists, and
/// so does every property given. Runs QEMU only when a device is declared.
pub fn check(arch: Arch, declared: &[Declared]) -> Result<Vec<Checked>> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    let qemu = arch.qemu_binary();
    let models = parse_device_help(&qemu_help(qemu, "help")?);
    let checked = declared
        .iter()
        .map(|d| {
            let model = &d.device.device;
            let Some(bus) = models.get(model) else {
                bail!(
                    "{}: the {arch} VM's QEMU ({qemu}) has no device {model:?}{} (`{qemu} \
                     -device help` lists the ones it has; some exist for one architecture \
                     only, and a newer QEMU may have more)",
                    d.from.display(),
                    suggestion(model, models.keys())
                );
            };
            if !d.device.properties.is_empty() {
                let known = parse_property_help(&qemu_help(qemu, &format!("{model},help"))?);
                if let Some(bad) = d.device.properties.keys().find(|p| !known.contains(p)) {
                    bail!(
                        "{}: {qemu}'s device {model:?} has no property {bad:?}; it has: {}",
                        d.from.display(),
                        known.join(", ")
                    );
                }
            }
            Ok(Checked {
                device: d.device.clone(),
                bus: bus.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    check_buses(arch, declared, &checked, &models)?;
    Ok(checked)
}

/// A virtio device on virtio-mmio (`virtio-rng-device`) needs a machine
/// that has virtio-mmio, which x86-64's PCI machine (q35) has not: when a
/// PCI device makes it q35, name the model's PCI twin instead.
fn check_buses(
    arch: Arch,
    declared: &[Declared],
    checked: &[Checked],
    models: &BTreeMap<String, Bus>,
) -> Result<()> {
    let machine = machine(checked);
    if arch.has_virtio_mmio(machine) {
        return Ok(());
    }
    let mmio = Bus::Other("virtio-bus".into());
    let Some((d, _)) = declared
        .iter()
        .zip(checked)
        .find(|(_, c)| c.bus == mmio && !c.device.device.ends_with("-pci"))
    else {
        return Ok(());
    };
    let model = &d.device.device;
    let twin = model
        .strip_suffix("-device")
        .map(|stem| format!("{stem}-pci"))
        .filter(|t| models.get(t) == Some(&Bus::Pci))
        .map(|t| format!(": declare {t:?}, its PCI form, instead"))
        .unwrap_or_default();
    bail!(
        "{}: device {model:?} plugs into virtio-mmio, which the {arch} VM does not have once a \
         PCI device is declared (its machine is then one with PCI only){twin}",
        d.from.display()
    )
}

/// ` (did you mean "edu"?)` for a close name.
fn suggestion<'a>(model: &str, names: impl Iterator<Item = &'a String>) -> String {
    let lower = model.to_ascii_lowercase();
    names
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            n.contains(&lower) || lower.contains(&n) && n.len() >= 3
        })
        .min_by_key(|n| n.len().abs_diff(model.len()))
        .map(|n| format!(" (did you mean {n:?}?)"))
        .unwrap_or_default()
}

/// `QEMU -device WHAT` (`help`, `MODEL,help`): QEMU prints it and exits.
fn qemu_help(qemu: &str, what: &str) -> Result<String> {
    let out = Command::new(qemu)
        .args(["-nodefaults", "-device", what])
        .output()
        .with_context(|| format!("running {qemu} -device {what} (is QEMU installed?)"))?;
    if !out.status.success() {
        bail!(
            "{qemu} -device {what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Lines `name "edu", bus PCI` of `-device help`: model → bus.
fn parse_device_help(text: &str) -> BTreeMap<String, Bus> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("name \"")?;
            let (name, rest) = rest.split_once('"')?;
            let bus = rest
                .split(", ")
                .find_map(|field| field.strip_prefix("bus "))
                .map_or_else(
                    || Bus::Other(String::new()),
                    |b| match b {
                        "PCI" => Bus::Pci,
                        other => Bus::Other(other.to_string()),
                    },
                );
            Some((name.to_string(), bus))
        })
        .collect()
}

/// Lines `  dma_mask=<uint64>` of `-device MODEL,help`: the property names.
fn parse_property_help(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(' '))
        .filter_map(|l| l.trim().split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// The machine the devices need: one with a PCI bus if any is a PCI device.
pub fn machine(devices: &[Checked]) -> Machine {
    if devices.iter().any(|d| d.bus == Bus::Pci) {
        Machine::Pci
    } else {
        Machine::Minimal
    }
}

/// `-device MODEL,NAME=VALUE,…` for QEMU, one pair of arguments per device.
pub fn qemu_args(devices: &[Checked]) -> Vec<String> {
    devices
        .iter()
        .flat_map(|d| ["-device".to_string(), option(&d.device)])
        .collect()
}

/// `MODEL,NAME=VALUE,…`: one `-device` value.
pub fn option(d: &Device) -> String {
    std::iter::once(d.device.clone())
        .chain(d.properties.iter().map(|(k, v)| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE_HELP: &str = "Misc devices:\nname \"edu\", bus PCI\nname \"pci-testdev\", bus PCI, \
        desc \"PCI Test Device\"\nname \"isa-debug-exit\", bus ISA\nname \"loader\", desc \"Generic Loader\"\n";

    #[test]
    fn device_help_gives_each_model_its_bus() {
        let models = parse_device_help(DEVICE_HELP);
        assert_eq!(models["edu"], Bus::Pci);
        assert_eq!(models["pci-testdev"], Bus::Pci);
        assert_eq!(models["isa-debug-exit"], Bus::Other("ISA".into()));
        assert_eq!(models["loader"], Bus::Other(String::new()));
    }

    #[test]
    fn property_help_gives_the_names() {
        let text = "edu options:\n  acpi-index=<uint32>    -  (default: 0)\n  dma_mask=<uint64>\n";
        assert_eq!(parse_property_help(text), ["acpi-index", "dma_mask"]);
    }

    #[test]
    fn a_device_becomes_one_qemu_option() {
        let d: Device = toml::from_str(
            "device = \"edu\"\nproperties = { dma_mask = 268435455, multifunction = false, romfile = \"a,b\" }",
        )
        .unwrap();
        assert_eq!(
            option(&d),
            "edu,dma_mask=268435455,multifunction=off,romfile=a,,b"
        );
    }

    #[test]
    fn a_pci_device_asks_for_the_pci_machine() {
        let pci = Checked {
            device: Device {
                device: "edu".into(),
                properties: BTreeMap::new(),
            },
            bus: Bus::Pci,
        };
        let isa = Checked {
            bus: Bus::Other("ISA".into()),
            ..pci.clone()
        };
        assert_eq!(machine(&[]), Machine::Minimal);
        assert_eq!(machine(std::slice::from_ref(&isa)), Machine::Minimal);
        assert_eq!(machine(&[isa, pci]), Machine::Pci);
    }

    #[test]
    fn a_module_directory_adds_its_own_devices_after_the_projects() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MODULE_DEVICES_FILE),
            "[[devices]]\ndevice = \"edu\"\n",
        )
        .unwrap();
        let project = [Device {
            device: "pci-testdev".into(),
            properties: BTreeMap::new(),
        }];
        let all = declared(&project, Path::new("lkmlab.toml"), dir.path()).unwrap();
        let names: Vec<&str> = all.iter().map(|d| d.device.device.as_str()).collect();
        assert_eq!(names, ["pci-testdev", "edu"]);
        assert_eq!(all[1].from, dir.path().join(MODULE_DEVICES_FILE));
    }

    #[test]
    fn a_misspelt_key_or_a_bad_name_is_refused_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(MODULE_DEVICES_FILE);
        std::fs::write(&file, "[[devices]]\nmodel = \"edu\"\n").unwrap();
        let e = format!(
            "{:#}",
            declared(&[], Path::new("x"), dir.path()).unwrap_err()
        );
        assert!(
            e.contains("devices.toml") && e.contains("device = \"MODEL\""),
            "{e}"
        );
        std::fs::write(&file, "[[devices]]\ndevice = \"edu,x=1\"\n").unwrap();
        let e = format!(
            "{:#}",
            declared(&[], Path::new("x"), dir.path()).unwrap_err()
        );
        assert!(e.contains("not a QEMU device model name"), "{e}");
    }

    fn declared_as(model: &str) -> (Declared, Checked) {
        let device = Device {
            device: model.into(),
            properties: BTreeMap::new(),
        };
        let bus = parse_device_help(DEVICE_HELP_VIRTIO).remove(model).unwrap();
        let from = PathBuf::from("devices.toml");
        let checked = Checked {
            device: device.clone(),
            bus,
        };
        (Declared { device, from }, checked)
    }

    const DEVICE_HELP_VIRTIO: &str = "name \"edu\", bus PCI\n\
        name \"virtio-rng-device\", bus virtio-bus\nname \"virtio-rng-pci\", bus PCI\n";

    /// A virtio-mmio device beside a PCI one on x86-64 (q35 has no
    /// virtio-mmio) is refused with its PCI twin; alone, or on arm64, not.
    #[test]
    fn a_virtio_mmio_device_needs_a_machine_that_has_it() {
        let models = parse_device_help(DEVICE_HELP_VIRTIO);
        let (rng_d, rng_c) = declared_as("virtio-rng-device");
        let (edu_d, edu_c) = declared_as("edu");
        let alone = check_buses(
            Arch::X86_64,
            std::slice::from_ref(&rng_d),
            std::slice::from_ref(&rng_c),
            &models,
        );
        assert!(alone.is_ok());
        let both_d = [edu_d, rng_d];
        let both_c = [edu_c, rng_c];
        let e = check_buses(Arch::X86_64, &both_d, &both_c, &models).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("declare \"virtio-rng-pci\""), "{e}");
        assert!(check_buses(Arch::Arm64, &both_d, &both_c, &models).is_ok());
    }

    #[test]
    fn a_property_of_another_type_says_what_it_may_be() {
        let e = toml::from_str::<Device>("device = \"edu\"\nproperties = { x = 1.5 }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("an integer, a boolean or a string"), "{e}");
    }

    #[test]
    fn one_pair_of_brackets_is_refused_saying_two() {
        #[derive(Debug, Deserialize)]
        struct Vm {
            #[serde(default, deserialize_with = "deserialize_list")]
            devices: Vec<Device>,
        }
        let ok: Vm = toml::from_str("[[devices]]\ndevice = \"edu\"\n").unwrap();
        assert_eq!(ok.devices.len(), 1);
        let e = toml::from_str::<Vm>("[devices]\ndevice = \"edu\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[[vm.devices]] tables, one per device (double brackets)"),
            "{e}"
        );
        let e = toml::from_str::<Vm>("[[devices]]\nmodel = \"edu\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `model`"), "{e}");
    }

    #[test]
    fn a_close_name_is_suggested() {
        let names = ["edu".to_string(), "pci-testdev".to_string()];
        assert_eq!(
            suggestion("pci-testdevice", names.iter()),
            " (did you mean \"pci-testdev\"?)"
        );
        assert_eq!(suggestion("nothing-like-it", names.iter()), "");
    }
}
