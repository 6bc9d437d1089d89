//! The krepro repro SDK and the registry of repros.
//!
//! A repro is a [`Repro`]: a name, a one-line description, the kernel config
//! options it needs, the guest it needs (CPUs, disks, memory) and a
//! function that gets a [`Cx`] and returns a [`Verdict`]. It is one file:
//! krepro's own are in `src/repros/`, a user's anywhere. PID 1 (`init/`)
//! is built with the files of the repros it runs (init/build.rs makes its
//! registry); the host reads their declarations from the source
//! ([`decl`]). Repro files say `use repros::prelude::*;`, here as in
//! init, so the same file compiles in both.
//!
//! What a repro has, besides rustix:
//! - files, sysctls, the command line, printing: [`Cx`]; directories and
//!   file systems: [`Cx::read_dir`], [`Cx::mount`], [`Cx::umount`],
//!   [`Cx::mkdir_all`], [`Cx::create_file`], [`Cx::fsync`], [`Cx::rename`];
//! - threads on chosen CPUs: [`Cx::spawn`], [`Thread::join`], [`Barrier`],
//!   [`pin_to_cpu`], [`current_cpu`], [`Cx::cpus_online`];
//! - child processes: [`Cx::fork`], whose [`ChildExit`] is data (a child
//!   killed by SIGSEGV is not a crash of PID 1);
//! - time: [`Cx::deadline`] (from the host's timeout) and
//!   [`Deadline::race`], to stop racing before the host gives up;
//! - the kernel log: [`Cx::kmsg_mark`], [`Cx::kmsg_since`], [`kmsg::splat`];
//! - system calls rustix lacks: [`syscall`] (raw, `unsafe`, and safe typed
//!   wrappers such as [`syscall::kcmp`]).
//!
//! A panic in a repro, in any of its threads, is its `error` verdict.
//!
//! The crate is `no_std` with `alloc`: PID 1 provides the allocator, so
//! repros may use `Vec`, `String` and `format!`. [`protocol`] holds every
//! name and number the guest and the host share; [`guest`] holds PID 1's
//! logic that needs no system call, so that it is tested on the host.
//! Mind PID 1's size (an 80 KiB budget, checked by a test): `{:?}` of a derived Debug, u32 or
//! u128 formatting and `str` slicing each cost hundreds of bytes or more.
//!
//! ```no_run
//! use repros::prelude::*;
//!
//! pub const REPRO: Repro = Repro {
//!     name: "hello",
//!     description: "says hello and passes",
//!     config: &["PROC_FS"],
//!     run,
//!     ..Repro::DEFAULT // one CPU, no disk, default memory
//! };
//!
//! fn run(cx: &mut Cx) -> Result {
//!     let up = cx.read_to_string("/proc/uptime").step("read /proc/uptime")?;
//!     repros::println!(cx, "uptime: {up}"); // plain `println!` inside the no_std crate
//!     Ok(Verdict::Pass)
//! }
//! ```

#![no_std]

extern crate alloc;
// `repros::...` paths work inside this crate too: krepro's own repro
// files are modules of it for their host tests, and of init in the guest.
extern crate self as repros;

pub mod decl;
mod fs;
pub mod guest;
pub mod kmsg;
pub mod protocol;
#[cfg(test)]
mod registry;
mod sdk;
pub mod syscall;
mod task;
mod time;

pub use fs::read_dir;
pub use sdk::{
    errno_name, listen_loopback, read_file, read_to_string, since_boot, tcp_client, write_all, Cx, Error, Repro,
    Result, Step, Verdict,
};
pub use task::{current_cpu, pin_to_cpu, wait_child, Barrier, ChildExit, Join, Runtime, Thread, ThreadMain};
pub use time::{deadline, Deadline, Race, DEFAULT_DEADLINE_MS};

/// What a repro module usually needs in scope.
pub mod prelude {
    pub use crate::kmsg::{splat, KmsgMark};
    pub use crate::println;
    pub use crate::sdk::{listen_loopback, tcp_client, Cx, Error, Repro, Result, Step, Verdict};
    pub use crate::task::{current_cpu, pin_to_cpu, Barrier, ChildExit, Thread};
    pub use crate::time::{Deadline, Race};
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::sync::Arc;
    pub use alloc::vec::Vec;
    pub use core::ops::ControlFlow;
    pub use core::time::Duration;
    pub use rustix::io::Errno;
}
