//! `krepro bisect`: the flags, the space to search (the tree's commits, or
//! prebuilt kernels), progress and the report.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::args::{BootArgs, ChaseArgs, ConfigArgs, GuestArgs, TreeArgs, VerdictArgs};
use super::progress::{mmss, Progress};
use super::run::show_run_event;
use super::Failure;
use crate::bisect::git::{GitSpace, Range, RealBuilder};
use crate::bisect::kernels::{Prebuilt, PrebuiltSpace};
use crate::bisect::verify::VerifyStatus;
use crate::bisect::{self, BisectError, BisectEvent, Options, PlanBooter, Space, TestKind};
use crate::boot::outcome::Exit;
use crate::host::cache::Cache;
use crate::host::fetch;
use crate::image::arch::Arch;
use crate::request;
use crate::session::{self, RunError, What};

/// The flags that build kernels, which a bisect over prebuilt ones refuses.
const BUILD_FLAGS: [&str; 7] = ["build_cmd", "cherry_picks", "base", "config", "fragments", "make_args", "jobs"];

#[derive(clap::Args, Debug)]
pub struct BisectArgs {
    /// Prebuilt kernels (bzImage files), oldest first: bisect over them, nothing built
    #[arg(long, value_name = "KERNEL", num_args = 1.., conflicts_with_all = ["source", "debian"])]
    #[arg(conflicts_with_all = BUILD_FLAGS)]
    kernels: Vec<PathBuf>,
    /// Debian's cloud kernels of these series (e.g. 6.1,6.12), in version
    /// order: bisect over them, each fetched into the cache when a step
    /// needs it, nothing built
    #[arg(long, value_name = "SERIES", value_delimiter = ',', conflicts_with_all = ["source"])]
    #[arg(conflicts_with_all = BUILD_FLAGS)]
    debian: Vec<String>,
    /// A commit where the repro passes; with --kernels/--debian a kernel:
    /// its upstream version (6.12.111), release (6.1.0-50, 6.12.111+deb12)
    /// or name [default there: the oldest; with --find-fix the newest]
    #[arg(long, value_name = "REV", required_unless_present_any = ["kernels", "debian", "config_good"])]
    good: Option<String>,
    /// A commit where the repro fails (or crashes, or hangs); with
    /// --kernels/--debian a kernel, as for --good [default there: the
    /// newest; with --find-fix the oldest]
    #[arg(long, value_name = "REV", required_unless_present_any = ["kernels", "debian", "config_good"])]
    bad: Option<String>,
    /// Config bisect: a kernel config with which the repro passes. The
    /// tree is built at one commit (--commit) with this config and, step by
    /// step, the options whose values differ in --config-bad, to find the
    /// option whose change turns the repro bad
    #[arg(long, value_name = "FILE", requires = "config_bad")]
    #[arg(conflicts_with_all = ["kernels", "debian", "good", "bad", "find_fix", "cherry_picks", "build_cmd"])]
    #[arg(conflicts_with_all = ["config", "base"])]
    config_good: Option<PathBuf>,
    /// Config bisect: a kernel config with which the repro fails
    #[arg(long, value_name = "FILE", requires = "config_good")]
    config_bad: Option<PathBuf>,
    /// Config bisect: the commit to build [default: HEAD]
    #[arg(long, value_name = "REV", requires = "config_good")]
    commit: Option<String>,
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
    /// Forget this bisect's saved state (the steps tested so far) and
    /// start over
    #[arg(long)]
    restart: bool,
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
    /// The repro (or --exec FILE), --file, --modules: as for `run`
    #[command(flatten)]
    guest: GuestArgs,
    /// How every commit boots: as for `run`
    #[command(flatten)]
    boot: BootArgs,
    /// --runs and how outcomes count: as for `run`, with crash and hang bad
    #[command(flatten)]
    verdict: VerdictArgs,
    #[command(flatten)]
    chase: ChaseArgs,
    #[command(flatten)]
    tree: TreeArgs,
    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run(args: &BisectArgs, cache: &Cache) -> Result<Exit, Failure> {
    let mut ui = Ui::new(args.verbose);
    let result = execute(args, cache, &mut ui);
    ui.progress.clear();
    result
}

/// The prebuilt kernels to bisect for --kernels or --debian (None: a git
/// bisect), checked: each file a kernel, one architecture, each series known.
fn prebuilt_kernels(args: &BisectArgs, say: &mut dyn FnMut(&str)) -> Result<Option<Vec<Prebuilt>>, RunError> {
    if !args.kernels.is_empty() {
        if args.kernels.len() < 2 {
            return Err(RunError::BadFlag("--kernels needs at least two kernels, oldest first".into()));
        }
        let mut list = Vec::new();
        for k in &args.kernels {
            list.push(Prebuilt::file(k).map_err(|e| RunError::BadFlag(format!("--kernels: {e}")))?);
        }
        return Ok(Some(list));
    }
    if !args.debian.is_empty() {
        let arch = args.boot.arch.unwrap_or_else(Arch::host_or_default);
        let packages = fetch::list(&args.debian, arch, say)
            .map_err(|e| RunError::BadFlag(format!("--debian {}: {e}", args.debian.join(","))))?;
        return Ok(Some(packages.into_iter().map(Prebuilt::package).collect()));
    }
    Ok(None)
}

/// The architecture of a list of kernels: one for all.
fn list_arch(args: &BisectArgs, list: &[Prebuilt]) -> Result<Option<Arch>, RunError> {
    let mut arch: Option<(Arch, &str)> = None;
    for p in list {
        if let crate::bisect::kernels::Source::File(k) = &p.source {
            match arch {
                Some((a, first)) if a != k.arch => {
                    return Err(RunError::BadFlag(format!(
                        "--kernels: {first} is an {a} kernel but {} is {}: one bisect boots one architecture",
                        p.info.name, k.arch
                    )))
                }
                Some(_) => {}
                None => arch = Some((k.arch, &p.info.name)),
            }
        }
    }
    let arch = arch.map(|(a, _)| a).or(args.boot.arch.filter(|_| !args.debian.is_empty()));
    match (arch, args.boot.arch) {
        (Some(a), Some(b)) if a != b => Err(RunError::BadFlag(format!("--arch {b}, but the kernels are {a}"))),
        (a, b) => Ok(a.or(b)),
    }
}

fn execute(args: &BisectArgs, cache: &Cache, ui: &mut Ui) -> Result<Exit, Failure> {
    // Everything that can be wrong with the request fails here, before a
    // build or a boot: the kernels or the commits, then what runs.
    let interrupt = crate::boot::interrupt::install();
    let interrupted = || interrupt.load(Ordering::SeqCst);
    let prebuilt = prebuilt_kernels(args, &mut |m| ui.progress.say(m))?;
    let (space, arch) = match prebuilt {
        _ if args.config_good.is_some() => {
            let source = args.tree.tree().ok_or_else(|| {
                Failure::error("a config bisect needs a kernel tree: run it in one, or give --source DIR")
            })?;
            // The configs themselves first: before the init or a kernel is built.
            if let (Some(g), Some(b)) = (&args.config_good, &args.config_bad) {
                crate::bisect::config::Pair::read(g, b, &Default::default(), None).map_err(bisect_failure)?;
            }
            let commit = config_commit(&source, args.commit.as_deref()).map_err(bisect_failure)?;
            (Searched::Config(source, commit), session::arch(&args.boot.request(), None)?)
        }
        Some(list) => {
            let arch = list_arch(args, &list)?.unwrap_or_else(Arch::host_or_default);
            let space = PrebuiltSpace::new(
                list,
                args.good.as_deref(),
                args.bad.as_deref(),
                args.find_fix,
                repeat_flags(args, arch),
                cache,
                &interrupted,
            )
            .map_err(bisect_failure)?;
            ui.made = "fetch";
            (Searched::Kernels(space), arch)
        }
        None => {
            let source = args.tree.tree().ok_or_else(|| {
                Failure::error("a git bisect needs a kernel tree: run it in one, or give --source DIR")
            })?;
            let (good, bad) = (args.good.as_deref().unwrap_or_default(), args.bad.as_deref().unwrap_or_default());
            let range = Range { dir: &source, good, bad, find_fix: args.find_fix, cherry_picks: &args.cherry_picks };
            let checked = range.check().map_err(bisect_failure)?;
            (Searched::Git(source.clone(), checked), session::arch(&args.boot.request(), None)?)
        }
    };
    let guest_req = args.guest.request();
    let what = What::resolve(&guest_req.program)?;
    let boot = request::Boot { arch: Some(arch), ..args.boot.request() };
    let guest = session::guest(&what, &guest_req, &boot, arch, cache, &mut |m| ui.progress.say(m))?;
    let plan = session::plan(&boot, &guest, cache, &mut |m| ui.progress.say(m))?;
    let verdicts = args.verdict.request();
    let chase = args.chase.request(verdicts.runs).map_err(Failure::error)?;
    let opts = Options {
        restart: args.restart,
        same_crash: chase.same_crash,
        crash_title: chase.title,
        min_bad: chase.min_bad,
        seed: Vec::new(),
        repro: guest.label.clone(),
        description: guest.selected.as_ref().map(|r| r.decl.description.clone()).unwrap_or_default(),
        runs: verdicts.runs,
        remap: verdicts.remap,
        find_fix: args.find_fix,
        // What else changes the answer, so a changed flag starts afresh.
        key_extra: format!("{:?} {:?} {:?} {:?}", args.build_cmd, args.config, boot, guest_req),
        check_endpoints: !args.no_check_ends,
        verify: !args.no_verify,
        // Rounds of kernels booted at once, where they are prebuilt.
        parallel: session::boots_at_once(verdicts.parallel, args.verbose, u32::MAX, &plan)?,
    };
    let mut booter = PlanBooter::new(&plan);
    let (report, config) = match space {
        Searched::Config(source, commit) => {
            let (good, bad) = (args.config_good.as_ref().expect("config"), args.config_bad.as_ref().expect("config"));
            let build = request::Build {
                base: crate::builder::Base::File(good.clone()),
                ..args.config.request(source.clone())
            };
            let vmlinux = session::boots_vmlinux(&boot);
            let base_opts = guest.build_options(&build, source.clone(), vmlinux);
            // What every candidate sets anyway is no difference.
            let pinned =
                crate::builder::requests(&base_opts).map_err(Failure::error)?.into_iter().map(|r| r.name).collect();
            let index = kconfig_index(&source, commit.as_deref(), arch, cache, &mut |m| ui.progress.say(m))?;
            let pair = crate::bisect::config::Pair::read(good, bad, &pinned, Some(&index)).map_err(bisect_failure)?;
            if pair.arch != arch {
                return Err(Failure::error(format!("the configs are for {}, but the guest is {arch}", pair.arch)));
            }
            ui.progress.say(&format!(
                "{} options differ between --config-good and --config-bad (krepro's own left out)",
                pair.changes.len()
            ));
            let tag =
                format!("config-bisect {}", blake3::hash(format!("{good:?} {bad:?} {commit:?}").as_bytes()).to_hex());
            let mut step = |options: &[(String, crate::builder::kconfig::Value)],
                            on: &mut dyn FnMut(BisectEvent<'_>)| {
                let opts = crate::builder::BuildOptions {
                    commit: commit.clone(),
                    step: Some(crate::builder::ConfigStep { tag: tag.clone(), options: options.to_vec() }),
                    ..base_opts.clone()
                };
                crate::bisect::git::build_result(
                    crate::builder::build(&opts, cache, &mut |ev| on(BisectEvent::Build(ev))),
                    cache,
                )
            };
            let label = commit.clone().unwrap_or_else(|| "the tree as it is".into());
            let mut space = crate::bisect::config::ConfigSpace::new(pair, label, index, &mut step);
            let report = search(&opts, &mut space, &mut booter, cache, &interrupted, ui)?;
            (report, None)
        }
        Searched::Kernels(mut space) => (search(&opts, &mut space, &mut booter, cache, &interrupted, ui)?, None),
        Searched::Git(source, checked) => {
            let build = args.config.request(source.clone());
            let vmlinux = session::boots_vmlinux(&boot);
            let options = |wt: PathBuf| guest.build_options(&build, wt, vmlinux);
            let mut builder = RealBuilder {
                cache,
                options: if args.build_cmd.is_some() { None } else { Some(Box::new(options)) },
                build_cmd: args.build_cmd.clone(),
                logs: &plan.logs,
                out: tempfile::tempdir().map_err(|e| Failure::error(format!("create a temp dir: {e}")))?,
            };
            let mut space =
                GitSpace::new(checked, &mut builder, cache, &mut |m| ui.progress.say(m)).map_err(bisect_failure)?;
            let report = search(&opts, &mut space, &mut booter, cache, &interrupted, ui)?;
            drop(space);
            let config = match &args.build_cmd {
                Some(_) => None,
                None => {
                    let opts = guest.build_options(&build, source.clone(), false);
                    let reqs = crate::builder::requests(&opts).map_err(Failure::error)?;
                    let fragment: String = reqs.iter().map(|r| format!("CONFIG_{}={}\n", r.name, r.value)).collect();
                    Some((opts.base.describe(), fragment))
                }
            };
            (report, config)
        }
    };
    conclude(&report, config.as_ref().map(|(b, f)| (b.as_str(), f.as_str())), args.json.as_deref(), false)
}

/// Prints the report (Markdown, or with `json_stdout` JSON; and writes
/// it as JSON to `json`), says the answer on stderr, and gives the exit
/// status: 0 found and verified (or not asked to verify), 2 found but not
/// verified, or not trusted (a no-op culprit, a merge), 125 only
/// untestable candidates left.
pub(super) fn conclude(
    report: &bisect::BisectReport,
    config: Option<(&str, &str)>,
    json: Option<&std::path::Path>,
    json_stdout: bool,
) -> Result<Exit, Failure> {
    if json_stdout {
        println!("{}", serde_json::to_string(report).expect("plain data"));
    } else {
        println!("{}", report.markdown(config));
    }
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).expect("plain data");
        std::fs::write(path, text).map_err(|e| Failure::error(format!("write {}: {e}", path.display())))?;
    }
    match report.answer_line() {
        Some(answer) => {
            eprintln!("krepro: {}: {answer} ({} tested, {})", report.found, report.steps.len(), mmss(report.wall_secs));
            if let Some(t) = report.trust.filter(|t| !t.reliable) {
                eprintln!("krepro: unreliable: confidence {:.2} < {}", t.confidence, crate::bisect::verdict::RELIABLE);
            }
            if let Some(doubt) = report.doubt() {
                eprintln!("krepro: not trusted: {doubt}");
                return Ok(Exit::NotVerified);
            }
            match &report.verification {
                Some(v) if v.status != VerifyStatus::Verified => {
                    eprintln!("krepro: {}: {}", v.status.name(), v.summary);
                    Ok(Exit::NotVerified)
                }
                Some(v) => {
                    eprintln!("krepro: verified in {}: {}", mmss(v.secs), v.summary);
                    Ok(Exit::Good)
                }
                None => Ok(Exit::Good),
            }
        }
        None => {
            eprintln!(
                "krepro: {} is one of {} {} that could not be tested",
                report.found,
                report.candidates.len(),
                report.many()
            );
            Ok(Exit::Skip)
        }
    }
}

