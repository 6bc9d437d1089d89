//! `cargo xtask bisect`: the command line, the real tester (kernel builder
//! or --build-cmd, then qemu), progress and the report.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use krepro_runner::bisect::kernels::{self, KernelInfo, KernelOptions, Prebuilt};
use krepro_runner::bisect::verify::VerifyStatus;
use krepro_runner::bisect::{
    self, BisectError, BisectEvent, BisectOptions, BootSummary, BuildResult, TestKind, Tester,
};
use krepro_runner::boot::run::{self, Plan, Target};
use krepro_runner::build;
use krepro_runner::cli::progress::{mmss, Progress};
use krepro_runner::cli::{self, BootArgs, ExecArgs, GuestSpec, VerdictArgs};
use krepro_runner::host::cache::Cache;
use krepro_runner::host::fetch;
use krepro_runner::host::spawn::Cmd;
use krepro_runner::image::arch::Arch;
use krepro_runner::image::kernel::check_kernel;
use krepro_runner::RunError;

use crate::ConfigArgs;

/// Bisect's exit status when it names a culprit that a re-test or the
/// revert did not confirm, or that could not be checked: scripts must not
/// take it as found (0).
pub const NOT_VERIFIED: u8 = 2;

/// The flags that build kernels, which a bisect over prebuilt ones refuses.
const BUILD_FLAGS: [&str; 6] = ["build_cmd", "cherry_picks", "base", "fragments", "make_args", "jobs"];

#[derive(clap::Args, Debug)]
pub struct BisectArgs {
    /// The kernel git repository (left as it is: krepro works in a worktree of its own)
    #[arg(long, value_name = "DIR", required_unless_present_any = ["kernels", "debian"])]
    linux: Option<PathBuf>,
    /// Prebuilt kernels (bzImage files), oldest first: bisect over them, nothing built
    #[arg(long, value_name = "KERNEL", num_args = 1.., conflicts_with_all = ["linux", "debian"])]
    #[arg(conflicts_with_all = BUILD_FLAGS)]
    kernels: Vec<PathBuf>,
    /// Debian's cloud kernels of these series (e.g. 6.1,6.12), in version
    /// order: bisect over them, each fetched into the cache when a step
    /// needs it, nothing built
    #[arg(long, value_name = "SERIES", value_delimiter = ',', conflicts_with_all = ["linux"])]
    #[arg(conflicts_with_all = BUILD_FLAGS)]
    debian: Vec<String>,
    /// A commit where the repro passes; with --kernels/--debian a kernel:
    /// its upstream version (6.12.111), release (6.1.0-50, 6.12.111+deb12)
    /// or name [default there: the oldest; with --find-fix the newest]
    #[arg(long, value_name = "REV", required_unless_present_any = ["kernels", "debian"])]
    good: Option<String>,
    /// A commit where the repro fails (or crashes, or hangs); with
    /// --kernels/--debian a kernel, as for --good [default there: the
    /// newest; with --find-fix the oldest]
    #[arg(long, value_name = "REV", required_unless_present_any = ["kernels", "debian"])]
    bad: Option<String>,
    /// The repro that tells good from bad
    #[arg(long, value_name = "NAME", required_unless_present = "exec", conflicts_with = "exec")]
    pub repro: Option<String>,
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
    /// Do not test --good and --bad before bisecting
    #[arg(long)]
    no_check_ends: bool,
    /// Do not test the answer again (git: the culprit, its parent and the
    /// bad end with it reverted; prebuilt kernels: the boundary)
    #[arg(long)]
    no_verify: bool,
    /// Also write the report as JSON to FILE
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Stream every boot's console (and qemu command) to stderr
    #[arg(short, long)]
    verbose: bool,
    /// --exec FILE, --file, --modules: as for `run`
    #[command(flatten)]
    pub exec: ExecArgs,
    /// How every commit boots: as for `run`
    #[command(flatten)]
    boot: BootArgs,
    /// --runs and how outcomes count: as for `run`, with crash and hang bad
    #[command(flatten)]
    verdict: VerdictArgs,
    #[command(flatten)]
    config: ConfigArgs,
}

/// The real tester: builds with the kernel builder or --build-cmd, boots
/// with the runner.
struct Real<'a> {
    args: &'a BisectArgs,
    plan: Plan,
    /// The last kernel made ready, reused for the commit's other runs.
    target: Option<Target>,
    cache: &'a Cache,
    out: tempfile::TempDir,
}

