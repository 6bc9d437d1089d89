//! The krepro repro SDK and the registry of repros.
//!
//! A repro is a [`Repro`]: a name, a one-line description, the kernel config
//! options it needs and a function that gets a [`Cx`] and returns a
//! [`Verdict`]. PID 1 (`init/`) runs one of [`REPROS`] inside the guest;
//! the host-side runner uses the same registry to list and check names.
//!
//! The crate is `no_std` with `alloc`: PID 1 provides the allocator, so
//! repros may use `Vec`, `String` and `format!`. [`protocol`] holds every
//! name and number the guest and the host share; [`guest`] holds PID 1's
//! logic that needs no system call, so that it is tested on the host.
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

mod fs;
pub mod guest;
pub mod kmsg;
pub mod protocol;
mod registry;
mod sdk;
pub mod syscall;
mod task;
mod time;

pub use fs::read_dir;
pub use registry::{find, names, REPROS};
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
