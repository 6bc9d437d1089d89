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

/// The first line of a splat seen on the console, and the title of the
/// report it starts ([`super::title`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Crash {
    pub kind: CrashKind,
    pub line: String,
    pub title: Option<String>,
    /// Whether the kernel died of it: a panic, Oops or BUG at or after it
    /// (a warning alone it survives).
    pub fatal: bool,
}

/// The message of a console line without the kernel's `[    1.234567] `
/// timestamp, the caller id that follows it with CONFIG_PRINTK_CALLER
/// (`[    T1] `, `[    C0] `), and surrounding `\r`.
pub(crate) fn kernel_text(line: &str) -> &str {
    let line = line.trim_matches(['\r', '\n']);
    let Some(text) = bracketed(line, |s| s.bytes().all(|b| b.is_ascii_digit() || b == b'.')) else { return line };
    let caller =
        |s: &str| s.strip_prefix(['T', 'C']).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    bracketed(text, caller).unwrap_or(text)
}

/// A line of PID 1's and the kernel line written into it, if one was.
/// The kernel writes to the UART directly while PID 1's line waits in the
/// tty's buffer, so a kernel line can land inside it: PID 1's line ends
/// where the kernel's timestamp starts, and a splat that starts there
/// still counts.
fn split_spliced(line: &str) -> (&str, Option<&str>) {
    let Some(own) = line.find(repros::protocol::CONSOLE_PREFIX) else { return (line, None) };
    match kernel_line_at(&line[own..]) {
        Some(at) => (&line[..own + at], Some(&line[own + at..])),
        None => (line, None),
    }
}

