// SPDX-License-Identifier: GPL-2.0

//! scull: one memory buffer behind a misc device, after the LDD3 classic.
//!
//! `/dev/scull` holds a single byte buffer shared by everyone who opens it.
//! `write` stores at the file position and extends the content (a gap left by
//! writing past the end reads as zeros); `read` returns the content from the
//! file position and 0 at the end. The buffer never grows past the `capacity`
//! module parameter: a write that starts below it stores what fits and returns
//! the short count, a write at it fails with `ENOSPC`. The device cannot seek:
//! use `pread`/`pwrite` for positions (or open it again to start over).
//!
//! The ioctls (ABI in `scull.h`, documented in `docs/scull.md`) clear the
//! buffer and report its size, its capacity and usage counters. The same
//! counters are readable as text in `/sys/kernel/debug/scull/stats`.
//!
//! The buffer logic is the plain [`Buffer`] type, unit tested by the KUnit
//! suite `scull_buffer` at load time.
//!
//! ```sh
//! insmod scull.ko capacity=65536     # bytes, 1 ..= 1048576; default 4096
//! ```

use core::cmp::{max, min};
use kernel::{
    debugfs::{
        Dir,
        File as DebugFsFile, //
    },
    fmt,
    fs::{
        File,
        Kiocb, //
    },
    ioctl::{
        _IO,
        _IOR, //
    },
    iov::{
        IovIterDest,
        IovIterSource, //
    },
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*,
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

module! {
    type: ScullModule,
    name: "scull",
    authors: ["lkmlab"],
    description: "One shared memory buffer behind /dev/scull, with ioctls and debugfs stats",
    license: "GPL",
    params: {
        capacity: usize {
            default: 4096,
            description: "Buffer capacity in bytes (1 ..= 1048576)",
        },
    },
}

/// The largest `capacity` accepted: 1 MiB.
const MAX_CAPACITY: usize = 1 << 20;

// The ioctl ABI; `scull.h` is the C view of the same numbers.
/// The ioctl type byte: `'x'` is free in `ioctl-number.rst`; scull uses 0x00-0x1F.
const SCULL_IOC_MAGIC: u32 = b'x' as u32;
/// Empty the buffer (its memory is freed).
const SCULL_IOC_CLEAR: u32 = _IO(SCULL_IOC_MAGIC, 0x01);
/// Read the content size in bytes (`u64`).
const SCULL_IOC_GET_SIZE: u32 = _IOR::<u64>(SCULL_IOC_MAGIC, 0x02);
/// Read the capacity in bytes (`u64`).
const SCULL_IOC_GET_CAPACITY: u32 = _IOR::<u64>(SCULL_IOC_MAGIC, 0x03);
/// Read the usage counters (`struct scull_stats`).
const SCULL_IOC_GET_STATS: u32 = _IOR::<Stats>(SCULL_IOC_MAGIC, 0x04);

/// Usage counters since the module was loaded (`struct scull_stats` in `scull.h`).
///
/// Only calls that succeed count; a short write counts with the bytes it stored.
#[repr(C)]
#[derive(Clone, Copy)]
struct Stats {
    /// Successful `open`s of `/dev/scull`.
    opens: u64,
    /// Successful `read`s, including those at the end that return 0.
    reads: u64,
    /// Successful `write`s, including short ones.
    writes: u64,
    /// Bytes returned by reads.
    bytes_read: u64,
    /// Bytes stored by writes.
    bytes_written: u64,
}

// SAFETY: `Stats` is `repr(C)` with only `u64` fields, so it has no padding and
// no uninitialized bytes, and it has no interior mutability.
unsafe impl AsBytes for Stats {}

impl Stats {
    const fn new() -> Self {
        Stats {
            opens: 0,
            reads: 0,
            writes: 0,
            bytes_read: 0,
            bytes_written: 0,
        }
    }
}

/// The content of the device: bytes `0..len()`, never more than `capacity()`.
///
/// Plain data with no locking and no user memory, so that it can be unit
/// tested without a device; the file operations lock it and copy through it.
struct Buffer {
    data: KVVec<u8>,
    capacity: usize,
}

impl Buffer {
    const fn new(capacity: usize) -> Self {
        Buffer {
            data: KVVec::new(),
            capacity,
        }
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    /// Empties the buffer and frees its memory; the capacity stays.
    fn clear(&mut self) {
        self.data = KVVec::new();
    }

    /// The content from file position `pos` to the end: empty at or past the end.
    fn content_from(&self, pos: i64) -> Result<&[u8]> {
        let pos = usize::try_from(pos).map_err(|_| EINVAL)?;
        Ok(self.data.get(pos..).unwrap_or(&[]))
    }

    /// Stores up to `len` bytes at file position `pos`: `fill` writes them into
    /// the window it is given and returns how many it wrote (fewer when it
    /// faults). Returns the number of bytes stored.
    ///
    /// The window is cut at the capacity, so a write that starts below it
    /// stores what fits; one that starts at or past it fails with `ENOSPC`.
    /// Writing past the end leaves a gap of zeros. When `fill` writes nothing
    /// the content is as before and the write fails with `EFAULT`.
    fn write_with(
        &mut self,
        pos: i64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<usize> {
        let pos = usize::try_from(pos).map_err(|_| EINVAL)?;
        if len == 0 {
            return Ok(0);
        }
        if pos >= self.capacity {
            return Err(ENOSPC);
        }
        let end = pos + min(len, self.capacity - pos);
        let old_len = self.data.len();
        if end > old_len {
            self.data.resize(end, 0, GFP_KERNEL)?;
        }
        let stored = min(fill(&mut self.data[pos..end]), end - pos);
        if stored == 0 {
            self.data.truncate(old_len);
            return Err(EFAULT);
        }
        // Keep what was written (and the gap before it), not the unused window.
        self.data.truncate(max(old_len, pos + stored));
        Ok(stored)
    }

    /// Stores `bytes` at `pos` (see [`Buffer::write_with`]).
    #[cfg_attr(not(CONFIG_KUNIT = "y"), expect(dead_code))]
    fn write_at(&mut self, pos: i64, bytes: &[u8]) -> Result<usize> {
        self.write_with(pos, bytes.len(), |window| {
            window.copy_from_slice(&bytes[..window.len()]);
            window.len()
        })
    }
}

/// Everything the device shares between its openers.
struct Scull {
    buffer: Buffer,
    stats: Stats,
}

// Where the shared state lives: in a module-level static behind the kernel's
// `global_lock!` mutex (the pattern binder uses for its context list).
//
// `MiscDevice::open` is only handed the `MiscDeviceRegistration`, which
// carries no data of ours in 7.3: reaching module state from it would take a
// `container_of!` on the registration (`unsafe`, and correct only as long as
// every registration of the type is embedded in one particular struct). A
// static needs one `unsafe` call, `init()`, whose condition ("exactly once,
// before first use") is plainly met by the module initializer; and the
// static's lifetime is the module's: every user of it (file operations,
// ioctls, the debugfs file) is code of this module, which cannot run once the
// module is gone, and an open file pins the module (the misc device's fops
// `owner`). The per-open pointer is thus `()`.
kernel::sync::global_lock! {
    // SAFETY: `ScullModule::init` calls `init` before anything uses the lock.
    unsafe(uninit) static SCULL: Mutex<Scull> = Scull {
        buffer: Buffer::new(0),
        stats: Stats::new(),
    };
}

/// Copies a `u64` ioctl result to the user pointer `arg`.
fn put_u64(arg: usize, value: u64) -> Result<isize> {
    UserSlice::new(UserPtr::from_addr(arg), size_of::<u64>())
        .writer()
        .write(&value)?;
    Ok(0)
}

/// The file operations of `/dev/scull`; all state is in [`SCULL`].
struct ScullDevice;

#[vtable]
impl MiscDevice for ScullDevice {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result {
        SCULL.lock().stats.opens += 1;
        Ok(())
    }

    fn read_iter(mut kiocb: Kiocb<'_, ()>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let mut guard = SCULL.lock();
        let scull = &mut *guard;
        let content = scull.buffer.content_from(kiocb.ki_pos())?;
        let wanted = min(content.len(), iov.len());
        let copied = iov.copy_to_iter(&content[..wanted]);
        if copied == 0 && wanted > 0 {
            return Err(EFAULT);
        }
        // OVERFLOW: `pos + copied <= len <= MAX_CAPACITY`.
        *kiocb.ki_pos_mut() += copied as i64;
        scull.stats.reads += 1;
        scull.stats.bytes_read += copied as u64;
        Ok(copied)
    }

    fn write_iter(mut kiocb: Kiocb<'_, ()>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let mut guard = SCULL.lock();
        let scull = &mut *guard;
        let stored = scull
            .buffer
            .write_with(kiocb.ki_pos(), iov.len(), |window| {
                iov.copy_from_iter(window)
            })?;
        // OVERFLOW: `pos + stored <= capacity <= MAX_CAPACITY`.
        *kiocb.ki_pos_mut() += stored as i64;
        scull.stats.writes += 1;
        scull.stats.bytes_written += stored as u64;
        Ok(stored)
    }

    fn ioctl(_device: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            SCULL_IOC_CLEAR => {
                SCULL.lock().buffer.clear();
                Ok(0)
            }
            SCULL_IOC_GET_SIZE => {
                let size = SCULL.lock().buffer.len();
                put_u64(arg, size as u64)
            }
            SCULL_IOC_GET_CAPACITY => {
                let capacity = SCULL.lock().buffer.capacity();
                put_u64(arg, capacity as u64)
            }
            SCULL_IOC_GET_STATS => {
                let stats = SCULL.lock().stats;
                UserSlice::new(UserPtr::from_addr(arg), size_of::<Stats>())
                    .writer()
                    .write(&stats)?;
                Ok(0)
            }
            _ => Err(ENOTTY),
        }
    }
}

/// The text of `/sys/kernel/debug/scull/stats`.
fn show_stats(_: &(), f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let stats = SCULL.lock().stats;
    writeln!(f, "opens {}", stats.opens)?;
    writeln!(f, "reads {}", stats.reads)?;
    writeln!(f, "writes {}", stats.writes)?;
    writeln!(f, "bytes_read {}", stats.bytes_read)?;
    writeln!(f, "bytes_written {}", stats.bytes_written)
}

struct ScullModule {
    // Dropped in this order: the device goes first, then the debugfs file.
    _misc: Pin<KBox<MiscDeviceRegistration<ScullDevice>>>,
    _stats: Pin<KBox<DebugFsFile<()>>>,
    _debugfs: Dir,
}

impl kernel::Module for ScullModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let capacity = module_parameters::capacity.value();
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            pr_err!(
                "capacity={} is out of range: allowed 1..={} bytes\n",
                capacity,
                MAX_CAPACITY
            );
            return Err(EINVAL);
        }

        // SAFETY: Called exactly once per load of the module, before anything
        // else (the device and the debugfs file below) can use `SCULL`.
        unsafe { SCULL.init() };
        SCULL.lock().buffer = Buffer::new(capacity);

        let debugfs = Dir::new(c"scull");
        let stats = KBox::pin_init(
            debugfs.read_callback_file(c"stats", (), &show_stats),
            GFP_KERNEL,
        )?;
        let misc = KBox::pin_init(
            MiscDeviceRegistration::register(MiscDeviceOptions { name: c"scull" }),
            GFP_KERNEL,
        )?;
        pr_info!("/dev/scull ready, capacity {} bytes\n", capacity);
        Ok(ScullModule {
            _misc: misc,
            _stats: stats,
            _debugfs: debugfs,
        })
    }
}

