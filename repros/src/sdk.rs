//! What a repro is written against: [`Cx`], [`Verdict`], [`Repro`], [`Error`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

use crate::protocol;
use crate::task::Runtime;

/// What a repro concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The bug is absent.
    Pass,
    /// The bug is present; the message says what was seen.
    Fail(String),
    /// This kernel cannot be tested (a feature is missing, ...).
    Skip(String),
}

impl Verdict {
    /// The protocol kind and message of this verdict.
    pub fn parts(&self) -> (protocol::Kind, &str) {
        match self {
            Verdict::Pass => (protocol::Kind::Pass, ""),
            Verdict::Fail(m) => (protocol::Kind::Fail, m),
            Verdict::Skip(m) => (protocol::Kind::Skip, m),
        }
    }
}

/// A failed step that kept the repro from reaching a verdict: the guest
/// reports it as `error`. It carries the errno the kernel returned, or,
/// where the kernel returned none, the reason in words: never an errno made
/// up to fit (krepro reports what the kernel did). It does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A system call failed.
    Errno {
        /// What was being done, e.g. `"bind 127.0.0.1"`.
        step: &'static str,
        /// What the kernel answered.
        errno: Errno,
    },
    /// Something other than a failed system call: a value that does not
    /// parse, a result that makes no sense, ...
    Reason {
        /// What was being done, e.g. `"parse krepro.max_uptime_ms"`.
        step: &'static str,
        /// Why it could not go on, e.g. `"not a whole number"`.
        reason: &'static str,
    },
}

impl Error {
    /// What was being done.
    pub fn step(&self) -> &'static str {
        match *self {
            Error::Errno { step, .. } | Error::Reason { step, .. } => step,
        }
    }

    /// The errno the kernel returned, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        match *self {
            Error::Errno { errno, .. } => Some(errno),
            Error::Reason { .. } => None,
        }
    }

    /// The same failure, described as part of `step`.
    pub fn in_step(self, step: &'static str) -> Error {
        match self {
            Error::Errno { errno, .. } => Error::Errno { step, errno },
            Error::Reason { reason, .. } => Error::Reason { step, reason },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Errno { step, errno } => match errno_name(errno) {
                Some(name) => write!(f, "{step}: {name} (errno {})", errno.raw_os_error()),
                None => write!(f, "{step}: errno {}", errno.raw_os_error()),
            },
            Error::Reason { step, reason } => write!(f, "{step}: {reason}"),
        }
    }
}

/// What a repro's run function returns; `Err` becomes an `error` verdict.
pub type Result<T = Verdict> = core::result::Result<T, Error>;

/// Names the step of a fallible call: `open(...).step("open /proc/uptime")?`.
pub trait Step<T> {
    /// Attaches `step` to the error.
    fn step(self, step: &'static str) -> Result<T>;
}

impl<T> Step<T> for core::result::Result<T, Errno> {
    fn step(self, step: &'static str) -> Result<T> {
        self.map_err(|errno| Error::Errno { step, errno })
    }
}

/// For calls that already return an [`Error`] (e.g. [`Cx::write_file`]):
/// the step they name is replaced by the caller's, the errno or reason kept.
impl<T> Step<T> for core::result::Result<T, Error> {
    fn step(self, step: &'static str) -> Result<T> {
        self.map_err(|e| e.in_step(step))
    }
}

/// One repro, as the registry holds it.
///
/// Fields a repro does not need to set come from [`Repro::DEFAULT`]:
/// `Repro { name, description, config, run, ..Repro::DEFAULT }`.
#[derive(Clone, Copy)]
pub struct Repro {
    /// Unique name, `[a-z0-9_]+`: what `--repro` and `krepro.repro=` take.
    pub name: &'static str,
    /// What it checks, in one line.
    pub description: &'static str,
    /// Kernel config options it needs, without `CONFIG_` (each means `=y`).
    pub config: &'static [&'static str],
    /// CPUs the guest needs (the runner's `--cpus` default for it; the
    /// builder adds SMP when more than 1). Default 1.
    pub cpus: u32,
    /// Disks the guest needs, each a `--disk` spec (`new:64M:ext4`, ...),
    /// appearing as /dev/vda, /dev/vdb, ... in this order. Default none.
    pub disks: &'static [&'static str],
    /// Guest memory it needs, in MiB; 0: the runner's default.
    pub memory_mib: u32,
    /// Runs the repro in the guest.
    pub run: fn(&mut Cx) -> Result,
}

