//! Bisect: git's own bisect, driven in krepro's long-lived worktree of the
//! repository ([`crate::build::worktree`]: the one `kernel build --source`
//! builds in too, so the first step builds incrementally from the user's
//! last build), with krepro's build and boot at each step. The user's
//! checkout is never touched.
//!
//! State lives in `~/.cache/krepro/bisect/<key>/state.json` (every tested
//! commit, the worktree used) and git's bisect state in that worktree, so
//! the same command after Ctrl-C or a reboot goes on where it stopped.
//! [`kernels`] bisects a list of prebuilt kernels the same way, nothing built.

pub mod kernels;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::boot::outcome::{Outcome, Remap};
use crate::build::worktree;
use crate::host::cache::Cache;
use crate::host::spawn::{Cmd, CmdError};
use crate::RunError;

/// What a commit is, once tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// The repro passed (every run).
    Good,
    /// The bug showed (in at least one run).
    Bad,
    /// Cannot tell: does not build, the repro skipped, no verdict.
    Skip,
}

impl Mark {
    pub fn name(self) -> &'static str {
        match self {
            Mark::Good => "good",
            Mark::Bad => "bad",
            Mark::Skip => "skip",
        }
    }
}

/// The verdict of one commit from its runs, with `remap` applied as for
/// `run`: good only if every run passed, bad if any run was bad. An outcome
/// whose exit code is above 127 (`error`) is not a verdict on the commit but
/// on the setup: the bisect must stop (Err with the reason).
pub fn decide(outcomes: &[Outcome], remap: &Remap) -> Result<Mark, String> {
    let mut verdict = Mark::Good;
    for o in outcomes {
        match remap.exit_code(*o).code() {
            0 => {}
            125 => {
                if verdict == Mark::Good {
                    verdict = Mark::Skip;
                }
            }
            c if c > 127 => {
                return Err(format!("a run ended in '{o}' (exit {c}): that is a setup problem, not a verdict"))
            }
            _ => verdict = Mark::Bad,
        }
    }
    if outcomes.is_empty() {
        return Err("no run".into());
    }
    Ok(verdict)
}

/// Whether more runs could change the verdict: after a bad run, no.
pub fn needs_more_runs(outcomes: &[Outcome], remap: &Remap) -> bool {
    !matches!(decide(outcomes, remap), Ok(Mark::Bad))
}

/// One tested commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TestedCommit {
    pub commit: String,
    pub subject: String,
    pub verdict: Mark,
    /// One per boot (empty when it did not build).
    pub outcomes: Vec<Outcome>,
    /// Why skipped, or the message of the deciding run.
    pub message: String,
    /// Whether the runs disagreed (a flaky repro).
    pub flaky: bool,
    pub build_secs: f64,
    pub boot_secs: f64,
    pub console_log: Option<PathBuf>,
    pub kind: TestKind,
    /// The compiler it was built with.
    #[serde(default)]
    pub toolchain: String,
    /// Known build fixes applied to build it (from the compiler table).
    #[serde(default)]
    pub fixes: Vec<String>,
}

/// Why a commit was tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// The --good/--bad check before bisecting.
    Endpoint,
    /// A step of git's bisect.
    Bisect,
    /// The answer tested again (fresh boots): git verification, or a
    /// prebuilt bisect's boundary.
    Verify,
}

/// What building one commit gave.
pub enum BuildResult {
    Kernel {
        bzimage: PathBuf,
        /// The compiler ("gcc-12"), for the report.
        toolchain: String,
    },
    /// The tree does not build (or cannot give the repro its config): skip,
    /// unless `fix` names an upstream commit that fixes this failure (the
    /// compiler table's build fixes), which is then applied and built once.
    Failed { why: String, toolchain: String, fix: Option<String> },
}

/// One boot's result, as the bisect needs it.
pub struct BootSummary {
    pub outcome: Outcome,
    pub message: String,
    pub console_log: PathBuf,
}

