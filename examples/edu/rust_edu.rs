// SPDX-License-Identifier: GPL-2.0

//! A Rust PCI driver for QEMU's educational device `edu`.
//!
//! QEMU's `edu` (`-device edu`, `docs/specs/edu.rst` and `hw/misc/edu.c` in QEMU's tree) is a
//! PCI device made for teaching drivers: vendor 0x1234, device 0x11e8, one 1 MiB memory BAR
//! (BAR 0) of 32-bit registers (64-bit ones from 0x80 on), an interrupt and a DMA engine with a
//! 4 KiB buffer of its own. This driver uses every part of it, each the way the 7.3 `kernel`
//! crate offers:
//!
//! - **Probe** ([`RustEdu::probe`]): enables the device's memory and bus mastering, sets the DMA
//!   mask to the device's 28 bits, maps BAR 0 with [`pci::Device::iomap_region_sized`] (its
//!   registers are [`register!`] types in [`regs`], so an access outside the mapping does not
//!   build), checks the identification register (`0xRRrr00ed`: major, minor, the magic `0xed`)
//!   and the liveness register (it reads back the bitwise NOT of what was written), and logs the
//!   device's version.
//! - **MMIO and polling** ([`Edu::factorial`]): writing n to the factorial register starts the
//!   computation in a thread of QEMU; status bit 0 says it is still running. The driver polls it
//!   with [`read_poll_timeout`] (it sleeps between reads and gives up after a timeout: the
//!   kernel's `readx_poll_timeout()`; [`read_poll_timeout_atomic`] busy-waits instead, for atomic
//!   context) and checks the result against a software reference ([`factorial`]).
//! - **An interrupt** ([`Edu::handle_irq`]): the line is allocated with
//!   [`pci::Device::alloc_irq_vectors`] (INTx only: the test kernels have no `CONFIG_PCI_MSI`,
//!   and edu raises INTx when MSI is off) and requested with [`irq::Registration`], shared. The
//!   handler reads the interrupt status register (0x24): zero means another device on the shared
//!   line; else it acknowledges those bits (0x64; INTx is level-triggered, the line stays
//!   asserted until then) and counts. Writing the raise register (0x60) makes the device
//!   interrupt ([`Edu::raise_irq`]); a finished DMA transfer does too.
//! - **DMA** ([`Edu::dma_round_trip`]): a [`Coherent`] buffer of one page. A pattern in its first
//!   half goes to the device's buffer (device address 0x40000) and comes back into its second
//!   half, each transfer with "interrupt when done" set; the driver waits for the interrupt and
//!   compares. A transfer moves [`DMA_LEN`] bytes, less than edu's 4 KiB: the range check of
//!   some QEMU versions rejects a transfer that ends exactly at the end of the buffer (QEMU
//!   issue 1254), and older ones, such as Debian 12's 7.2, stop the whole VM (`hw_error`) on a
//!   transfer they reject.
//! - **A user interface**: the misc device `/dev/edu` ([`EduFile`]). A write is one command
//!   ([`Command`]), run on the device before the write returns:
//!
//!   | write | does |
//!   | --- | --- |
//!   | `n` (0 ..= 12) | computes `n!` on the device |
//!   | `irq v` (v ≠ 0) | raises an interrupt with status bits `v`, waits until it is handled |
//!   | `dma` | one DMA round trip (`EIO` if the data comes back different) |
//!
//!   A failure is the write's error: `EINVAL` for what is not a command, `EOVERFLOW` for n > 12
//!   (its factorial does not fit the 32-bit register), `ETIMEDOUT`, `EIO`, and `ENODEV` once the
//!   device is unbound. A read returns a report, one `name value` line each: `version 1.0`,
//!   `factorial <the last result>` (once there is one), `interrupts <handled>`,
//!   `dma <round trips that came back equal>`. The name is fixed (a misc device's name is a
//!   `&'static CStr`), so the driver binds one edu device: probe refuses a second one with
//!   `EBUSY` ([`DevEduClaim`]) rather than let `misc_register` fail on the duplicate name (with
//!   a sysfs warning and a stack dump).
//! - **Unbind** ([`RustEdu::unbind`], then the drop of [`EduData`]): unbind stops new operations
//!   (waiting for one in progress), switches the device's interrupt sources off, waits for a DMA
//!   transfer still running and acknowledges what is pending. Dropping the data then removes
//!   `/dev/edu`, frees the IRQ (after a running handler returns) and the vector, in that order
//!   (the order of the fields). A file still open keeps the device's [`Edu`] (an [`Arc`]): its
//!   commands fail with `ENODEV`, and the BAR and the DMA buffer, device-managed
//!   ([`Devres`]), are gone with the binding; the open file also keeps the module loaded (the
//!   misc device's file operations name their owner). Binding again through sysfs probes
//!   afresh, with a new `/dev/edu`.
//! - **KUnit** (suite `rust_edu`, run at load): what needs no device: the factorial reference,
//!   the command parser, the DMA command word, the identification register, the range check of
//!   a transfer and the DMA test pattern.
//!
//! # What the 7.3 API lacks, and what this driver does instead
//!
//! - **No device table entry for vendor 0x1234.** [`pci::DeviceId::from_id`] takes a
//!   [`pci::Vendor`], which only has constants for the IDs in `pci_ids.h`, and 0x1234 (QEMU's
//!   historical, unassigned vendor ID) is not one of them; nor is there a public constructor from
//!   a raw ID. The table matches edu's class instead (`PCI_CLASS_OTHERS`, 0xff0000), with the
//!   IDs as the entry's data; probe returns `ENODEV` for any other device of that class (the
//!   driver core takes that as "not mine", silently). The module alias is thereby the class's.
//! - **An `irq::Registration` in the driver data borrows the vector allocation beside it.**
//!   [`pci::IrqVectorRegistration::index`] hands out an [`pci::IrqVector`] that borrows the
//!   allocation, so the registration's lifetime is that borrow; but both must live as long as
//!   the device is bound, in [`EduData`]. Safe Rust cannot express that self-reference: the
//!   allocation is boxed (its address stays put) and the borrow is widened to `'bound` in one
//!   `unsafe` block whose conditions (the field order drops the registration first) are written
//!   beside it.
//! - **File operations cannot use the `'bound` data.** A misc device's open files outlive the
//!   binding, and its per-file data must be `'static`, so the mapping probe gets ([`pci::Bar`],
//!   `'bound`) cannot be used there: the BAR goes into a [`pci::DevresBar`] and the DMA buffer
//!   into a [`Devres`] (revocable: each access is an RCU read-side section, no sleeping inside),
//!   in an [`Arc`] that the files and the interrupt handler share.
//! - **`MiscDevice::open` gets only the registration**, none of the driver's data. The
//!   registration is embedded in [`EduMisc`] beside the [`Arc`], and `open` finds it with
//!   `container_of!` (one `unsafe`, its conditions beside it). scull uses a static instead; a
//!   per-device driver should not.
//! - **debugfs files do not keep the module loaded.** The 7.3 debugfs abstraction builds its
//!   `file_operations` without an `owner`, so a debugfs file of a Rust module can be held open
//!   across `rmmod`; closing it then runs `full_proxy_release`, which reads the unloaded module's
//!   `file_operations`: an oops (seen with this driver's first, debugfs-based interface). The
//!   misc device's file operations do name their owner.
//! - **No bounded wait for an interrupt.** [`kernel::sync::Completion`] has neither
//!   `wait_for_completion_timeout()` nor `reinit_completion()`, and a [`kernel::sync::CondVar`]
//!   needs its waker to take the lock (a mutex: not from a hard IRQ handler) or a wake-up can be
//!   lost. The handler counts in atomics and the waiter polls the count with
//!   [`read_poll_timeout`], 1 ms apart.
//! - **No compile-time checked 64-bit register access on a BAR.** The BAR's type is a
//!   [`kernel::io::Region`], whose alignment is 4 bytes, so `read`/`write` of a `u64` register
//!   (the DMA registers) do not build; the driver uses `try_read`/`try_write_reg`, which check
//!   the offset and alignment at run time and return an error instead.
//! - **No `pci_disable_device()` or `pci_clear_master()`**: the device stays enabled and a bus
//!   master after unbind (the PCI core does not complain; the driver leaves no DMA running).
//!
//! The DMA mask of 28 bits needs the DMA zone or no RAM above 256 MiB: the test kernels have no
//! `CONFIG_ZONE_DMA`, and lkmlab's VM has 256 MiB (`[vm] memory_mib`); with more,
//! `dma_set_mask_and_coherent` fails and so does probe. QEMU's `dma_mask` property of the
//! device would widen the device's side.
//!
//! [`read_poll_timeout_atomic`]: kernel::io::poll::read_poll_timeout_atomic

