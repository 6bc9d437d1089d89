//! Kernel images and other binaries read from disk: bzImage headers, the
//! PVH vmlinux inside them, ELF files, and version strings.

pub mod arch;
pub mod config;
pub(crate) mod decompress;
pub(crate) mod elf;
pub mod kernel;
pub(crate) mod version;
pub mod vmlinux;
