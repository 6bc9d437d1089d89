//! The guest/host verdict protocol: the one place its names and numbers live.
//!
//! PID 1 (`init/`) writes these; the runner (`runner/`) reads them. Three
//! channels carry the same verdict:
//!
//! - the console line, always: `krepro: verdict=<kind> repro=<name> <message>`;
//! - the virtio-serial port [`VIRTIO_PORT_NAME`]: [`Report`] as `key=value` lines;
//! - x86 isa-debug-exit at [`DEBUG_EXIT_PORT`]: [`Kind::debug_exit_value`],
//!   which qemu turns into its exit status [`Kind::qemu_status`].

use core::fmt;

/// What the guest concluded. The host maps these to outcomes and exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The repro ran and the bug is absent.
    Pass,
    /// The repro ran and the bug is present.
    Fail,
    /// The repro cannot test this kernel.
    Skip,
    /// The guest could not run the repro (unknown name, setup failure, Rust panic).
    Error,
}

impl Kind {
    /// Every kind, in protocol order.
    pub const ALL: [Kind; 4] = [Kind::Pass, Kind::Fail, Kind::Skip, Kind::Error];

    /// The name used on the console and the virtio port.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Pass => "pass",
            Kind::Fail => "fail",
            Kind::Skip => "skip",
            Kind::Error => "error",
        }
    }

    /// Parses [`Kind::name`].
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The byte PID 1 writes to isa-debug-exit. Starts at 0x10 so that no
    /// verdict can be confused with qemu's own exit status 1 (and 0 is never
    /// written).
    pub const fn debug_exit_value(self) -> u8 {
        0x10 + self as u8
    }

    /// The qemu exit status that [`Kind::debug_exit_value`] produces: `(v << 1) | 1`.
    pub const fn qemu_status(self) -> i32 {
        ((self.debug_exit_value() as i32) << 1) | 1
    }

    /// The kind whose isa-debug-exit write gives this qemu exit status.
    pub fn from_qemu_status(status: i32) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.qemu_status() == status)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// I/O port of qemu's `isa-debug-exit` device.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Size of the `isa-debug-exit` I/O region the runner asks qemu for.
pub const DEBUG_EXIT_IOSIZE: u16 = 0x04;

/// Name of the virtio-serial port that carries [`Report`].
pub const VIRTIO_PORT_NAME: &str = "krepro.verdict";

/// The virtio-serial port the guest's bulk output goes to (an --exec
/// program's stdout and stderr, a repro's prints) where the kernel has
/// virtio-console: far faster than the emulated UART, and kept out of
/// the console that crash detection reads.
pub const OUTPUT_PORT_NAME: &str = "krepro.output";

/// Prefix of every line PID 1 prints for the host to parse.
pub const CONSOLE_PREFIX: &str = "krepro: ";

/// Prefix of krepro's own kernel command line parameters (`krepro.<key>=<value>`).
pub const CMDLINE_PREFIX: &str = "krepro.";
/// Command line key naming the repro to run.
pub const CMDLINE_REPRO: &str = "repro";
/// Command line key numbering the boot among `--runs N` (1-based).
pub const CMDLINE_RUN: &str = "run";
/// Command line key: seconds PID 1 gives an `--exec` child before killing it.
pub const CMDLINE_GUEST_TIMEOUT: &str = "guest_timeout";
/// Command line key: seconds an `--exec` program runs the way a syzkaller
/// C reproducer is run (`krepro syz`): until the kernel crashes or the
/// time is up, which is a pass. Its exit status is no verdict; it runs in
/// /tmp, in a session of its own that is killed whole at the end, with
/// cgroup2 mounted at /sys/fs/cgroup.
pub const CMDLINE_DURATION: &str = "duration";
/// Command line key: the host's `--timeout` in milliseconds, from which a
/// repro's deadline (`cx.deadline()`) is derived.
pub const CMDLINE_DEADLINE_MS: &str = "deadline_ms";
/// `krepro.output_port=1`: the host attached the [`OUTPUT_PORT_NAME`]
/// port, so init waits (briefly) for the kernel to announce it: virtio
/// console ports appear asynchronously, often after PID 1 starts.
pub const CMDLINE_OUTPUT_PORT: &str = "output_port";