use kernel::{
    container_of,
    device::Core,
    devres::Devres,
    dma::{
        Coherent,
        Device as _,
        DmaAddress,
        DmaMask, //
    },
    fs::{
        File,
        Kiocb, //
    },
    io::{
        io_read,
        io_write,
        poll::read_poll_timeout,
        register,
        Io, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    irq::{
        self,
        IrqRequest,
        IrqReturn, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_mutex,
    pci::{
        self,
        IrqType,
        IrqTypes, //
    },
    prelude::*,
    str::CString,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Full,
            Release, //
        },
        Arc,
        Mutex,
        MutexGuard, //
    },
    time::Delta,
};

/// The registers of BAR 0.
mod regs {
    use super::*;

    register! {
        /// Identification: major and minor version, and the magic `0xed`.
        pub(super) IDENT(u32) @ 0x00 {
            31:24 major;
            23:16 minor;
            7:0 magic;
        }

        /// Liveness check: reads back the bitwise NOT of the last value written.
        pub(super) LIVENESS(u32) @ 0x04 {
            31:0 value;
        }

        /// Factorial: writing n starts computing n!, read when `STATUS.computing` is clear.
        pub(super) FACTORIAL(u32) @ 0x08 {
            31:0 value;
        }

        /// Status.
        pub(super) STATUS(u32) @ 0x20 {
            /// Raise the factorial interrupt when a computation ends.
            7:7 irq_on_factorial;
            /// A factorial is being computed (read-only).
            0:0 computing;
        }

        /// Interrupt status: the sources raised and not acknowledged yet.
        pub(super) IRQ_STATUS(u32) @ 0x24 {
            /// A DMA transfer ended (with `DMA_CMD.irq`).
            8:8 dma;
            /// A factorial ended (with `STATUS.irq_on_factorial`).
            0:0 factorial;
        }

        /// Interrupt raise: sets the bits written in `IRQ_STATUS` and interrupts.
        pub(super) IRQ_RAISE(u32) @ 0x60 {
            31:0 value;
        }

        /// Interrupt acknowledge: clears the bits written from `IRQ_STATUS`.
        pub(super) IRQ_ACK(u32) @ 0x64 {
            31:0 value;
        }

        /// DMA source address (a bus address or one in the device's buffer).
        pub(super) DMA_SRC(u64) @ 0x80 {
            63:0 address;
        }

        /// DMA destination address.
        pub(super) DMA_DST(u64) @ 0x88 {
            63:0 address;
        }

        /// DMA transfer size in bytes.
        pub(super) DMA_COUNT(u64) @ 0x90 {
            63:0 bytes;
        }

        /// DMA command; writing it with `start` set starts the transfer.
        pub(super) DMA_CMD(u64) @ 0x98 {
            /// Raise the DMA interrupt when the transfer ends.
            2:2 irq;
            /// Direction: from the device's buffer to RAM (else RAM to the buffer).
            1:1 to_ram;
            /// Start; reads as set while the transfer runs.
            0:0 start;
        }
    }