/// Where a kernel console line (its `[    1.234567] ` timestamp) starts
/// inside `text`.
fn kernel_line_at(text: &str) -> Option<usize> {
    let stamp = |s: &str| {
        s.split_once('.').is_some_and(|(secs, frac)| {
            [secs, frac].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    text.match_indices('[').map(|(at, _)| at).find(|&at| bracketed(&text[at..], stamp).is_some())
}

/// `text` after a leading `[ x ] ` whose trimmed inside `x` passes `ok`.
fn bracketed(text: &str, ok: impl Fn(&str) -> bool) -> Option<&str> {
    let (inside, rest) = text.strip_prefix('[')?.split_once(']')?;
    ok(inside.trim()).then(|| rest.strip_prefix(' ').unwrap_or(rest))
}

/// Whether a console line starts a kernel splat, and which: a panic; an
/// Oops (a fault the kernel does not survive unless it kills the task);
/// a BUG (BUG:, kernel BUG at, a page fault, a hung task, a stall); a
/// warning (WARN, lockdep, UBSAN), which the kernel survives.
pub(crate) fn classify(line: &str) -> Option<CrashKind> {
    if line.contains(repros::protocol::CONSOLE_PREFIX) {
        return None; // PID 1's own lines (a repro may quote a splat)
    }
    let text = kernel_text(line);
    let Some(head) = super::title::header(text) else {
        let oops = text.starts_with("Oops:") || text.contains("Internal error: Oops");
        return oops.then_some(CrashKind::Oops);
    };
    const OOPSES: [&str; 6] =
        ["general protection fault", "Internal error", "divide error", "invalid opcode", "stack segment", "PANIC:"];
    Some(if head.starts_with("Kernel panic") {
        CrashKind::Panic
    } else if OOPSES.iter().any(|o| head.starts_with(o)) {
        CrashKind::Oops
    } else if head.starts_with("WARNING:") || head.starts_with("UBSAN:") {
        CrashKind::Warning
    } else {
        CrashKind::Bug
    })
}

/// How many console lines of a report are kept for its title.
const REPORT_LINES: usize = 400;

/// What the console said so far, fed one line at a time.
/// Rewrites a report's lines with what debug info knows (inline frames).
pub(crate) type Symbolize<'a> = dyn Fn(&[String]) -> Vec<String> + 'a;

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
    /// The console from the first splat on (a few hundred lines): what
    /// titles are read from.
    report: Vec<String>,
    /// Where in `report` the first splat that is not a warning starts.
    crash_at: Option<usize>,
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
        let (line, spliced) = split_spliced(line);
        let kind = self.pid1_line(line);
        if let Some(kernel) = spliced {
            self.kernel_line(kernel);
        }
        kind
    }

    /// Feeds a line: PID 1's start or verdict, or any other.
    fn pid1_line(&mut self, line: &str) -> LineKind {
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
        self.kernel_line(line)
    }

    /// Feeds a line that is not one of PID 1's: a splat's start, a line of
    /// its report, or plain.
    fn kernel_line(&mut self, line: &str) -> LineKind {
        let kind = classify(line);
        if (kind.is_some() || !self.report.is_empty()) && self.report.len() < REPORT_LINES {
            if kind.is_some_and(|k| k != CrashKind::Warning) && self.crash_at.is_none() {
                self.crash_at = Some(self.report.len());
            }
            self.report.push(line.to_owned());
        }
        match kind {
            Some(kind) => {
                let slot = if kind == CrashKind::Warning { &mut self.warning } else { &mut self.crash };
                slot.get_or_insert_with(|| Crash {
                    kind,
                    line: kernel_text(line).to_owned(),
                    title: None,
                    fatal: kind != CrashKind::Warning,
                });
                LineKind::Crash(kind)
            }
            None => LineKind::Plain,
        }
    }

    /// The crash a boot counts, titled: the first panic, Oops or BUG, or
    /// with `warn_is_crash` the first warning when it came first (a WARN
    /// that `panic_on_warn` turns into a panic is the WARN).
    /// `symbolize`, when given, rewrites the report's lines first (inline
    /// frames, from debug info: [`super::symbolize`]).
    pub(crate) fn counted_crash(&self, warn_is_crash: bool, symbolize: Option<&Symbolize<'_>>) -> Option<Crash> {
        let warning_first = self.warning.is_some() && self.crash_at != Some(0);
        let (first, from) = if warn_is_crash && warning_first {
            (self.warning.as_ref()?, 0)
        } else {
            (self.crash.as_ref()?, self.crash_at.unwrap_or(0))
        };
        let report = &self.report[from..];
        let title = match symbolize {
            Some(f) => super::title::title(f(report).iter().map(String::as_str)),
            None => super::title::title(report.iter().map(String::as_str)),
        };
        Some(Crash { title, fatal: self.crash.is_some(), ..first.clone() })
    }
}

/// Whether a console's crash is the emulator's, not the kernel's: an
/// `Oops: int3` whose code bytes show no int3 (0xcc) where it trapped.
/// The trap leaves RIP after the int3, so the byte before the `<..>` one
/// in the `Code:` line is where it was; if that byte is already the
/// patched instruction's, a vCPU ran a stale translation of text another
/// vCPU was live-patching (a cross-modifying-code race of multi-threaded
/// TCG). Some(why) for such a console; None for any other (a real stray
/// int3 shows its cc).
pub(crate) fn emulation_fault(console: &str) -> Option<String> {
    let mut lines = console.lines().map(kernel_text).skip_while(|l| !l.starts_with("Oops: int3"));
    lines.next()?;
    let mut rip = None;
    for l in lines.take(40) {
        if let Some(r) = l.strip_prefix("RIP: ") {
            rip = Some(r.trim().to_owned());
        }
        let Some(code) = l.strip_prefix("Code: ") else { continue };
        let bytes: Vec<&str> = code.split_whitespace().collect();
        let at = bytes.iter().position(|b| b.starts_with('<'))?;
        let before = *bytes.get(at.checked_sub(1)?)?;
        if before.len() != 2 || !before.bytes().all(|b| b.is_ascii_hexdigit()) || before.eq_ignore_ascii_case("cc") {
            return None;
        }
        return Some(format!(
            "Oops: int3 at {} where the code holds {before}, not an int3 (cc): the emulator ran stale code that \
             another vCPU had live-patched (multi-threaded TCG), not a kernel bug",
            rip.as_deref().unwrap_or("?")
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The captured consoles: one stale int3 from a real TCG boot, and
    /// every real crash of the corpus, none of which is the emulator's.
    #[test]
    fn on_real_consoles_only_the_stale_int3_is_the_emulators() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/consoles");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".log") {
                continue;
            }
            let console = std::fs::read_to_string(e.path()).unwrap();
            let fault = emulation_fault(&console);
            if name == "debian-6.12-x86_64-tcg-stale-int3.log" {
                let why = fault.expect("the stale int3 is the emulator's");
                assert!(
                    why.starts_with("Oops: int3 at 0010:sched_clock_cpu+0x9/0x190 where the code holds 66,"),
                    "{why}"
                );
            } else {
                assert_eq!(fault, None, "{name}");
            }
            seen += 1;
        }
        assert!(seen >= 15, "{seen}");
    }

    #[test]
    fn a_stale_int3_is_the_emulators_and_a_real_one_is_a_crash() {
        let oops = |code: &str| {
            format!(
                "[    2.101000] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.101100] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.118+deb12-cloud-amd64 #1
[    2.101200] RIP: 0010:sched_clock_cpu+0x9/0x1a0
[    2.101250] Code: {code}
[    2.101300] Call Trace:
[    2.101700] Kernel panic - not syncing: Fatal exception in interrupt"
            )
        };
        // The int3 already patched back to a 5-byte NOP (0f 1f 44 00 00).
        let stale = oops("66 90 c3 cc cc cc f3 0f 1e fa 55 48 89 e5 41 54 53 0f <1f> 44 00 00 e9 b2 00 00 00");
        let why = emulation_fault(&stale).unwrap();
        assert!(why.starts_with("Oops: int3 at 0010:sched_clock_cpu+0x9/0x1a0 where the code holds 0f"), "{why}");
        // A stray int3 that is still there: the kernel's crash.
        assert_eq!(emulation_fault(&oops("90 90 90 cc <1f> 44 00 00")), None);
        // No Code line, another Oops, nothing: not the emulator's.
        assert_eq!(emulation_fault("[ 1.0] Oops: int3: 0000 [#1] SMP\n[ 1.1] RIP: 0010:f+0x1/0x2"), None);
        assert_eq!(emulation_fault(&stale.replace("Oops: int3", "Oops: general protection fault")), None);
    }

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

    /// From a CI console (Debian 6.12 under TCG): the clocksource
    /// watchdog's line landed before the verdict line's newline.
    #[test]
    fn a_kernel_line_inside_the_verdict_line_is_not_the_message() {
        let mut s = ConsoleScan::default();
        let line = "krepro: verdict=fail repro=exec exit status 3[    1.328965] TSC found unstable after boot, most \
                    likely due to broken BIOS. Use 'tsc=unstable'.";
        assert_eq!(s.feed(line), LineKind::Verdict);
        assert_eq!(s.verdict.unwrap().message, "exit status 3");
        assert!(s.crash.is_none() && s.warning.is_none());

        // A splat that starts inside it still counts, and its report goes on.
        let mut s = ConsoleScan::default();
        s.feed("krepro: verdict=pass repro=a all good[   12.5] BUG: KASAN: use-after-free in foo+0x1/0x2");
        s.feed("[   12.6] Read of size 8 at addr ffff888003f1c000 by task a/1");
        assert_eq!(s.verdict.as_ref().unwrap().message, "all good");
        let crash = s.counted_crash(false, None).unwrap();
        assert_eq!((crash.kind, crash.title.as_deref()), (CrashKind::Bug, Some("KASAN: use-after-free Read in foo")));

        // The start line keeps its number.
        let mut s = ConsoleScan::default();
        let spliced = "krepro: start boot_ms=1234[    1.328965] TSC found unstable after boot";
        assert_eq!(s.feed(spliced), LineKind::InitStarted(1234));

        // Brackets that are not a timestamp are the message's own.
        let mut s = ConsoleScan::default();
        s.feed("krepro: verdict=fail repro=a got [1, 2] and [ 3.x] and [.5]");
        assert_eq!(s.verdict.unwrap().message, "got [1, 2] and [ 3.x] and [.5]");
    }
}
