//! The `run` command shared by `krepro run` and `cargo xtask run`: flags,
//! progress on the terminal, the summary, `--json`, and the exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::boot::outcome::{self, Decision, ExitCode, Outcome, Remap};
use crate::boot::qemu::{self, AccelChoice, Machine, MachineChoice};
use crate::boot::run::{self, EntryChoice, Event, RunConfig, RunResult};
use crate::image::kernel::Kernel;
use crate::{boot::interrupt, host::cache, initrd, RunError};

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Kernel to boot (an x86 bzImage). Default: $KREPRO_KERNEL, else the
    /// newest kernel in the cache, else /boot/vmlinuz-$(uname -r), else the
    /// newest distro kernel, fetched into the cache
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,

    /// The repro to run (`cargo xtask repros` lists them)
    #[arg(long, value_name = "NAME", default_value = "smoke", conflicts_with = "exec")]
    pub repro: String,

    #[command(flatten)]
    pub exec: ExecArgs,

    /// Seconds without a verdict before the run counts as a hang
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Accelerator: kvm, tcg, or auto (kvm when it works, else tcg)
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,

    /// Machine: auto (microvm), microvm, pc or q35. On pc and q35 the
    /// virtio-serial channel uses PCI; on microvm virtio-mmio
    #[arg(long, value_enum, value_name = "MACHINE", default_value_t = MachineChoice::Auto)]
    pub machine: MachineChoice,

    /// Kernel entry: auto (PVH when the kernel has it: the vmlinux is taken
    /// out of the bzImage once and cached, skipping emulated
    /// decompression), pvh, or bzimage
    #[arg(long, value_enum, value_name = "ENTRY", default_value_t = EntryChoice::Auto)]
    pub entry: EntryChoice,

    /// Boot N times: pass only if every run passes (flaky repros)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// Extra kernel command line words, e.g. --append krepro.max_uptime_ms=3000
    #[arg(long, value_name = "WORD")]
    pub append: Vec<String>,

    /// Console while booting: full, or quiet (errors only, which spares the
    /// emulated UART); with quiet, init prints the whole kernel log before
    /// any verdict other than pass
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ConsoleMode::Full)]
    pub console: ConsoleMode,

    /// Guest memory in MiB
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: u32,

    /// Count a kernel WARNING on the console as a crash
    #[arg(long)]
    pub warn_is_crash: bool,

    /// Exit status for a crash [default: 2]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_crash: Option<Decision>,

    /// Exit status for a hang [default: 3]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_hang: Option<Decision>,

    /// Exit status when the kernel stops without a verdict [default: skip, 125]
    #[arg(long, value_enum, value_name = "DECISION")]
    pub on_no_verdict: Option<Decision>,

    /// Where console logs go [default: ~/.cache/krepro/logs]
    #[arg(long, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Print one JSON object on stdout instead of the summary
    #[arg(long)]
    pub json: bool,

    /// Stream the console (and the qemu command) to stderr
    #[arg(short, long)]
    pub verbose: bool,
}

/// Running something that is not a compiled-in repro, and what else goes
/// into the initrd.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ExecArgs {
    /// Run this static executable (C, std Rust, a kselftest) instead of a
    /// compiled-in repro: exit status 0 is pass, 4 (KSFT_SKIP) skip, any
    /// other status or a signal fail
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