    /// The part of BAR 0 that is mapped (the BAR is 1 MiB, the registers end at 0xa0).
    pub(super) const END: usize = 0x100;
}

/// BAR 0 as mapped by probe.
type Bar0<'a> = pci::Bar<'a, { regs::END }>;

/// The magic in the low byte of `IDENT`.
const EDU_MAGIC: u32 = 0xed;
/// Written to `LIVENESS` by probe; the device must answer its bitwise NOT.
const LIVENESS_PROBE: u32 = 0x5a5a_1234;
/// The device's DMA reach: QEMU's default `dma_mask` property is 28 bits.
const EDU_DMA_BITS: u32 = 28;
/// The device's own DMA buffer: `EDU_DMA_SIZE` bytes at this device address.
const EDU_DMA_START: u64 = 0x40000;
/// Size of the device's DMA buffer.
const EDU_DMA_SIZE: u64 = 4096;
/// Bytes moved by each DMA transfer; half of the host buffer.
const DMA_LEN: usize = 2048;
/// The host's DMA buffer: the source half, then the destination half.
const DMA_BUFFER_SIZE: usize = 2 * DMA_LEN;
/// The largest n whose factorial fits the 32-bit register (12! = 479001600).
const MAX_FACTORIAL_INPUT: u32 = 12;

/// How long a factorial may take (QEMU computes it in a thread of its own).
const FACTORIAL_TIMEOUT: Delta = Delta::from_secs(2);
/// How long an interrupt may take to arrive after it was raised.
const IRQ_TIMEOUT: Delta = Delta::from_secs(2);
/// How long a DMA transfer may take: QEMU runs it 100 ms (virtual clock) after the command.
const DMA_TIMEOUT: Delta = Delta::from_secs(5);

/// `n!`, if it fits in 32 bits (up to 12!): the reference for the device's result.
fn factorial(n: u32) -> Option<u32> {
    (1..=n).try_fold(1u32, |product, k| product.checked_mul(k))
}

/// Parses a decimal number: digits only.
fn parse_number(word: &str) -> Result<u32> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EINVAL);
    }
    word.parse::<u32>().map_err(|_| EINVAL)
}

/// A command written to `/dev/edu`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Command {
    /// `n`: compute `n!`.
    Factorial(u32),
    /// `irq v`: raise an interrupt with status bits `v` (not 0).
    RaiseIrq(u32),
    /// `dma`: one DMA round trip.
    DmaRoundTrip,
}

/// The longest command accepted, in bytes (`irq 4294967295\n` is 15).
const MAX_COMMAND_LEN: usize = 32;

