//! `krepro syz SOURCE`: a syzbot report to a verdict on a kernel (the
//! report's crash again, another crash, or none in the time syzbot
//! gives a reproducer), and with `--bisect` the commit that caused it,
//! chasing the report's crash only.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::args::{BootArgs, TreeArgs};
use super::bisect::{bisect_failure, conclude, Ui as BisectUi};
use super::progress::Progress;
use super::run::show_run_event;
use super::Failure;
use crate::bisect::git::{release_candidates, GitSpace, Range, RealBuilder};
use crate::bisect::{self, Candidate, Options, PlanBooter};
use crate::boot::outcome::{Exit, Outcome, Remap};
use crate::boot::run::{self, RunResult};
use crate::boot::title::same_bug;
use crate::builder::toolchain::CcChoice;
use crate::builder::Base;
use crate::guest::ReproArg;
use crate::host::cache::Cache;
use crate::image::arch::Arch;
use crate::image::kernel::{check_kernel, Kernel};
use crate::request;
use crate::session::{self, RunError, What};
use crate::syz::{config, fetch, Report};

/// Flags of `syz`.
#[derive(clap::Args, Debug)]
pub struct SyzArgs {
    /// The report: a directory of its files (report.txt, the email with
    /// its Subject line; repro.c; .config; optionally repro.syz and
    /// console.log), or a syzbot bug URL or extid, fetched from the
    /// dashboard into the cache
    #[arg(value_name = "SOURCE", id = "report")]
    report: String,

    /// Boot this kernel instead of building one
    #[arg(long, value_name = "FILE", conflicts_with_all = ["commit", "bisect"])]
    kernel: Option<PathBuf>,

    /// Build this commit of the tree [default: the report's commit, else
    /// the tree's HEAD]; with --bisect the bad end
    #[arg(long, value_name = "REV")]
    commit: Option<String>,

    /// The kernel config: `report` (the report's .config, whole, with
    /// krepro's needs on top), `krepro` (krepro's minimal config plus the
    /// report's sanitizer and debug options: fast, but the subsystem the
    /// bug is in comes only from --config-add), or a config FILE
    #[arg(long, value_name = "report|krepro|FILE", default_value = "report")]
    config: String,

    /// An option on top of the config: CONFIG_X=y, or a fragment FILE; repeatable
    #[arg(long = "config-add", value_name = "CONFIG_X=y|FILE")]
    config_add: Vec<String>,

    /// Compiler [default: the report's, when it is installable here, else
    /// krepro's pick by the tree's era]: auto, gcc, gcc-N, clang, clang-N
    #[arg(long, value_name = "CC")]
    cc: Option<CcChoice>,

    /// Passed to make; repeatable
    #[arg(long = "make-arg", value_name = "ARG", allow_hyphen_values = true)]
    make_args: Vec<String>,

    /// Parallel make jobs [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,

    #[command(flatten)]
    distribute: super::args::DistributeArgs,

    /// Seconds the reproducer runs (it loops) before a run counts as "no
    /// crash"; syzbot gives it 150
    #[arg(long, value_name = "SECS", default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,

    /// Boots per kernel: reproduced when any run shows the report's crash
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,

    /// Find the commit that caused it: from the report's commit (or
    /// --commit) back through releases (the two newest, then 1, 2, 4, ...
    /// releases back) to one without the crash, then bisect, runs with
    /// other crashes counting as other, not as the bug
    #[arg(long)]
    bisect: bool,

    /// With --bisect: a commit without the bug, instead of looking for a
    /// good release
    #[arg(long, value_name = "REV", requires = "bisect")]
    good: Option<String>,

    /// With --bisect: chase this title instead of the report's
    #[arg(long, value_name = "TITLE", requires = "bisect", conflicts_with = "any_crash")]
    same_crash: Option<String>,

    /// With --bisect: any crash is the bug, whatever its title (the plain
    /// rule, which an unrelated crash at a commit between can mislead)
    #[arg(long, requires = "bisect")]
    any_crash: bool,