/// What a bisect searches, checked.
enum Searched<'a> {
    Kernels(PrebuiltSpace<'a>),
    Git(PathBuf, crate::bisect::git::Checked),
    /// Two configs at one commit (None: a tree that is not git's, as it is).
    Config(PathBuf, Option<String>),
}

/// The commit a config bisect builds: `--commit` (default HEAD) of a git
/// tree; a tree without git is built as it is.
pub(super) fn config_commit(source: &std::path::Path, rev: Option<&str>) -> Result<Option<String>, BisectError> {
    match crate::builder::worktree::git_top(source) {
        Some(top) => crate::bisect::git::resolve(&top, rev.unwrap_or("HEAD"), "--commit").map(Some),
        None if rev.is_some() => {
            Err(BisectError::BadInput(format!("--commit: {} is not a git tree", source.display())))
        }
        None => Ok(None),
    }
}

/// The tree's Kconfig symbols at `commit` (read in krepro's worktree of
/// it, never the user's checkout, when that is another commit).
pub(super) fn kconfig_index(
    source: &std::path::Path,
    commit: Option<&str>,
    arch: Arch,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<crate::builder::kindex::Index, Failure> {
    use crate::builder::worktree;
    let (Some(top), Some(commit)) = (worktree::git_top(source), commit) else {
        return Ok(crate::builder::kindex::Index::read(source, arch));
    };
    let wt = worktree::take(cache, &top, None, say).map_err(Failure::error)?;
    worktree::checkout(&wt.path, commit).map_err(Failure::error)?;
    Ok(crate::builder::kindex::Index::read(&wt.path, arch))
}

fn search(
    opts: &Options,
    space: &mut dyn Space,
    booter: &mut PlanBooter<'_>,
    cache: &Cache,
    interrupted: &dyn Fn() -> bool,
    ui: &mut Ui,
) -> Result<bisect::BisectReport, Failure> {
    let report = bisect::bisect(opts, space, booter, cache, interrupted, &mut |ev| ui.event(ev));
    ui.progress.clear();
    report.map_err(bisect_failure)
}

pub(super) fn bisect_failure(e: BisectError) -> Failure {
    let exit = if matches!(e, BisectError::Interrupted) { Exit::Interrupted } else { Exit::Error };
    Failure::new(exit, e)
}

/// The flags that make the test, for the git bisect the report suggests
/// next: the architecture when it is not the host's, the repro (or --exec
/// and its arguments), --append, --runs.
fn repeat_flags(args: &BisectArgs, arch: Arch) -> Vec<String> {
    let mut words = Vec::new();
    if Arch::host() != Some(arch) {
        words.extend(["--arch".to_owned(), arch.name().to_owned()]);
    }
    let g = &args.guest;
    match (&g.exec, &g.what, &g.repro) {
        (Some(file), _, _) => {
            words.extend(["--exec".to_owned(), file.display().to_string()]);
            for a in &g.args {
                words.extend(["--arg".to_owned(), a.clone()]);
            }
        }
        (None, Some(what), name) => {
            words.push(what.clone());
            if let Some(n) = name {
                words.extend(["--repro".to_owned(), n.clone()]);
            }
        }
        (None, None, name) => {
            words.extend(["--repro".to_owned(), name.clone().unwrap_or_else(|| request::DEFAULT_REPRO.into())])
        }
    }
    for a in &args.boot.append {
        words.extend(["--append".to_owned(), a.clone()]);
    }
    if args.verdict.runs > 1 {
        words.extend(["--runs".to_owned(), args.verdict.runs.to_string()]);
    }
    words
}

pub(super) struct Ui {
    pub(super) progress: Progress,
    verbose: bool,
    started: Instant,
    tested: usize,
    tested_secs: f64,
    /// How a kernel is made ready: "build", or "fetch" for prebuilt ones.
    made: &'static str,
}

impl Ui {
    pub(super) fn new(verbose: bool) -> Ui {
        Ui { progress: Progress::new(), verbose, started: Instant::now(), tested: 0, tested_secs: 0.0, made: "build" }
    }

    pub(super) fn event(&mut self, ev: BisectEvent<'_>) {
        match ev {
            BisectEvent::Say(s) => self.progress.say(s),
            BisectEvent::Run(ev) => show_run_event(&mut self.progress, self.verbose, &ev),
            BisectEvent::Testing { commit, subject, step, steps_left, revs_left, kind } => {
                self.progress.clear();
                let elapsed = mmss(self.started.elapsed().as_secs_f64());
                let head = if kind == TestKind::Endpoint {
                    "checking an end".to_owned()
                } else if kind == TestKind::Release {
                    let left = steps_left.map(|l| format!(", {l} more after it")).unwrap_or_default();
                    format!("looking for a good release ({step}{left})")
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
                let detail = tested_detail(s);
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

/// What a tested candidate's progress line says after its verdict: the
/// runs' outcomes and the deciding message; a crash by its title, as
/// another crash when it is not the bug; with several runs, the counts.
fn tested_detail(s: &bisect::Tested) -> String {
    let crash = s.titles.iter().flatten().next();
    let first = match (crash, s.counts.bug, s.counts.other) {
        // Not booted: the message says whose verdict it took.
        _ if s.same_kernel_as.is_some() => s.message.clone(),
        (Some(title), 0, 1..) => format!("other crash: {title}"),
        (Some(title), _, _) => format!("crash: {title}"),
        // Several runs: the counts say what each did.
        (None, _, _) if s.counts.runs > 1 => s.message.clone(),
        (None, _, _) => {
            let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
            if runs.is_empty() {
                s.message.clone()
            } else {
                format!("{} {}", runs.join(", "), s.message)
            }
        }
    };
    match s.counts.runs {
        0 | 1 => first,
        _ => format!("{} ({first})", s.counts.describe()),
    }
}