impl Command {
    /// Parses one command, as `echo` writes it (`"12\n"`, `"irq 1\n"`, `"dma\n"`).
    fn parse(input: &[u8]) -> Result<Self> {
        let text = core::str::from_utf8(input).map_err(|_| EINVAL)?;
        let mut words = text.split_ascii_whitespace();
        let command = match (words.next(), words.next()) {
            (Some("irq"), Some(value)) => match parse_number(value)? {
                0 => return Err(EINVAL),
                value => Command::RaiseIrq(value),
            },
            (Some("dma"), None) => Command::DmaRoundTrip,
            (Some(n), None) => Command::Factorial(parse_number(n)?),
            _ => return Err(EINVAL),
        };
        match words.next() {
            Some(_) => Err(EINVAL),
            None => Ok(command),
        }
    }
}

/// The direction of a DMA transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum DmaDirection {
    /// From RAM to the device's buffer.
    ToDevice,
    /// From the device's buffer to RAM.
    ToRam,
}

/// The command that starts a transfer in `direction` and interrupts when it ends.
fn dma_command(direction: DmaDirection) -> regs::DMA_CMD {
    regs::DMA_CMD::zeroed()
        .with_start(true)
        .with_to_ram(direction == DmaDirection::ToRam)
        .with_irq(true)
}

/// Whether `len` bytes at device address `address` lie in the device's buffer, ending before
/// its last byte (some QEMU versions reject a transfer that ends exactly at the end).
fn in_device_buffer(address: u64, len: u64) -> bool {
    match address.checked_add(len) {
        Some(end) => len > 0 && address >= EDU_DMA_START && end < EDU_DMA_START + EDU_DMA_SIZE,
        None => false,
    }
}

/// The byte at `index` of the DMA test pattern of round trip `seed`: neighbouring bytes differ,
/// and every byte changes from one round trip to the next.
fn pattern_byte(seed: u8, index: usize) -> u8 {
    // CAST: the low byte of the index, then its second byte: truncation intended.
    (index as u8).wrapping_mul(7).wrapping_add(seed) ^ ((index >> 8) as u8)
}

/// What the commands change, under [`Edu::state`].
struct EduState {
    /// Set by unbind: no command may start any more.
    closing: bool,
    /// The last factorial computed.
    factorial: Option<u32>,
    /// DMA round trips that came back equal.
    dma_round_trips: u32,
    /// Changes the DMA test pattern from one round trip to the next.
    seed: u8,
}

/// The device as the interrupt handler and the open files of `/dev/edu` share it.
///
/// Open files outlive the binding, so everything here is `'static` and whatever belongs to the
/// binding is revocable: the BAR ([`pci::DevresBar`]) and the DMA buffer ([`Devres`]).
#[pin_data]
struct Edu {
    pdev: ARef<pci::Device>,
    /// The device's version, from `IDENT`.
    version: (u32, u32),
    bar: pci::DevresBar<{ regs::END }>,
    /// The host side of DMA transfers: source half, destination half.
    dma: Devres<Coherent<[u8]>>,
    /// The bus address of `dma`.
    dma_address: DmaAddress,
    /// Serialises the commands (one factorial unit, one DMA engine).
    #[pin]
    state: Mutex<EduState>,
    /// Interrupts handled.
    irqs: Atomic<u32>,
    /// DMA interrupts handled.
    dma_irqs: Atomic<u32>,
}

