//! The command line shared by `krepro run`, `cargo xtask run`, `bisect`
//! and `bench`: one set of boot flags ([`BootArgs`]), the initrd additions
//! ([`ExecArgs`]), how outcomes count ([`VerdictArgs`]); progress on the
//! terminal, the summary, `--json`, and the exit code.

pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::boot::disk::{self, DiskSpec};
use crate::boot::interrupt;
use crate::boot::log::LogDir;
use crate::boot::outcome::{self, Decision, ExitCode, Outcome, Remap};
use crate::boot::qemu::{self, AccelChoice, Machine, MachineChoice};
use crate::boot::run::{self, EntryChoice, Plan, RunEvent, RunResult, Target};
use crate::host::cache::Cache;
use crate::image::arch::Arch;
use crate::image::kernel::check_kernel;
use crate::initrd::extras::{ExecSpec, Extras, ModuleSpec};
use crate::RunError;
use progress::Progress;

/// How every boot is made: the flags `run`, `bisect` and `bench` share.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "How the guest boots")]
pub struct BootArgs {
    /// Seconds without a verdict before a boot counts as a hang
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Accelerator: kvm, tcg, or auto (kvm when it works, else tcg)
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,

    /// Guest architecture: x86_64 or aarch64 (arm64) [default: the kernel
    /// image's; with no kernel named, the host's]. An aarch64 guest on an
    /// x86_64 host runs under TCG
    #[arg(long, value_enum, value_name = "ARCH")]
    pub arch: Option<Arch>,

    /// Machine: auto (microvm on x86_64, virt on aarch64), microvm, pc, q35
    /// or virt. On pc, q35 and virt the virtio-serial channel uses PCI; on
    /// microvm virtio-mmio
    #[arg(long, value_enum, value_name = "MACHINE", default_value_t = MachineChoice::Auto)]
    pub machine: MachineChoice,

    /// Kernel entry: auto (PVH when the kernel has it: the vmlinux is taken
    /// out of the bzImage once and cached, skipping emulated
    /// decompression), pvh, or bzimage
    #[arg(long, value_enum, value_name = "ENTRY", default_value_t = EntryChoice::Auto)]
    pub entry: EntryChoice,

    /// Extra kernel command line words, e.g. --append krepro.max_uptime_ms=3000
    #[arg(long, value_name = "WORD")]
    pub append: Vec<String>,

    /// Console while booting: full, or quiet (errors only, which spares the
    /// emulated UART); with quiet, init prints the whole kernel log before
    /// any verdict other than pass
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ConsoleMode::Full)]
    pub console: ConsoleMode,

    /// Guest memory in MiB [default: what the repro declares, else 256]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: Option<u32>,

    /// Guest CPUs [default: what the repro declares, else 1]; the kernel
    /// builder adds SMP when N > 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: Option<u32>,

    /// A block device, as virtio-blk (/dev/vda, /dev/vdb, ... in order):
    /// FILE (the guest's writes are discarded: FILE is never written),
    /// FILE:rw (writes go to FILE), or new:SIZE[:FS] (a fresh sparse
    /// scratch disk, made with mkfs.FS on the host, e.g. new:64M:ext4);
    /// repeatable [default: what the repro declares]
    #[arg(long = "disk", value_name = "SPEC")]
    pub disks: Vec<DiskSpec>,

    /// Passed to qemu unchanged, after krepro's own arguments (a device or
    /// CPU feature krepro does not model: --qemu-arg=-cpu --qemu-arg=max);
    /// repeatable; --json marks such a run as customised
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub qemu_args: Vec<String>,

    /// Count a kernel WARNING on the console as a crash
    #[arg(long)]
    pub warn_is_crash: bool,

    /// Boot with the kernel's own defaults: leave out krepro's speed-ups on
    /// the command line (cryptomgr.notests; on x86_64 noreplace-smp and
    /// 8250.nr_uarts=1, and nolapic_timer under TCG on one CPU for kernels
    /// that tick periodically only). They skip
    /// crypto self-tests, LOCK-prefix patching and probes of absent
    /// hardware; `--append` can also undo the ones that take a value
    #[arg(long)]
    pub no_speedups: bool,

    /// Where console logs go [default: ~/.cache/krepro/logs, which keeps
    /// the newest 200 logs and 64 MiB; each log keeps the first and last
    /// MiB of the console]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
}