/// What a dynamically linked --exec FILE needs instead.
const STATIC_HINT: &str = "link it statically: `cc -static ...`, or for Rust \
     `RUSTFLAGS='-C target-feature=+crt-static' cargo build --target x86_64-unknown-linux-gnu`";

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

    /// The extra initrd entries, checked (a dynamic --exec FILE is refused
    /// here, before qemu starts).
    pub fn entries(&self, kernel: &Kernel, machine: Machine) -> Result<Vec<initrd::Entry>, RunError> {
        use repros::protocol;
        let mut out = Vec::new();
        if let Some(path) = &self.exec {
            let bad = |why: String| RunError::BadExec { path: path.clone(), why };
            let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            crate::image::elf::check_static(&bytes, false).map_err(|e| match e {
                crate::image::elf::ElfError::Dynamic(_) => bad(format!("{e}; {STATIC_HINT}")),
                e => bad(e.to_string()),
            })?;
            let nul_list = |items: &[String]| items.iter().flat_map(|a| a.bytes().chain([0])).collect::<Vec<u8>>();
            for kv in &self.env {
                if !kv.contains('=') || kv.contains('\0') {
                    return Err(RunError::BadFlag(format!("--env {kv}: expected K=V")));
                }
            }
            if self.args.iter().any(|a| a.contains('\0')) {
                return Err(RunError::BadFlag("--arg: an argument cannot hold a NUL byte".into()));
            }
            out.push(initrd::Entry::dir("krepro"));
            out.push(initrd::Entry::file(protocol::EXEC_PATH.trim_start_matches('/'), 0o755, bytes));
            out.push(initrd::Entry::file(protocol::EXEC_ARGS.trim_start_matches('/'), 0o644, nul_list(&self.args)));
            out.push(initrd::Entry::file(protocol::EXEC_ENV.trim_start_matches('/'), 0o644, nul_list(&self.env)));
        }
        for spec in &self.files {
            out.extend(file_entries(spec)?);
        }
        if let Some(want) = &self.modules {
            let dir = crate::initrd::modules::modules_dir(kernel, self.modules_from.as_deref()).ok_or_else(|| {
                crate::initrd::modules::ModuleError::NoDir(
                    kernel.release.clone().unwrap_or_else(|| kernel.path.display().to_string()),
                )
            })?;
            let mods = crate::initrd::modules::resolve(&dir, want, machine.channel_modules())?;
            out.extend(crate::initrd::modules::entries(mods));
        }
        // Each piece brings its parent directories; two --file DESTs may share one.
        Ok(initrd::dedup_dirs(out))
    }
}

/// `--file SRC[:DEST]`: a file, or a directory and everything below it.
fn file_entries(spec: &str) -> Result<Vec<initrd::Entry>, RunError> {
    let (src, dest) = match spec.split_once(':') {
        Some((s, d)) => (PathBuf::from(s), d.trim_start_matches('/').to_owned()),
        None => {
            let p = PathBuf::from(spec);
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (p, name)
        }
    };
    if dest.is_empty() || dest.split('/').any(|c| c == "..") {
        return Err(RunError::BadFlag(format!("--file {spec}: DEST must be a path inside the initrd")));
    }
    let mut out = Vec::new();
    // Parent directories of DEST.
    let mut parent = String::new();
    for part in dest.split('/').collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default() {
        parent = if parent.is_empty() { part.to_owned() } else { format!("{parent}/{part}") };
        out.push(initrd::Entry::dir(&parent));
    }
    fn add(src: &Path, dest: &str, out: &mut Vec<initrd::Entry>) -> Result<(), RunError> {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(src).map_err(|e| RunError::BadFlag(format!("--file {}: {e}", src.display())))?;
        if meta.is_dir() {
            out.push(initrd::Entry::dir(dest));
            let mut names: Vec<_> = std::fs::read_dir(src)
                .map_err(|e| RunError::io(format!("list {}", src.display()), e))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                add(&src.join(&n), &format!("{dest}/{}", n.to_string_lossy()), out)?;
            }
        } else {
            let data = std::fs::read(src).map_err(|e| RunError::io(format!("read {}", src.display()), e))?;
            out.push(initrd::Entry::file(dest, meta.permissions().mode() & 0o777, data));
        }
        Ok(())
    }
    add(&src, &dest, &mut out)?;
    Ok(out)
}

/// `--console`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleMode {
    Full,
    Quiet,
}

impl RunArgs {
    fn remap(&self) -> Remap {
        Remap { on_crash: self.on_crash, on_hang: self.on_hang, on_no_verdict: self.on_no_verdict }
    }
}

/// Checks a repro name against the registry before anything is built.
pub fn check_repro(name: &str) -> Result<(), RunError> {
    repros::find(name).map(drop).ok_or_else(|| RunError::unknown_repro(name))
}

/// Runs the whole command: checks, kernel, qemu, N boots, report. Returns
/// the exit code; every failure has been printed as one line.
pub fn execute(args: &RunArgs, initrd: &Path) -> ExitCode {
    let mut ui = Ui::new(args);
    match execute_inner(args, initrd, &mut ui) {
        Ok(code) => code,
        Err(e) => ui.error(&e),
    }
}