    /// With --bisect and --runs N: a commit is bad when at least K runs show the crash
    #[arg(long, value_name = "K", default_value_t = 1, requires = "bisect")]
    min_bad: u32,

    /// With --bisect: do not test the answer again
    #[arg(long, requires = "bisect")]
    no_verify: bool,

    /// With --bisect: forget the saved state (the steps tested so far) and
    /// start over
    #[arg(long, requires = "bisect")]
    restart: bool,

    /// Print one JSON object on stdout (with --bisect: the report, as JSON)
    #[arg(long)]
    json: bool,

    /// Stream the console to stderr
    #[arg(short, long)]
    verbose: bool,

    #[command(flatten)]
    tree: TreeArgs,

    #[command(flatten)]
    boot: BootArgs,
}

/// What a `syz` run found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Found {
    /// The report's crash.
    Reproduced,
    /// Another crash (or a hang).
    OtherCrash,
    /// No crash in the time given.
    NoCrash,
    /// A run could not tell (no verdict, the program could not start).
    Unclear,
}

/// The JSON object `--json` prints.
#[derive(Serialize)]
struct JsonReport<'a> {
    outcome: Found,
    exit_code: u8,
    /// The crash seen (the report's or another), if any.
    crash_title: Option<&'a str>,
    report_title: &'a str,
    message: &'a str,
    kernel: &'a Path,
    kernel_release: Option<&'a str>,
    duration_s: u64,
    runs: &'a [RunResult],
}

pub(crate) fn run(args: &SyzArgs, cache: &Cache) -> Result<Exit, Failure> {
    let mut progress = if args.verbose { Progress::new().without_live_line() } else { Progress::new() };
    let result = execute(args, cache, &mut progress);
    progress.clear();
    result.map_err(|f| Failure { json: args.json && !args.bisect, ..f })
}