impl Edu {
    fn new(
        pdev: ARef<pci::Device>,
        version: (u32, u32),
        bar: pci::DevresBar<{ regs::END }>,
        dma: Devres<Coherent<[u8]>>,
        dma_address: DmaAddress,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            pdev,
            version,
            bar,
            dma,
            dma_address,
            state <- new_mutex!(EduState {
                closing: false,
                factorial: None,
                dma_round_trips: 0,
                seed: 0,
            }),
            irqs: Atomic::new(0),
            dma_irqs: Atomic::new(0),
        })
    }

    /// Runs `f` on the BAR unless the binding is gone (`ENXIO`); `f` must not sleep.
    fn with_bar<R>(&self, f: impl for<'a> FnOnce(&Bar0<'a>) -> R) -> Result<R> {
        self.bar.try_access_with(f).ok_or(ENXIO)
    }

    /// Runs `f` on the DMA buffer unless the binding is gone (`ENXIO`); `f` must not sleep.
    fn with_dma<R>(&self, f: impl FnOnce(&Coherent<[u8]>) -> R) -> Result<R> {
        self.dma.try_access_with(f).ok_or(ENXIO)
    }

    /// Takes the commands' lock, unless unbind has begun (`ENODEV`).
    fn start(&self) -> Result<MutexGuard<'_, EduState>> {
        let state = self.state.lock();
        if state.closing {
            return Err(ENODEV);
        }
        Ok(state)
    }

    /// Runs `command` on the device.
    fn run(&self, command: Command) -> Result {
        if let Command::Factorial(n) = command {
            if n > MAX_FACTORIAL_INPUT {
                return Err(EOVERFLOW);
            }
        }
        let mut state = self.start()?;
        match command {
            Command::Factorial(n) => state.factorial = Some(self.factorial(n)?),
            Command::RaiseIrq(value) => self.raise_irq(value)?,
            Command::DmaRoundTrip => {
                state.seed = state.seed.wrapping_add(1);
                self.dma_round_trip(state.seed)?;
                state.dma_round_trips += 1;
            }
        }
        Ok(())
    }

    /// The text a read of `/dev/edu` returns.
    fn report(&self) -> Result<CString> {
        let state = self.state.lock();
        let (major, minor) = self.version;
        let irqs = self.irqs.load(Acquire);
        match state.factorial {
            Some(result) => CString::try_from_fmt(fmt!(
                "version {major}.{minor}\nfactorial {result}\ninterrupts {irqs}\ndma {}\n",
                state.dma_round_trips
            )),
            None => CString::try_from_fmt(fmt!(
                "version {major}.{minor}\ninterrupts {irqs}\ndma {}\n",
                state.dma_round_trips
            )),
        }
    }

    /// Computes `n!` on the device, polling the status register until it is done.
    fn factorial(&self, n: u32) -> Result<u32> {
        let expected = factorial(n).ok_or(EOVERFLOW)?;
        self.with_bar(|bar| bar.write_reg(regs::FACTORIAL::from(n)))?;
        read_poll_timeout(
            || self.with_bar(|bar| bar.read(regs::STATUS)),
            |status| !status.computing().into_bool(),
            Delta::from_micros(50),
            FACTORIAL_TIMEOUT,
        )?;
        let result = self.with_bar(|bar| bar.read(regs::FACTORIAL).into_raw())?;
        if result != expected {
            dev_err!(
                self.pdev,
                "{}! computed as {}, not {}\n",
                n,
                result,
                expected
            );
            return Err(EIO);
        }
        Ok(result)
    }

    /// Raises an interrupt with status bits `value` and waits until the handler has seen one.
    fn raise_irq(&self, value: u32) -> Result {
        let seen = self.irqs.load(Acquire);
        self.with_bar(|bar| bar.write_reg(regs::IRQ_RAISE::from(value)))?;
        wait_for_irq(&self.irqs, seen, IRQ_TIMEOUT)
    }

    /// Moves `DMA_LEN` bytes from bus address `src` to `dst` and waits for the interrupt.
    fn dma_transfer(&self, direction: DmaDirection, src: u64, dst: u64) -> Result {
        let device_side = match direction {
            DmaDirection::ToDevice => dst,
            DmaDirection::ToRam => src,
        };
        // CAST: `DMA_LEN` is 2048.
        let len = DMA_LEN as u64;
        if !in_device_buffer(device_side, len) {
            return Err(EINVAL);
        }
        let seen = self.dma_irqs.load(Acquire);
        // The 64-bit registers are written with run-time checked accesses: the compile-time
        // checked ones need the mapping's type to be 8-byte aligned, and `Region` is 4.
        self.with_bar(|bar| -> Result {
            bar.try_write_reg(regs::DMA_SRC::from(src))?;
            bar.try_write_reg(regs::DMA_DST::from(dst))?;
            bar.try_write_reg(regs::DMA_COUNT::from(len))?;
            bar.try_write_reg(dma_command(direction))
        })??;
        wait_for_irq(&self.dma_irqs, seen, DMA_TIMEOUT)
    }

    /// Sends a pattern to the device's buffer and back, and compares.
    ///
    /// The caller holds the commands' lock, which unbind takes before the binding (and with it
    /// the buffer) goes: the buffer stays while the device writes into it.
    fn dma_round_trip(&self, seed: u8) -> Result {
        self.with_dma(|dma| -> Result {
            for i in 0..DMA_LEN {
                io_write!(dma, [try: i], pattern_byte(seed, i));
                io_write!(dma, [try: DMA_LEN + i], 0u8);
            }
            Ok(())
        })??;
        let source = self.dma_address;
        // CAST: `DMA_LEN` is 2048.
        let destination = source + DMA_LEN as DmaAddress;
        self.dma_transfer(DmaDirection::ToDevice, source, EDU_DMA_START)?;
        self.dma_transfer(DmaDirection::ToRam, EDU_DMA_START, destination)?;
        let mismatch = self.with_dma(|dma| -> Result<Option<(usize, u8)>> {
            for i in 0..DMA_LEN {
                let got: u8 = io_read!(dma, [try: DMA_LEN + i]);
                if got != pattern_byte(seed, i) {
                    return Ok(Some((i, got)));
                }
            }
            Ok(None)
        })??;
        if let Some((i, got)) = mismatch {
            dev_err!(
                self.pdev,
                "DMA round trip: byte {} came back {:#04x}, sent {:#04x}\n",
                i,
                got,
                pattern_byte(seed, i)
            );
            return Err(EIO);
        }
        Ok(())
    }

    /// Switches the device's interrupt sources off, waits for a DMA transfer still running and
    /// acknowledges every pending interrupt.
    fn quiesce(bar: &Bar0<'_>) -> Result {
        bar.write_reg(regs::STATUS::zeroed());
        read_poll_timeout(
            || bar.try_read(regs::DMA_CMD),
            |cmd| !cmd.start().into_bool(),
            Delta::from_millis(1),
            DMA_TIMEOUT,
        )?;
        bar.write_reg(regs::IRQ_ACK::from(u32::MAX));
        Ok(())
    }

    /// The interrupt handler's work.
    fn handle_irq(&self) -> IrqReturn {
        let status = self.bar.try_access_with(|bar| {
            let status = bar.read(regs::IRQ_STATUS);
            if status.into_raw() != 0 {
                // INTx is level-triggered: the line stays asserted until every source is
                // acknowledged.
                bar.write_reg(regs::IRQ_ACK::from(status.into_raw()));
            }
            status
        });
        // The line may be shared: with no source raised, the interrupt is another device's.
        let Some(status) = status.filter(|status| status.into_raw() != 0) else {
            return IrqReturn::None;
        };
        if status.dma().into_bool() {
            self.dma_irqs.fetch_add(1, Release);
        }
        self.irqs.fetch_add(1, Release);
        IrqReturn::Handled
    }
}