/// The repro name that runs the user's static executable (`--exec FILE`)
/// instead of a compiled-in repro. No compiled-in repro has this name.
pub const EXEC_REPRO: &str = "exec";
/// Where `--exec FILE` is in the initrd.
pub const EXEC_PATH: &str = match EXEC_PATH_C.to_str() {
    Ok(path) => path,
    Err(_) => panic!("EXEC_PATH_C is ASCII"),
};
/// [`EXEC_PATH`] as the C string PID 1 passes to execve(2): the one
/// spelling of the path, which [`EXEC_PATH`] is derived from at compile time.
pub const EXEC_PATH_C: &core::ffi::CStr = c"/krepro/exec";
/// Its arguments after `argv[0]`, each followed by a NUL byte.
pub const EXEC_ARGS: &str = "/krepro/exec.args";
/// Its environment, `K=V` each followed by a NUL byte.
pub const EXEC_ENV: &str = "/krepro/exec.env";
/// Kernel modules PID 1 loads before the repro, in file-name order.
pub const MODULES_DIR: &str = "/krepro/modules";
/// The exit status kselftests use for "skip" (KSFT_SKIP).
pub const EXIT_SKIP: i32 = 4;

/// The line PID 1 prints as soon as it starts, so the host learns how long
/// the kernel took to reach user space: `krepro: start boot_ms=<ms>`.
pub struct StartLine {
    /// `CLOCK_BOOTTIME` when PID 1 started, in milliseconds.
    pub boot_ms: u64,
}

impl fmt::Display for StartLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CONSOLE_PREFIX}start boot_ms={}", self.boot_ms)
    }
}

impl StartLine {
    /// Parses a console line (kernel timestamps and `\r` may surround it).
    pub fn parse(line: &str) -> Option<StartLine> {
        let rest = after_prefix(line)?.strip_prefix("start boot_ms=")?;
        Some(StartLine { boot_ms: rest.trim_end().parse().ok()? })
    }
}

/// One verdict, as every channel carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report<S> {
    /// The verdict.
    pub kind: Kind,
    /// The repro that produced it (or that was asked for, on `error`).
    pub repro: S,
    /// One line of explanation; may be empty.
    pub message: S,
}

impl<S: AsRef<str>> Report<S> {
    /// The console line: `krepro: verdict=<kind> repro=<name> <message>`.
    pub fn console_line(&self) -> impl fmt::Display + '_ {
        ConsoleLine(self)
    }

    /// The virtio-serial payload: `verdict=`, `repro=`, `message=` lines.
    pub fn key_values(&self) -> impl fmt::Display + '_ {
        KeyValues(self)
    }
}

struct ConsoleLine<'a, S>(&'a Report<S>);

impl<S: AsRef<str>> fmt::Display for ConsoleLine<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(f, "{CONSOLE_PREFIX}verdict={} repro={}", r.kind, OneLine(r.repro.as_ref()))?;
        if !r.message.as_ref().is_empty() {
            write!(f, " {}", OneLine(r.message.as_ref()))?;
        }
        Ok(())
    }
}

struct KeyValues<'a, S>(&'a Report<S>);

impl<S: AsRef<str>> fmt::Display for KeyValues<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        writeln!(f, "verdict={}", r.kind)?;
        writeln!(f, "repro={}", OneLine(r.repro.as_ref()))?;
        writeln!(f, "message={}", OneLine(r.message.as_ref()))
    }
}

/// Writes a string with control characters (newlines included) replaced by
/// spaces, so that a message always stays on its one line.
struct OneLine<'a>(&'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        for c in self.0.trim_end().chars() {
            f.write_char(if c.is_control() { ' ' } else { c })?;
        }
        Ok(())
    }
}