/// The report SOURCE names: a directory, or a bug fetched from the dashboard.
fn report_of(source: &str, cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<Report, Failure> {
    let dir = Path::new(source);
    let dir = if dir.is_dir() {
        dir.to_owned()
    } else if let Some((url, id)) = fetch::bug_url(source) {
        fetch::fetch(cache, &url, &id, say).map_err(Failure::error)?
    } else {
        return Err(Failure::error(format!(
            "{source}: not a directory of report files (report.txt, repro.c, .config), a syzbot bug URL or an extid"
        )));
    };
    Report::read_dir(&dir).map_err(Failure::error)
}

fn execute(args: &SyzArgs, cache: &Cache, progress: &mut Progress) -> Result<Exit, Failure> {
    let report = report_of(&args.report, cache, &mut |m| progress.say(m))?;
    let repro = report.repro_c.clone().ok_or_else(|| {
        Failure::error(format!(
            "{}: no repro.c: krepro runs syzkaller's C reproducers (a repro.syz alone needs syz-execprog)",
            report.dir.display()
        ))
    })?;
    let named = args.kernel.as_deref().map(check_kernel).transpose().map_err(RunError::from)?;
    let arch = match (named.as_ref().map(|k| k.arch), args.boot.arch, report.arch) {
        (Some(k), Some(a), _) if k != a => {
            return Err(Failure::error(format!(
                "--arch {a}, but {} is an {k} kernel",
                args.kernel.as_ref().unwrap().display()
            )))
        }
        (Some(k), _, Some(r)) if k != r => {
            return Err(Failure::error(format!(
                "the report is for {r} (from {}), but {} is an {k} kernel",
                report.arch_from,
                args.kernel.as_ref().unwrap().display()
            )))
        }
        (Some(k), _, _) => k,
        (None, Some(a), _) => a,
        (None, None, Some(r)) => r,
        (None, None, None) => Arch::host_or_default(),
    };
    let tree = args.tree.tree();
    if named.is_none() && tree.is_none() {
        return Err(RunError::NoKernel(
            "krepro syz boots --kernel FILE, or builds the report's commit of the kernel tree (run it in one, or give \
             --source DIR)"
                .into(),
        )
        .into());
    }
    let report_config = report.config.as_ref().and_then(|c| std::fs::read_to_string(c).ok()).unwrap_or_default();
    let kasan = report_config.lines().any(|l| l.trim() == "CONFIG_KASAN=y");

    // The reproducer's needs: two CPUs (races), memory for a KASAN
    // kernel, its time on top of the boot's.
    let user_boot = args.boot.request();
    let boot = request::Boot {
        arch: Some(arch),
        cpus: user_boot.cpus.or(Some(2)),
        memory_mib: user_boot.memory_mib.or(Some(if kasan { 2048 } else { 1024 })),
        timeout_secs: user_boot.timeout_secs + args.duration,
        warn_is_crash: true,
        ..user_boot
    };
    let guest_req = request::Guest {
        program: request::Program::Repro { arg: ReproArg::Path(repro), name: None },
        ..request::Guest::default()
    };
    let what = What::resolve(&guest_req.program)?;
    let guest = session::guest(&what, &guest_req, &boot, arch, cache, &mut |m| progress.say(m))?;
    let mut plan = session::plan(&boot, &guest, cache, &mut |m| progress.say(m))?;
    plan.duration = Some(Duration::from_secs(args.duration));
    // As syzbot boots: an Oops and a WARN end the kernel (and the run),
    // where the kernel would limp on.
    plan.kernel_words = vec!["oops=panic".into(), "panic_on_warn=1".into()];

    let build = |source: PathBuf, say: &mut dyn FnMut(&str)| {
        build_request(args, &report, &report_config, arch, source, cache, say)
    };
    if args.bisect {
        let tree =
            tree.ok_or_else(|| Failure::error("--bisect needs the kernel tree: run it in one, or give --source DIR"))?;
        let mut say = |m: &str| progress.say(m);
        let req = build(tree.clone(), &mut say)?;
        progress.clear();
        return bisect_report(args, &report, &tree, req, &guest, &boot, &plan, cache);
    }
    let kernel = match named {
        Some(k) => k,
        None => {
            let tree = tree.expect("checked above");
            let mut say = |m: &str| progress.say(m);
            let mut req = build(tree.clone(), &mut say)?;
            req.commit = Some(commit_in(&tree, args.commit.as_deref(), &report)?);
            let built = session::build_kernel(&req, &guest, &boot, cache, &mut |ev| progress.build_event(ev))?;
            if !built.cache_hit {
                progress.say(&format!("built {} in {:.0} s", built.image.display(), built.build_secs));
            }
            check_kernel(&built.image).map_err(RunError::from)?
        }
    };
    let target = plan.target(&kernel, &mut |m| progress.say(m)).map_err(RunError::from)?;
    let mut results = Vec::new();
    for i in 1..=args.runs {
        let name = kernel.release.clone().unwrap_or_else(|| kernel.path.display().to_string());
        let label = if args.runs > 1 { format!("run {i}/{}: ", args.runs) } else { String::new() };
        progress.restart();
        progress.status(&format!("{label}running the reproducer on {name} (up to {} s)", args.duration));
        let r = run::run(&plan, &target, i, &mut |ev| show_run_event(progress, args.verbose, &ev))
            .map_err(RunError::from)?;
        progress.clear();
        let found = found(&r, &report.title);
        results.push((found, r));
        if found == Found::Reproduced {
            break;
        }
    }
    Ok(say_verdict(args, &report, &kernel, &results))
}

/// Which commit a single run builds: --commit, else the report's (it must
/// be in the tree), else the tree's HEAD.
fn commit_in(tree: &Path, given: Option<&str>, report: &Report) -> Result<String, Failure> {
    let resolve = |rev: &str| {
        crate::host::spawn::Cmd::new("git", ["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")], tree)
            .quiet()
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|h| !h.is_empty())
    };
    match (given, &report.commit) {
        (Some(rev), _) => {
            resolve(rev).ok_or_else(|| Failure::error(format!("--commit {rev}: not a commit of {}", tree.display())))
        }
        (None, Some(c)) => resolve(c).ok_or_else(|| {
            Failure::error(format!(
                "the report's commit {c} is not in {}: fetch it (git fetch {} ...) or pass --commit REV",
                tree.display(),
                report.tree.as_deref().unwrap_or("<the report's git tree>")
            ))
        }),
        (None, None) => resolve("HEAD").ok_or_else(|| Failure::error(format!("{}: not a git tree", tree.display()))),
    }
}

