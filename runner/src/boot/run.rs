//! One boot: qemu under a guard, the console read live, the verdict taken
//! from every channel, and the outcome decided.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use repros::protocol::{Kind, Report};
use serde::Serialize;

use crate::boot::classify::{ConsoleScan, Crash, CrashKind, LineKind};
use crate::boot::outcome::Outcome;
use crate::boot::qemu::{self, Accel, AccelChoice, Machine, QemuParams};
use crate::image::kernel::{self, Kernel};
use crate::RunError;

/// Under KVM, a guest that prints nothing this long is taken as a KVM that
/// does not work (a real KVM prints the first kernel line in well under 1 s).
const KVM_SILENCE: Duration = Duration::from_secs(10);
/// After the verdict, how long qemu gets to exit by itself.
const VERDICT_GRACE: Duration = Duration::from_secs(5);
/// How often the run loop wakes up to check the clock and Ctrl-C.
const TICK: Duration = Duration::from_millis(50);
/// How many console logs the log directory keeps.
const KEEP_LOGS: usize = 200;

/// Everything a boot needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub kernel: Kernel,
    /// What `-kernel` gets: the cached PVH vmlinux, or the bzImage.
    pub boot_image: BootImage,
    pub machine: Machine,
    pub initrd: PathBuf,
    pub repro: String,
    /// Which boot of `--runs N` this is (1-based); the guest sees `krepro.run=`.
    pub run_index: u32,
    pub append: Vec<String>,
    pub timeout: Duration,
    pub accel: AccelChoice,
    pub memory_mib: u32,
    pub warn_is_crash: bool,
    pub qemu: PathBuf,
    /// A gzip'd cpio appended to the initrd (--exec, --file, --modules);
    /// empty for none. The kernel unpacks concatenated archives in order.
    pub extra_initrd: Vec<u8>,
    pub log_dir: PathBuf,
    /// Set by the signal handler ([`crate::interrupt`]); the run stops and
    /// cleans up when it becomes true.
    pub interrupt: Arc<AtomicBool>,
}

/// The image a boot starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BootImage {
    /// The vmlinux taken out of the bzImage, entered through PVH.
    Pvh(PathBuf),
    /// The bzImage itself (emulated decompression first).
    BzImage,
}

/// `--entry`: how the kernel is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EntryChoice {
    /// PVH when the kernel has it, else the bzImage (saying why)
    Auto,
    /// PVH or an error
    Pvh,
    /// the bzImage, as a bootloader would
    Bzimage,
}

/// Picks the boot image for `kernel`; with `auto`, a kernel without the
/// PVH path boots its bzImage and `say` gets why.
pub fn choose_entry(kernel: &Kernel, choice: EntryChoice, say: &mut dyn FnMut(&str)) -> Result<BootImage, RunError> {
    match choice {
        EntryChoice::Bzimage => Ok(BootImage::BzImage),
        EntryChoice::Pvh => crate::image::vmlinux::pvh_vmlinux(&kernel.path)
            .map(BootImage::Pvh)
            .map_err(|e| RunError::BadFlag(format!("--entry pvh: {}: {e}", kernel.path.display()))),
        EntryChoice::Auto => match crate::image::vmlinux::pvh_vmlinux(&kernel.path) {
            Ok(p) => Ok(BootImage::Pvh(p)),
            Err(e) => {
                say(&format!("booting the bzImage (no PVH fast path: {e})"));
                Ok(BootImage::BzImage)
            }
        },
    }
}