/// Waits until the interrupt handler has moved `counter` on from `seen`.
fn wait_for_irq(counter: &Atomic<u32>, seen: u32, timeout: Delta) -> Result {
    read_poll_timeout(
        // Acquire: pairs with the handler's release, so that what the device wrote before it
        // interrupted is seen after.
        || Ok(counter.load(Acquire)),
        |now| *now != seen,
        Delta::from_millis(1),
        timeout,
    )?;
    Ok(())
}

/// The interrupt handler: the registration owns it, and it shares the device's [`Edu`].
struct EduIrq {
    edu: Arc<Edu>,
}

impl irq::Handler for EduIrq {
    fn handle(&self) -> IrqReturn {
        self.edu.handle_irq()
    }
}

/// The file operations of `/dev/edu`: each open file holds the device's [`Edu`].
struct EduFile;

#[vtable]
impl MiscDevice for EduFile {
    type Ptr = Arc<Edu>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Edu>> {
        // SAFETY: `EduFile` is private to this module, and its only registrations are the
        // `registration` fields of `EduMisc`s (`EduMisc::new`), so `misc` points into one. That
        // `EduMisc` is alive: the misc core calls `open` under `misc_mtx`, which deregistration
        // (the first thing `EduMisc`'s drop does) also takes.
        let misc = unsafe { &*container_of!(core::ptr::from_ref(misc), EduMisc, registration) };
        Ok(misc.edu.clone())
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let report = kiocb.file().report()?;
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), report.to_bytes())
    }

    fn write_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let mut buf = [0u8; MAX_COMMAND_LEN];
        let len = iov.len();
        if len > buf.len() {
            return Err(EINVAL);
        }
        if iov.copy_from_iter(&mut buf[..len]) != len {
            return Err(EFAULT);
        }
        kiocb.file().run(Command::parse(&buf[..len])?)?;
        Ok(len)
    }
}

/// Whether a bound device has `/dev/edu` (see [`DevEduClaim`]).
static DEV_EDU_TAKEN: Atomic<bool> = Atomic::new(false);

/// The right to register `/dev/edu`, held by at most one bound device at a time.
///
/// The name of a misc device is a `&'static CStr`, so every device of this driver would get the
/// same one, and registering it twice fails in `misc_register` with a sysfs warning. Probe takes
/// this first and refuses a second device with `EBUSY`.
struct DevEduClaim;

impl DevEduClaim {
    fn take() -> Result<Self> {
        DEV_EDU_TAKEN
            .cmpxchg(false, true, Full)
            .map(|_| DevEduClaim)
            .map_err(|_| EBUSY)
    }
}

impl Drop for DevEduClaim {
    fn drop(&mut self) {
        DEV_EDU_TAKEN.store(false, Release);
    }
}

/// `/dev/edu` and the [`Edu`] its files get.
#[pin_data]
struct EduMisc {
    /// Dropped first: no file opens once the rest goes.
    #[pin]
    registration: MiscDeviceRegistration<EduFile>,
    edu: Arc<Edu>,
    /// Given back once `/dev/edu` is gone.
    _claim: DevEduClaim,
}

