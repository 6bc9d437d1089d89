//! `cargo xtask bisect`: the command line, the real tester (kernel builder
//! or --build-cmd, then qemu), progress and the report.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use krepro_runner::bisect::{self, BisectError, BisectOptions, Boot, Built, Event, Tester};
use krepro_runner::boot::outcome::{Decision, Remap};
use krepro_runner::boot::qemu::{AccelChoice, Machine, MachineChoice};
use krepro_runner::boot::run::{self, BootImage, EntryChoice, RunConfig};
use krepro_runner::cli;
use krepro_runner::{boot::interrupt, boot::qemu, build, host::cache, image::kernel, RunError};

use crate::progress::{mmss, Progress};
use crate::ConfigArgs;

#[derive(clap::Args, Debug)]
pub struct BisectArgs {
    /// The kernel git repository (left as it is: krepro works in a worktree of its own)
    #[arg(long, value_name = "DIR")]
    linux: PathBuf,
    /// A commit where the repro passes
    #[arg(long, value_name = "REV")]
    good: String,
    /// A commit where the repro fails (or crashes, or hangs)
    #[arg(long, value_name = "REV")]
    bad: String,
    /// The repro that tells good from bad
    #[arg(long, value_name = "NAME", required_unless_present = "exec", conflicts_with = "exec")]
    pub repro: Option<String>,
    /// --exec FILE, --file, --modules: as for `run`
    #[command(flatten)]
    pub exec: cli::ExecArgs,
    /// Boots per commit: good only if every run passes, bad if any fails
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Seconds without a verdict before a boot counts as a hang
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Accelerator: kvm, tcg, or auto
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    accel: AccelChoice,
    /// Machine: auto (microvm), microvm, pc or q35
    #[arg(long, value_enum, value_name = "MACHINE", default_value_t = MachineChoice::Auto)]
    machine: MachineChoice,
    /// Kernel entry: auto (PVH when the kernel has it), pvh or bzimage
    #[arg(long, value_enum, value_name = "ENTRY", default_value_t = EntryChoice::Auto)]
    entry: EntryChoice,
    /// A crash is [default: bad]
    #[arg(long, value_enum, value_name = "DECISION")]
    on_crash: Option<Decision>,
    /// A hang is [default: bad]
    #[arg(long, value_enum, value_name = "DECISION")]
    on_hang: Option<Decision>,
    /// A boot without verdict is [default: skip]
    #[arg(long, value_enum, value_name = "DECISION")]
    on_no_verdict: Option<Decision>,
    /// A fix to apply to every tested commit before building (old trees
    /// that need a build or boot fix); repeatable
    #[arg(long = "cherry-pick", value_name = "REV")]
    cherry_picks: Vec<String>,
    /// Build with this shell command instead of krepro's builder; it runs in
    /// the worktree ($KREPRO_WORKTREE) and must leave a bzImage at
    /// $KREPRO_BZIMAGE; a non-zero exit skips the commit
    #[arg(long, value_name = "CMD")]
    build_cmd: Option<String>,
    /// Find the commit that fixed the bug: --bad is an older commit with
    /// the bug, --good a newer one without it
    #[arg(long)]
    find_fix: bool,
    /// Extra kernel command line words for every boot
    #[arg(long, value_name = "WORD")]
    append: Vec<String>,
    /// Do not test --good and --bad before bisecting
    #[arg(long)]
    no_check_ends: bool,
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// The real tester: builds with the kernel builder or --build-cmd, boots
/// with the runner.
struct Real<'a> {
    args: &'a BisectArgs,
    run: RunConfig,
    out: tempfile::TempDir,
}