impl Repro {
    /// The defaults: one CPU, no disk, default memory. Its name is empty
    /// (the registry's tests refuse that) and its run function an error.
    pub const DEFAULT: Repro = Repro {
        name: "",
        description: "",
        config: &[],
        cpus: 1,
        disks: &[],
        memory_mib: 0,
        run: |_| Err(Error::Reason { step: "run", reason: "the repro sets no run function" }),
    };
}

impl fmt::Debug for Repro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repro")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("cpus", &self.cpus)
            .field("disks", &self.disks)
            .field("memory_mib", &self.memory_mib)
            .finish()
    }
}

/// The context a repro runs in: the console, files, sysctls, time and the
/// kernel command line. Sockets come straight from [`rustix::net`].
pub struct Cx {
    cmdline: String,
    console: Option<OwnedFd>,
    runtime: Option<&'static dyn Runtime>,
}

impl Cx {
    /// A context for a kernel booted with `cmdline` (the text of
    /// /proc/cmdline) that prints to `console` (None: printing is dropped).
    /// It starts no threads nor processes until given a runtime.
    pub fn new(cmdline: String, console: Option<OwnedFd>) -> Cx {
        Cx { cmdline, console, runtime: None }
    }

    /// The same context, starting threads and processes through `runtime`
    /// (PID 1 passes its own).
    pub fn with_runtime(self, runtime: &'static dyn Runtime) -> Cx {
        Cx { runtime: Some(runtime), ..self }
    }

    /// The runtime, or an error naming `step` when there is none.
    pub(crate) fn runtime(&self, step: &'static str) -> Result<&'static dyn Runtime> {
        self.runtime.ok_or(Error::Reason { step, reason: "this context has no runtime (Cx::with_runtime)" })
    }

    /// The kernel command line.
    pub fn cmdline(&self) -> &str {
        &self.cmdline
    }

    /// The value of `krepro.<key>=` on the kernel command line (the runner's
    /// `--append`), last one winning.
    pub fn param(&self, key: &str) -> Option<&str> {
        protocol::cmdline_param(&self.cmdline, key)
    }

    /// Prints to the console; console errors are ignored, as there is
    /// nowhere else to report them. Use [`println!`](crate::println).
    pub fn print(&self, args: fmt::Arguments<'_>) {
        if let Some(console) = &self.console {
            let text = alloc::fmt::format(args);
            let _ = write_all(console, text.as_bytes());
        }
    }

    /// Reads a whole file.
    pub fn read_file(&self, path: &str) -> core::result::Result<Vec<u8>, Errno> {
        read_file(path)
    }

    /// Reads a whole file as text (invalid UTF-8 is replaced).
    pub fn read_to_string(&self, path: &str) -> core::result::Result<String, Errno> {
        read_to_string(path)
    }

    /// Writes `data` to an existing file (no create, no truncate: the way
    /// /proc and /sys files are written). The error names `open` or
    /// `write`; [`Step::step`] renames it.
    pub fn write_file(&self, path: &str, data: &[u8]) -> Result<()> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).step("open")?;
        write_all(&fd, data)
    }

    /// Reads a sysctl by its dotted name (`net.ipv4.tcp_syncookies`), trimmed.
    pub fn sysctl(&self, name: &str) -> core::result::Result<String, Errno> {
        let mut value = self.read_to_string(&sysctl_path(name))?;
        value.truncate(value.trim_end().len());
        Ok(value)
    }

    /// Writes a sysctl by its dotted name. A sysctl the kernel lacks fails
    /// with `open` and `ENOENT`.
    pub fn set_sysctl(&self, name: &str, value: &str) -> Result<()> {
        self.write_file(&sysctl_path(name), value.as_bytes())
    }

    /// Time since boot (`CLOCK_BOOTTIME`).
    pub fn uptime(&self) -> Duration {
        since_boot()
    }

    /// Sleeps for `d`, resuming after signals.
    pub fn sleep(&self, d: Duration) {
        let mut left = Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ };
        while let rustix::thread::NanosleepRelativeResult::Interrupted(rest) = rustix::thread::nanosleep(&left) {
            left = rest;
        }
    }
}