impl EduMisc {
    fn new(edu: Arc<Edu>, claim: DevEduClaim) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Before the registration: a file may be opened as soon as it is registered.
            edu,
            _claim: claim,
            registration <- MiscDeviceRegistration::register(MiscDeviceOptions { name: c"edu" }),
        })
    }
}

/// The IDs a table entry matches, checked by probe (see the module docs).
struct EduIds {
    vendor: u16,
    device: u16,
}

kernel::pci_device_table!(
    PCI_TABLE,
    <RustEdu as pci::Driver>::IdInfo,
    [(
        pci::DeviceId::from_class(pci::Class::OTHERS.as_raw(), pci::ClassMask::Full.as_raw()),
        EduIds {
            vendor: 0x1234,
            device: 0x11e8,
        }
    )]
);

/// The driver's data for a bound device, dropped in the order of its fields.
#[pin_data]
struct EduData<'bound> {
    /// `/dev/edu`: no file opens once it is gone.
    #[pin]
    misc: EduMisc,
    /// The interrupt handler: freed after a running handler returns.
    #[pin]
    irq: irq::Registration<'bound, EduIrq>,
    /// The interrupt vector the registration borrows: dropped after it.
    _vectors: KBox<pci::IrqVectorRegistration<'bound>>,
    /// The device, as unbind uses it.
    edu: Arc<Edu>,
}

/// The driver.
struct RustEdu;

/// Checks the identification and liveness registers; returns the device's version.
fn check_device(pdev: &pci::Device, bar: &Bar0<'_>) -> Result<(u32, u32)> {
    let ident = bar.read(regs::IDENT);
    if ident.magic() != EDU_MAGIC {
        dev_err!(
            pdev,
            "identification {:#010x} is not edu's\n",
            ident.into_raw()
        );
        return Err(ENODEV);
    }
    bar.write_reg(regs::LIVENESS::from(LIVENESS_PROBE));
    let answer = bar.read(regs::LIVENESS).into_raw();
    if answer != !LIVENESS_PROBE {
        dev_err!(
            pdev,
            "liveness check: wrote {:#010x}, read {:#010x}\n",
            LIVENESS_PROBE,
            answer
        );
        return Err(EIO);
    }
    Ok((ident.major().get(), ident.minor().get()))
}

impl pci::Driver for RustEdu {
    type IdInfo = EduIds;
    type Data<'bound> = EduData<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let ids = info.ok_or(ENODEV)?;
            if pdev.vendor_id().as_raw() != ids.vendor || pdev.device_id() != ids.device {
                return Err(ENODEV);
            }
            let claim = DevEduClaim::take().inspect_err(|_| {
                dev_err!(pdev, "/dev/edu is another edu device's: one is supported\n");
            })?;

            pdev.enable_device_mem()?;
            pdev.set_master();
            // SAFETY: Nothing allocates or maps DMA memory for this device concurrently: until
            // probe returns, it is the device's only user.
            unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<EDU_DMA_BITS>())? };

            let bar = pdev.iomap_region_sized::<{ regs::END }>(0, c"rust_edu")?;
            let (major, minor) = check_device(pdev, &bar)?;
            // A previous driver may have left interrupts pending or a transfer running.
            Edu::quiesce(&bar)?;
            let bar = bar.into_devres()?;

            let dma = Coherent::<u8>::zeroed_slice(pdev.as_ref(), DMA_BUFFER_SIZE, GFP_KERNEL)?;
            let dma_address = dma.dma_address();
            let dma = Devres::new(pdev.as_ref(), dma)?;
            let edu = Arc::pin_init(
                Edu::new(pdev.into(), (major, minor), bar, dma, dma_address),
                GFP_KERNEL,
            )?;

            let intx = IrqTypes::default().with(IrqType::Intx);
            let vectors = KBox::new(pdev.alloc_irq_vectors(1, 1, intx)?, GFP_KERNEL)?;
            // SAFETY: The reference is to the heap allocation of `vectors`, which moving the
            // `KBox` (a plain pointer, not `noalias`) into `EduData` does not move. Its only
            // user is the IRQ registration made from it below, and that goes first everywhere:
            // in `EduData` it is `irq`, dropped before `_vectors` (field order); if initialising
            // `EduData` fails after `irq`, `irq` is dropped before `_vectors` (the reverse of the
            // order of initialisation, which puts `_vectors` first); if initialising `irq`
            // fails, it registered nothing; and if this closure fails before, nothing used it.
            let vectors_ref: &'bound pci::IrqVectorRegistration<'bound> =
                unsafe { &*core::ptr::from_ref(&*vectors) };
            let request: IrqRequest<'bound> = vectors_ref.index(0)?.into();
            let irq = request.irq();

            // SAFETY: The registration is pinned in the driver's data, which the driver core
            // drops after unbind; it is never forgotten.
            let registration = unsafe {
                irq::Registration::new(
                    request,
                    irq::Flags::SHARED,
                    c"rust_edu",
                    Ok::<_, Error>(EduIrq { edu: edu.clone() }),
                )
            };

            Ok(try_pin_init!(EduData {
                // In this order: the interrupt works before `/dev/edu` can be opened.
                _vectors: vectors,
                irq <- registration,
                misc <- EduMisc::new(edu.clone(), claim),
                edu,
            })
            .pin_chain(move |_| {
                dev_info!(
                    pdev,
                    "edu {}.{}, irq {}, DMA buffer at {:#x}\n",
                    major,
                    minor,
                    irq,
                    dma_address
                );
                Ok(())
            }))
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&Self::Data<'bound>>) {
        let edu = &this.edu;
        // Waits for a command in progress; none starts after this.
        let mut state = edu.state.lock();
        state.closing = true;
        let quiesced = edu
            .bar
            .access(pdev.as_ref())
            .and_then(|bar| Edu::quiesce(bar));
        if let Err(err) = quiesced {
            dev_err!(pdev, "could not quiesce the device: {:?}\n", err);
        }
    }
}

