//! krepro's host side: builds init with a repro, boots a kernel with it in
//! qemu, reads back a trustworthy verdict, builds kernels and bisects.
//!
//! The `krepro` binary is [`cli`]; `cargo xtask` and the tests go through
//! the same calls. The data travels down the layers, once; a layer uses
//! the ones below it, never those above:
//!
//! ```text
//! cli        clap flags -> requests; progress, --json, exit status
//! request    what the user asked for, plain data
//! session    the request checked once: the repro, init, the kernel, qemu, the Plan
//! bisect     one search over a Space (commits, prebuilt kernels)
//! builder    kernels from source     boot    one boot, its outcome
//! guest      repros read and init built with them (cargo, cc)
//! initrd     the cpio archive and what goes into it
//! host       processes, apt, the cache, distro kernels
//! image      kernel images, ELF, configs, architectures: files read, nothing run
//! ```

pub mod bisect;
pub mod boot;
pub mod builder;
pub mod cli;
pub mod guest;
pub mod host;
pub mod image;
pub mod initrd;
pub mod request;
pub mod session;
pub mod syz;

pub use boot::outcome::{Exit, Outcome};
pub use session::RunError;