/// What happens during a boot, in order. The terminal UI, the JSON writer
/// and the tests all read this stream.
#[derive(Debug)]
pub enum Event<'a> {
    /// A faster path is not used (the accelerator, the PVH entry); why.
    Fallback { reason: &'a str },
    /// qemu started.
    QemuStarted { accel: Accel, command: &'a str },
    /// One console line.
    Console(&'a str),
    /// PID 1 started this long after boot.
    InitStarted { boot_ms: u64 },
    /// A kernel splat began.
    Crash(CrashKind),
    /// The console verdict line.
    Verdict(&'a Report<String>),
    /// A line qemu printed on stderr.
    QemuStderr(&'a str),
}

/// Which channels carried the verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Channels {
    pub console: bool,
    pub virtio: bool,
    pub debug_exit: bool,
}

/// What a boot found.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub outcome: Outcome,
    pub repro: String,
    pub message: String,
    pub kernel: PathBuf,
    pub kernel_release: Option<String>,
    pub accel: Accel,
    pub machine: Machine,
    /// "pvh" or "bzimage".
    pub entry: &'static str,
    /// qemu's own lifetime: spawn to exit (wall_ms minus this is krepro's overhead).
    pub qemu_ms: u64,
    /// Host time from qemu's start to the kernel's entry (PID 1's start
    /// line minus boot_to_init_ms).
    pub qemu_to_kernel_ms: Option<u64>,
    /// Host time from the verdict line to qemu's exit.
    pub verdict_to_exit_ms: Option<u64>,
    pub wall_ms: u64,
    pub boot_to_init_ms: Option<u64>,
    /// Host-measured time from PID 1's start line to its verdict line.
    pub init_to_verdict_ms: Option<u64>,
    pub console_log: PathBuf,
    pub channels: Channels,
    pub qemu_status: Option<i32>,
    pub crash: Option<Crash>,
}

/// Boots once and decides the outcome. Under `--accel auto`, a KVM that
/// fails at run time is noticed (qemu's stderr, or a silent guest) and the
/// boot is retried under TCG.
pub fn run(cfg: &RunConfig, on_event: &mut dyn FnMut(Event<'_>)) -> Result<RunResult, RunError> {
    let started = Instant::now();
    let mut accel = match cfg.accel {
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Kvm => {
            qemu::kvm_usable().map_err(RunError::KvmUnavailable)?;
            Accel::Kvm
        }
        AccelChoice::Auto => match qemu::kvm_usable().and_then(|()| qemu::kvm_known_broken().map_or(Ok(()), Err)) {
            Ok(()) => Accel::Kvm,
            Err(why) => {
                on_event(Event::Fallback { reason: &format!("{why}; using TCG") });
                Accel::Tcg
            }
        },
    };
    let mut cfg = std::borrow::Cow::Borrowed(cfg);
    loop {
        let attempt = match boot(&cfg, accel, started, on_event) {
            // A PVH entry qemu refuses: fall back to the bzImage, once.
            Err(RunError::QemuFailed { status, stderr }) if matches!(cfg.boot_image, BootImage::Pvh(_)) => {
                on_event(Event::Fallback {
                    reason: &format!("the PVH boot failed (qemu {status}: {stderr}); booting the bzImage"),
                });
                cfg.to_mut().boot_image = BootImage::BzImage;
                continue;
            }
            other => other?,
        };
        match attempt {
            Boot::Done(result) => return Ok(*result),
            Boot::KvmBroken(why) if cfg.accel == AccelChoice::Auto => {
                qemu::remember_kvm_broken(&why);
                on_event(Event::Fallback { reason: &format!("KVM failed at run time ({why}); retrying under TCG") });
                accel = Accel::Tcg;
            }
            Boot::KvmBroken(why) => return Err(RunError::KvmFailed(why)),
        }
    }
}

enum Boot {
    Done(Box<RunResult>),
    KvmBroken(String),
}

enum Msg {
    Console(String),
    ConsoleEof,
    Stderr(String),
}

/// Owns the qemu child: killed and reaped on every path out of [`boot`],
/// errors, panics and Ctrl-C included.
struct QemuGuard(Child);

impl Drop for QemuGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn boot(
    cfg: &RunConfig,
    accel: Accel,
    started: Instant,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Boot, RunError> {
    let scratch =
        tempfile::Builder::new().prefix("krepro-").tempdir().map_err(|e| RunError::io("create a temp dir", e))?;
    let verdict_file = scratch.path().join("verdict");
    let log_path = new_log_path(&cfg.log_dir, &cfg.repro, accel)?;
    let mut log =
        std::fs::File::create(&log_path).map_err(|e| RunError::io(format!("create {}", log_path.display()), e))?;

    let initrd = if cfg.extra_initrd.is_empty() {
        cfg.initrd.clone()
    } else {
        let combined = scratch.path().join("initrd.cpio.gz");
        let mut bytes =
            std::fs::read(&cfg.initrd).map_err(|e| RunError::io(format!("read {}", cfg.initrd.display()), e))?;
        bytes.extend_from_slice(&cfg.extra_initrd);
        std::fs::write(&combined, bytes).map_err(|e| RunError::io(format!("write {}", combined.display()), e))?;
        combined
    };
    let mut cmdline = qemu::kernel_cmdline(&cfg.repro, cfg.run_index, &cfg.append);
    if cfg.machine == Machine::Microvm && accel == Accel::Tcg {
        if let Some(khz) = qemu::host_tsc_khz() {
            cmdline.push_str(&format!(" tsc_early_khz={khz}"));
        }
    }
    let image = match &cfg.boot_image {
        BootImage::Pvh(p) => p.as_path(),
        BootImage::BzImage => cfg.kernel.path.as_path(),
    };
    let params = QemuParams {
        kernel: image,
        initrd: &initrd,
        cmdline: &cmdline,
        accel,
        machine: cfg.machine,
        acpi: kernel::has_acpi(&cfg.kernel),
        memory_mib: cfg.memory_mib,
        verdict_file: &verdict_file,
    };
    let args = qemu::qemu_args(&params);
    let mut command = Command::new(&cfg.qemu);
    command.args(&args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    crate::host::sys::own_process_group_and_die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|e| RunError::io(format!("start {}", cfg.qemu.display()), e))?;
    let (tx, rx) = mpsc::channel();
    spawn_reader(child.stdout.take().expect("piped"), tx.clone(), Msg::Console, Some(Msg::ConsoleEof));
    spawn_reader(child.stderr.take().expect("piped"), tx, Msg::Stderr, None);
    let qemu_started = Instant::now();
    let mut guard = QemuGuard(child);
    let line = std::iter::once(cfg.qemu.to_string_lossy().into_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    on_event(Event::QemuStarted { accel, command: &line });

    let boot_started = Instant::now();
    let mut scan = ConsoleScan::default();
    let mut stderr = String::new();
    let mut verdict_at: Option<Instant> = None;
    let mut init_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut console_eof = false;
    let status = loop {
        match rx.recv_timeout(TICK) {
            Ok(Msg::Console(text)) => {
                let _ = writeln!(log, "{text}");
                on_event(Event::Console(&text));
                match scan.feed(&text) {
                    LineKind::InitStarted(boot_ms) => {
                        init_at.get_or_insert_with(Instant::now);
                        on_event(Event::InitStarted { boot_ms })
                    }
                    LineKind::Verdict => {
                        verdict_at.get_or_insert_with(Instant::now);
                        if let Some(v) = &scan.verdict {
                            on_event(Event::Verdict(v));
                        }
                    }
                    LineKind::Crash(kind) => on_event(Event::Crash(kind)),
                    LineKind::Plain => {}
                }
            }
            Ok(Msg::ConsoleEof) => console_eof = true,
            Ok(Msg::Stderr(text)) => {
                on_event(Event::QemuStderr(&text));
                stderr.push_str(&text);
                stderr.push('\n');
                if accel == Accel::Kvm && qemu::is_kvm_failure(&text) {
                    return Ok(Boot::KvmBroken(text.trim().to_owned()));
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if cfg.interrupt.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        if let Some(status) = guard.0.try_wait().map_err(|e| RunError::io("wait for qemu", e))? {
            // Take what the readers still hold: the console's last lines
            // matter most (the verdict, the panic).
            let deadline = Instant::now() + Duration::from_secs(2);
            while !console_eof && Instant::now() < deadline {
                match rx.recv_timeout(TICK) {
                    Ok(Msg::Console(text)) => {
                        let _ = writeln!(log, "{text}");
                        on_event(Event::Console(&text));
                        scan.feed(&text);
                    }
                    Ok(Msg::ConsoleEof) | Err(mpsc::RecvTimeoutError::Disconnected) => console_eof = true,
                    Ok(Msg::Stderr(text)) => {
                        stderr.push_str(&text);
                        stderr.push('\n');
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
            break Some(status);
        }
        let elapsed = boot_started.elapsed();
        if accel == Accel::Kvm && scan.lines == 0 && elapsed > KVM_SILENCE {
            return Ok(Boot::KvmBroken(format!("no console output within {} s", KVM_SILENCE.as_secs())));
        }
        if verdict_at.is_some_and(|t| t.elapsed() > VERDICT_GRACE) {
            break None; // the verdict stands; qemu did not power off
        }
        if elapsed > cfg.timeout {
            timed_out = true;
            break None;
        }
    };
    drop(guard); // kills qemu if it is still running
    let qemu_ended = Instant::now();
    let _ = log.flush();

    let qemu_status = status.and_then(|s| s.code());
    let virtio = std::fs::read_to_string(&verdict_file).ok();
    let virtio = virtio.as_deref().and_then(Report::parse_key_values);
    let exit_kind = qemu_status.and_then(Kind::from_qemu_status);

    if scan.lines == 0 && !timed_out && exit_kind.is_none() {
        // qemu never got a kernel to print anything: its own failure.
        let status = status.map_or_else(|| "killed".to_owned(), |s| s.to_string());
        return Err(RunError::QemuFailed { status, stderr: last_lines(&stderr, 3) });
    }

    let obs = Observations {
        console: scan.verdict.as_ref().map(|r| (r.kind, r.repro.as_str(), r.message.as_str())),
        virtio: virtio.as_ref().map(|r| (r.kind, r.repro, r.message)),
        debug_exit: exit_kind,
        crash: scan.crash.as_ref().or(if cfg.warn_is_crash { scan.warning.as_ref() } else { None }),
        timed_out,
        timeout: cfg.timeout,
    };
    let (outcome, message) = decide(&obs);
    let channels =
        Channels { console: obs.console.is_some(), virtio: obs.virtio.is_some(), debug_exit: obs.debug_exit.is_some() };
    let repro = obs.console.or(obs.virtio).map_or(cfg.repro.as_str(), |v| v.1).to_owned();
    let crash = obs.crash.cloned();
    drop(scratch);
    Ok(Boot::Done(Box::new(RunResult {
        outcome,
        repro,
        message,
        kernel: cfg.kernel.path.clone(),
        kernel_release: cfg.kernel.release.clone(),
        accel,
        machine: cfg.machine,
        entry: match cfg.boot_image {
            BootImage::Pvh(_) => "pvh",
            BootImage::BzImage => "bzimage",
        },
        qemu_ms: qemu_ended.duration_since(qemu_started).as_millis() as u64,
        qemu_to_kernel_ms: init_at.zip(scan.boot_to_init_ms).and_then(|(at, boot_ms)| {
            at.duration_since(qemu_started).checked_sub(Duration::from_millis(boot_ms)).map(|d| d.as_millis() as u64)
        }),
        verdict_to_exit_ms: verdict_at.map(|v| qemu_ended.saturating_duration_since(v).as_millis() as u64),
        wall_ms: started.elapsed().as_millis() as u64,
        boot_to_init_ms: scan.boot_to_init_ms,
        init_to_verdict_ms: init_at.zip(verdict_at).map(|(i, v)| v.saturating_duration_since(i).as_millis() as u64),
        console_log: log_path,
        channels,
        qemu_status,
        crash,
    })))
}

/// What the channels said, for [`decide`].
#[derive(Debug)]
pub struct Observations<'a> {
    pub console: Option<(Kind, &'a str, &'a str)>,
    pub virtio: Option<(Kind, &'a str, &'a str)>,
    pub debug_exit: Option<Kind>,
    pub crash: Option<&'a Crash>,
    pub timed_out: bool,
    pub timeout: Duration,
}

/// The outcome and its message. A `fail` verdict wins over a crash (the
/// repro saw its bug); a crash wins over any other verdict; channels that
/// disagree make an `error`, because then nothing can be trusted.
pub fn decide(o: &Observations<'_>) -> (Outcome, String) {
    let kinds = [o.console.map(|v| v.0), o.virtio.map(|v| v.0), o.debug_exit];
    let mut seen = kinds.iter().flatten();
    let kind = seen.next().copied();
    if let Some(k) = kind {
        if seen.any(|other| *other != k) {
            let say = |k: Option<Kind>| k.map_or("-", Kind::name);
            return (
                Outcome::Error,
                format!(
                    "verdict channels disagree: console={} virtio={} debug-exit={}",
                    say(kinds[0]),
                    say(kinds[1]),
                    say(kinds[2])
                ),
            );
        }
    }
    let message = o.console.or(o.virtio).map(|v| v.2.to_owned()).unwrap_or_default();
    match (kind, o.crash) {
        (Some(Kind::Fail), _) => (Outcome::Fail, message),
        (_, Some(crash)) => (Outcome::Crash, crash.line.clone()),
        (Some(Kind::Pass), None) => (Outcome::Pass, message),
        (Some(Kind::Skip), None) => (Outcome::Skip, message),
        (Some(Kind::Error), None) => (Outcome::Error, message),
        (None, None) if o.timed_out => (Outcome::Hang, format!("no verdict within {} s", o.timeout.as_secs())),
        (None, None) => (Outcome::NoVerdict, "the kernel stopped without a verdict or a crash".to_owned()),
    }
}

fn spawn_reader<R: Read + Send + 'static>(from: R, tx: mpsc::Sender<Msg>, wrap: fn(String) -> Msg, eof: Option<Msg>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.send(wrap(text)).is_err() {
                        return;
                    }
                }
            }
        }
        if let Some(eof) = eof {
            let _ = tx.send(eof);
        }
    });
}

fn new_log_path(dir: &Path, repro: &str, accel: Accel) -> Result<PathBuf, RunError> {
    std::fs::create_dir_all(dir).map_err(|e| RunError::io(format!("create {}", dir.display()), e))?;
    prune_logs(dir);
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
    Ok(dir.join(format!("{stamp}-{}-{repro}-{}.log", std::process::id(), accel.name())))
}

/// Keeps the newest [`KEEP_LOGS`] logs (names start with a timestamp).
fn prune_logs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut logs: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "log")).collect();
    if logs.len() >= KEEP_LOGS {
        logs.sort();
        for old in &logs[..logs.len() + 1 - KEEP_LOGS] {
            let _ = std::fs::remove_file(old);
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>() -> Observations<'a> {
        Observations {
            console: None,
            virtio: None,
            debug_exit: None,
            crash: None,
            timed_out: false,
            timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn any_single_channel_is_enough() {
        let mut o = obs();
        o.debug_exit = Some(Kind::Pass);
        assert_eq!(decide(&o).0, Outcome::Pass);
        let mut o = obs();
        o.virtio = Some((Kind::Skip, "x", "why"));
        assert_eq!(decide(&o), (Outcome::Skip, "why".into()));
        let mut o = obs();
        o.console = Some((Kind::Error, "x", "unknown repro"));
        assert_eq!(decide(&o), (Outcome::Error, "unknown repro".into()));
    }

    #[test]
    fn fail_beats_crash_beats_other_verdicts() {
        let crash = Crash { kind: CrashKind::Oops, line: "Oops: 0002 [#1]".into() };
        let mut o = obs();
        o.crash = Some(&crash);
        o.console = Some((Kind::Fail, "x", "bug seen"));
        assert_eq!(decide(&o), (Outcome::Fail, "bug seen".into()));
        o.console = Some((Kind::Pass, "x", ""));
        assert_eq!(decide(&o), (Outcome::Crash, "Oops: 0002 [#1]".into()));
        o.console = None;
        o.timed_out = true;
        assert_eq!(decide(&o).0, Outcome::Crash);
    }

    #[test]
    fn nothing_is_hang_or_no_verdict() {
        let mut o = obs();
        assert_eq!(decide(&o).0, Outcome::NoVerdict);
        o.timed_out = true;
        assert_eq!(decide(&o), (Outcome::Hang, "no verdict within 20 s".into()));
    }

    #[test]
    fn disagreeing_channels_are_an_error() {
        let mut o = obs();
        o.console = Some((Kind::Pass, "x", ""));
        o.debug_exit = Some(Kind::Fail);
        assert_eq!(
            decide(&o),
            (Outcome::Error, "verdict channels disagree: console=pass virtio=- debug-exit=fail".into())
        );
    }

    #[test]
    fn logs_are_pruned_to_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..KEEP_LOGS + 5 {
            std::fs::write(dir.path().join(format!("{i:05}-x.log")), b"").unwrap();
        }
        let p = new_log_path(dir.path(), "smoke", Accel::Tcg).unwrap();
        assert!(p.to_string_lossy().ends_with("-smoke-tcg.log"));
        let left = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(left, KEEP_LOGS - 1);
        assert!(!dir.path().join("00000-x.log").exists());
        assert!(dir.path().join(format!("{:05}-x.log", KEEP_LOGS + 4)).exists());
    }
}
