//! Reporting: the console, the virtio-serial port, isa-debug-exit, power-off.

use core::fmt::{self, Write as _};

use alloc::string::String;
use repros::guest::FixedBuf;
use repros::protocol::{self, Kind, Report};
use repros::Step as _;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sys;

/// Prints one line to the console (fd 1), ignoring errors: there is nowhere
/// else to report them.
pub fn console(args: fmt::Arguments<'_>) {
    let mut line = FixedBuf::<1024>::new();
    let _ = write!(line, "{args}");
    line.end_line();
    let _ = repros::write_all(sys::stdout(), line.as_bytes());
}

/// Prints `krepro: warning: ...`: setup that failed but is not fatal.
pub fn warn(args: fmt::Arguments<'_>) {
    console(format_args!("{}warning: {args}", protocol::CONSOLE_PREFIX));
}

/// Whether the console is quiet (`quiet` on the command line): then a
/// verdict other than pass is preceded by the whole kernel log, so the
/// console log on the host is complete where it matters.
pub static QUIET: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the host attached krepro's virtio-serial ports
/// (`krepro.output_port=1`): then the verdict waits for its port to show
/// up, since ports appear asynchronously (after a module load, say) and a
/// quick repro can be done before they do.
pub static PORTS_ATTACHED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Prints kernel log records as `krepro: kmsg: ` lines: the last `tail`,
/// or all of them.
pub fn kmsg(tail: Option<usize>) {
    let mut lines: alloc::collections::VecDeque<String> = alloc::collections::VecDeque::new();
    let _ = repros::kmsg::read(&mut |_, message| {
        if tail.is_some_and(|n| lines.len() == n) {
            lines.pop_front();
        }
        lines.push_back(message.into());
    });
    for line in lines {
        console(format_args!("{}kmsg: {line}", protocol::CONSOLE_PREFIX));
    }
}

/// Reports the verdict on every channel that works, then powers off. Once:
/// a thread that comes second (its repro's main thread finishing while
/// another thread panics) waits for the power-off.
pub fn verdict(kind: Kind, repro: &str, message: &str) -> ! {
    static REPORTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if REPORTED.swap(true, core::sync::atomic::Ordering::SeqCst) {
        sys::park();
    }
    if kind != Kind::Pass && QUIET.load(core::sync::atomic::Ordering::Relaxed) {
        kmsg(None);
    }
    let report = Report { kind, repro, message };
    // 1. The console line, waited for until the UART has sent it: the
    //    debug-exit write below ends qemu at once.
    console(format_args!("{}", report.console_line()));
    let _ = rustix::termios::tcdrain(sys::stdout());

    // 2. The virtio-serial port, when the kernel has one. A blocking write
    //    returns once the host has taken the data.
    let limit = if ports_live() { OUTPUT_PORT_WAIT } else { core::time::Duration::ZERO };
    match wait_for_port(protocol::VIRTIO_PORT_NAME, limit) {
        Ok(Some(path)) => {
            let mut text = String::new();
            let _ = write!(text, "{}", report.key_values());
            if let Err(e) = write_port(&path, text.as_bytes()) {
                warn(format_args!("verdict to {path}: {e}"));
            }
        }
        Ok(None) => {}
        Err(errno) => warn(format_args!("{}", repros::Error::Errno { step: "scan /sys/class/virtio-ports", errno })),
    }

    // 3. isa-debug-exit (x86_64 only): qemu exits with status
    //    (value << 1) | 1. arm64 has no such device: qemu exits 0 on the
    //    PSCI power-off below, which the host never reads as a verdict.
    #[cfg(target_arch = "x86_64")]
    {
        let value = kind.debug_exit_value();
        if sys::debug_exit_ioport(protocol::DEBUG_EXIT_PORT, value).is_err() {
            // No ioperm (CONFIG_X86_IOPL_IOPERM=n): try /dev/port (CONFIG_DEVPORT).
            let _ = write_dev_port(protocol::DEBUG_EXIT_PORT, value);
        }
    }

    // 4. Still here: no isa-debug-exit device. Power off.
    sys::power_off()
}