/// Builds and boots commits. The real one uses the kernel builder (or the
/// user's --build-cmd) and qemu; tests use a fake.
pub trait Tester {
    /// Builds the worktree as it is checked out now.
    fn build(
        &mut self,
        worktree: &Path,
        commit: &str,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BuildResult, String>;
    /// Boots `kernel`, run `run` of N.
    fn boot(&mut self, kernel: &Path, run: u32, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BootSummary, RunError>;
}

/// The bisect's progress.
#[derive(Debug)]
pub enum BisectEvent<'a> {
    Say(&'a str),
    /// A commit is about to be tested.
    Testing {
        commit: &'a str,
        subject: &'a str,
        step: usize,
        steps_left: Option<u32>,
        revs_left: Option<u32>,
        kind: TestKind,
    },
    Phase(&'a str),
    Build(crate::build::BuildEvent<'a>),
    /// What a boot shows as it happens (fallbacks, the console).
    Run(crate::boot::run::RunEvent<'a>),
    Tested(&'a TestedCommit),
}

/// What to bisect.
#[derive(Clone, Debug)]
pub struct BisectOptions {
    pub linux: PathBuf,
    pub good: String,
    pub bad: String,
    pub repro: String,
    pub runs: u32,
    pub remap: Remap,
    pub find_fix: bool,
    pub cherry_picks: Vec<String>,
    /// Also part of the state key: what else changes the answer (builder,
    /// --append, timeout).
    pub key_extra: String,
    /// Test --good and --bad first and stop if they do not behave as said.
    pub check_endpoints: bool,
    /// Test the culprit again, its parent, and --bad with it reverted.
    pub verify: bool,
}

/// Why a bisect stopped without an answer.
#[derive(Debug, thiserror::Error)]
pub enum BisectError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Endpoint(String),
    #[error("stopped at {commit}: {message} (fix it and run the same command to go on)")]
    Infrastructure { commit: String, message: String },
    #[error("interrupted; run the same command to go on where it stopped")]
    Interrupted,
    #[error(transparent)]
    Git(#[from] CmdError),
    #[error(transparent)]
    Worktree(#[from] crate::build::worktree::WorktreeError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BisectError {
    let context = context.into();
    move |source| BisectError::Io { context, source }
}

/// The answer.
#[derive(Clone, Debug, Serialize)]
pub struct BisectReport {
    /// "first bad commit" or "first fixed commit".
    pub found: String,
    /// The commit, when git narrowed it to one.
    pub commit: Option<CommitInfo>,
    /// When only skipped commits are left: the candidates.
    pub candidates: Vec<String>,
    /// A bisect over prebuilt kernels: the boundary and what to bisect
    /// next (None for a git bisect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernels: Option<kernels::Answer>,
    pub repro: String,
    pub good: String,
    pub bad: String,
    pub steps: Vec<TestedCommit>,
    pub flaky: bool,
    pub bisect_log: String,
    pub wall_secs: f64,
    /// The answer tested again (None with --no-verify, or when there is
    /// no single answer).
    pub verification: Option<verify::Verification>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CommitInfo {
    pub hash: String,
    pub subject: String,
    pub author: String,
    pub date: String,
}

/// What a bisect keeps between runs of the same command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub steps: Vec<TestedCommit>,
    pub started_bisect: bool,
    pub wall_secs: f64,
    /// The commit git named, once it did (a resumed bisect goes straight to
    /// verifying it).
    #[serde(default)]
    pub named: Option<String>,
    /// The verification checks made so far.
    #[serde(default)]
    pub checks: Vec<verify::Check>,
    /// The worktree git's bisect runs in (a resume goes back to it).
    #[serde(default)]
    pub worktree: Option<PathBuf>,
}

impl State {
    /// The state saved at `path`; None when there is none (a state that
    /// does not parse counts as empty).
    pub fn load(path: &Path) -> Option<State> {
        std::fs::read_to_string(path).ok().map(|text| serde_json::from_str(&text).unwrap_or_default())
    }

    /// Saves it at `path` atomically (a Ctrl-C never leaves half a file).
    pub fn save(&self, path: &Path) -> Result<(), BisectError> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self).expect("plain data"))
            .map_err(io("write the bisect state"))?;
        std::fs::rename(&tmp, path).map_err(io("write the bisect state"))
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, BisectError> {
    Ok(String::from_utf8_lossy(&Cmd::new("git", args, dir).quiet().output()?.stdout).into_owned())
}

/// A commit hash shortened to 12 digits, for people; anything else (a
/// kernel's name, "BAD with C reverted") whole.
pub fn short(name: &str) -> &str {
    if name.len() > 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        &name[..12]
    } else {
        name
    }
}

/// Resolves a revision to a commit hash, or a one-line error.
fn resolve(repo: &Path, rev: &str, flag: &str) -> Result<String, BisectError> {
    git(repo, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .map(|s| s.trim().to_owned())
        .map_err(|_| BisectError::BadInput(format!("{flag} {rev}: not a commit in {}", repo.display())))
}

/// The git terms: (old, new) and which one a passing commit gets.
fn terms(find_fix: bool) -> (&'static str, &'static str) {
    if find_fix {
        ("broken", "fixed")
    } else {
        ("good", "bad")
    }
}

fn term_for(verdict: Mark, find_fix: bool) -> &'static str {
    let (old, new) = terms(find_fix);
    match (verdict, find_fix) {
        (Mark::Skip, _) => "skip",
        (Mark::Good, false) | (Mark::Bad, true) => old,
        (Mark::Bad, false) | (Mark::Good, true) => new,
    }
}

/// Runs the bisect to its end. `interrupted` is polled between phases.
pub fn bisect(
    opts: &BisectOptions,
    cache: &Cache,
    tester: &mut dyn Tester,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<BisectReport, BisectError> {
    let started = Instant::now();
    let top = git(&opts.linux, &["rev-parse", "--show-toplevel"])
        .map_err(|_| BisectError::BadInput(format!("--linux {}: not a git repository", opts.linux.display())))?;
    let repo = PathBuf::from(top.trim());
    let good = resolve(&repo, &opts.good, "--good")?;
    let bad = resolve(&repo, &opts.bad, "--bad")?;
    if good == bad {
        return Err(BisectError::BadInput("--good and --bad are the same commit".into()));
    }
    let mut picks = Vec::new();
    for p in &opts.cherry_picks {
        picks.push(resolve(&repo, p, "--cherry-pick")?);
    }
    // In git's terms: the old side and the new side.
    let (old_rev, new_rev) = if opts.find_fix { (bad.clone(), good.clone()) } else { (good.clone(), bad.clone()) };
    if git(&repo, &["merge-base", "--is-ancestor", &old_rev, &new_rev]).is_err() {
        let (o, n) = if opts.find_fix { ("--bad", "--good") } else { ("--good", "--bad") };
        return Err(BisectError::BadInput(format!(
            "{o} {} is not an ancestor of {n} {}",
            short(&old_rev),
            short(&new_rev)
        )));
    }

    let key = blake3::hash(
        format!(
            "{}\n{good}\n{bad}\n{}\n{}\n{}\n{}\n{}",
            repo.display(),
            opts.repro,
            opts.runs,
            opts.find_fix,
            picks.join(","),
            opts.key_extra
        )
        .as_bytes(),
    )
    .to_hex()[..16]
        .to_owned();
    let state_dir = cache.bisect().join(&key);
    let state_path = state_dir.join("state.json");
    let mut state: State = match State::load(&state_path) {
        Some(s) => {
            on(BisectEvent::Say(&format!(
                "resuming the bisect in {} ({} commits tested so far)",
                state_dir.display(),
                s.steps.len()
            )));
            s
        }
        None => State::default(),
    };
    std::fs::create_dir_all(&state_dir).map_err(io(format!("create {}", state_dir.display())))?;
    // The repository's worktree (held until the bisect ends): the one this
    // bisect was in when it resumes, else a free one.
    let held = worktree::take(cache, &repo, state.worktree.as_deref(), &mut |m| on(BisectEvent::Say(m)))?;
    let worktree = held.path.clone();
    if state.worktree.as_deref() != Some(worktree.as_path()) || !worktree::bisecting(&worktree) {
        // A bisect new to this worktree: git's bisect starts again (the
        // commits already tested are reused from the state, not booted
        // again), from the new end.
        worktree::checkout(&worktree, &new_rev)?;
        state.started_bisect = false;
        state.worktree = Some(worktree.clone());
    }
    let save = |state: &State| state.save(&state_path);

    let at = Session {
        worktree: &worktree,
        state_dir: &state_dir,
        opts,
        picks: &picks,
        good: &good,
        bad: &bad,
        new_rev: &new_rev,
        started,
    };
    if let Some(named) = state.named.clone() {
        // Interrupted while verifying: git's answer stands, go on checking it.
        return finish(&at, state, Done::One(named), tester, interrupted, on, &save);
    }
    let wt = worktree.as_path();
    let mut test = |commit: &str,
                    kind: TestKind,
                    step: usize,
                    left: (Option<u32>, Option<u32>),
                    state: &mut State,
                    on: &mut dyn FnMut(BisectEvent<'_>)|
     -> Result<TestedCommit, BisectError> {
        if let Some(done) = state.steps.iter().find(|s| s.commit == commit) {
            return Ok(done.clone());
        }
        let subject = git(wt, &["show", "-s", "--format=%s", commit])?.trim().to_owned();
        on(BisectEvent::Testing { commit, subject: &subject, step, steps_left: left.0, revs_left: left.1, kind });
        let s = test_commit(wt, commit, &subject, kind, &picks, opts, tester, interrupted, on)?;
        on(BisectEvent::Tested(&s));
        state.steps.push(s.clone());
        Ok(s)
    };

    let (old_term, new_term) = terms(opts.find_fix);
    if !state.started_bisect && opts.check_endpoints {
        // --bad must fail and --good pass (with --find-fix too). The failing
        // end first: a repro that does not reproduce at all is the most
        // common wrong setup.
        for (rev, want, flag) in [(&bad, Mark::Bad, "--bad"), (&good, Mark::Good, "--good")] {
            git(wt, &["checkout", "-q", "--detach", rev])?;
            let s = test(rev, TestKind::Endpoint, 0, (None, None), &mut state, on)?;
            save(&state)?;
            if s.verdict != want {
                let seen = if s.outcomes.is_empty() {
                    s.message.clone()
                } else {
                    let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
                    format!("{} {}", runs.join(", "), s.message)
                };
                return Err(BisectError::Endpoint(format!(
                    "{flag} {} tests {} instead of {}: {}",
                    short(rev),
                    s.verdict.name(),
                    want.name(),
                    seen.trim()
                )));
            }
        }
    }
    let mut last_out = String::new();
    if !state.started_bisect {
        last_out = git(wt, &args_start(old_term, new_term, &new_rev, &old_rev))?;
        state.started_bisect = true;
        save(&state)?;
        if let Some(done) = finished(&last_out, new_term) {
            return finish(&at, state, done, tester, interrupted, on, &save);
        }
    }

    let mut step = state.steps.iter().filter(|s| s.kind == TestKind::Bisect).count();
    loop {
        if interrupted() {
            return Err(BisectError::Interrupted);
        }
        let head = git(wt, &["rev-parse", "HEAD"])?.trim().to_owned();
        step += 1;
        let s = test(&head, TestKind::Bisect, step, revisions_left(&last_out), &mut state, on)?;
        save(&state)?;
        last_out = mark(wt, term_for(s.verdict, opts.find_fix), &head)?;
        if let Some(done) = finished(&last_out, new_term) {
            return finish(&at, state, done, tester, interrupted, on, &save);
        }
    }
}

/// `git bisect <term> <commit>`. Its exit status is not enough: when only
/// skipped commits are left, git says so and exits 2.
fn mark(wt: &Path, term: &str, commit: &str) -> Result<String, BisectError> {
    let out = Cmd::new("git", ["bisect", term, commit], wt).quiet().output_any_status()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() || text.contains("There are only 'skip'ped commits left to test") {
        return Ok(text);
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Err(CmdError::Failed { line: format!("git bisect {term} {commit}"), status: out.status, stderr }.into())
}

fn args_start<'a>(old_term: &'a str, new_term: &'a str, new_rev: &'a str, old_rev: &'a str) -> Vec<&'a str> {
    vec!["bisect", "start", "--term-old", old_term, "--term-new", new_term, new_rev, old_rev]
}

/// git bisect's answer in its output.
enum Done {
    One(String),
    OnlySkipped(Vec<String>),
}

fn finished(out: &str, new_term: &str) -> Option<Done> {
    let marker = format!(" is the first {new_term} commit");
    if let Some(line) = out.lines().find(|l| l.ends_with(&marker)) {
        return Some(Done::One(line.trim_end_matches(&marker).trim().to_owned()));
    }
    if out.contains("There are only 'skip'ped commits left to test") {
        let cands = out
            .lines()
            .filter(|l| l.len() >= 40 && l[..40].bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|l| l[..40].to_owned())
            .collect();
        return Some(Done::OnlySkipped(cands));
    }
    None
}

/// (steps left, revisions left) from git's "Bisecting: N revisions left to
/// test after this (roughly K steps)"; None when unknown (after a resume).
fn revisions_left(out: &str) -> (Option<u32>, Option<u32>) {
    let Some(line) = out.lines().find(|l| l.starts_with("Bisecting: ")) else { return (None, None) };
    let revs = line["Bisecting: ".len()..].split_whitespace().next().and_then(|n| n.parse().ok());
    let steps = line.split("(roughly ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok());
    (steps, revs)
}

#[allow(clippy::too_many_arguments)]
fn test_commit(
    wt: &Path,
    commit: &str,
    subject: &str,
    kind: TestKind,
    picks: &[String],
    opts: &BisectOptions,
    tester: &mut dyn Tester,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<TestedCommit, BisectError> {
    let skip = |message: String, build_secs: f64, toolchain: String, fixes: Vec<String>| TestedCommit {
        commit: commit.to_owned(),
        subject: subject.to_owned(),
        verdict: Mark::Skip,
        outcomes: Vec::new(),
        message,
        flaky: false,
        build_secs,
        boot_secs: 0.0,
        console_log: None,
        kind,
        toolchain,
        fixes,
    };
    // Fixes an old tree needs to build or boot, applied for this build only.
    for p in picks {
        if git(wt, &["cherry-pick", "--no-commit", p]).is_err() {
            let _ = git(wt, &["cherry-pick", "--abort"]);
            git(wt, &["reset", "-q", "--hard", commit])?;
            return Ok(skip(format!("--cherry-pick {} does not apply", short(p)), 0.0, String::new(), Vec::new()));
        }
    }
    on(BisectEvent::Phase("build"));
    let build_started = Instant::now();
    let mut fixes: Vec<String> = Vec::new();
    let built = loop {
        let built = tester.build(wt, commit, on);
        // A known failure with an upstream fix this commit lacks: the fix
        // goes on top, for this build only, once.
        if let Ok(BuildResult::Failed { fix: Some(fix), .. }) = &built {
            let known = git(wt, &["cat-file", "-e", &format!("{fix}^{{commit}}")]).is_ok();
            let has_it = git(wt, &["merge-base", "--is-ancestor", fix, commit]).is_ok();
            if known && !has_it && !fixes.contains(fix) {
                if git(wt, &["cherry-pick", "--no-commit", fix]).is_ok() {
                    on(BisectEvent::Say(&format!("applying the known build fix {} and building again", short(fix))));
                    fixes.push(fix.clone());
                    continue;
                }
                let _ = git(wt, &["cherry-pick", "--abort"]);
                git(wt, &["reset", "-q", "--hard", commit])?;
                for p in picks {
                    git(wt, &["cherry-pick", "--no-commit", p])?;
                }
            }
        }
        break built;
    };
    if !picks.is_empty() || !fixes.is_empty() {
        git(wt, &["reset", "-q", "--hard", commit])?;
    }
    let build_secs = build_started.elapsed().as_secs_f64();
    if interrupted() {
        return Err(BisectError::Interrupted);
    }
    let (kernel, toolchain) = match built {
        Ok(BuildResult::Kernel { bzimage, toolchain }) => (bzimage, toolchain),
        Ok(BuildResult::Failed { why, toolchain, .. }) => return Ok(skip(why, build_secs, toolchain, fixes)),
        Err(message) => return Err(BisectError::Infrastructure { commit: short(commit).to_owned(), message }),
    };
    let runs = boot_runs(&kernel, commit, opts.runs, &opts.remap, tester, on)?;
    Ok(TestedCommit {
        commit: commit.to_owned(),
        subject: subject.to_owned(),
        verdict: runs.verdict,
        outcomes: runs.outcomes,
        message: runs.message,
        flaky: runs.flaky,
        build_secs,
        boot_secs: runs.boot_secs,
        console_log: runs.console_log,
        kind,
        toolchain,
        fixes,
    })
}

/// What the runs of one kernel gave.
pub(crate) struct Runs {
    pub verdict: Mark,
    pub outcomes: Vec<Outcome>,
    pub message: String,
    pub console_log: Option<PathBuf>,
    pub flaky: bool,
    pub boot_secs: f64,
}

/// Boots `kernel` up to `runs` times, stopping at the first bad run, and
/// decides; `what` (a commit, a kernel) names it in errors.
pub(crate) fn boot_runs(
    kernel: &Path,
    what: &str,
    runs: u32,
    remap: &Remap,
    tester: &mut dyn Tester,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<Runs, BisectError> {
    let infrastructure = |message: String| BisectError::Infrastructure { commit: short(what).to_owned(), message };
    let boot_started = Instant::now();
    let mut outcomes = Vec::new();
    let mut message = String::new();
    let mut console_log = None;
    for run in 1..=runs.max(1) {
        on(BisectEvent::Phase(&format!("boot {run}/{}", runs.max(1))));
        let boot = match tester.boot(kernel, run, on) {
            Ok(b) => b,
            Err(RunError::Interrupted) => return Err(BisectError::Interrupted),
            Err(e) => return Err(infrastructure(e.to_string())),
        };
        if outcomes.is_empty() || boot.outcome != Outcome::Pass {
            message = boot.message;
            console_log = Some(boot.console_log);
        }
        outcomes.push(boot.outcome);
        if !needs_more_runs(&outcomes, remap) {
            break;
        }
    }
    let verdict = decide(&outcomes, remap).map_err(infrastructure)?;
    let flaky = outcomes.iter().any(|o| *o != outcomes[0]);
    Ok(Runs { verdict, outcomes, message, console_log, flaky, boot_secs: boot_started.elapsed().as_secs_f64() })
}

/// Where a bisect runs and what it was asked: what finishing needs.
struct Session<'a> {
    worktree: &'a Path,
    state_dir: &'a Path,
    opts: &'a BisectOptions,
    picks: &'a [String],
    good: &'a str,
    bad: &'a str,
    /// The new end in git's terms: --bad, or --good with --find-fix.
    new_rev: &'a str,
    started: Instant,
}

/// Reports git's answer, verified unless asked not to, ends git's bisect
/// and removes the state.
fn finish(
    at: &Session<'_>,
    mut state: State,
    done: Done,
    tester: &mut dyn Tester,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
    save: &dyn Fn(&State) -> Result<(), BisectError>,
) -> Result<BisectReport, BisectError> {
    let (wt, opts) = (at.worktree, at.opts);
    let bisect_log = git(wt, &["bisect", "log"]).unwrap_or_default();
    let (commit, candidates) = match done {
        Done::One(hash) => {
            let show = git(wt, &["show", "-s", "--format=%H%n%s%n%an <%ae>%n%ad", "--date=iso", &hash])?;
            let mut l = show.lines().map(str::to_owned);
            let info = CommitInfo {
                hash: l.next().unwrap_or_default(),
                subject: l.next().unwrap_or_default(),
                author: l.next().unwrap_or_default(),
                date: l.next().unwrap_or_default(),
            };
            (Some(info), Vec::new())
        }
        Done::OnlySkipped(c) => (None, c),
    };
    let verification = match &commit {
        Some(c) if opts.verify => {
            if state.named.is_none() {
                state.named = Some(c.hash.clone());
                save(&state)?;
            }
            Some(verify_culprit(at, &c.hash, &c.subject, &mut state, tester, interrupted, on, save)?)
        }
        _ => None,
    };
    state.wall_secs += at.started.elapsed().as_secs_f64();
    let report = BisectReport {
        found: if opts.find_fix { "first fixed commit".into() } else { "first bad commit".into() },
        commit,
        candidates,
        kernels: None,
        repro: opts.repro.clone(),
        good: at.good.to_owned(),
        bad: at.bad.to_owned(),
        flaky: state.steps.iter().any(|s| s.flaky),
        steps: state.steps,
        bisect_log,
        wall_secs: state.wall_secs,
        verification,
    };
    // Done: git's bisect ends (the worktree stays, for the next build of
    // this repository); the state dir goes.
    let _ = git(wt, &["bisect", "reset"]);
    let _ = std::fs::remove_dir_all(at.state_dir);
    Ok(report)
}

/// Tests git's answer C again, as KernelCI does before it reports one: C
/// shows the bug again, C^ does not, and the new end with C reverted does
/// not, each with the bisect's `--runs`. With --find-fix the same with the
/// roles swapped (C passes, C^ fails, --good with C reverted fails). Checks
/// made before an interruption are kept in the state.
#[allow(clippy::too_many_arguments)]
fn verify_culprit(
    at: &Session<'_>,
    culprit: &str,
    subject: &str,
    state: &mut State,
    tester: &mut dyn Tester,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
    save: &dyn Fn(&State) -> Result<(), BisectError>,
) -> Result<verify::Verification, BisectError> {
    let (wt, opts) = (at.worktree, at.opts);
    let started = Instant::now();
    // What C and what its parent must give.
    let (shows, hides) = if opts.find_fix { (Mark::Good, Mark::Bad) } else { (Mark::Bad, Mark::Good) };
    let new_end = if opts.find_fix { "--good" } else { "--bad" };
    let c = short(culprit).to_owned();
    let parent = git(wt, &["rev-parse", "--verify", "--quiet", &format!("{culprit}^")])?.trim().to_owned();
    let parent_subject = git(wt, &["show", "-s", "--format=%s", &parent])?.trim().to_owned();
    let checks: [(String, Mark); 3] = [
        (format!("{c} {} again", if opts.find_fix { "passes" } else { "fails" }), shows),
        (format!("its parent {} {}", short(&parent), if opts.find_fix { "fails" } else { "passes" }), hides),
        (
            format!(
                "{new_end} {} with {c} reverted {}",
                short(at.new_rev),
                if opts.find_fix { "fails" } else { "passes" }
            ),
            hides,
        ),
    ];
    for (i, (what, expected)) in checks.iter().enumerate() {
        if state.checks.iter().any(|k| &k.what == what) {
            continue;
        }
        if interrupted() {
            return Err(BisectError::Interrupted);
        }
        // The commit to test: C, C^, or a revert of C made on the new end
        // (a commit in our detached worktree only: no ref moves).
        let (commit, subj) = match i {
            0 => (culprit.to_owned(), subject.to_owned()),
            1 => (parent.clone(), parent_subject.clone()),
            _ => {
                git(wt, &["checkout", "-q", "--detach", at.new_rev])?;
                let mut args =
                    vec!["-c", "user.name=krepro", "-c", "user.email=krepro@localhost", "revert", "--no-edit"];
                // A merge is reverted against its first parent (the branch it was merged into).
                let parents = git(wt, &["show", "-s", "--format=%P", culprit])?;
                if parents.split_whitespace().count() > 1 {
                    args.extend(["-m", "1"]);
                }
                args.push(culprit);
                let out = Cmd::new("git", &args, wt).quiet().output_any_status()?;
                if !out.status.success() {
                    let conflicts = git(wt, &["diff", "--name-only", "--diff-filter=U"]).unwrap_or_default();
                    let _ = git(wt, &["revert", "--abort"]);
                    let _ = git(wt, &["reset", "-q", "--hard", at.new_rev]);
                    let files: Vec<&str> = conflicts.lines().collect();
                    let why = if files.is_empty() {
                        String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("git revert failed").to_owned()
                    } else {
                        format!("the revert conflicts in {}", files.join(", "))
                    };
                    state.checks.push(verify::Check::untestable(
                        what,
                        &format!("{} - {c}", short(at.new_rev)),
                        *expected,
                        why,
                        0.0,
                    ));
                    save(state)?;
                    continue;
                }
                let head = git(wt, &["rev-parse", "HEAD"])?.trim().to_owned();
                (head, format!("Revert \"{subject}\""))
            }
        };
        on(BisectEvent::Testing {
            commit: &commit,
            subject: &subj,
            step: i + 1,
            steps_left: Some(2 - i as u32),
            revs_left: None,
            kind: TestKind::Verify,
        });
        git(wt, &["checkout", "-q", "--detach", &commit])?;
        let t = test_commit(wt, &commit, &subj, TestKind::Verify, at.picks, opts, tester, interrupted, on)?;
        on(BisectEvent::Tested(&t));
        let tested = if i == 2 { format!("{} - {c}", short(at.new_rev)) } else { short(&commit).to_owned() };
        state.checks.push(verify::Check::from_test(what, &tested, *expected, &t));
        save(state)?;
    }
    let made: Vec<verify::Check> =
        checks.iter().filter_map(|(what, _)| state.checks.iter().find(|k| &k.what == what).cloned()).collect();
    let secs: f64 = made.iter().map(|k| k.build_secs + k.boot_secs).sum::<f64>().max(started.elapsed().as_secs_f64());
    Ok(verify::Verification::from_checks(made, secs))
}

impl BisectReport {
    /// The ready-to-paste Markdown report; `config` is (what it is on top
    /// of, the fragment), when krepro built the kernels.
    pub fn markdown(&self, config: Option<(&str, &str)>) -> String {
        let mut md = String::new();
        let push = |md: &mut String, s: &str| {
            md.push_str(s);
            md.push('\n');
        };
        // What was searched: (one, many, its description, what made it ready).
        let (one, many, about, made) = match self.kernels {
            Some(_) => ("kernel", "kernels", "version", "fetch"),
            None => ("commit", "commits", "subject", "build"),
        };
        match (&self.commit, &self.kernels) {
            (Some(c), _) => {
                push(&mut md, &format!("## {}: {} (\"{}\")\n", self.found, short(&c.hash), c.subject));
                push(&mut md, &format!("- commit: {}", c.hash));
                push(&mut md, &format!("- author: {}", c.author));
                push(&mut md, &format!("- date: {}", c.date));
            }
            (None, Some(k)) if k.first.is_some() => md.push_str(&k.markdown_head(&self.found)),
            (None, _) => {
                push(
                    &mut md,
                    &format!("## {}: one of {} {many} that could not be tested\n", self.found, self.candidates.len()),
                );
                for c in &self.candidates {
                    push(&mut md, &format!("- {c}"));
                }
            }
        }
        let description = repros::find(&self.repro).map_or("", |r| r.description);
        push(&mut md, &format!("- repro: `{}`: {description}", self.repro));
        push(&mut md, &format!("- good: {}, bad: {}", short(&self.good), short(&self.bad)));
        push(&mut md, &format!("- bisected by krepro in {:.0} s, {} {many} tested", self.wall_secs, self.steps.len()));
        if self.flaky {
            push(&mut md, &format!("- note: the repro is flaky: runs disagreed on at least one {one}"));
        }
        if let Some(k) = &self.kernels {
            md.push_str(&k.markdown_next());
        }
        // Prebuilt kernels have no compiler of ours.
        let (cc_head, cc_rule) = if self.kernels.is_some() { ("", "") } else { (" compiler |", "---|") };
        push(
            &mut md,
            &format!(
                "\n| {one} | {about} | verdict | runs |{cc_head} {made} | boot |\n|---|---|---|---|{cc_rule}---|---|"
            ),
        );
        for s in &self.steps {
            let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
            let runs = if runs.is_empty() { s.message.clone() } else { runs.join(", ") };
            let fixes: Vec<&str> = s.fixes.iter().map(|f| short(f)).collect();
            let compiler = if fixes.is_empty() {
                s.toolchain.clone()
            } else {
                format!("{} + fix {}", s.toolchain, fixes.join(", "))
            };
            let row = [short(&s.commit), &s.subject, s.verdict.name(), &runs, &compiler].map(|c| c.replace('|', "\\|"));
            let cc = if self.kernels.is_some() { String::new() } else { format!(" {} |", row[4]) };
            push(
                &mut md,
                &format!(
                    "| {} | {} | {} | {} |{cc} {:.0} s | {:.1} s |",
                    row[0], row[1], row[2], row[3], s.build_secs, s.boot_secs
                ),
            );
        }
        if let Some(v) = &self.verification {
            md.push_str(&v.markdown());
        }
        if let Some((base, fragment)) = config {
            push(&mut md, &format!("\nKernel config: {base} plus\n\n```\n{fragment}```"));
        }
        let answer =
            self.commit.as_ref().map(|c| &c.hash).or(self.kernels.as_ref().and_then(|k| Some(&k.first.as_ref()?.name)));
        let first_bad = answer.and_then(|a| self.steps.iter().find(|s| s.commit == *a && s.verdict == Mark::Bad));
        if let Some(log) = first_bad.and_then(|s| s.console_log.as_ref()).and_then(|p| std::fs::read_to_string(p).ok())
        {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            push(
                &mut md,
                &format!(
                    "\nConsole of the first bad {one} (last {} lines):\n\n```\n{}\n```",
                    tail.len(),
                    tail.join("\n")
                ),
            );
        }
        if !self.bisect_log.is_empty() {
            push(
                &mut md,
                &format!("\n<details><summary>git bisect log</summary>\n\n```\n{}```\n</details>", self.bisect_log),
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use Outcome::*;

    #[test]
    fn decisions() {
        let r = Remap::default();
        assert_eq!(decide(&[Pass, Pass, Pass], &r), Ok(Mark::Good));
        assert_eq!(decide(&[Pass, Pass, Fail], &r), Ok(Mark::Bad));
        assert_eq!(decide(&[Crash], &r), Ok(Mark::Bad));
        assert_eq!(decide(&[Hang], &r), Ok(Mark::Bad));
        assert_eq!(decide(&[Pass, Skip], &r), Ok(Mark::Skip));
        assert_eq!(decide(&[NoVerdict], &r), Ok(Mark::Skip));
        assert_eq!(decide(&[Skip, Fail], &r), Ok(Mark::Bad));
        assert!(decide(&[Pass, Error], &r).unwrap_err().contains("'error'"));
        assert!(decide(&[], &r).is_err());
        let r = Remap { on_hang: Some(crate::boot::outcome::Decision::Skip), ..Remap::default() };
        assert_eq!(decide(&[Hang], &r), Ok(Mark::Skip));
        assert!(needs_more_runs(&[Pass], &Remap::default()));
        assert!(!needs_more_runs(&[Pass, Fail], &Remap::default()));
    }

    #[test]
    fn terms_map_verdicts() {
        assert_eq!(term_for(Mark::Good, false), "good");
        assert_eq!(term_for(Mark::Bad, false), "bad");
        assert_eq!(term_for(Mark::Good, true), "fixed");
        assert_eq!(term_for(Mark::Bad, true), "broken");
        assert_eq!(term_for(Mark::Skip, true), "skip");
        let (steps, revs) =
            revisions_left("Bisecting: 6 revisions left to test after this (roughly 3 steps)\n[abc] x\n");
        assert_eq!((steps, revs), (Some(3), Some(6)));
        assert_eq!(revisions_left("nothing"), (None, None));
    }

    /// A repo whose commit i holds `state` = states[i] ("good", "bad...",
    /// "flaky", "broken"), and a checkout with uncommitted work and a stash.
    fn repo(states: &[&str]) -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let run = |args: &[&str]| git(d, args).unwrap();
        run(&["init", "-q", "-b", "main"]);
        run(&["config", "user.name", "t"]);
        run(&["config", "user.email", "t@example.com"]);
        let mut commits = Vec::new();
        for (i, st) in states.iter().enumerate() {
            std::fs::write(d.join("state"), st).unwrap();
            // A file of each commit's own: reverting one touches only its
            // own lines (and `state`, when it changed it).
            std::fs::write(d.join(format!("c{i}")), i.to_string()).unwrap();
            if i == 0 {
                std::fs::write(d.join("n"), "0").unwrap();
            }
            run(&["add", "-A"]);
            run(&["commit", "-qm", &format!("commit {i}: {st}")]);
            commits.push(run(&["rev-parse", "HEAD"]).trim().to_owned());
        }
        std::fs::write(d.join("n"), "stashed").unwrap();
        run(&["stash", "-q"]);
        std::fs::write(d.join("n"), "uncommitted work").unwrap();
        std::fs::write(d.join("untracked"), "mine").unwrap();
        (dir, commits)
    }

    /// A cache of the test's own: no test writes into the user's.
    fn temp_cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("krepro"));
        (dir, cache)
    }

    /// Everything of the user's that a bisect must not touch.
    fn user_state(d: &Path) -> Vec<String> {
        let g = |args: &[&str]| git(d, args).unwrap();
        vec![
            g(&["rev-parse", "HEAD"]),
            g(&["symbolic-ref", "HEAD"]),
            g(&["status", "--porcelain"]),
            g(&["stash", "list"]),
            std::fs::read_to_string(d.join("n")).unwrap(),
            std::fs::read_to_string(d.join("untracked")).unwrap(),
            format!("{:?}", std::fs::read(d.join(".git/index")).unwrap()),
            format!("bisecting: {}", git(d, &["bisect", "log"]).is_ok()),
        ]
    }

    /// Builds by reading `state`; boots by the "kernel" file's word.
    struct Fake {
        builds: Cell<usize>,
        boots: Cell<usize>,
        /// Fail on these runs of a bad kernel only (flaky), None: always.
        fail_on_run: Option<u32>,
        infra_error_at: Option<String>,
        /// The kernels booted so far: a "flaky" one fails its first boot only.
        booted: std::collections::HashSet<PathBuf>,
        /// The build fix an "old-" tree's failure names.
        fix: Option<String>,
        out: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                builds: Cell::new(0),
                boots: Cell::new(0),
                fail_on_run: None,
                infra_error_at: None,
                booted: Default::default(),
                fix: None,
                out: tempfile::tempdir().unwrap(),
            }
        }
    }

    impl Tester for Fake {
        fn build(
            &mut self,
            wt: &Path,
            commit: &str,
            _: &mut dyn FnMut(BisectEvent<'_>),
        ) -> Result<BuildResult, String> {
            self.builds.set(self.builds.get() + 1);
            let mut state = std::fs::read_to_string(wt.join("state")).unwrap();
            // An "old-" tree fails to build with today's compiler unless the
            // known fix (a commit adding `buildfix`) is in.
            if let Some(real) = state.strip_prefix("old-").map(str::to_owned) {
                if !wt.join("buildfix").exists() {
                    return Ok(BuildResult::Failed {
                        why: "multiple definition of `yylloc'".into(),
                        toolchain: "fake".into(),
                        fix: self.fix.clone(),
                    });
                }
                state = real;
            }
            if state == "broken" {
                return Ok(BuildResult::Failed { why: "does not build".into(), toolchain: "fake".into(), fix: None });
            }
            let k = self.out.path().join(commit);
            let word = if self.infra_error_at.as_deref() == Some(commit) { "infra".to_owned() } else { state };
            std::fs::write(&k, word).unwrap();
            Ok(BuildResult::Kernel { bzimage: k, toolchain: "fake".into() })
        }
        fn boot(
            &mut self,
            kernel: &Path,
            run: u32,
            on: &mut dyn FnMut(BisectEvent<'_>),
        ) -> Result<BootSummary, RunError> {
            self.boots.set(self.boots.get() + 1);
            on(BisectEvent::Run(crate::boot::run::RunEvent::Fallback { reason: "fake: no KVM" }));
            let word = std::fs::read_to_string(kernel).unwrap();
            let first_boot = self.booted.insert(kernel.to_owned());
            let outcome = match word.as_str() {
                "infra" => return Err(RunError::QemuFailed { status: "exit status: 1".into(), stderr: "boom".into() }),
                w if w.starts_with("bad") && self.fail_on_run.is_none_or(|r| r == run) => Fail,
                "flaky" if first_boot => Fail,
                _ => Pass,
            };
            Ok(BootSummary { outcome, message: String::new(), console_log: kernel.to_owned() })
        }
    }

    fn opts(dir: &Path, good: &str, bad: &str) -> BisectOptions {
        BisectOptions {
            linux: dir.to_owned(),
            good: good.into(),
            bad: bad.into(),
            repro: "smoke".into(),
            runs: 1,
            remap: Remap::default(),
            find_fix: false,
            cherry_picks: vec![],
            key_extra: String::new(),
            check_endpoints: true,
            verify: true,
        }
    }

    #[test]
    fn finds_the_first_bad_commit_skipping_broken_ones_without_touching_the_user() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "broken", "good", "bad", "bad", "broken", "bad"]);
        let before = user_state(dir.path());
        let mut fake = Fake::new();
        let mut fallbacks = 0;
        let report = bisect(&opts(dir.path(), &c[0], &c[7]), &cache, &mut fake, &|| false, &mut |ev| {
            if let BisectEvent::Run(crate::boot::run::RunEvent::Fallback { reason: "fake: no KVM" }) = ev {
                fallbacks += 1;
            }
        })
        .unwrap();
        assert_eq!(fallbacks, fake.boots.get(), "every boot's events reach the bisect's stream");
        assert_eq!(report.commit.as_ref().unwrap().hash, c[4]);
        assert_eq!(report.commit.as_ref().unwrap().subject, "commit 4: bad");
        assert!(report.bisect_log.contains("# first bad commit:"), "{}", report.bisect_log);
        assert_eq!(report.steps[0].kind, TestKind::Endpoint);
        assert_eq!(user_state(dir.path()), before);
        // Our worktree stays for the next build of this repository, its
        // bisect ended; nothing else was added.
        let list = git(dir.path(), &["worktree", "list", "--porcelain"]).unwrap();
        let ours: Vec<&str> = list.lines().filter_map(|l| l.strip_prefix("worktree ")).skip(1).collect();
        assert_eq!(ours.len(), 1, "{list}");
        assert!(Path::new(ours[0]).starts_with(cache.worktrees()), "{list}");
        assert!(!worktree::bisecting(Path::new(ours[0])));
        let md = report.markdown(Some(("tinyconfig", "CONFIG_NET=y\n")));
        assert!(md.starts_with(&format!("## first bad commit: {} (\"commit 4: bad\")", &c[4][..12])), "{md}");
        assert!(md.contains("| bad |") && md.contains("CONFIG_NET=y"), "{md}");
    }

    #[test]
    fn only_skipped_commits_left_gives_the_candidates() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "broken", "broken", "bad"]);
        let report = bisect(&opts(dir.path(), &c[0], &c[3]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert!(report.commit.is_none());
        let mut cands = report.candidates.clone();
        cands.sort();
        let mut want = vec![c[1].clone(), c[2].clone(), c[3].clone()];
        want.sort();
        assert_eq!(cands, want);
    }

    #[test]
    fn infrastructure_errors_stop_and_the_same_call_resumes() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "good", "bad", "bad", "bad", "bad"]);
        let o = opts(dir.path(), &c[0], &c[7]);
        let mut fake = Fake::new();
        // The first bisect step (the middle commit) hits an infrastructure error.
        fake.infra_error_at = Some(c[3].clone());
        let err = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&err, BisectError::Infrastructure { message, .. } if message.contains("qemu failed")),
            "{err}"
        );
        let tested = fake.builds.get();
        assert_eq!(tested, 3, "two endpoints, then the failing step");
        // Fixed: the same call goes on; the endpoints are not tested again.
        let mut fixed = Fake::new();
        let mut said = Vec::new();
        let report = bisect(&o, &cache, &mut fixed, &|| false, &mut |e| {
            if let BisectEvent::Say(s) = e {
                said.push(s.to_owned())
            }
        })
        .unwrap();
        assert!(said.iter().any(|s| s.starts_with("resuming the bisect")), "{said:?}");
        assert_eq!(report.commit.unwrap().hash, c[4]);
        // At most three bisect steps, then the three verification checks.
        assert!(fixed.builds.get() <= 3 + 3, "retested: {}", fixed.builds.get());
    }

    #[test]
    fn flaky_repro_needs_runs() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "bad", "bad", "bad", "bad", "bad"]);
        let mut o = opts(dir.path(), &c[0], &c[7]);
        o.runs = 3;
        let mut fake = Fake::new();
        fake.fail_on_run = Some(3); // the bug shows one run in three
        let report = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.unwrap().hash, c[3]);
        assert!(report.flaky);
        // With one run, the bad end already looks good: the endpoint check says so.
        let (dir, c) = repo(&["good", "bad", "bad"]);
        let mut fake = Fake::new();
        fake.fail_on_run = Some(3);
        let err = bisect(&opts(dir.path(), &c[0], &c[2]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), format!("--bad {} tests good instead of bad: pass", &c[2][..12]));
    }

    #[test]
    fn find_fix_finds_the_first_good_commit() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["bad", "bad", "bad", "good", "good"]);
        let mut o = opts(dir.path(), &c[4], &c[0]);
        o.find_fix = true;
        let report = bisect(&o, &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.found, "first fixed commit");
        assert_eq!(report.commit.unwrap().hash, c[3]);
    }

    #[test]
    fn bad_refs_are_one_line_errors() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "bad"]);
        let e = bisect(&opts(dir.path(), "nope", &c[1]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("--good nope: not a commit in "), "{e}");
        let e = bisect(&opts(dir.path(), &c[1], &c[0]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("is not an ancestor of --bad"), "{e}");
        let e = bisect(&opts(Path::new("/"), "a", "b"), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "--linux /: not a git repository");
    }

    #[test]
    fn interrupt_stops_between_phases_and_keeps_state() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "bad", "bad"]);
        let o = opts(dir.path(), &c[0], &c[4]);
        let mut fake = Fake::new();
        let calls = Cell::new(0);
        // Interrupt once the endpoints are done.
        let err = bisect(
            &o,
            &cache,
            &mut fake,
            &|| {
                calls.set(calls.get() + 1);
                calls.get() > 2
            },
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, BisectError::Interrupted), "{err}");
        let report = bisect(&o, &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.unwrap().hash, c[3]);
    }

    #[test]
    fn the_culprit_is_verified_by_a_retest_its_parent_and_a_revert() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "bad", "bad", "bad"]);
        let before = user_state(dir.path());
        let mut fake = Fake::new();
        let report = bisect(&opts(dir.path(), &c[0], &c[5]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[3]);
        let v = report.verification.as_ref().expect("verified by default");
        assert_eq!(v.status, verify::VerifyStatus::Verified, "{v:?}");
        let whats: Vec<&str> = v.checks.iter().map(|k| k.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                format!("{} fails again", &c[3][..12]),
                format!("its parent {} passes", &c[2][..12]),
                format!("--bad {} with {} reverted passes", &c[5][..12], &c[3][..12]),
            ]
        );
        assert_eq!(v.checks[2].got, Some(Mark::Good));
        assert!(report.markdown(None).contains("### Verification: verified"), "{}", report.markdown(None));
        // The revert was a commit in our worktree only: no ref of the user's moved.
        assert_eq!(user_state(dir.path()), before);
        assert_eq!(git(dir.path(), &["for-each-ref"]).unwrap().lines().filter(|l| l.contains("Revert")).count(), 0);
        // --no-verify: no re-tests.
        let mut o = opts(dir.path(), &c[0], &c[5]);
        o.verify = false;
        let mut fake = Fake::new();
        let report = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert!(report.verification.is_none());
        assert_eq!(fake.builds.get(), report.steps.len());
    }

    #[test]
    fn a_flaky_failure_on_an_innocent_commit_is_not_verified() {
        let (_cache_dir, cache) = temp_cache();
        // Commit 2 only looks bad on its first boot: the bisect names it,
        // the re-test passes.
        let (dir, c) = repo(&["good", "good", "flaky", "flaky"]);
        let report = bisect(&opts(dir.path(), &c[0], &c[3]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[2]);
        let v = report.verification.unwrap();
        assert_eq!(v.status, verify::VerifyStatus::NotVerified, "{v:?}");
        assert!(v.summary.starts_with(&format!("did not hold: {} fails again", &c[2][..12])), "{}", v.summary);
        assert_eq!(v.checks[0].got, Some(Mark::Good));
    }

    #[test]
    fn a_revert_that_conflicts_could_not_verify() {
        let (_cache_dir, cache) = temp_cache();
        // Commit 3 changes the line commit 2 wrote: reverting 2 on 3 conflicts.
        let (dir, c) = repo(&["good", "good", "bad", "bad again"]);
        let before = user_state(dir.path());
        let report = bisect(&opts(dir.path(), &c[0], &c[3]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[2]);
        let v = report.verification.unwrap();
        assert_eq!(v.status, verify::VerifyStatus::CouldNotVerify, "{v:?}");
        assert_eq!(v.checks[2].message, "the revert conflicts in state");
        assert!(v.checks[..2].iter().all(verify::Check::agrees), "{v:?}");
        assert_eq!(user_state(dir.path()), before);
    }

    #[test]
    fn find_fix_verifies_with_the_roles_swapped() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["bad", "bad", "good", "good"]);
        let mut o = opts(dir.path(), &c[3], &c[0]);
        o.find_fix = true;
        let report = bisect(&o, &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[2]);
        let v = report.verification.unwrap();
        assert_eq!(v.status, verify::VerifyStatus::Verified, "{v:?}");
        assert_eq!(v.checks[2].what, format!("--good {} with {} reverted fails", &c[3][..12], &c[2][..12]));
    }

    #[test]
    fn an_interrupted_verification_resumes_with_the_checks_made() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "bad", "bad"]);
        let o = opts(dir.path(), &c[0], &c[3]);
        // Stop once the first check is in the state.
        let mut first = Fake::new();
        let state_has_a_check =
            || {
                std::fs::read_dir(cache.bisect()).into_iter().flatten().flatten().any(|e| {
                    std::fs::read_to_string(e.path().join("state.json")).is_ok_and(|t| t.contains("fails again"))
                })
            };
        let err = bisect(&o, &cache, &mut first, &state_has_a_check, &mut |_| {}).unwrap_err();
        assert!(matches!(err, BisectError::Interrupted), "{err}");
        let mut again = Fake::new();
        let report = bisect(&o, &cache, &mut again, &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[2]);
        assert_eq!(report.verification.unwrap().status, verify::VerifyStatus::Verified);
        assert_eq!(again.builds.get(), 2, "only the two checks left were made");
    }

    #[test]
    fn a_known_build_fix_is_applied_and_recorded() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["old-good", "old-good", "old-bad", "old-bad"]);
        let d = dir.path();
        // The upstream fix: on a branch of its own, not in the bisected range.
        let g = |args: &[&str]| git(d, args).unwrap();
        g(&["stash", "-q"]);
        g(&["checkout", "-q", "-b", "upstream-fix", &c[0]]);
        std::fs::write(d.join("buildfix"), "fixed\n").unwrap();
        g(&["add", "buildfix"]);
        g(&["commit", "-qm", "scripts/dtc: fix the build"]);
        let fix = g(&["rev-parse", "HEAD"]).trim().to_owned();
        g(&["checkout", "-q", "main"]);
        g(&["stash", "pop", "-q"]);
        let before = user_state(d);
        let mut fake = Fake::new();
        fake.fix = Some(fix.clone());
        let report = bisect(&opts(d, &c[0], &c[3]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.commit.as_ref().unwrap().hash, c[2]);
        assert!(report.steps.iter().all(|s| s.fixes == [fix.clone()]), "{:?}", report.steps);
        assert!(report.markdown(None).contains(&format!("fake + fix {}", &fix[..12])), "{}", report.markdown(None));
        // Without the fix in the repository, the commits are skipped (untestable).
        let mut fake = Fake::new();
        fake.fix = Some("0123456789012345678901234567890123456789".into());
        let err = bisect(&opts(d, &c[0], &c[3]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("tests skip instead of bad"), "{err}");
        assert_eq!(user_state(d), before);
    }
}
