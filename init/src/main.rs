//! krepro's PID 1.
//!
//! Mounts what a repro needs, brings up `lo`, runs the repro named by
//! `krepro.repro=` on the kernel command line (else the one chosen at build
//! time), reports its verdict on every channel that works and powers off.
//! It never returns. Everything `unsafe` lives in [`sys`].

#![no_std]
#![no_main]
// PID 1 handles whatever can fail: an unwrap would turn it into an `error`.
#![deny(clippy::unwrap_used, clippy::expect_used)]

#[cfg(not(all(any(target_arch = "x86_64", target_arch = "aarch64"), target_os = "linux")))]
compile_error!("krepro-init supports x86_64 and aarch64 Linux only (_start, clone and mem* are per-arch, in sys/)");

extern crate alloc;

mod exec;
mod registry {
    //! The repros this init runs (init/build.rs generates the list).
    include!(concat!(env!("OUT_DIR"), "/registry.rs"));
}
mod report;
mod setup;
mod sys;

use alloc::string::{String, ToString};
use core::fmt::Write as _;
use core::sync::atomic::{AtomicUsize, Ordering};

use repros::protocol::{self, Kind, StartLine};
use repros::{Cx, Step as _};

/// The repro run when the command line names none: `KREPRO_DEFAULT_REPRO`
/// at build time (the host sets it to the first it compiles in), else the
/// first in the registry.
const DEFAULT_REPRO: Option<&str> = match option_env!("KREPRO_DEFAULT_REPRO") {
    Some(name) if !name.is_empty() => Some(name),
    _ => None,
};

/// Index into [`registry::REPROS`] of the repro running now, for the panic
/// handler; `usize::MAX` before one is chosen.
static CURRENT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The name the verdict is reported under.
fn current_repro() -> &'static str {
    registry::REPROS.get(CURRENT.load(Ordering::Relaxed)).map_or("init", |r| r.name)
}

/// Called by `_start` with nothing set up but a stack.
fn main() -> ! {
    let boot_ms = repros::since_boot().as_millis() as u64;
    report::console(format_args!("{}", StartLine { boot_ms }));

    setup::mount_all();
    let cmdline = match repros::read_to_string("/proc/cmdline").step("read /proc/cmdline") {
        Ok(text) => text,
        Err(e) => {
            report::warn(format_args!("{e}"));
            String::new()
        }
    };
    report::QUIET.store(repros::guest::cmdline_has(&cmdline, "quiet"), Ordering::Relaxed);
    let attached = protocol::cmdline_param(&cmdline, protocol::CMDLINE_OUTPUT_PORT) == Some("1");
    report::PORTS_ATTACHED.store(attached, Ordering::Relaxed);
    setup::load_modules(&cmdline);
    if let Err(e) = setup::loopback_up() {
        report::warn(format_args!("bring up lo: {e}"));
    }

    // Bulk output (the program's or the repro's) over its virtio-serial
    // port where there is one; krepro's own lines stay on the console. An
    // --exec program's output is worth waiting for the port.
    let first = registry::REPROS.first().map_or(protocol::EXEC_REPRO, |r| r.name);
    let name = protocol::cmdline_param(&cmdline, protocol::CMDLINE_REPRO).or(DEFAULT_REPRO).unwrap_or(first);
    let output = report::output_port(name == protocol::EXEC_REPRO);

    if name == protocol::EXEC_REPRO {
        let (kind, message) = exec::run(&cmdline, output.as_ref());
        report::verdict(kind, name, &message);
    }
    let Some(index) = registry::REPROS.iter().position(|r| r.name == name) else {
        let known = registry::REPROS.iter().map(|r| r.name);
        report::verdict(Kind::Error, name, &repros::guest::unknown_repro(name, known));
    };
    CURRENT.store(index, Ordering::Relaxed);
    let repro = &registry::REPROS[index];

    let prints = output.or_else(|| rustix::io::dup(sys::stdout()).ok());
    let mut cx = Cx::new(cmdline, prints).with_runtime(&sys::thread::RUNTIME);
    match (repro.run)(&mut cx) {
        Ok(verdict) => {
            let (kind, message) = verdict.parts();
            report::verdict(kind, repro.name, message)
        }
        Err(e) => report::verdict(Kind::Error, repro.name, &e.to_string()),
    }
}

/// A Rust panic anywhere in init or a repro becomes an `error` verdict that
/// carries the panic message. It formats into a fixed buffer: the allocator
/// may be what failed.
///
/// In a thread of a repro, too: the panicking thread reports the verdict
/// and powers off. A thread that ended quietly instead could leave the
/// others waiting for it at a barrier or a join until the host's timeout:
/// a hang, where the repro's author wants to see their panic. Reporting
/// from the thread is sound: it takes no lock but the allocator's (which
/// no panic happens under), and the other threads run on until the power
/// goes; a verdict is reported once (report::verdict), and a second
/// thread that panics meanwhile waits for the power-off.
///
/// A forked child (`cx.fork`, or the `--exec` child before execve) prints
/// the message and dies of SIGABRT, which its parent sees: it never
/// reports PID 1's verdict nor powers the machine off.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    /// The thread that panicked first; 0: none.
    static PANICKED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
    let me = sys::thread::tid();
    let first = PANICKED.compare_exchange(0, me, Ordering::SeqCst, Ordering::SeqCst);
    let child = !rustix::process::getpid().is_init();
    match first {
        Ok(_) => {}
        // A forked child, or this thread again (a panic while reporting
        // a panic): just stop.
        Err(_) if child => sys::abort_child(),
        Err(first) if first == me => sys::power_off(),
        // Another thread is reporting its panic.
        Err(_) => sys::park(),
    }
    let mut msg = repros::guest::FixedBuf::<512>::new();
    // As u64: u32's Display would be 250 bytes of PID 1 for this alone.
    let id = u64::from(me);
    let _ = match (child, me) {
        (true, _) => write!(msg, "panic in child process {id}: {}", info.message()),
        (false, 1) => write!(msg, "panic: {}", info.message()),
        (false, _) => write!(msg, "panic in thread {id}: {}", info.message()),
    };
    if let Some(loc) = info.location() {
        let _ = write!(msg, " at {}:{}", repros::guest::source_path(loc.file()), u64::from(loc.line()));
    }
    if child {
        report::console(format_args!("{}{}", protocol::CONSOLE_PREFIX, msg.as_str()));
        sys::abort_child();
    }
    report::verdict(Kind::Error, current_repro(), msg.as_str())
}