/// How long init waits for the output port to show up.
const OUTPUT_PORT_WAIT: core::time::Duration = core::time::Duration::from_secs(2);

/// The virtio-serial port for bulk output ([`protocol::OUTPUT_PORT_NAME`]),
/// opened for writing, when the host attached it ([`PORTS_ATTACHED`]) and
/// the kernel's virtio-console driver has a device: the ports and
/// their names arrive asynchronously, so this waits for them, at most
/// [`OUTPUT_PORT_WAIT`]. Else None, and output stays on the console.
///
/// `wait` false takes the port only if it is there already: a compiled-in
/// repro prints little, and waiting would cost every boot ~0.1 s under TCG.
pub fn output_port(wait: bool) -> Option<rustix::fd::OwnedFd> {
    if !ports_live() {
        return None;
    }
    let limit = if wait { OUTPUT_PORT_WAIT } else { core::time::Duration::ZERO };
    let path = match wait_for_port(protocol::OUTPUT_PORT_NAME, limit) {
        Ok(Some(path)) => path,
        Ok(None) => {
            if wait {
                warn(format_args!(
                    "no {} port after {OUTPUT_PORT_WAIT:?}: output goes to the console",
                    protocol::OUTPUT_PORT_NAME
                ));
            }
            return None;
        }
        Err(errno) => {
            warn(format_args!("{}", repros::Error::Errno { step: "scan /sys/class/virtio-ports", errno }));
            return None;
        }
    };
    match rustix::fs::open(path.as_str(), OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty()) {
        Ok(fd) => Some(fd),
        Err(errno) => {
            warn(format_args!("output to {path}: {}", repros::Error::Errno { step: "open", errno }));
            None
        }
    }
}

/// Whether krepro's ports can show up: the host attached them and the
/// virtio-console driver is bound to a device.
fn ports_live() -> bool {
    PORTS_ATTACHED.load(core::sync::atomic::Ordering::Relaxed) && virtio_console_bound()
}

/// Whether the virtio-console driver is bound to a device (a kernel
/// without it, or with it as a module not loaded, has no ports to wait
/// for).
fn virtio_console_bound() -> bool {
    repros::read_dir("/sys/bus/virtio/drivers/virtio_console")
        .is_ok_and(|entries| entries.iter().any(|e| e.starts_with("virtio")))
}

/// [`find_port`], polled every millisecond for at most `limit`.
fn wait_for_port(name: &str, limit: core::time::Duration) -> Result<Option<String>, Errno> {
    let deadline = repros::since_boot() + limit;
    loop {
        match find_port(name)? {
            Some(path) => return Ok(Some(path)),
            None if repros::since_boot() < deadline => {
                let _ = rustix::thread::nanosleep(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 1_000_000 });
            }
            None => return Ok(None),
        }
    }
}

/// Finds the /dev node of the virtio-serial port named `name` by scanning
/// /sys/class/virtio-ports/*/name (there is no udev to make
/// /dev/virtio-ports/ links).
fn find_port(name: &str) -> Result<Option<String>, Errno> {
    let ports = match repros::read_dir("/sys/class/virtio-ports") {
        Ok(ports) => ports,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    for port in ports {
        let this = repros::read_to_string(&alloc::format!("/sys/class/virtio-ports/{port}/name")).unwrap_or_default();
        if this.trim_end() == name {
            return Ok(Some(alloc::format!("/dev/{port}")));
        }
    }
    Ok(None)
}

fn write_port(path: &str, data: &[u8]) -> repros::Result<()> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty()).step("open")?;
    repros::write_all(&fd, data)
}

/// Writes one byte to an I/O port through /dev/port.
#[cfg(target_arch = "x86_64")]
fn write_dev_port(port: u16, value: u8) -> Result<(), Errno> {
    let fd = rustix::fs::open("/dev/port", OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::pwrite(&fd, &[value], u64::from(port)).map(drop)
}
