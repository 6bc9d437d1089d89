//! Reading the serial console: kernel crashes, and PID 1's start and
//! verdict lines.

use repros::protocol::{Report, StartLine};
use serde::Serialize;

/// What kind of kernel splat a console line starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrashKind {
    Panic,
    Oops,
    Bug,
    Warning,
}

/// The first line of a splat seen on the console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Crash {
    pub kind: CrashKind,
    pub line: String,
}

/// The message of a console line without the kernel's `[    1.234567] `
/// timestamp and surrounding `\r`.
pub(crate) fn kernel_text(line: &str) -> &str {
    let line = line.trim_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((stamp, text)) = rest.split_once(']') {
            if stamp.trim().bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return text.strip_prefix(' ').unwrap_or(text);
            }
        }
    }
    line
}

/// Whether a console line starts a kernel splat, and which.
pub(crate) fn classify(line: &str) -> Option<CrashKind> {
    if line.contains(repros::protocol::CONSOLE_PREFIX) {
        return None; // PID 1's own lines (a repro may quote a splat)
    }
    let text = kernel_text(line);
    if text.starts_with("Kernel panic - not syncing") {
        Some(CrashKind::Panic)
    } else if text.starts_with("Oops:")
        || text.contains("Internal error: Oops")
        || text.starts_with("general protection fault")
    {
        Some(CrashKind::Oops)
    } else if text.starts_with("BUG:")
        || text.starts_with("kernel BUG at")
        || text.starts_with("Unable to handle kernel")
    {
        Some(CrashKind::Bug)
    } else if text.starts_with("WARNING:") {
        Some(CrashKind::Warning)
    } else {
        None
    }
}

/// What the console said so far, fed one line at a time.
#[derive(Debug, Default)]
pub(crate) struct ConsoleScan {
    /// Whether any line was seen at all.
    pub lines: usize,
    /// From `krepro: start boot_ms=`.
    pub boot_to_init_ms: Option<u64>,
    /// From `krepro: verdict=...` (the first one).
    pub verdict: Option<Report<String>>,
    /// The first panic, Oops or BUG.
    pub crash: Option<Crash>,
    /// The first WARNING.
    pub warning: Option<Crash>,
}

/// What a fed line turned out to be, for the event stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LineKind {
    Plain,
    InitStarted(u64),
    Verdict,
    Crash(CrashKind),
}

impl ConsoleScan {
    pub(crate) fn feed(&mut self, line: &str) -> LineKind {
        self.lines += 1;
        if let Some(start) = StartLine::parse(line) {
            self.boot_to_init_ms.get_or_insert(start.boot_ms);
            return LineKind::InitStarted(start.boot_ms);
        }
        if let Some(r) = Report::parse_console_line(line) {
            if self.verdict.is_none() {
                self.verdict = Some(Report { kind: r.kind, repro: r.repro.to_owned(), message: r.message.to_owned() });
            }
            return LineKind::Verdict;
        }
        match classify(line) {
            Some(kind) => {
                let slot = if kind == CrashKind::Warning { &mut self.warning } else { &mut self.crash };
                slot.get_or_insert_with(|| Crash { kind, line: kernel_text(line).to_owned() });
                LineKind::Crash(kind)
            }
            None => LineKind::Plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real console output: Debian 6.12 cloud kernel, `selftest_panic` (sysrq c).
    const PANIC_612: &str = include_str!("../../tests/fixtures/panic-sysrq-6.12.log");
    /// Real console output: Debian 6.12 cloud kernel, `smoke` passing.
    const PASS_612: &str = include_str!("../../tests/fixtures/pass-smoke-6.12.log");

    fn scan(log: &str) -> ConsoleScan {
        let mut s = ConsoleScan::default();
        for line in log.lines() {
            s.feed(line);
        }
        s
    }

    #[test]
    fn real_panic_log_is_a_panic() {
        let s = scan(PANIC_612);
        let crash = s.crash.expect("panic recognised");
        assert_eq!(crash.kind, CrashKind::Panic);
        assert_eq!(crash.line, "Kernel panic - not syncing: sysrq triggered crash");
        assert!(s.verdict.is_none());
        assert!(s.boot_to_init_ms.is_some());
    }

    #[test]
    fn real_passing_log_has_a_verdict_and_no_crash() {
        let s = scan(PASS_612);
        assert!(s.crash.is_none() && s.warning.is_none());
        let v = s.verdict.unwrap();
        assert_eq!((v.kind.name(), v.repro.as_str()), ("pass", "smoke"));
        assert!(s.boot_to_init_ms.unwrap() > 0);
        // The kernel echoes the command line, krepro.repro= included: not a verdict.
        assert!(PASS_612.contains("Kernel command line:"));
    }

    #[test]
    fn splat_kinds() {
        let cases = [
            ("[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000000", Some(CrashKind::Bug)),
            ("[    3.1] Oops: 0002 [#1] PREEMPT SMP NOPTI", Some(CrashKind::Oops)),
            ("[    3.1] Oops: general protection fault, probably for non-canonical address", Some(CrashKind::Oops)),
            ("general protection fault: 0000 [#1] SMP PTI", Some(CrashKind::Oops)),
            ("[    1.0] kernel BUG at mm/slub.c:123!", Some(CrashKind::Bug)),
            ("[    1.0] WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2", Some(CrashKind::Warning)),
            (
                "[    1.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000000",
                Some(CrashKind::Panic),
            ),
            ("[    0.0] Kernel command line: console=ttyS0 panic=-1 oops=panic", None),
            ("krepro: verdict=fail repro=dmesg_clean kernel log: WARNING: CPU: 0", None),
            ("[    1.0] Run /init as init process", None),
        ];
        for (line, want) in cases {
            assert_eq!(classify(line), want, "{line}");
        }
    }

    #[test]
    fn strips_timestamps_only() {
        assert_eq!(kernel_text("[    1.234567] hello\r"), "hello");
        assert_eq!(kernel_text("[not a stamp] hello"), "[not a stamp] hello");
        assert_eq!(kernel_text("plain"), "plain");
    }

    #[test]
    fn first_verdict_wins_and_warnings_are_apart() {
        let mut s = ConsoleScan::default();
        assert_eq!(s.feed("[ 1.0] WARNING: CPU: 0 PID: 1 at x"), LineKind::Crash(CrashKind::Warning));
        assert_eq!(s.feed("krepro: start boot_ms=1500"), LineKind::InitStarted(1500));
        assert_eq!(s.feed("krepro: verdict=skip repro=a why"), LineKind::Verdict);
        s.feed("krepro: verdict=pass repro=b");
        assert_eq!(s.verdict.unwrap().repro, "a");
        assert!(s.crash.is_none());
        assert_eq!(s.warning.unwrap().kind, CrashKind::Warning);
        assert_eq!(s.boot_to_init_ms, Some(1500));
    }
}