/// Running something that is not a compiled-in repro, and what else goes
/// into the initrd.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Programs, files and modules in the guest")]
pub struct ExecArgs {
    /// Run this static executable (C, std Rust, a kselftest) or #! shell
    /// script (run by busybox sh) instead of a compiled-in repro: exit
    /// status 0 is pass, 4 (KSFT_SKIP) skip, any other status or a signal
    /// fail
    #[arg(long, value_name = "FILE")]
    pub exec: Option<PathBuf>,

    /// An argument for --exec FILE; repeatable
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true, requires = "exec")]
    pub args: Vec<String>,

    /// An environment variable for --exec FILE; repeatable
    #[arg(long = "env", value_name = "K=V", requires = "exec")]
    pub env: Vec<String>,

    /// Seconds the guest gives --exec FILE before killing it (a fail, with
    /// the kernel log tail); keep it below --timeout
    #[arg(long, value_name = "SECS", requires = "exec")]
    pub guest_timeout: Option<u64>,

    /// An extra file or directory for the initrd, at DEST (default /NAME); repeatable
    #[arg(long = "file", value_name = "SRC[:DEST]")]
    pub files: Vec<String>,

    /// Kernel modules init loads first: `auto` (what the virtio-serial
    /// verdict channel needs on the machine, where the kernel has it as
    /// modules: virtio_mmio or virtio_pci, and virtio_console) or a
    /// comma-separated list; dependencies come along
    #[arg(long, value_name = "auto|LIST")]
    pub modules: Option<crate::initrd::modules::Modules>,

    /// Where the modules are: an unpacked kernel package or a
    /// `make modules_install` tree [default: beside a packaged kernel]
    #[arg(long, value_name = "DIR", requires = "modules")]
    pub modules_from: Option<PathBuf>,
}

impl ExecArgs {
    /// The repro name the guest runs: `exec` with --exec FILE.
    pub fn repro<'a>(&self, repro: &'a str) -> &'a str {
        if self.exec.is_some() {
            repros::protocol::EXEC_REPRO
        } else {
            repro
        }
    }

    /// Kernel command line words: the guest timeout.
    pub fn append(&self) -> Vec<String> {
        self.guest_timeout
            .map(|s| format!("{}{}={s}", repros::protocol::CMDLINE_PREFIX, repros::protocol::CMDLINE_GUEST_TIMEOUT))
            .into_iter()
            .collect()
    }

    /// Whether anything goes into the initrd besides init.
    pub fn any(&self) -> bool {
        self.exec.is_some() || !self.files.is_empty() || self.modules.is_some()
    }

    /// The initrd additions, read and checked once (a --exec FILE that is
    /// not a complete static executable or a shell script is refused here,
    /// before qemu). A script brings busybox (installed with apt when
    /// missing and we are root).
    pub fn extras(&self, say: &mut dyn FnMut(&str)) -> Result<Extras, RunError> {
        let mut exec = self.exec.as_ref().map(|path| ExecSpec {
            path: path.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            busybox: None,
        });
        if let Some(spec) = exec.as_mut().filter(|s| crate::initrd::extras::is_script(&s.path)) {
            let bb = crate::host::install::find_or_install("busybox", "busybox-static", say)
                .map_err(|e| RunError::BadExec { path: spec.path.clone(), why: format!("a script needs {e}") })?;
            spec.busybox = Some(bb);
        }
        let modules = self.modules.clone().map(|want| ModuleSpec { want, from: self.modules_from.clone() });
        Extras::new(exec.as_ref(), &self.files, modules)
    }
}

/// How outcomes count, for `run` and `bisect`.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "How outcomes count")]
pub struct VerdictArgs {
    /// Boots per kernel: it passes only if every boot passes, and fails if
    /// any fails (flaky repros)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// How a crash counts: good, bad or skip [default: crash, exit 2; bad in a bisect]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_crash: Option<Decision>,

    /// How a hang counts [default: hang, exit 3; bad in a bisect]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_hang: Option<Decision>,

    /// How a boot without verdict counts [default: skip, exit 125]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_no_verdict: Option<Decision>,
}

impl VerdictArgs {
    pub fn remap(&self) -> Remap {
        Remap { on_crash: self.on_crash, on_hang: self.on_hang, on_no_verdict: self.on_no_verdict }
    }
}