kernel::module_pci_driver! {
    type: RustEdu,
    name: "rust_edu",
    authors: ["lkmlab"],
    description: "Rust driver for QEMU's educational PCI device (edu)",
    license: "GPL",
}

#[kunit_tests(rust_edu)]
mod tests {
    use super::*;

    #[test]
    fn factorial_reference() {
        assert_eq!(factorial(0), Some(1));
        assert_eq!(factorial(1), Some(1));
        assert_eq!(factorial(5), Some(120));
        assert_eq!(factorial(10), Some(3_628_800));
        assert_eq!(factorial(MAX_FACTORIAL_INPUT), Some(479_001_600));
        // 13! = 6227020800 does not fit in 32 bits, nor does any larger one.
        assert_eq!(factorial(MAX_FACTORIAL_INPUT + 1), None);
        assert_eq!(factorial(u32::MAX), None);
    }

    #[test]
    fn parses_commands() -> Result {
        assert_eq!(Command::parse(b"12\n")?, Command::Factorial(12));
        assert_eq!(Command::parse(b"0")?, Command::Factorial(0));
        assert_eq!(Command::parse(b"  7 \n")?, Command::Factorial(7));
        // Parsed as written; `run` refuses what does not fit.
        assert_eq!(Command::parse(b"4294967295")?, Command::Factorial(u32::MAX));
        assert_eq!(Command::parse(b"irq 1\n")?, Command::RaiseIrq(1));
        assert_eq!(Command::parse(b"irq  4096")?, Command::RaiseIrq(4096));
        assert_eq!(Command::parse(b"dma\n")?, Command::DmaRoundTrip);
        Ok(())
    }

    #[test]
    fn rejects_what_is_not_a_command() {
        for input in [
            &b""[..],
            b"\n",
            b"abc",
            b"-1",
            b"+1",
            b"1 2",
            b"0x10",
            b"4294967296",
            b"\xff",
            b"irq",
            b"irq 0",
            b"irq x",
            b"irq 1 2",
            b"dma 1",
            b"DMA",
        ] {
            assert_eq!(Command::parse(input), Err(EINVAL));
        }
    }

    #[test]
    fn dma_command_words() {
        assert_eq!(dma_command(DmaDirection::ToDevice).into_raw(), 0b101);
        assert_eq!(dma_command(DmaDirection::ToRam).into_raw(), 0b111);
    }

    #[test]
    fn identification_register() {
        let ident = regs::IDENT::from(0x0100_00ed);
        assert_eq!(ident.major().get(), 1);
        assert_eq!(ident.minor().get(), 0);
        assert_eq!(ident.magic().get(), EDU_MAGIC);
    }

    #[test]
    fn device_buffer_range() {
        // CAST: `DMA_LEN` is 2048.
        let len = DMA_LEN as u64;
        assert!(in_device_buffer(EDU_DMA_START, len));
        assert!(in_device_buffer(EDU_DMA_START, EDU_DMA_SIZE - 1));
        assert!(!in_device_buffer(EDU_DMA_START, EDU_DMA_SIZE));
        assert!(!in_device_buffer(EDU_DMA_START, 0));
        assert!(!in_device_buffer(EDU_DMA_START - 1, len));
        assert!(!in_device_buffer(EDU_DMA_START + EDU_DMA_SIZE - 1, 2));
        assert!(!in_device_buffer(u64::MAX, 2));
    }

    #[test]
    fn dma_pattern() {
        for i in 0..DMA_LEN {
            assert_ne!(pattern_byte(1, i), pattern_byte(2, i));
        }
        for i in 1..DMA_LEN {
            assert_ne!(pattern_byte(1, i), pattern_byte(1, i - 1));
        }
    }
}
