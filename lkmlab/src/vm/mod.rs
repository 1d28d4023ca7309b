//! Running the test VM: the initramfs and the guest runner (carried, or cross-built), the accelerator, QEMU.

pub mod accel;
pub mod cpio;
pub mod cross;
pub mod deferrers;
pub mod devices;
pub mod guest;
pub mod limits;
pub mod qemu;