impl Drop for ScullModule {
    fn drop(&mut self) {
        // No file is open (each pins the module) and none can be opened any
        // more: free the content now, the static itself goes with the module.
        SCULL.lock().buffer.clear();
        pr_info!("unloaded\n");
    }
}

#[kunit_tests(scull_buffer)]
mod tests {
    use super::*;

    /// The content of `buffer` from position 0.
    fn content(buffer: &Buffer) -> &[u8] {
        buffer.content_from(0).unwrap_or(&[])
    }

    #[test]
    fn new_buffer_is_empty() -> Result {
        let buffer = Buffer::new(8);
        assert_eq!(buffer.len(), 0);
        assert_eq!(buffer.capacity(), 8);
        assert_eq!(buffer.content_from(0)?, b"");
        Ok(())
    }

    #[test]
    fn writes_append() -> Result {
        let mut buffer = Buffer::new(16);
        assert_eq!(buffer.write_at(0, b"abc")?, 3);
        assert_eq!(buffer.write_at(3, b"def")?, 3);
        assert_eq!(content(&buffer), b"abcdef");
        Ok(())
    }

    #[test]
    fn write_at_offset_overwrites() -> Result {
        let mut buffer = Buffer::new(16);
        buffer.write_at(0, b"abcdef")?;
        assert_eq!(buffer.write_at(2, b"XY")?, 2);
        assert_eq!(content(&buffer), b"abXYef");
        // Overwriting the tail and going on extends the content.
        assert_eq!(buffer.write_at(4, b"1234")?, 4);
        assert_eq!(content(&buffer), b"abXY1234");
        Ok(())
    }