impl<'a> Report<&'a str> {
    /// Parses a console line. The serial console may prefix it with a kernel
    /// timestamp-free `\r`, and end it with `\r`; both are ignored.
    pub fn parse_console_line(line: &'a str) -> Option<Report<&'a str>> {
        let rest = after_prefix(line)?.strip_prefix("verdict=")?;
        let (kind, rest) = rest.split_once(' ')?;
        let kind = Kind::from_name(kind)?;
        let rest = rest.trim_end_matches(['\r', '\n']).strip_prefix("repro=")?;
        let (repro, message) = rest.split_once(' ').unwrap_or((rest, ""));
        Some(Report { kind, repro, message })
    }

    /// Parses the virtio-serial payload written by [`Report::key_values`].
    pub fn parse_key_values(text: &'a str) -> Option<Report<&'a str>> {
        let (mut kind, mut repro, mut message) = (None, None, "");
        for line in text.lines() {
            match line.split_once('=') {
                Some(("verdict", v)) => kind = Kind::from_name(v),
                Some(("repro", v)) => repro = Some(v),
                Some(("message", v)) => message = v,
                _ => {}
            }
        }
        Some(Report { kind: kind?, repro: repro?, message })
    }
}

/// The text after [`CONSOLE_PREFIX`], which may stand anywhere in the line
/// (the console can put a `\r` or other output in front of it).
fn after_prefix(line: &str) -> Option<&str> {
    let at = line.find(CONSOLE_PREFIX)?;
    Some(&line[at + CONSOLE_PREFIX.len()..])
}

/// Finds `krepro.<key>=<value>` on a kernel command line. The last occurrence
/// wins, as for the kernel's own parameters.
pub fn cmdline_param<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix(CMDLINE_PREFIX)?.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[cfg(test)]
mod tests {
    extern crate alloc;
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn qemu_status_codes_are_the_contract() {
        let codes: [i32; 4] = Kind::ALL.map(Kind::qemu_status);
        assert_eq!(codes, [33, 35, 37, 39]);
        assert_eq!(Kind::ALL.map(Kind::debug_exit_value), [0x10, 0x11, 0x12, 0x13]);
        for k in Kind::ALL {
            assert_eq!(Kind::from_qemu_status(k.qemu_status()), Some(k));
            assert_eq!(Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(Kind::from_qemu_status(0), None);
        assert_eq!(Kind::from_qemu_status(1), None);
    }

    #[test]
    fn console_line_round_trips() {
        let r = Report { kind: Kind::Fail, repro: "listen_backlog", message: "connect: timed out\nafter 3 s" };
        let line = r.console_line().to_string();
        assert_eq!(line, "krepro: verdict=fail repro=listen_backlog connect: timed out after 3 s");
        let back = Report::parse_console_line(&line).unwrap();
        assert_eq!(back.kind, Kind::Fail);
        assert_eq!(back.repro, "listen_backlog");
        assert_eq!(back.message, "connect: timed out after 3 s");
    }

    #[test]
    fn console_line_without_message_and_with_noise() {
        let r = Report { kind: Kind::Pass, repro: "smoke", message: "" };
        let line = r.console_line().to_string();
        assert_eq!(line, "krepro: verdict=pass repro=smoke");
        let noisy = alloc::format!("\r{line}\r");
        let back = Report::parse_console_line(&noisy).unwrap();
        assert_eq!((back.kind, back.repro, back.message), (Kind::Pass, "smoke", ""));
        assert!(Report::parse_console_line("krepro: verdict=maybe repro=x").is_none());
        assert!(Report::parse_console_line("[ 1.0] random kernel line").is_none());
    }

    #[test]
    fn key_values_round_trip() {
        let r = Report { kind: Kind::Skip, repro: "x", message: "no sysrq" };
        let text = r.key_values().to_string();
        assert_eq!(text, "verdict=skip\nrepro=x\nmessage=no sysrq\n");
        assert_eq!(Report::parse_key_values(&text), Some(r));
        assert_eq!(Report::parse_key_values("repro=x\n"), None);
        assert_eq!(Report::parse_key_values(""), None);
    }

    #[test]
    fn start_line_round_trips() {
        let line = StartLine { boot_ms: 1234 }.to_string();
        assert_eq!(line, "krepro: start boot_ms=1234");
        assert_eq!(StartLine::parse(&line).unwrap().boot_ms, 1234);
        assert!(StartLine::parse("krepro: start boot_ms=x").is_none());
    }

    #[test]
    fn exec_path_has_one_spelling() {
        assert_eq!(EXEC_PATH, "/krepro/exec");
        assert_eq!(EXEC_PATH_C.to_bytes_with_nul(), b"/krepro/exec\0");
    }

    #[test]
    fn cmdline_param_last_wins() {
        let c = "console=ttyS0 krepro.repro=smoke panic=-1 krepro.repro=fail krepro.repros=x\n";
        assert_eq!(cmdline_param(c, "repro"), Some("fail"));
        assert_eq!(cmdline_param(c, "max_uptime_ms"), None);
        assert_eq!(cmdline_param("krepro.max_uptime_ms=10", "max_uptime_ms"), Some("10"));
    }
}