/// A TCP socket listening on 127.0.0.1 (a free port) with `backlog`, and
/// its address: what loopback repros start from.
pub fn listen_loopback(backlog: i32) -> Result<(OwnedFd, rustix::net::SocketAddrV4)> {
    use rustix::net::{self, AddressFamily, Ipv4Addr, SocketAddrV4, SocketType};
    let listener = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    net::bind(&listener, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).step("bind 127.0.0.1:0")?;
    net::listen(&listener, backlog).step("listen")?;
    let addr = SocketAddrV4::try_from(net::getsockname(&listener).step("getsockname")?)
        .map_err(|_| Error::Reason { step: "getsockname", reason: "not an IPv4 address" })?;
    Ok((listener, addr))
}

/// A TCP socket whose connect(2) gives up after `timeout` (SO_SNDTIMEO;
/// then EINPROGRESS) and whose reads after `timeout` too.
pub fn tcp_client(timeout: Duration) -> Result<OwnedFd> {
    use rustix::net::{self, sockopt, AddressFamily, SocketType};
    let client = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    for dir in [sockopt::Timeout::Send, sockopt::Timeout::Recv] {
        sockopt::set_socket_timeout(&client, dir, Some(timeout)).step("setsockopt SO_SNDTIMEO/SO_RCVTIMEO")?;
    }
    Ok(client)
}

/// Reads a whole file.
pub fn read_file(path: &str) -> core::result::Result<Vec<u8>, Errno> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads a whole file as text (invalid UTF-8 is replaced).
pub fn read_to_string(path: &str) -> core::result::Result<String, Errno> {
    let bytes = read_file(path)?;
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Time since boot (`CLOCK_BOOTTIME`), as PID 1 and repros both read it.
///
/// Read through a timerfd rather than `clock_gettime`: rustix's
/// clock_gettime goes through the vDSO, whose lookup code costs PID 1
/// about 6.7 KiB of its 80 KiB budget. A timerfd armed for a far absolute
/// time answers with the time left, so now = far - left, in three plain
/// system calls. Zero if the kernel has no timerfd (CONFIG_TIMERFD=n).
pub fn since_boot() -> Duration {
    use rustix::time::{timerfd_create, timerfd_gettime, timerfd_settime};
    use rustix::time::{Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};
    // Seconds: 136 years of uptime, well inside the kernel's ktime (i64 ns).
    const FAR: i64 = 1 << 32;
    let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    let far = Itimerspec { it_interval: zero, it_value: Timespec { tv_sec: FAR, tv_nsec: 0 } };
    let left = timerfd_create(TimerfdClockId::Boottime, TimerfdFlags::CLOEXEC)
        .and_then(|fd| timerfd_settime(&fd, TimerfdTimerFlags::ABSTIME, &far).and_then(|_| timerfd_gettime(&fd)));
    match left {
        Ok(left) => {
            Duration::from_secs(FAR as u64) - Duration::new(left.it_value.tv_sec as u64, left.it_value.tv_nsec as u32)
        }
        Err(_) => Duration::ZERO,
    }
}

/// Writes all of `data`, retrying short writes and `EINTR`. A write(2)
/// that takes nothing and returns no error ends it: retrying could spin
/// forever, and there is no errno to report.
pub fn write_all(fd: impl AsFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match rustix::io::write(&fd, data) {
            Ok(0) => return Err(Error::Reason { step: "write", reason: "wrote 0 bytes" }),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(errno) => return Err(Error::Errno { step: "write", errno }),
        }
    }
    Ok(())
}

fn sysctl_path(name: &str) -> String {
    let mut path = String::from("/proc/sys/");
    path.extend(name.chars().map(|c| if c == '.' { '/' } else { c }));
    path
}

/// The symbolic name of the errnos repros and init usually meet.
pub fn errno_name(errno: Errno) -> Option<&'static str> {
    const NAMES: &[(Errno, &str)] = &[
        (Errno::PERM, "EPERM"),
        (Errno::NOENT, "ENOENT"),
        (Errno::SRCH, "ESRCH"),
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NXIO, "ENXIO"),
        (Errno::TOOBIG, "E2BIG"),
        (Errno::NOEXEC, "ENOEXEC"),
        (Errno::BADF, "EBADF"),
        (Errno::CHILD, "ECHILD"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::NOTDIR, "ENOTDIR"),
        (Errno::INVAL, "EINVAL"),
        (Errno::MFILE, "EMFILE"),
        (Errno::TXTBSY, "ETXTBSY"),
        (Errno::NOSPC, "ENOSPC"),
        (Errno::ROFS, "EROFS"),
        (Errno::PIPE, "EPIPE"),
        (Errno::NOSYS, "ENOSYS"),
        (Errno::NOTSUP, "EOPNOTSUPP"),
        (Errno::AFNOSUPPORT, "EAFNOSUPPORT"),
        (Errno::ADDRINUSE, "EADDRINUSE"),
        (Errno::ADDRNOTAVAIL, "EADDRNOTAVAIL"),
        (Errno::NETDOWN, "ENETDOWN"),
        (Errno::NETUNREACH, "ENETUNREACH"),
        (Errno::CONNRESET, "ECONNRESET"),
        (Errno::TIMEDOUT, "ETIMEDOUT"),
        (Errno::CONNREFUSED, "ECONNREFUSED"),
        (Errno::INPROGRESS, "EINPROGRESS"),
    ];
    NAMES.iter().find(|(e, _)| *e == errno).map(|(_, n)| *n)
}