impl Tester for Real<'_> {
    fn build(&mut self, wt: &Path, commit: &str, on: &mut dyn FnMut(Event<'_>)) -> Result<Built, String> {
        match &self.args.build_cmd {
            Some(cmd) => {
                let bz = self.out.path().join(format!("bzImage-{commit}"));
                let log = cache::dir().join("bisect-logs").join(format!("{commit}.log"));
                let _ = std::fs::create_dir_all(log.parent().expect("in the cache"));
                let logf = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
                let errf = logf.try_clone().map_err(|e| e.to_string())?;
                // The user's own command line, run as they wrote it.
                let status = Command::new("sh")
                    .args(["-c", cmd])
                    .current_dir(wt)
                    .env("KREPRO_WORKTREE", wt)
                    .env("KREPRO_BZIMAGE", &bz)
                    .stdin(Stdio::null())
                    .stdout(logf)
                    .stderr(errf)
                    .status()
                    .map_err(|e| format!("could not run sh -c {cmd:?}: {e}"))?;
                if !status.success() {
                    return Ok(Built::Failed(format!("--build-cmd {status} (log {})", log.display())));
                }
                if !bz.is_file() {
                    return Ok(Built::Failed(format!(
                        "--build-cmd left no bzImage at $KREPRO_BZIMAGE (log {})",
                        log.display()
                    )));
                }
                Ok(Built::Kernel(bz))
            }
            None => {
                let opts = self.args.config.options(wt.to_owned(), self.args.repro.clone());
                match build::build(&opts, &mut |ev| on(Event::Build(ev))) {
                    Ok(b) => Ok(Built::Kernel(b.bzimage)),
                    Err(e) if e.is_tree_failure() => {
                        Ok(Built::Failed(e.to_string().lines().next().unwrap_or("").to_owned()))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    fn boot(&mut self, kernel_path: &Path, run_index: u32) -> Result<Boot, RunError> {
        self.run.kernel = kernel::check_bzimage(kernel_path)?;
        self.run.boot_image = run::choose_entry(&self.run.kernel, self.args.entry, &mut |m| eprintln!("krepro: {m}"))?;
        // Modules depend on the kernel: the extra initrd is made per boot.
        let extra = self.args.exec.entries(&self.run.kernel, self.run.machine)?;
        self.run.extra_initrd = if extra.is_empty() {
            Vec::new()
        } else {
            krepro_runner::initrd::pack(&extra).map_err(|e| RunError::io("pack the extra initrd", e))?
        };
        self.run.run_index = run_index;
        let r = run::run(&self.run, &mut |_| {})?;
        Ok(Boot { outcome: r.outcome, message: r.message, console_log: r.console_log })
    }
}

pub fn run(args: &BisectArgs, initrd: &Path) -> ExitCode {
    match run_inner(args, initrd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let code = if matches!(e, BisectError::Interrupted) {
                krepro_runner::ExitCode::Interrupted
            } else {
                krepro_runner::ExitCode::Error
            };
            code.into()
        }
    }
}

fn run_inner(args: &BisectArgs, initrd: &Path) -> Result<ExitCode, BisectError> {
    let say = &mut |m: &str| eprintln!("krepro: {m}");
    let qemu = qemu::find_or_install(say).map_err(|e| BisectError::BadInput(e.to_string()))?;
    let flag = interrupt::install();
    let remap = Remap { on_crash: args.on_crash, on_hang: args.on_hang, on_no_verdict: args.on_no_verdict };
    let placeholder = kernel::Kernel { path: PathBuf::new(), release: None };
    let repro = args.exec.repro(args.repro.as_deref().unwrap_or_default()).to_owned();
    let mut append = args.exec.append();
    append.extend(args.append.iter().cloned());
    let run_cfg = RunConfig {
        kernel: placeholder,
        boot_image: BootImage::BzImage,
        machine: Machine::from_choice(args.machine),
        initrd: initrd.to_owned(),
        repro: repro.clone(),
        run_index: 1,
        append,
        timeout: Duration::from_secs(args.timeout),
        accel: args.accel,
        memory_mib: 256,
        warn_is_crash: false,
        qemu,
        extra_initrd: Vec::new(),
        log_dir: cache::logs_dir(),
        interrupt: flag.clone(),
    };
    let opts = BisectOptions {
        linux: args.linux.clone(),
        good: args.good.clone(),
        bad: args.bad.clone(),
        repro: repro.clone(),
        runs: args.runs,
        remap,
        find_fix: args.find_fix,
        cherry_picks: args.cherry_picks.clone(),
        key_extra: format!(
            "{:?} {:?} {:?} {:?} {:?} {:?} {}",
            args.build_cmd,
            args.config.base,
            args.config.fragments,
            args.config.make_args,
            args.append,
            remap,
            args.timeout
        ),
        check_endpoints: !args.no_check_ends,
    };
    let mut tester = Real {
        args,
        run: run_cfg,
        out: tempfile::tempdir().map_err(|e| BisectError::Io { context: "temp dir".into(), source: e })?,
    };
    let mut ui = Ui { progress: Progress::new(), started: Instant::now(), tested: 0, tested_secs: 0.0 };
    let report = bisect::bisect(&opts, &mut tester, &|| flag.load(Ordering::SeqCst), &mut |ev| ui.event(ev))?;
    ui.progress.clear();

    let fragment = match &args.build_cmd {
        Some(_) => None,
        None => {
            let opts = args.config.options(args.linux.clone(), args.repro.clone());
            let reqs = build::requests(&opts).map_err(|e| BisectError::BadInput(e.to_string()))?;
            Some(reqs.iter().map(|r| format!("CONFIG_{}={}\n", r.name, r.value)).collect::<String>())
        }
    };
    let base = match &args.config.base {
        build::Base::Tinyconfig => "tinyconfig".to_owned(),
        build::Base::Defconfig => "defconfig".to_owned(),
        build::Base::File(f) => f.display().to_string(),
    };
    let md = report.markdown(fragment.as_deref().map(|f| (base.as_str(), f)));
    println!("{md}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("plain data");
        std::fs::write(path, text)
            .map_err(|e| BisectError::Io { context: format!("write {}", path.display()), source: e })?;
    }
    match &report.commit {
        Some(c) => {
            eprintln!(
                "krepro: {}: {} {} ({} tested, {})",
                report.found,
                &c.hash[..12],
                c.subject,
                report.steps.len(),
                mmss(report.wall_secs)
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "krepro: {} is one of {} commits that could not be tested",
                report.found,
                report.candidates.len()
            );
            Ok(krepro_runner::ExitCode::Skip.into())
        }
    }
}

struct Ui {
    progress: Progress,
    started: Instant,
    tested: usize,
    tested_secs: f64,
}

impl Ui {
    fn event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Say(s) => {
                self.progress.clear();
                eprintln!("krepro: {s}");
            }
            Event::Testing { commit, subject, step, steps_left, revs_left, kind } => {
                self.progress.clear();
                let elapsed = mmss(self.started.elapsed().as_secs_f64());
                let head = if kind == "endpoint" {
                    "checking an end".to_owned()
                } else {
                    let total = steps_left.map(|l| format!(" of ~{}", step as u32 + l)).unwrap_or_default();
                    let revs = revs_left.map(|r| format!(", {r} revisions left after it")).unwrap_or_default();
                    format!("step {step}{total}{revs}")
                };
                let eta = match (steps_left, self.tested) {
                    (Some(l), n) if n > 0 => {
                        format!(", ~{} to go", mmss(self.tested_secs / n as f64 * f64::from(l + 1)))
                    }
                    _ => String::new(),
                };
                eprintln!("krepro: {head}: {} {subject} [{elapsed}{eta}]", &commit[..12.min(commit.len())]);
            }
            Event::Phase(p) => self.progress.status(p),
            Event::Build(b) => self.progress.build_event(b),
            Event::Tested(s) => {
                self.tested += 1;
                self.tested_secs += s.build_secs + s.boot_secs;
                self.progress.clear();
                let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
                let detail =
                    if runs.is_empty() { s.message.clone() } else { format!("{} {}", runs.join(", "), s.message) };
                let flaky = if s.flaky { " (runs disagree: flaky)" } else { "" };
                eprintln!(
                    "krepro:   -> {}{flaky}: {} [build {}, boot {}]",
                    s.verdict.name(),
                    detail.trim(),
                    mmss(s.build_secs),
                    mmss(s.boot_secs)
                );
                let _ = std::io::stderr().flush();
            }
        }
    }
}