/// What the guest gets: the flags, else what the repro declares, else
/// krepro's defaults (1 CPU, no disk, 256 MiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestSpec {
    pub cpus: u32,
    pub disks: Vec<DiskSpec>,
    pub memory_mib: u32,
}

/// Guest memory when neither the flag nor the repro says.
pub const DEFAULT_MEMORY_MIB: u32 = 256;

impl GuestSpec {
    /// The guest for `repro` (None for --exec): each flag given (`cpus`,
    /// `disks`, `memory`) wins over what the repro declares.
    pub fn resolve(
        cpus: Option<u32>,
        disks: &[DiskSpec],
        memory: Option<u32>,
        repro: Option<&repros::Repro>,
    ) -> Result<GuestSpec, RunError> {
        let disks = match (disks, repro) {
            ([], Some(r)) => r
                .disks
                .iter()
                .map(|s| s.parse().map_err(|e| RunError::BadFlag(format!("repro {} declares disk {s}: {e}", r.name))))
                .collect::<Result<_, _>>()?,
            (given, _) => given.to_vec(),
        };
        let declared_memory = repro.map(|r| r.memory_mib).filter(|m| *m > 0);
        Ok(GuestSpec {
            cpus: cpus.or(repro.map(|r| r.cpus)).unwrap_or(1).max(1),
            disks,
            memory_mib: memory.or(declared_memory).unwrap_or(DEFAULT_MEMORY_MIB),
        })
    }
}

impl BootArgs {
    /// The guest these flags give `repro` ([`GuestSpec::resolve`]).
    pub fn guest(&self, repro: Option<&repros::Repro>) -> Result<GuestSpec, RunError> {
        GuestSpec::resolve(self.cpus, &self.disks, self.memory, repro)
    }
}

/// `--console`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleMode {
    Full,
    Quiet,
}

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Kernel to boot: an x86 bzImage or an arm64 Image (also gzip'd).
    /// Default: $KREPRO_KERNEL, else the newest kernel of --arch in the
    /// cache, else /boot/vmlinuz-$(uname -r), else the newest distro
    /// kernel, fetched into the cache
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,

    /// The repro to run (`cargo xtask repros` lists them)
    #[arg(long, value_name = "NAME", default_value = "smoke", conflicts_with = "exec")]
    pub repro: String,

    /// Print one JSON object on stdout instead of the summary
    #[arg(long)]
    pub json: bool,

    /// Stream the console (and the qemu command) to stderr
    #[arg(short, long)]
    pub verbose: bool,

    #[command(flatten)]
    pub exec: ExecArgs,

    #[command(flatten)]
    pub boot: BootArgs,

    #[command(flatten)]
    pub verdict: VerdictArgs,
}

/// Checks a repro name against the registry before anything is built.
pub fn check_repro(name: &str) -> Result<(), RunError> {
    repros::find(name).map(drop).ok_or_else(|| RunError::unknown_repro(name))
}

/// The architecture of the guests a command boots, known before anything
/// is built: the kernel image's (`kernel`, else $KREPRO_KERNEL), which
/// `--arch` must agree with; else `--arch`; else the host's.
pub fn guest_arch(boot: &BootArgs, kernel: Option<&Path>) -> Result<Arch, RunError> {
    let env = std::env::var_os("KREPRO_KERNEL").filter(|v| !v.is_empty()).map(std::path::PathBuf::from);
    let Some(path) = kernel.map(Path::to_owned).or(env) else {
        return Ok(boot.arch.unwrap_or_else(Arch::host_or_default));
    };
    let image = check_kernel(&path)?;
    match boot.arch {
        Some(arch) if arch != image.arch => {
            Err(RunError::BadFlag(format!("--arch {arch}, but {} is an {} kernel", path.display(), image.arch)))
        }
        _ => Ok(image.arch),
    }
}

