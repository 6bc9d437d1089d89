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
/// reports it as `error`. It does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// What was being done, e.g. `"bind 127.0.0.1"`.
    pub step: &'static str,
    /// What the kernel answered.
    pub errno: Errno,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.step)?;
        match errno_name(self.errno) {
            Some(name) => write!(f, "{name} (errno {})", self.errno.raw_os_error()),
            None => write!(f, "errno {}", self.errno.raw_os_error()),
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
        self.map_err(|errno| Error { step, errno })
    }
}

/// One repro, as the registry holds it.
#[derive(Clone, Copy)]
pub struct Repro {
    /// Unique name, `[a-z0-9_]+`: what `--repro` and `krepro.repro=` take.
    pub name: &'static str,
    /// What it checks, in one line.
    pub description: &'static str,
    /// Kernel config options it needs, without `CONFIG_` (each means `=y`).
    pub config: &'static [&'static str],
    /// Runs the repro in the guest.
    pub run: fn(&mut Cx) -> Result,
}

impl fmt::Debug for Repro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repro").field("name", &self.name).field("config", &self.config).finish()
    }
}

/// The context a repro runs in: the console, files, sysctls, time and the
/// kernel command line. Sockets come straight from [`rustix::net`].
pub struct Cx {
    cmdline: String,
    console: Option<OwnedFd>,
}

impl Cx {
    /// A context for a kernel booted with `cmdline` (the text of
    /// /proc/cmdline) that prints to `console` (None: printing is dropped).
    pub fn new(cmdline: String, console: Option<OwnedFd>) -> Cx {
        Cx { cmdline, console }
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
    /// /proc and /sys files are written).
    pub fn write_file(&self, path: &str, data: &[u8]) -> core::result::Result<(), Errno> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        write_all(&fd, data)
    }

    /// Reads a sysctl by its dotted name (`net.ipv4.tcp_syncookies`), trimmed.
    pub fn sysctl(&self, name: &str) -> core::result::Result<String, Errno> {
        let mut value = self.read_to_string(&sysctl_path(name))?;
        value.truncate(value.trim_end().len());
        Ok(value)
    }

    /// Writes a sysctl by its dotted name.
    pub fn set_sysctl(&self, name: &str, value: &str) -> core::result::Result<(), Errno> {
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
        .map_err(|_| Error { step: "getsockname is not IPv4", errno: Errno::AFNOSUPPORT })?;
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
/// about 6.7 KiB of its 64 KiB budget. A timerfd armed for a far absolute
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

/// Writes all of `data`, retrying short writes and `EINTR`.
pub fn write_all(fd: impl AsFd, mut data: &[u8]) -> core::result::Result<(), Errno> {
    while !data.is_empty() {
        match rustix::io::write(&fd, data) {
            Ok(0) => return Err(Errno::IO),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
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
        (Errno::INTR, "EINTR"),
        (Errno::IO, "EIO"),
        (Errno::NXIO, "ENXIO"),
        (Errno::BADF, "EBADF"),
        (Errno::AGAIN, "EAGAIN"),
        (Errno::NOMEM, "ENOMEM"),
        (Errno::ACCESS, "EACCES"),
        (Errno::FAULT, "EFAULT"),
        (Errno::BUSY, "EBUSY"),
        (Errno::EXIST, "EEXIST"),
        (Errno::NODEV, "ENODEV"),
        (Errno::NOTDIR, "ENOTDIR"),
        (Errno::INVAL, "EINVAL"),
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
        let e = Error { step: "x", errno: Errno::from_raw_os_error(200) };
        assert_eq!(e.to_string(), "x: errno 200");
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