/// How the kernel is built: the config as `--config` says, the report's
/// compiler (or --cc), what --config-add adds.
fn build_request(
    args: &SyzArgs,
    report: &Report,
    report_config: &str,
    arch: Arch,
    source: PathBuf,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<request::Build, Failure> {
    let (settings, files): (Vec<&String>, Vec<&String>) =
        args.config_add.iter().partition(|a| a.starts_with("CONFIG_") || a.starts_with("# CONFIG_"));
    let mut fragments: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let mut settings: Vec<String> = settings.into_iter().cloned().collect();
    let base = match args.config.as_str() {
        "report" => {
            let path = report.config.clone().ok_or_else(|| {
                Failure::error(format!(
                    "{}: no .config: save the report's kernel config there, or pass --config krepro",
                    report.dir.display()
                ))
            })?;
            // A built-in command line that overrides the bootloader's would
            // drop krepro's words (which repro, the console): the kernel's
            // own words still come first.
            for (name, line) in [
                ("CMDLINE_OVERRIDE", "# CONFIG_CMDLINE_OVERRIDE is not set"),
                ("CMDLINE_FORCE", "# CONFIG_CMDLINE_FORCE is not set"),
            ] {
                if report_config.lines().any(|l| l.trim() == format!("CONFIG_{name}=y")) {
                    say(&format!(
                        "the report's config has CONFIG_{name}=y: turned off, or krepro's command line would be lost"
                    ));
                    settings.insert(0, line.to_owned());
                }
            }
            Base::File(path)
        }
        "krepro" => {
            let fragment = config::sanitizer_fragment(report_config);
            let dir = cache.root().join("syz").join("fragments");
            std::fs::create_dir_all(&dir).map_err(|e| Failure::error(format!("create {}: {e}", dir.display())))?;
            let path = dir.join(format!("{}.config", &blake3::hash(fragment.as_bytes()).to_hex()[..16]));
            std::fs::write(&path, &fragment).map_err(|e| Failure::error(format!("write {}: {e}", path.display())))?;
            fragments.insert(0, path);
            Base::Tinyconfig
        }
        file => {
            let path = PathBuf::from(file);
            if !path.is_file() {
                return Err(Failure::error(format!("--config {file}: not report, krepro or a config file")));
            }
            Base::File(path)
        }
    };
    let cc = match args.cc {
        Some(cc) => cc,
        None => {
            let (cc, why) = report.cc_choice(arch);
            if let Some(why) = why {
                say(&why);
            }
            cc
        }
    };
    Ok(request::Build {
        source,
        base,
        fragments,
        settings,
        commit: None,
        make_args: args.make_args.clone(),
        jobs: args.jobs,
        cc,
        distribute: args.distribute.request().0,
        ccache_remote: args.distribute.request().1,
    })
}

/// What one run found, against the report's title.
fn found(r: &RunResult, title: &str) -> Found {
    match (r.outcome, r.crash.as_ref().and_then(|c| c.title.as_deref())) {
        (_, Some(t)) if same_bug(t, title) => Found::Reproduced,
        (Outcome::Crash | Outcome::Fail | Outcome::Hang, _) => Found::OtherCrash,
        (Outcome::Pass, _) => Found::NoCrash,
        _ => Found::Unclear,
    }
}

/// Prints the verdict (a line, or JSON) and gives the exit status:
/// reproduced 1 (2 when the kernel died of it), another crash 2, a hang 3,
/// no crash 0, unclear 125, could not run 128.
fn say_verdict(args: &SyzArgs, report: &Report, kernel: &Kernel, results: &[(Found, RunResult)]) -> Exit {
    let pick = |f: Found| results.iter().find(|(x, _)| *x == f);
    let (found, decisive) = pick(Found::Reproduced)
        .or_else(|| pick(Found::OtherCrash))
        .or_else(|| pick(Found::Unclear))
        .or_else(|| results.last())
        .map(|(f, r)| (*f, r))
        .expect("at least one run");
    let crash = decisive.crash.as_ref();
    let crash_title = crash.and_then(|c| c.title.as_deref());
    let seen = crash_title.map(str::to_owned).or_else(|| crash.map(|c| c.line.clone()));
    let (exit, message) = match found {
        Found::Reproduced => (
            if crash.is_some_and(|c| c.fatal) { Exit::Crash } else { Exit::Bad },
            format!("reproduced: {}", crash_title.unwrap_or(&report.title)),
        ),
        Found::OtherCrash if decisive.outcome == Outcome::Hang => {
            (Exit::Hang, format!("hang: {} (the report says {})", decisive.message, report.title))
        }
        Found::OtherCrash => (
            Exit::Crash,
            format!("other crash: {} (the report says {})", seen.as_deref().unwrap_or(&decisive.message), report.title),
        ),
        Found::NoCrash => {
            let n = results.len();
            let runs = if n > 1 { format!(" in each of {n} runs") } else { String::new() };
            (Exit::Good, format!("no crash in {} s{runs}", args.duration))
        }
        Found::Unclear if decisive.outcome == Outcome::Error => {
            (Exit::Error, format!("could not run: {}", decisive.message))
        }
        Found::Unclear => (Exit::Skip, format!("no verdict: {}", decisive.message)),
    };
    if args.json {
        let runs: Vec<RunResult> = results.iter().map(|(_, r)| r.clone()).collect();
        let j = JsonReport {
            outcome: found,
            exit_code: exit.code(),
            crash_title: seen.as_deref(),
            report_title: &report.title,
            message: &message,
            kernel: &kernel.path,
            kernel_release: kernel.release.as_deref(),
            duration_s: args.duration,
            runs: &runs,
        };
        println!("{}", serde_json::to_string(&j).expect("plain data serialises"));
    } else {
        eprintln!("{message}");
        if found != Found::NoCrash {
            eprintln!("  console log: {}", decisive.console_log.display());
        }
    }
    exit
}

/// `syz --bisect`: the report's commit is the bad end; a good end is
/// --good, or the first release without the crash; then a bisect that
/// chases the report's crash.
#[allow(clippy::too_many_arguments)]
fn bisect_report(
    args: &SyzArgs,
    report: &Report,
    tree: &Path,
    build: request::Build,
    guest: &session::Guest,
    boot: &request::Boot,
    plan: &run::Plan,
    cache: &Cache,
) -> Result<Exit, Failure> {
    if args.min_bad > args.runs {
        return Err(Failure::error(format!("--min-bad {} is more than --runs {}", args.min_bad, args.runs)));
    }
    let mut ui = BisectUi::new(args.verbose);
    let interrupt = crate::boot::interrupt::install();
    let interrupted = || interrupt.load(std::sync::atomic::Ordering::SeqCst);
    let bad = commit_in(tree, args.commit.as_deref(), report)?;
    let mut opts = Options {
        restart: args.restart,
        repro: format!("{} ({})", report.title, report.dir.display()),
        description: format!("syzbot's C reproducer for \"{}\", {} s a run", report.title, args.duration),
        runs: args.runs,
        remap: Remap::default(),
        find_fix: false,
        key_extra: format!("syz {:?} {:?} {}", build, boot, args.duration),
        check_endpoints: true,
        verify: !args.no_verify,
        same_crash: !args.any_crash,
        crash_title: Some(args.same_crash.clone().unwrap_or_else(|| report.title.clone())),
        min_bad: args.min_bad,
        // Its kernels are built one at a time.
        parallel: 1,
        seed: Vec::new(),
    };
    let vmlinux = session::boots_vmlinux(boot);
    let options = |wt: PathBuf| guest.build_options(&build, wt, vmlinux);
    let mut builder = RealBuilder {
        cache,
        options: Some(Box::new(options)),
        build_cmd: None,
        logs: &plan.logs,
        out: tempfile::tempdir().map_err(|e| Failure::error(format!("create a temp dir: {e}")))?,
    };
    let mut booter = PlanBooter::new(plan);
    let good = match &args.good {
        Some(g) => g.clone(),
        None => {
            let releases = release_candidates(tree, &bad).map_err(bisect_failure)?;
            let Some(oldest) = releases.last() else {
                return Err(Failure::error(format!(
                    "no release tags (vX.Y) before {} in {}: pass --good REV",
                    bisect::short(&bad),
                    tree.display()
                )));
            };
            let names: Vec<&str> = releases.iter().map(|c| c.label.as_str()).collect();
            ui.progress.say(&format!("looking for a release without the crash among {}", names.join(", ")));
            let range = Range { dir: tree, good: &oldest.id, bad: &bad, find_fix: false, cherry_picks: &[] };
            let checked = range.check().map_err(bisect_failure)?;
            let mut space =
                GitSpace::new(checked, &mut builder, cache, &mut |m| ui.progress.say(m)).map_err(bisect_failure)?;
            let bad_end = Candidate { id: bad.clone(), label: "the report's commit".into() };
            let probed = bisect::probe(&opts, &mut space, &mut booter, &interrupted, &bad_end, &releases, &mut |ev| {
                ui.event(ev)
            });
            crate::bisect::Space::done(&mut space);
            drop(space);
            let probed = probed.map_err(bisect_failure)?;
            let found = probed.good.ok_or_else(|| {
                Failure::new(
                    Exit::Skip,
                    format!(
                        "every release tried ({}) shows the crash or could not be tested: the bug is older, or pass \
                         --good REV",
                        names.join(", ")
                    ),
                )
            })?;
            ui.progress.say(&format!("{} does not show the crash: bisecting from there", found.label));
            opts.seed = probed.tested;
            opts.crash_title = probed.title.or(opts.crash_title);
            found.id
        }
    };
    let range = Range { dir: tree, good: &good, bad: &bad, find_fix: false, cherry_picks: &[] };
    let checked = range.check().map_err(bisect_failure)?;
    let mut space = GitSpace::new(checked, &mut builder, cache, &mut |m| ui.progress.say(m)).map_err(bisect_failure)?;
    let report_ = bisect::bisect(&opts, &mut space, &mut booter, cache, &interrupted, &mut |ev| ui.event(ev));
    drop(space);
    ui.progress.clear();
    let report_ = report_.map_err(bisect_failure)?;
    let base = build.base.describe();
    conclude(&report_, Some((&base, &build.settings.join("\n"))), None, args.json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::classify::{Crash, CrashKind};

    fn result(outcome: Outcome, title: Option<&str>) -> RunResult {
        let crash =
            title.map(|t| Crash { kind: CrashKind::Warning, line: t.into(), title: Some(t.into()), fatal: true });
        RunResult { outcome, crash, ..crate::boot::run::testing::result() }
    }

    #[test]
    fn runs_are_the_reports_crash_another_or_none() {
        let t = "WARNING in __do_sys_prctl";
        assert_eq!(found(&result(Outcome::Crash, Some("WARNING in prctl")), t), Found::Reproduced);
        assert_eq!(
            found(&result(Outcome::Crash, Some("BUG: unable to handle kernel NULL pointer dereference in prctl")), t),
            Found::OtherCrash
        );
        assert_eq!(found(&result(Outcome::Hang, None), t), Found::OtherCrash);
        assert_eq!(found(&result(Outcome::Pass, None), t), Found::NoCrash);
        assert_eq!(found(&result(Outcome::NoVerdict, None), t), Found::Unclear);
    }
}