/// The [`Plan`] for one command: the repro (or --exec FILE) checked, the
/// initrd additions read, qemu for `arch` found (or installed), krepro's
/// initrd present. Cheapest checks first.
pub fn plan(
    boot: &BootArgs,
    exec: &ExecArgs,
    repro: &str,
    arch: Arch,
    initrd: &Path,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<Plan, RunError> {
    if exec.exec.is_none() {
        check_repro(repro)?;
    }
    let mut append = exec.append();
    if boot.console == ConsoleMode::Quiet {
        if boot.warn_is_crash {
            // quiet hides KERN_WARNING lines from the console.
            return Err(RunError::BadFlag("--warn-is-crash needs --console full: quiet hides WARNINGs".into()));
        }
        append.push("quiet".into());
    }
    append.extend(boot.append.iter().cloned());
    let extras = exec.extras(say)?;
    for note in &extras.notes {
        say(note);
    }
    let guest = boot.guest(if exec.exec.is_none() { repros::find(repro) } else { None })?;
    for d in &guest.disks {
        disk::check(d)?;
    }
    let machine = Machine::from_choice(boot.machine, arch)?;
    let qemu = qemu::find_or_install(arch, say)?;
    if !initrd.is_file() {
        return Err(RunError::InitrdNotFound(initrd.to_owned()));
    }
    if let Some(init) = crate::initrd::init_arch(initrd).filter(|a| *a != arch) {
        return Err(RunError::BadFlag(format!(
            "initrd {} holds an {init} init, but the guest is {arch} (build one with `cargo xtask initrd --arch {arch}`)",
            initrd.display()
        )));
    }
    Ok(Plan {
        append,
        timeout: Duration::from_secs(boot.timeout),
        accel: boot.accel,
        machine,
        entry: boot.entry,
        memory_mib: guest.memory_mib,
        cpus: guest.cpus,
        disks: guest.disks,
        qemu_args: boot.qemu_args.clone(),
        warn_is_crash: boot.warn_is_crash,
        speedups: !boot.no_speedups,
        extras,
        logs: LogDir::new(boot.log_dir.clone().unwrap_or_else(|| cache.logs())),
        interrupt: interrupt::install(),
        ..Plan::new(qemu, initrd.to_owned(), exec.repro(repro), cache.clone())
    })
}

/// Runs the whole command: checks, kernel, qemu, N boots, report. Returns
/// the exit code; every failure has been printed as one line.
pub fn execute(args: &RunArgs, initrd: &Path, cache: &Cache) -> ExitCode {
    let mut ui = Ui::new(args);
    match execute_inner(args, initrd, cache, &mut ui) {
        Ok(code) => code,
        Err(e) => ui.error(&e),
    }
}

/// Prepares a run: the repro, the kernel, qemu and the initrd are checked
/// (in that order, cheapest first) before anything boots.
pub fn prepare(
    args: &RunArgs,
    initrd: &Path,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<(Plan, Target), RunError> {
    if args.exec.exec.is_none() {
        check_repro(&args.repro)?;
    }
    let arch = guest_arch(&args.boot, args.kernel.as_deref())?;
    let (kernel, _) = crate::host::fetch::resolve(args.kernel.as_deref(), Some(arch), cache, say)?;
    let plan = plan(&args.boot, &args.exec, &args.repro, arch, initrd, cache, say)?;
    let target = plan.target(&kernel.path, say)?;
    Ok((plan, target))
}

fn execute_inner(args: &RunArgs, initrd: &Path, cache: &Cache, ui: &mut Ui) -> Result<ExitCode, RunError> {
    let (plan, target) = prepare(args, initrd, cache, &mut |m| ui.progress.say(m))?;
    let mut results = Vec::new();
    for i in 1..=args.verdict.runs {
        ui.start_run(i, args.verdict.runs, &target);
        let result = run::run(&plan, &target, i, &mut |ev| ui.event(ev))?;
        ui.finish_run(&result);
        results.push(result);
    }
    let outcome = outcome::combine(results.iter().map(|r| r.outcome)).expect("at least one run");
    let code = args.verdict.remap().exit_code(outcome);
    ui.report(&results, outcome, code);
    Ok(code)
}

/// The JSON object `--json` prints.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    decisive: &'a RunResult,
    exit_code: u8,
    /// Whether the runs disagreed (a flaky repro).
    flaky: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<&'a [RunResult]>,
}

#[derive(Serialize)]
struct JsonError {
    outcome: &'static str,
    exit_code: u8,
    message: String,
}

/// The terminal side: progress while booting, then one summary line, or
/// JSON on stdout.
struct Ui {
    json: bool,
    verbose: bool,
    progress: Progress,
    label: String,
    init_ms: Option<u64>,
}

impl Ui {
    fn new(args: &RunArgs) -> Ui {
        let progress = Progress::new();
        Ui {
            json: args.json,
            verbose: args.verbose,
            progress: if args.verbose { progress.without_live_line() } else { progress },
            label: String::new(),
            init_ms: None,
        }
    }

    fn start_run(&mut self, i: u32, n: u32, target: &Target) {
        let k = &target.kernel;
        let name = k.release.clone().unwrap_or_else(|| k.path.display().to_string());
        self.label = if n > 1 { format!("run {i}/{n}: booting {name}") } else { format!("booting {name}") };
        self.init_ms = None;
        self.progress.restart();
        self.progress.status(&self.label.clone());
    }

    fn event(&mut self, ev: RunEvent<'_>) {
        show_run_event(&mut self.progress, self.verbose, &ev);
        if let RunEvent::InitStarted { boot_ms } = ev {
            self.init_ms = Some(boot_ms);
        }
        let init = self.init_ms.map(|ms| format!(", init at {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
        self.progress.tick(&format!("{}{init}", self.label));
    }

    fn finish_run(&mut self, r: &RunResult) {
        self.progress.clear();
        if self.json {
            return;
        }
        let release = r.kernel_release.clone().unwrap_or_else(|| r.kernel.display().to_string());
        let mut line =
            format!("{}: {} on {release} ({}, {:.1} s)", r.outcome, r.repro, r.accel.name(), r.wall_ms as f64 / 1000.0);
        if !r.message.is_empty() {
            line.push_str(&format!(": {}", r.message));
        }
        eprintln!("{line}");
        if r.outcome != Outcome::Pass {
            eprintln!("  console log: {}", r.console_log.display());
        }
    }

    fn report(&mut self, results: &[RunResult], outcome: Outcome, code: ExitCode) {
        let flaky = results.iter().any(|r| r.outcome != results[0].outcome);
        if self.json {
            let decisive = results.iter().find(|r| r.outcome == outcome).expect("combined from these");
            let report =
                JsonReport { decisive, exit_code: code.code(), flaky, runs: (results.len() > 1).then_some(results) };
            println!("{}", serde_json::to_string(&report).expect("plain data serialises"));
        } else if results.len() > 1 {
            let list: Vec<&str> = results.iter().map(|r| r.outcome.name()).collect();
            let flaky = if flaky { " (runs disagree: flaky repro)" } else { "" };
            eprintln!("{outcome} over {} runs: {}{flaky}", results.len(), list.join(", "));
        }
    }

    fn error(&mut self, e: &RunError) -> ExitCode {
        self.progress.clear();
        let code = e.exit_code();
        if self.json {
            let report = JsonError { outcome: "error", exit_code: code.code(), message: e.to_string() };
            println!("{}", serde_json::to_string(&report).expect("plain data serialises"));
        }
        eprintln!("error: {e}");
        code
    }
}

/// What every command shows of a boot as it happens: fallbacks always
/// (they explain a slower boot), with `verbose` the qemu command line, the
/// console and qemu's stderr.
pub fn show_run_event(progress: &mut Progress, verbose: bool, ev: &RunEvent<'_>) {
    match ev {
        RunEvent::Fallback { reason } => progress.say(reason),
        RunEvent::QemuStarted { command, .. } if verbose => eprintln!("$ {command}"),
        RunEvent::Console(line) | RunEvent::Output(line) if verbose => eprintln!("{line}"),
        RunEvent::QemuStderr(line) if verbose => eprintln!("qemu: {line}"),
        _ => {}
    }
}

/// Parses the command line; usage errors exit 128 (not clap's 2, which
/// would read as "crash" to `git bisect run`), --help and --version exit 0.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            let code = if e.use_stderr() { ExitCode::Error.code() } else { 0 };
            let _ = e.print();
            std::process::exit(code.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn parse(words: &[&str]) -> Result<RunArgs, clap::Error> {
        Run::try_parse_from(std::iter::once("run").chain(words.iter().copied())).map(|r| r.args)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.repro.as_str(), a.boot.timeout, a.boot.memory, a.verdict.runs), ("smoke", 60, None, 1));
        let smoke = a.boot.guest(repros::find("smoke")).unwrap();
        assert_eq!(smoke, GuestSpec { cpus: 1, disks: vec![], memory_mib: 256 });
        assert_eq!(
            (a.boot.accel, a.boot.machine, a.boot.entry),
            (AccelChoice::Auto, MachineChoice::Auto, EntryChoice::Auto)
        );
        assert_eq!(a.boot.console, ConsoleMode::Full);
        assert_eq!(a.verdict.remap(), Remap::default());
        assert!(!a.exec.any() && !a.json && !a.verbose);
    }

    #[test]
    fn flags_land_in_their_groups() {
        let a = parse(&[
            "--exec",
            "/bin/true",
            "--arg",
            "-v",
            "--env",
            "A=1",
            "--guest-timeout",
            "9",
            "--file",
            "d:/srv",
            "--machine",
            "pc",
            "--entry",
            "bzimage",
            "--console",
            "quiet",
            "--memory",
            "512",
            "--append",
            "x=1",
            "--runs",
            "3",
            "--on-hang",
            "skip",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.exec.args, ["-v"]);
        assert_eq!(a.exec.repro("smoke"), repros::protocol::EXEC_REPRO);
        assert_eq!(a.exec.append(), ["krepro.guest_timeout=9"]);
        assert!(a.exec.any());
        assert_eq!((a.boot.machine, a.boot.entry, a.boot.memory), (MachineChoice::Pc, EntryChoice::Bzimage, Some(512)));
        assert_eq!(a.boot.append, ["x=1"]);
        assert_eq!(a.verdict.runs, 3);
        assert_eq!(a.verdict.remap().exit_code(Outcome::Hang), ExitCode::Skip);
        assert!(a.json);
    }

    #[test]
    fn a_repros_declared_needs_are_defaults_that_flags_override() {
        let needy = repros::Repro {
            name: "needy",
            cpus: 2,
            disks: &["new:64M:ext4"],
            memory_mib: 512,
            ..repros::Repro::DEFAULT
        };
        let declared = parse(&[]).unwrap().boot.guest(Some(&needy)).unwrap();
        assert_eq!(declared, GuestSpec { cpus: 2, disks: vec!["new:64M:ext4".parse().unwrap()], memory_mib: 512 });
        let flags = parse(&["--cpus", "4", "--disk", "/x.img", "--memory", "1024"]).unwrap();
        let given = flags.boot.guest(Some(&needy)).unwrap();
        assert_eq!(given, GuestSpec { cpus: 4, disks: vec!["/x.img".parse().unwrap()], memory_mib: 1024 });
        let broken = repros::Repro { name: "broken", disks: &["new:lots"], ..repros::Repro::DEFAULT };
        let e = parse(&[]).unwrap().boot.guest(Some(&broken)).unwrap_err();
        assert_eq!(e.to_string(), "repro broken declares disk new:lots: lots: a size like 64M, 1G or 512K");
        // Every registered repro's disks parse.
        for r in repros::REPROS {
            parse(&[]).unwrap().boot.guest(Some(r)).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        }
    }

    #[test]
    fn contradictions_and_out_of_range_values_are_refused() {
        use clap::error::ErrorKind;
        let kind = |w: &[&str]| parse(w).unwrap_err().kind();
        assert_eq!(kind(&["--repro", "smoke", "--exec", "/bin/true"]), ErrorKind::ArgumentConflict);
        assert_eq!(kind(&["--arg", "x"]), ErrorKind::MissingRequiredArgument);
        assert_eq!(kind(&["--timeout", "0"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--runs", "0"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--memory", "32"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--accel", "xen"]), ErrorKind::InvalidValue);
    }

    #[test]
    fn plans_refuse_bad_combinations_before_qemu() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path());
        let initrd = d.path().join("initrd");
        let a = parse(&["--console", "quiet", "--warn-is-crash"]).unwrap();
        let e = plan(&a.boot, &a.exec, &a.repro, Arch::X86_64, &initrd, &cache, &mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "--warn-is-crash needs --console full: quiet hides WARNINGs");
        let a = parse(&["--repro", "no_such_repro"]).unwrap();
        let e = plan(&a.boot, &a.exec, &a.repro, Arch::X86_64, &initrd, &cache, &mut |_| {}).unwrap_err();
        assert!(matches!(e, RunError::UnknownRepro { .. }), "{e}");
        let a = parse(&["--exec", "/nonexistent/prog"]).unwrap();
        let e = plan(&a.boot, &a.exec, &a.repro, Arch::X86_64, &initrd, &cache, &mut |_| {}).unwrap_err();
        assert!(matches!(e, RunError::BadExec { .. }), "{e}");
    }
}