    #[test]
    fn write_past_end_leaves_zeros() -> Result {
        let mut buffer = Buffer::new(16);
        buffer.write_at(0, b"ab")?;
        assert_eq!(buffer.write_at(5, b"z")?, 1);
        assert_eq!(content(&buffer), b"ab\0\0\0z");
        Ok(())
    }

    #[test]
    fn reads_from_position() -> Result {
        let mut buffer = Buffer::new(16);
        buffer.write_at(0, b"hello")?;
        assert_eq!(buffer.content_from(1)?, b"ello");
        assert_eq!(buffer.content_from(5)?, b"");
        assert_eq!(buffer.content_from(100)?, b"");
        assert!(buffer.content_from(-1).is_err());
        Ok(())
    }

    #[test]
    fn write_is_cut_at_capacity() -> Result {
        let mut buffer = Buffer::new(8);
        buffer.write_at(0, b"12345")?;
        // Starts below the capacity: stores what fits.
        assert_eq!(buffer.write_at(5, b"abcdef")?, 3);
        assert_eq!(content(&buffer), b"12345abc");
        // Starts at (or past) it: nothing is stored.
        assert_eq!(buffer.write_at(8, b"x"), Err(ENOSPC));
        assert_eq!(buffer.write_at(20, b"x"), Err(ENOSPC));
        assert_eq!(buffer.len(), 8);
        // An empty write is no error, even at the capacity.
        assert_eq!(buffer.write_at(8, b"")?, 0);
        Ok(())
    }

    #[test]
    fn failed_copy_changes_nothing() -> Result {
        let mut buffer = Buffer::new(16);
        buffer.write_at(0, b"abc")?;
        // A fill that faults at once: no bytes, no growth.
        assert_eq!(buffer.write_with(6, 4, |_| 0), Err(EFAULT));
        assert_eq!(content(&buffer), b"abc");
        // A fill that faults half way keeps only what it wrote.
        let stored = buffer.write_with(3, 4, |window| {
            window[..2].copy_from_slice(b"de");
            2
        })?;
        assert_eq!(stored, 2);
        assert_eq!(content(&buffer), b"abcde");
        Ok(())
    }

    #[test]
    fn clear_empties_and_keeps_capacity() -> Result {
        let mut buffer = Buffer::new(8);
        buffer.write_at(0, b"12345678")?;
        buffer.clear();
        assert_eq!(buffer.len(), 0);
        assert_eq!(buffer.capacity(), 8);
        assert_eq!(buffer.content_from(0)?, b"");
        // The whole capacity is usable again.
        assert_eq!(buffer.write_at(0, b"abcdefgh")?, 8);
        Ok(())
    }
}
