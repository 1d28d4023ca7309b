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
//! - **An interrupt** ([`Edu::handle`]): the line is allocated with
//!   [`pci::Device::alloc_irq_vectors`] (INTx only: the test kernels have no `CONFIG_PCI_MSI`,
//!   and edu raises INTx when MSI is off) and requested with [`irq::Registration`], shared. The
//!   handler reads the interrupt status register (0x24): zero means another device on the shared
//!   line; else it acknowledges those bits (0x64; INTx is level-triggered, the line stays
//!   asserted until then) and counts. Writing the raise register (0x60) makes the device
//!   interrupt ([`Edu::raise_irq`]); a finished DMA transfer does too.
//! - **DMA** ([`Edu::dma_round_trip`]): a [`Coherent`] buffer of one page. A pattern in its first
//!   half goes to the device's buffer (device address 0x40000) and comes back into its second
//!   half, each transfer with "interrupt when done" set; the driver waits for the interrupt and
//!   compares. A transfer moves [`DMA_LEN`] bytes, less than edu's 4 KiB: QEMU before 8.0 rejects
//!   a transfer that ends exactly at the end of the buffer (QEMU issue 1254), and a rejected
//!   transfer stops the whole VM (`hw_error`).
//! - **A user interface**: debugfs files in `/sys/kernel/debug/rust_edu/` (a
//!   [`Scope`]: the files are removed before the data they use goes):
//!
//!   | file | read | write |
//!   | --- | --- | --- |
//!   | `factorial` | the last result | `n` (0 ..= 12): compute `n!` on the device |
//!   | `interrupts` | interrupts handled | |
//!   | `raise_irq` | | `v` (not 0): raise an interrupt with status `v`, wait for it |
//!   | `dma` | round trips that came back equal | anything: one round trip (`EIO` if different) |
//!
//!   Each write waits until the device is done; a failure is the write's error (`ETIMEDOUT`,
//!   `EIO`, `EOVERFLOW` for n > 12, whose factorial does not fit the 32-bit register, `EINVAL`
//!   for what is not a number). The directory name is fixed: with two edu devices the second
//!   one's files are missing (debugfs refuses the name; the driver still binds).
//! - **Unbind** ([`RustEdu::unbind`], then the drop of [`EduData`]): unbind stops new operations,
//!   waits for an operation in progress, switches the device's interrupt sources off, waits for
//!   a DMA transfer still running and acknowledges what is pending. Dropping the data then
//!   removes the debugfs files, frees the IRQ (after a running handler returns), unmaps the BAR
//!   and frees the DMA buffer, in that order (the order of the fields). Binding again through
//!   sysfs probes afresh.
//! - **KUnit** (suite `rust_edu`, run at load): what needs no device: the factorial reference,
//!   the parsing of what is written to the files, the DMA command word, the identification
//!   register, the range check of a transfer and the DMA test pattern.
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
//! - **debugfs files need `'static` data**, so they cannot use the `'bound` mapping
//!   ([`pci::Bar`]) that probe gets. The BAR goes into a [`pci::DevresBar`] (revocable: each
//!   access is an RCU read-side section, so no sleeping while holding it) that the files and the
//!   interrupt handler share.
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

use kernel::{
    debugfs::Scope,
    device::Core,
    dma::{
        Coherent,
        Device as _,
        DmaAddress,
        DmaMask, //
    },
    fmt,
    io::{
        io_read,
        io_write,
        poll::read_poll_timeout,
        register,
        Io, //
    },
    irq::{
        self,
        IrqRequest,
        IrqReturn, //
    },
    new_mutex,
    pci::{
        self,
        IrqType,
        IrqTypes, //
    },
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Acquire,
            Atomic,
            Release, //
        },
        Mutex,
        MutexGuard, //
    },
    time::Delta,
    uaccess::UserSliceReader,
};

#[cfg(doc)]
use kernel::io::poll::read_poll_timeout_atomic;

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

/// Parses a decimal number as written to a debugfs file (`echo 12 > factorial`: "12\n").
fn parse_number(input: &[u8]) -> Result<u32> {
    let text = core::str::from_utf8(input).map_err(|_| EINVAL)?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EINVAL);
    }
    text.parse::<u32>().map_err(|_| EINVAL)
}