impl Real<'_> {
    /// What the plan gives the guest (flags, else the repro's needs), for
    /// the kernel's config.
    fn guest(&self) -> GuestSpec {
        GuestSpec { cpus: self.plan.cpus, disks: self.plan.disks.clone(), memory_mib: self.plan.memory_mib }
    }
}

impl Tester for Real<'_> {
    fn build(&mut self, wt: &Path, commit: &str, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BuildResult, String> {
        match &self.args.build_cmd {
            Some(cmd) => {
                let bz = self.out.path().join(format!("bzImage-{commit}"));
                // Beside the console logs, rotated with them: the report links it.
                let (log, logf) = self
                    .plan
                    .logs
                    .create_file(&format!("build-{}", &commit[..12.min(commit.len())]))
                    .map_err(|e| format!("create a build log in {}: {e}", self.plan.logs.dir.display()))?;
                // The user's own command line, run as they wrote it.
                let status = Cmd::shell(cmd, wt)
                    .quiet()
                    .env("KREPRO_WORKTREE", wt)
                    .env("KREPRO_BZIMAGE", &bz)
                    .status_to_log(logf)
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Ok(BuildResult::Failed {
                        why: format!("--build-cmd {status} (log {})", log.display()),
                        toolchain: "--build-cmd".into(),
                        fix: None,
                    });
                }
                if !bz.is_file() {
                    return Ok(BuildResult::Failed {
                        why: format!("--build-cmd left no bzImage at $KREPRO_BZIMAGE (log {})", log.display()),
                        toolchain: "--build-cmd".into(),
                        fix: None,
                    });
                }
                Ok(BuildResult::Kernel { bzimage: bz, toolchain: "--build-cmd".into() })
            }
            None => {
                let guest = self.guest();
                let arch = self.plan.machine.arch();
                let opts = self.args.config.options(wt.to_owned(), self.args.repro.clone(), &guest, arch);
                match build::build(&opts, self.cache, &mut |ev| on(BisectEvent::Build(ev))) {
                    Ok(b) => Ok(BuildResult::Kernel { bzimage: b.bzimage, toolchain: b.compiler }),
                    Err(e) if e.is_tree_failure() => {
                        let (toolchain, fix) = match &e {
                            build::BuildError::Make { compiler, known, .. } => {
                                (compiler.clone(), known.and_then(|k| k.fix).map(str::to_owned))
                            }
                            _ => (String::new(), None),
                        };
                        // The first error line, not make's summary.
                        let why = e.first_error();
                        Ok(BuildResult::Failed { why, toolchain, fix })
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }

    fn boot(
        &mut self,
        kernel: &Path,
        run_index: u32,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BootSummary, RunError> {
        // Modules and the PVH image depend on the kernel: one target per
        // commit, made at its first run.
        let target = match self.target.take() {
            Some(t) if t.kernel.path == kernel => t,
            _ => self.plan.target(kernel, &mut |m| on(BisectEvent::Say(m)))?,
        };
        let r = run::run(&self.plan, &target, run_index, &mut |ev| on(BisectEvent::Run(ev)));
        self.target = Some(target);
        let r = r?;
        Ok(BootSummary { outcome: r.outcome, message: r.message, console_log: r.console_log })
    }
}

pub fn run(args: &BisectArgs, arch: Arch, initrd: &Path, cache: &Cache) -> ExitCode {
    match run_inner(args, arch, initrd, cache) {
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

/// The architecture a bisect boots: that of the --kernels (one for all),
/// else --arch, else the host's. Checked before init is built for it.
pub fn guest_arch(args: &BisectArgs) -> Result<Arch, RunError> {
    let Some((first, rest)) = args.kernels.split_first() else {
        return cli::guest_arch(&args.boot, None);
    };
    let in_list = |e: RunError| RunError::BadFlag(format!("--kernels: {e}"));
    let arch = cli::guest_arch(&args.boot, Some(first)).map_err(in_list)?;
    for k in rest {
        let other = check_kernel(k).map_err(in_list)?.arch;
        if other != arch {
            return Err(RunError::BadFlag(format!(
                "--kernels: {} is an {arch} kernel but {} is {other}: one bisect boots one architecture",
                first.display(),
                k.display()
            )));
        }
    }
    Ok(arch)
}

fn run_inner(args: &BisectArgs, arch: Arch, initrd: &Path, cache: &Cache) -> Result<ExitCode, BisectError> {
    let mut ui = Ui {
        progress: Progress::new(),
        verbose: args.verbose,
        started: Instant::now(),
        tested: 0,
        tested_secs: 0.0,
        made: "build",
    };
    // A list that cannot be bisected fails here, before qemu is looked for.
    let prebuilt = prebuilt_kernels(args, arch, &mut |m| ui.progress.say(m))?;
    if prebuilt.is_some() {
        ui.made = "fetch";
    }
    let repro = args.repro.as_deref().unwrap_or_default();
    let plan = cli::plan(&args.boot, &args.exec, repro, arch, initrd, cache, &mut |m| ui.progress.say(m))
        .map_err(|e| BisectError::BadInput(e.to_string()))?;
    let flag = plan.interrupt.clone();
    let interrupted = || flag.load(Ordering::SeqCst);
    let remap = args.verdict.remap();
    let repro = plan.repro.clone();
    let mut tester = Real {
        args,
        plan,
        target: None,
        cache,
        out: tempfile::tempdir().map_err(|e| BisectError::Io { context: "temp dir".into(), source: e })?,
    };
    let (report, md) = match prebuilt {
        Some(kernels) => {
            let opts = KernelOptions {
                kernels,
                good: args.good.clone(),
                bad: args.bad.clone(),
                repro,
                runs: args.verdict.runs,
                remap,
                find_fix: args.find_fix,
                // What else changes the answer, so a changed flag starts afresh.
                key_extra: format!("{:?} {:?} {:?} {:?}", args.boot, args.exec, remap, args.verdict.runs),
                check_endpoints: !args.no_check_ends,
                verify: !args.no_verify,
                repeat: repeat_flags(args, arch),
            };
            let report = kernels::bisect_kernels(&opts, cache, &mut tester, &interrupted, &mut |ev| ui.event(ev))?;
            ui.progress.clear();
            let md = report.markdown(None);
            (report, md)
        }
        None => {
            let missing = || BisectError::BadInput("a git bisect needs --linux, --good and --bad".into());
            let linux = args.linux.clone().ok_or_else(missing)?;
            let opts = BisectOptions {
                linux: linux.clone(),
                good: args.good.clone().ok_or_else(missing)?,
                bad: args.bad.clone().ok_or_else(missing)?,
                repro,
                runs: args.verdict.runs,
                remap,
                find_fix: args.find_fix,
                cherry_picks: args.cherry_picks.clone(),
                // What else changes the answer, so a changed flag starts afresh.
                key_extra: format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?}",
                    args.build_cmd, args.config, args.boot, args.exec, remap, args.verdict.runs
                ),
                check_endpoints: !args.no_check_ends,
                verify: !args.no_verify,
            };
            let report = bisect::bisect(&opts, cache, &mut tester, &interrupted, &mut |ev| ui.event(ev))?;
            ui.progress.clear();

            let fragment = match &args.build_cmd {
                Some(_) => None,
                None => {
                    let guest = tester.guest();
                    let opts = args.config.options(linux, args.repro.clone(), &guest, arch);
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
            (report, md)
        }
    };
    println!("{md}");
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("plain data");
        std::fs::write(path, text)
            .map_err(|e| BisectError::Io { context: format!("write {}", path.display()), source: e })?;
    }
    let answer =
        match (&report.commit, report.kernels.as_ref().and_then(|k| Some((k.first.as_ref()?, k.before.as_ref()?)))) {
            (Some(c), _) => Some(format!("{} {}", bisect::short(&c.hash), c.subject)),
            (None, Some((first, before))) => {
                let version = |k: &KernelInfo| k.upstream.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
                Some(format!("{}{}, after {}{}", first.name, version(first), before.name, version(before)))
            }
            (None, None) => None,
        };
    match answer {
        Some(answer) => {
            eprintln!("krepro: {}: {answer} ({} tested, {})", report.found, report.steps.len(), mmss(report.wall_secs));
            match &report.verification {
                Some(v) if v.status != VerifyStatus::Verified => {
                    eprintln!("krepro: {}: {}", v.status.name(), v.summary);
                    Ok(ExitCode::from(NOT_VERIFIED))
                }
                Some(v) => {
                    eprintln!("krepro: verified in {}: {}", mmss(v.secs), v.summary);
                    Ok(ExitCode::SUCCESS)
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        None => {
            let many = if report.kernels.is_some() { "kernels" } else { "commits" };
            eprintln!("krepro: {} is one of {} {many} that could not be tested", report.found, report.candidates.len());
            Ok(krepro_runner::ExitCode::Skip.into())
        }
    }
}

/// The list to bisect for --kernels or --debian (None: a git bisect),
/// checked: at least two kernels, each file a bzImage, each series known.
fn prebuilt_kernels(
    args: &BisectArgs,
    arch: Arch,
    say: &mut dyn FnMut(&str),
) -> Result<Option<Vec<Prebuilt>>, BisectError> {
    if !args.kernels.is_empty() {
        if args.kernels.len() < 2 {
            return Err(BisectError::BadInput("--kernels needs at least two kernels, oldest first".into()));
        }
        let list: Result<Vec<Prebuilt>, _> = args.kernels.iter().map(|k| Prebuilt::file(k)).collect();
        return list.map(Some).map_err(|e| BisectError::BadInput(format!("--kernels: {e}")));
    }
    if !args.debian.is_empty() {
        let packages = fetch::list(&args.debian, arch, say)
            .map_err(|e| BisectError::BadInput(format!("--debian {}: {e}", args.debian.join(","))))?;
        return Ok(Some(packages.into_iter().map(Prebuilt::package).collect()));
    }
    Ok(None)
}

/// The flags that make the test, for the git bisect the report suggests
/// next: the architecture when it is not the host's, the repro (or --exec
/// and its arguments), --append, --runs.
fn repeat_flags(args: &BisectArgs, arch: Arch) -> Vec<String> {
    let mut words = Vec::new();
    if Arch::host() != Some(arch) {
        words.extend(["--arch".to_owned(), arch.name().to_owned()]);
    }
    match &args.exec.exec {
        Some(file) => {
            words.extend(["--exec".to_owned(), file.display().to_string()]);
            for a in &args.exec.args {
                words.extend(["--arg".to_owned(), a.clone()]);
            }
        }
        None => words.extend(["--repro".to_owned(), args.repro.clone().unwrap_or_default()]),
    }
    for a in &args.boot.append {
        words.extend(["--append".to_owned(), a.clone()]);
    }
    if args.verdict.runs > 1 {
        words.extend(["--runs".to_owned(), args.verdict.runs.to_string()]);
    }
    words
}

struct Ui {
    progress: Progress,
    verbose: bool,
    started: Instant,
    tested: usize,
    tested_secs: f64,
    /// How a kernel is made ready: "build", or "fetch" for prebuilt ones.
    made: &'static str,
}

impl Ui {
    fn event(&mut self, ev: BisectEvent<'_>) {
        match ev {
            BisectEvent::Say(s) => self.progress.say(s),
            BisectEvent::Run(ev) => cli::show_run_event(&mut self.progress, self.verbose, &ev),
            BisectEvent::Testing { commit, subject, step, steps_left, revs_left, kind } => {
                self.progress.clear();
                let elapsed = mmss(self.started.elapsed().as_secs_f64());
                let head = if kind == TestKind::Endpoint {
                    "checking an end".to_owned()
                } else if kind == TestKind::Verify {
                    match steps_left {
                        Some(left) => format!("verifying ({step} of {})", step as u32 + left),
                        None => "verifying".to_owned(),
                    }
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
                eprintln!("krepro: {head}: {} {subject} [{elapsed}{eta}]", bisect::short(commit));
            }
            BisectEvent::Phase(p) => self.progress.status(p),
            BisectEvent::Build(b) => self.progress.build_event(b),
            BisectEvent::Tested(s) => {
                self.tested += 1;
                self.tested_secs += s.build_secs + s.boot_secs;
                self.progress.clear();
                let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
                let detail =
                    if runs.is_empty() { s.message.clone() } else { format!("{} {}", runs.join(", "), s.message) };
                let flaky = if s.flaky { " (runs disagree: flaky)" } else { "" };
                eprintln!(
                    "krepro:   -> {}{flaky}: {} [{} {}, boot {}]",
                    s.verdict.name(),
                    detail.trim(),
                    self.made,
                    mmss(s.build_secs),
                    mmss(s.boot_secs)
                );
                let _ = std::io::stderr().flush();
            }
        }
    }
}