/// Prints a line to the console: `println!(cx, "x = {}", x)`.
#[macro_export]
macro_rules! println {
    ($cx:expr) => {
        $cx.print(format_args!("\n"))
    };
    ($cx:expr, $($arg:tt)*) => {
        $cx.print(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn sysctl_names_map_to_proc_sys() {
        assert_eq!(sysctl_path("net.ipv4.tcp_syncookies"), "/proc/sys/net/ipv4/tcp_syncookies");
    }

    #[test]
    fn error_names_the_step_and_errno() {
        let e: Result<()> = Err(Errno::CONNREFUSED).step("connect 127.0.0.1:80");
        assert_eq!(e.unwrap_err().to_string(), "connect 127.0.0.1:80: ECONNREFUSED (errno 111)");
        let e = Error::Errno { step: "x", errno: Errno::from_raw_os_error(200) };
        assert_eq!(e.to_string(), "x: errno 200");
        assert_eq!((e.step(), e.errno()), ("x", Some(Errno::from_raw_os_error(200))));
    }

    #[test]
    fn a_reason_is_no_errno() {
        let e = Error::Reason { step: "parse krepro.x", reason: "not a whole number" };
        assert_eq!(e.to_string(), "parse krepro.x: not a whole number");
        assert_eq!((e.step(), e.errno()), ("parse krepro.x", None));
    }

    #[test]
    fn step_renames_an_error_and_keeps_its_cause() {
        let e: Result<()> = Err(Error::Errno { step: "open", errno: Errno::NOENT }).step("sysctl a.b=0");
        assert_eq!(e, Err(Error::Errno { step: "sysctl a.b=0", errno: Errno::NOENT }));
        let e: Result<()> = Err(Error::Reason { step: "write", reason: "wrote 0 bytes" }).step("sysctl a.b=0");
        assert_eq!(e.unwrap_err().to_string(), "sysctl a.b=0: wrote 0 bytes");
    }

    #[test]
    fn writes_name_the_failing_call() {
        let cx = Cx::new(String::new(), None);
        let e = cx.write_file("/nonexistent/krepro", b"1").unwrap_err();
        assert_eq!(e, Error::Errno { step: "open", errno: Errno::NOENT });
        let e = cx.set_sysctl("no.such.sysctl", "1").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOENT));
        // A read-only fd fails in write(2) itself.
        let fd = rustix::fs::open("/proc/self/stat", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        assert_eq!(write_all(&fd, b"x"), Err(Error::Errno { step: "write", errno: Errno::BADF }));
        assert_eq!(write_all(&fd, b""), Ok(()));
    }

    #[test]
    fn since_boot_matches_clock_boottime() {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
        let want = Duration::new(t.tv_sec as u64, t.tv_nsec as u32);
        let got = since_boot();
        assert!(got >= want && got - want < Duration::from_millis(50), "{got:?} vs {want:?}");
        let later = since_boot();
        assert!(later >= got);
    }

    #[test]
    fn params_come_from_the_cmdline() {
        let cx = Cx::new("console=ttyS0 krepro.max_uptime_ms=10 krepro.repro=boot_time".into(), None);
        assert_eq!(cx.param("max_uptime_ms"), Some("10"));
        assert_eq!(cx.param("repro"), Some("boot_time"));
        assert_eq!(cx.param("nope"), None);
    }

    #[test]
    fn files_read_back_on_the_host() {
        let cx = Cx::new(String::new(), None);
        let text = cx.read_to_string("/proc/self/stat").unwrap();
        assert!(text.contains(')'), "{text}");
        assert_eq!(cx.read_file("/nonexistent/krepro").unwrap_err(), Errno::NOENT);
        assert!(cx.sysctl("kernel.ostype").unwrap() == "Linux");
    }
}