/// Prepares a run: the repro, the kernel, qemu and the initrd are checked
/// (in that order, cheapest first) before anything boots.
pub fn prepare(args: &RunArgs, initrd: &Path, say: &mut dyn FnMut(&str)) -> Result<RunConfig, RunError> {
    if args.exec.exec.is_none() {
        check_repro(&args.repro)?;
    }
    let (kernel, _) = crate::host::fetch::resolve(args.kernel.as_deref(), say)?;
    let machine = Machine::from_choice(args.machine);
    let extra = args.exec.entries(&kernel, machine)?;
    let boot_image = run::choose_entry(&kernel, args.entry, say)?;
    let qemu = qemu::find_or_install(say)?;
    if !initrd.is_file() {
        return Err(RunError::InitrdNotFound(initrd.to_owned()));
    }
    let extra_initrd = if extra.is_empty() {
        Vec::new()
    } else {
        initrd::pack(&extra).map_err(|e| RunError::io("pack the extra initrd", e))?
    };
    let mut append = args.exec.append();
    if args.console == ConsoleMode::Quiet {
        if args.warn_is_crash {
            // quiet hides KERN_WARNING lines from the console.
            return Err(RunError::BadFlag("--warn-is-crash needs --console full: quiet hides WARNINGs".into()));
        }
        append.push("quiet".into());
    }
    append.extend(args.append.iter().cloned());
    Ok(RunConfig {
        kernel,
        boot_image,
        machine,
        initrd: initrd.to_owned(),
        repro: args.exec.repro(&args.repro).to_owned(),
        run_index: 1,
        append,
        timeout: Duration::from_secs(args.timeout),
        accel: args.accel,
        memory_mib: args.memory,
        warn_is_crash: args.warn_is_crash,
        qemu,
        extra_initrd,
        log_dir: args.log_dir.clone().unwrap_or_else(cache::logs_dir),
        interrupt: interrupt::install(),
    })
}

fn execute_inner(args: &RunArgs, initrd: &Path, ui: &mut Ui) -> Result<ExitCode, RunError> {
    let mut cfg = prepare(args, initrd, &mut |m| ui.say(m))?;
    let mut results = Vec::new();
    for i in 0..args.runs {
        cfg.run_index = i + 1;
        ui.start_run(i, args.runs, &cfg.kernel);
        let result = run::run(&cfg, &mut |ev| ui.event(ev))?;
        ui.finish_run(&result);
        results.push(result);
    }
    let outcome = outcome::combine(results.iter().map(|r| r.outcome)).expect("at least one run");
    let code = args.remap().exit_code(outcome);
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
    progress: bool,
    started: Instant,
    last_draw: Option<Instant>,
    label: String,
    init_ms: Option<u64>,
}

impl Ui {
    fn new(args: &RunArgs) -> Ui {
        Ui {
            json: args.json,
            verbose: args.verbose,
            progress: !args.verbose && std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            label: String::new(),
            init_ms: None,
        }
    }

    fn say(&mut self, message: &str) {
        self.clear();
        eprintln!("krepro: {message}");
    }

    fn start_run(&mut self, i: u32, n: u32, kernel: &Kernel) {
        let name = kernel.release.clone().unwrap_or_else(|| kernel.path.display().to_string());
        self.label = if n > 1 { format!("run {}/{n}: booting {name}", i + 1) } else { format!("booting {name}") };
        self.started = Instant::now();
        self.init_ms = None;
        self.draw(true);
    }

    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Fallback { reason } => self.say(reason),
            Event::QemuStarted { command, .. } if self.verbose => eprintln!("$ {command}"),
            Event::Console(line) if self.verbose => eprintln!("{line}"),
            Event::QemuStderr(line) if self.verbose => eprintln!("qemu: {line}"),
            Event::InitStarted { boot_ms } => self.init_ms = Some(boot_ms),
            _ => {}
        }
        self.draw(false);
    }

    fn draw(&mut self, force: bool) {
        if !self.progress || (!force && self.last_draw.is_some_and(|t| t.elapsed() < Duration::from_millis(100))) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let init = self.init_ms.map(|ms| format!(", init at {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
        eprint!("\r\x1b[K{} ... {:.1} s{init}", self.label, self.started.elapsed().as_secs_f64());
        let _ = std::io::stderr().flush();
    }

    fn clear(&mut self) {
        if self.progress && self.last_draw.is_some() {
            eprint!("\r\x1b[K");
            self.last_draw = None;
        }
    }

    fn finish_run(&mut self, r: &RunResult) {
        self.clear();
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
        self.clear();
        let code = e.exit_code();
        if self.json {
            let report = JsonError { outcome: "error", exit_code: code.code(), message: e.to_string() };
            println!("{}", serde_json::to_string(&report).expect("plain data serialises"));
        }
        eprintln!("error: {e}");
        code
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