/// Reads a decimal number from what user space wrote.
fn read_number(reader: &mut UserSliceReader) -> Result<u32> {
    let mut buf = [0u8; 16];
    let len = reader.len();
    if len > buf.len() {
        return Err(EINVAL);
    }
    reader.read_slice(&mut buf[..len])?;
    parse_number(&buf[..len])
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
/// its last byte (QEMU before 8.0 rejects a transfer that ends exactly at the end).
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

/// What the debugfs files change, under [`Edu::state`].
struct EduState {
    /// Set by unbind: no operation may start any more.
    closing: bool,
    /// The last factorial computed: `(n, n!)`.
    factorial: Option<(u32, u32)>,
    /// DMA round trips that came back equal.
    dma_round_trips: u32,
    /// Changes the DMA test pattern from one round trip to the next.
    seed: u8,
}

/// The device as the interrupt handler and the debugfs files share it.
///
/// Everything here is `'static` (the files require it): the BAR is the revocable
/// [`pci::DevresBar`], not probe's `'bound` mapping.
#[pin_data]
struct Edu {
    pdev: ARef<pci::Device>,
    bar: pci::DevresBar<{ regs::END }>,
    /// The host side of DMA transfers: source half, destination half.
    dma: Coherent<[u8]>,
    /// Serialises the operations (one factorial unit, one DMA engine).
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
        bar: pci::DevresBar<{ regs::END }>,
        dma: Coherent<[u8]>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            pdev,
            bar,
            dma,
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

    /// Runs `f` on the BAR unless the device is gone (`ENXIO`); `f` must not sleep.
    fn with_bar<R>(&self, f: impl for<'a> FnOnce(&Bar0<'a>) -> R) -> Result<R> {
        self.bar.try_access_with(f).ok_or(ENXIO)
    }

    /// Takes the operations lock, unless unbind has begun (`ENODEV`).
    fn start(&self) -> Result<MutexGuard<'_, EduState>> {
        let state = self.state.lock();
        if state.closing {
            return Err(ENODEV);
        }
        Ok(state)
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
        if value == 0 {
            return Err(EINVAL);
        }
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
    fn dma_round_trip(&self, seed: u8) -> Result {
        for i in 0..DMA_LEN {
            io_write!(self.dma, [try: i], pattern_byte(seed, i));
            io_write!(self.dma, [try: DMA_LEN + i], 0u8);
        }
        let source: DmaAddress = self.dma.dma_address();
        // CAST: `DMA_LEN` is 2048.
        let destination = source + DMA_LEN as DmaAddress;
        self.dma_transfer(DmaDirection::ToDevice, source, EDU_DMA_START)?;
        self.dma_transfer(DmaDirection::ToRam, EDU_DMA_START, destination)?;
        for i in 0..DMA_LEN {
            let got: u8 = io_read!(self.dma, [try: DMA_LEN + i]);
            let sent = pattern_byte(seed, i);
            if got != sent {
                dev_err!(
                    self.pdev,
                    "DMA round trip: byte {} came back {:#04x}, sent {:#04x}\n",
                    i,
                    got,
                    sent
                );
                return Err(EIO);
            }
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

impl irq::Handler for Edu {
    fn handle(&self) -> IrqReturn {
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

/// `factorial`: the last result.
fn show_factorial(edu: &Edu, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match edu.state.lock().factorial {
        Some((_, result)) => writeln!(f, "{result}"),
        None => Ok(()),
    }
}

/// `factorial`: computes the factorial of the number written.
fn write_factorial(edu: &Edu, reader: &mut UserSliceReader) -> Result {
    let n = read_number(reader)?;
    if n > MAX_FACTORIAL_INPUT {
        return Err(EOVERFLOW);
    }
    let mut state = edu.start()?;
    let result = edu.factorial(n)?;
    state.factorial = Some((n, result));
    Ok(())
}

/// `interrupts`: the number of interrupts handled.
fn show_interrupts(edu: &Edu, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", edu.irqs.load(Acquire))
}

/// `raise_irq`: raises an interrupt with the status bits written.
fn write_raise_irq(edu: &Edu, reader: &mut UserSliceReader) -> Result {
    let value = read_number(reader)?;
    let _state = edu.start()?;
    edu.raise_irq(value)
}

/// `dma`: the number of round trips that came back equal.
fn show_dma(edu: &Edu, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", edu.state.lock().dma_round_trips)
}

/// `dma`: runs one round trip, whatever was written.
fn write_dma(edu: &Edu, _reader: &mut UserSliceReader) -> Result {
    let mut state = edu.start()?;
    state.seed = state.seed.wrapping_add(1);
    edu.dma_round_trip(state.seed)?;
    state.dma_round_trips += 1;
    Ok(())
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

/// The driver's data for a bound device.
#[pin_data]
struct EduData<'bound> {
    /// The debugfs directory, owning the IRQ registration, which owns the [`Edu`]. Dropped
    /// first: the files go (after the operations in progress), then the IRQ is freed (after a
    /// running handler), then the BAR is unmapped and the DMA buffer freed.
    #[pin]
    edu: Scope<irq::Registration<'bound, Edu>>,
    /// The interrupt vector the registration borrows; dropped after it (field order).
    _vectors: KBox<pci::IrqVectorRegistration<'bound>>,
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

            let intx = IrqTypes::default().with(IrqType::Intx);
            let vectors = KBox::new(pdev.alloc_irq_vectors(1, 1, intx)?, GFP_KERNEL)?;
            // SAFETY: The reference is to the heap allocation of `vectors`, which moving the
            // `KBox` (a plain pointer, not `noalias`) into `EduData` does not move. Its only
            // user is the IRQ registration made from it below, and that goes first everywhere:
            // in `EduData` it is in `edu`, which is dropped before `_vectors` (field order); if
            // initialising `edu` fails, nothing registered it (the registration's own error
            // path has freed the IRQ) by the time `vectors` is dropped with this initializer.
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
                    Edu::new(pdev.into(), bar, dma),
                )
            };

            Ok(try_pin_init!(EduData {
                edu <- Scope::dir(registration, c"rust_edu", |registration, dir| {
                    let edu = registration.handler();
                    dir.read_write_callback_file(
                        c"factorial",
                        edu,
                        &show_factorial,
                        &write_factorial,
                    );
                    dir.read_callback_file(c"interrupts", edu, &show_interrupts);
                    dir.write_only_callback_file(c"raise_irq", edu, &write_raise_irq);
                    dir.read_write_callback_file(c"dma", edu, &show_dma, &write_dma);
                }),
                _vectors: vectors,
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
        let edu = this.edu.handler();
        // Waits for an operation in progress; none starts after this.
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
    fn parses_numbers() -> Result {
        assert_eq!(parse_number(b"12\n")?, 12);
        assert_eq!(parse_number(b"0")?, 0);
        assert_eq!(parse_number(b"  7 \n")?, 7);
        assert_eq!(parse_number(b"4294967295")?, u32::MAX);
        Ok(())
    }

    #[test]
    fn rejects_what_is_not_a_number() {
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
        ] {
            assert_eq!(parse_number(input), Err(EINVAL));
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
