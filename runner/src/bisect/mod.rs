//! Bisect: one search over a [`Space`] of candidates, oldest to newest, for
//! the first one that behaves like the newer end. A space is what is
//! searched: the commits of a git repository ([`git`]: built in krepro's
//! worktree of it, the user's checkout never touched) or a list of
//! prebuilt kernels ([`kernels`]: nothing built). A space says only what
//! is left between the marks so far and how to get a candidate's kernel;
//! the search, its resumable state, the boots and their verdicts, the
//! verification of the answer and the report are this module's, the same
//! for every space.
//!
//! State lives in `~/.cache/krepro/bisect/<key>/state.json` (every tested
//! candidate, the verification's checks), so the same command after
//! Ctrl-C, an infrastructure failure or a reboot goes on where it stopped.

pub(crate) mod config;
pub(crate) mod git;
pub(crate) mod kernels;
pub(crate) mod minimize;
pub(crate) mod verdict;
pub(crate) mod verify;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::boot::outcome::{Mark, Outcome, Remap};
use crate::boot::BootError;
use crate::host::cache::Cache;
use crate::host::spawn::CmdError;
use crate::image::kernel::Kernel;
use verdict::{Counts, Rules};

/// A commit hash shortened to 12 digits, for people; anything else (a
/// kernel's name, "BAD with C reverted") whole.
pub(crate) fn short(name: &str) -> &str {
    if name.len() > 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        &name[..12]
    } else {
        name
    }
}

/// Which end a candidate behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Side {
    /// Like the older end: good (with --find-fix: still broken).
    Old,
    /// Like the newer end: bad (with --find-fix: fixed).
    New,
}

impl Side {
    /// The side a verdict puts a candidate on; None for a skip.
    pub(crate) fn of(verdict: Mark, find_fix: bool) -> Option<Side> {
        match (verdict, find_fix) {
            (Mark::Skip, _) => None,
            (Mark::Good, false) | (Mark::Bad, true) => Some(Side::Old),
            (Mark::Bad, false) | (Mark::Good, true) => Some(Side::New),
        }
    }

    /// The verdict this side means.
    pub(crate) fn mark(self, find_fix: bool) -> Mark {
        match (self, find_fix) {
            (Side::Old, false) | (Side::New, true) => Mark::Good,
            (Side::New, false) | (Side::Old, true) => Mark::Bad,
        }
    }
}

/// One thing a bisect can test: a commit, or a prebuilt kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Candidate {
    /// What names it for good: a commit hash, a kernel's name.
    pub id: String,
    /// What people read: the commit's subject, the kernel's version.
    pub label: String,
}

/// Where one step's time went, in seconds: making the candidate ready
/// (the checkout, or the fetch of a prebuilt kernel; the build's
/// config, compile, link and image), taking the PVH vmlinux out and
/// packing the initrd additions, and the boots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    /// Moving the worktree to the commit (with the cherry-picks) and
    /// identifying the source.
    pub checkout: f64,
    /// A prebuilt kernel's download and unpacking.
    pub fetch: f64,
    /// Choosing the compiler, the config and its check.
    pub config: f64,
    pub compile: f64,
    pub link: f64,
    pub image: f64,
    /// The kernel made ready to boot: its PVH vmlinux and modules.
    pub vmlinux: f64,
    pub boot: f64,
    /// How its compiles went in ccache, where they could come from
    /// elsewhere (`--distcc`, `--ccache-remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccache: Option<crate::builder::distribute::CacheStats>,
}

impl Phases {
    /// The phases in the report's order, with their names.
    pub fn named(&self) -> [(&'static str, f64); 8] {
        [
            ("checkout", self.checkout),
            ("fetch", self.fetch),
            ("config", self.config),
            ("compile", self.compile),
            ("link", self.link),
            ("image", self.image),
            ("vmlinux", self.vmlinux),
            ("boot", self.boot),
        ]
    }

    /// make's own time: compile, link and image.
    pub fn make(&self) -> f64 {
        self.compile + self.link + self.image
    }
}

/// A candidate made ready to boot, or why it cannot be tested.
#[derive(Debug)]
pub enum Made {
    Kernel {
        kernel: Kernel,
        /// How it was made, for the report ("gcc-12"); empty for prebuilt.
        toolchain: String,
        /// Known build fixes applied to build it.
        fixes: Vec<String>,
        /// The time it took, by phase (the boot's phases are the search's).
        phases: Phases,
        /// [`Kernel::code_hash`], where the space builds kernels (two
        /// commits can build the same one).
        code_hash: Option<String>,
    },
    /// It does not build (or cannot give the repro its config): skipped.
    Untestable { why: String, toolchain: String, fixes: Vec<String>, phases: Phases },
}

/// A check of the answer that the space adds (git: the new end with the
/// culprit reverted), or why it cannot be made.
#[derive(Debug)]
pub(crate) struct ExtraCheck {
    pub what: String,
    /// How the report names what is tested.
    pub tested: String,
    pub expected: Side,
    pub candidate: Result<Candidate, String>,
}

/// How a report names what a space searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Words {
    /// "commit", "kernel".
    pub one: &'static str,
    pub many: &'static str,
    /// What a candidate's label is: "subject", "version".
    pub about: &'static str,
    /// How a candidate is made ready: "build", "fetch".
    pub made: &'static str,
    /// Whether krepro's compiler made them (the report's compiler column).
    pub compiled: bool,
}

/// What a bisect searches. Each space supplies the candidates and their
/// kernels; everything else is the search's.
pub(crate) trait Space {
    /// How the report names its candidates.
    fn words(&self) -> Words;
    /// What makes this search this one (part of the state's key).
    fn key(&self) -> String;
    /// The ends, checked: (older, newer). The older is good (with
    /// --find-fix: broken), the newer bad (fixed).
    fn ends(&self) -> (Candidate, Candidate);
    /// The candidates still open between the old-side marks and the
    /// newest new-side one (`new`, itself not among them), best first:
    /// git orders them by its bisection weight, a list from the middle.
    fn open(&mut self, old: &[&Candidate], new: &Candidate) -> Result<Vec<Candidate>, BisectError>;
    /// The candidate `c` is first after: its parent commit, or the old-side
    /// kernel before it.
    fn before(&mut self, c: &Candidate, old: &[&Candidate]) -> Result<Option<Candidate>, BisectError>;
    /// Candidate `c` made ready: built, or fetched.
    fn kernel(&mut self, c: &Candidate, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<Made, BisectError>;
    /// Verification's checks beyond testing the answer and `before`
    /// again.
    fn extra_checks(&mut self, culprit: &Candidate, new_end: &Candidate) -> Result<Vec<ExtraCheck>, BisectError>;
    /// How verification's first two checks read: (the answer again, `before` again).
    fn check_words(&self, culprit: &Candidate, before: &Candidate, find_fix: bool) -> (String, String);
    /// What the report says of the answer beyond the search's own facts.
    fn detail(&mut self, first: Option<&Candidate>, before: Option<&Candidate>) -> Result<Detail, BisectError>;
    /// A log of the marks that replays the search outside krepro (git's
    /// `git bisect replay`); empty where there is none.
    fn log(&self, tested: &[Tested], first: Option<&Candidate>, find_fix: bool) -> String;
    /// Called when the search is over (git: the worktree goes back to be
    /// reused).
    fn done(&mut self) {}
    /// With boots at once (`--parallel J`): the J of `open` (the
    /// candidates still open, none skipped) a round tests side by side,
    /// splitting the range into J+1 parts, oldest first. Empty where
    /// kernels are built one at a time (the build, not the boot, is the
    /// bottleneck): the search bisects.
    fn round(&self, _open: &[&Candidate], _j: u32) -> Vec<Candidate> {
        Vec::new()
    }
}

/// Boots a kernel once. The real one is qemu under a [`crate::boot::run::Plan`];
/// tests use a fake.
pub(crate) trait Booter {
    fn boot(
        &mut self,
        kernel: &Kernel,
        run: u32,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BootSummary, BootError>;

    /// The boots `jobs` ((index into `kernels`, run)), up to `parallel`
    /// at once, results in order; after a boot that could not run, no
    /// further one starts. By default one after another.
    fn boot_many(
        &mut self,
        kernels: &[&Kernel],
        jobs: &[(usize, u32)],
        _parallel: u32,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Vec<Result<BootSummary, BootError>> {
        let mut results = Vec::new();
        for &(k, run) in jobs {
            let r = self.boot(kernels[k], run, on);
            let failed = r.is_err();
            results.push(r);
            if failed {
                break;
            }
        }
        results
    }
}

/// One boot's result, as the bisect needs it.
pub struct BootSummary {
    pub outcome: Outcome,
    pub message: String,
    /// The title of the crash it counted, if it crashed.
    pub crash_title: Option<String>,
    pub console_log: PathBuf,
    /// Seconds spent making the kernel ready to boot before it (its PVH
    /// vmlinux, the initrd additions): on its first run only.
    pub prepare_secs: f64,
}

/// Why a candidate was tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// The --good/--bad check before bisecting.
    Endpoint,
    /// A step of the search.
    Bisect,
    /// The answer tested again (fresh boots).
    Verify,
    /// A release tested, newest first, for a good end (`krepro syz --bisect`).
    Release,
}

/// One tested candidate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tested {
    /// Its id: a commit hash or a kernel's name.
    pub commit: String,
    /// Its label: the commit's subject, the kernel's version.
    pub subject: String,
    pub verdict: Mark,
    /// One per boot (empty when it did not build).
    pub outcomes: Vec<Outcome>,
    /// Why skipped, or the message of the deciding run.
    pub message: String,
    /// Whether the runs disagreed (a flaky repro).
    pub flaky: bool,
    /// Making it ready: the build, or the fetch.
    pub build_secs: f64,
    pub boot_secs: f64,
    pub console_log: Option<PathBuf>,
    pub kind: TestKind,
    /// The compiler it was built with.
    #[serde(default)]
    pub toolchain: String,
    /// Known build fixes applied to build it.
    #[serde(default)]
    pub fixes: Vec<String>,
    /// Where its time went.
    #[serde(default)]
    pub phases: Phases,
    /// Each run's crash title, in order (None: it did not crash).
    #[serde(default)]
    pub titles: Vec<Option<String>>,
    /// How its runs went: the bug, another crash, clean.
    #[serde(default)]
    pub counts: Counts,
    /// Its kernel's [`Kernel::code_hash`], where known.
    #[serde(default)]
    pub code_hash: Option<String>,
    /// When its kernel is the same as one tested before (by code hash),
    /// whose verdict it took without booting: that one's id.
    #[serde(default)]
    pub same_kernel_as: Option<String>,
    /// With `--parallel`: the round it was booted in, beside the other
    /// candidates of that round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u32>,
}

impl Tested {
    /// `c`, made ready in `build_secs`, not booted yet: a skip until its
    /// boots say otherwise.
    fn blank(c: &Candidate, kind: TestKind, build_secs: f64) -> Tested {
        Tested {
            commit: c.id.clone(),
            subject: c.label.clone(),
            verdict: Mark::Skip,
            outcomes: Vec::new(),
            message: String::new(),
            flaky: false,
            build_secs,
            boot_secs: 0.0,
            console_log: None,
            kind,
            toolchain: String::new(),
            fixes: Vec::new(),
            phases: Phases::default(),
            titles: Vec::new(),
            counts: Counts::default(),
            code_hash: None,
            same_kernel_as: None,
            round: None,
        }
    }
}

/// The search's progress.
#[derive(Debug)]
pub(crate) enum BisectEvent<'a> {
    Say(&'a str),
    /// A candidate is about to be tested.
    Testing {
        commit: &'a str,
        subject: &'a str,
        step: usize,
        steps_left: Option<u32>,
        revs_left: Option<u32>,
        kind: TestKind,
    },
    Phase(&'a str),
    Build(crate::builder::BuildEvent<'a>),
    /// What a boot shows as it happens (fallbacks, the console).
    Run(crate::boot::run::RunEvent<'a>),
    Tested(&'a Tested),
}

/// How the search goes: what is the same for every space.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub repro: String,
    /// The repro's one-line description, for the report.
    pub description: String,
    pub runs: u32,
    pub remap: Remap,
    pub find_fix: bool,
    /// Also part of the state key: what else changes the answer (builder,
    /// --append, timeout).
    pub key_extra: String,
    /// Test the ends first and stop if they do not behave as said.
    pub check_endpoints: bool,
    /// Test the answer again.
    pub verify: bool,
    /// `--restart`: drop any saved state of this bisect and start over.
    pub restart: bool,
    /// `--same-crash`: a run crashing with another title than the bug's
    /// is "other", not bad.
    pub same_crash: bool,
    /// The bug's title (`--same-crash TITLE`, `krepro syz`'s report);
    /// None: the bad end's.
    pub crash_title: Option<String>,
    /// `--min-bad K`.
    pub min_bad: u32,
    /// `--parallel J`: where the space's kernels are prebuilt, rounds of
    /// J candidates booted at once (a multisection); 1 bisects.
    pub parallel: u32,
    /// Candidates tested before the search (the bad end, and the releases
    /// [`probe`] tried): the search starts from their verdicts.
    pub seed: Vec<Tested>,
}

/// Why a bisect stopped without an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BisectError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Endpoint(String),
    #[error("stopped at {commit}: {message} (fix it and run the same command to go on)")]
    Infrastructure { commit: String, message: String },
    #[error("interrupted; run the same command to go on where it stopped")]
    Interrupted,
    #[error("the bisect state {} cannot be read ({why}): --restart starts this bisect over", .path.display())]
    BadState { path: PathBuf, why: String },
    #[error(transparent)]
    Git(#[from] CmdError),
    #[error(transparent)]
    Worktree(#[from] crate::builder::worktree::WorktreeError),
    #[error(transparent)]
    Lock(#[from] crate::host::lock::LockError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BisectError {
    let context = context.into();
    move |source| BisectError::Io { context, source }
}

/// What the report says of the answer that only the space knows.
#[derive(Clone, Debug, Serialize)]
pub(crate) enum Detail {
    /// A commit: who wrote it, when.
    #[serde(rename = "commit")]
    Commit(git::CommitInfo),
    /// A kernel boundary: both kernels' versions and the git bisect next.
    #[serde(rename = "kernels")]
    Kernels(kernels::Answer),
    /// A config change: the option, its Kconfig entry, what changed with it.
    #[serde(rename = "config")]
    Config(config::Answer),
    #[serde(skip)]
    None,
}

impl Detail {
    /// The report's head when it names the answer: its name and facts.
    fn markdown_head(&self, found: &str) -> Option<String> {
        match self {
            Detail::Commit(c) => Some(c.markdown_head(found)),
            Detail::Kernels(k) if k.first.is_some() => Some(k.markdown_head(found)),
            Detail::Config(c) if c.option.is_some() => Some(c.markdown_head(found)),
            _ => None,
        }
    }

    /// What to do next, after the facts.
    fn markdown_next(&self) -> String {
        match self {
            Detail::Kernels(k) => k.markdown_next(),
            _ => String::new(),
        }
    }
}

/// The answer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct BisectReport {
    /// "first bad commit", "first fixed kernel", ...
    pub found: String,
    /// The first candidate like the newer end, when the search narrowed
    /// it to one.
    pub first: Option<Candidate>,
    /// The one before it.
    pub before: Option<Candidate>,
    /// The space's facts about the answer (`commit` or `kernels` in JSON).
    #[serde(flatten)]
    pub detail: Detail,
    /// When only skipped candidates are left: them.
    pub candidates: Vec<String>,
    pub repro: String,
    #[serde(skip)]
    pub description: String,
    pub good: String,
    pub bad: String,
    pub steps: Vec<Tested>,
    pub flaky: bool,
    pub bisect_log: String,
    pub wall_secs: f64,
    /// The answer tested again (None with --no-verify, or when there is
    /// no single answer).
    pub verification: Option<verify::Verification>,
    /// With `--same-crash`: the bug's crash title.
    pub crash_title: Option<String>,
    /// How far the answer can be trusted, from the bug's rate at the bad
    /// end (None: the bad end was not tested).
    pub trust: Option<Trust>,
    /// Whether the answer's kernel differs in code from the one before it
    /// (None: not known, e.g. prebuilt kernels). A `false` is a no-op
    /// culprit: the search was misled.
    pub changes_kernel: Option<bool>,
    /// Boots not made: candidates whose kernel was the same as one tested.
    pub boots_saved: u32,
    #[serde(skip)]
    words: Option<Words>,
}

/// How far an answer can be trusted.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Trust {
    /// The share of the bad end's runs that showed the bug.
    pub rate: f64,
    pub bad_end_runs: u32,
    /// The product over good verdicts of the chance that the verdict was
    /// right: 1 - (1 - rate)^clean runs ([`verdict::confidence`]).
    pub confidence: f64,
    /// `confidence` is at least [`verdict::RELIABLE`].
    pub reliable: bool,
}

impl Trust {
    fn of(steps: &[Tested], bad_end: &str) -> Option<Trust> {
        let end = steps.iter().find(|t| t.kind == TestKind::Endpoint && t.commit == bad_end)?;
        let rate = end.counts.rate()?;
        let goods = steps.iter().filter(|t| {
            matches!(t.kind, TestKind::Endpoint | TestKind::Bisect)
                && t.verdict == Mark::Good
                && t.same_kernel_as.is_none()
        });
        let confidence = verdict::confidence(rate, goods.map(|t| t.counts.clean));
        Some(Trust { rate, bad_end_runs: end.counts.runs, confidence, reliable: confidence >= verdict::RELIABLE })
    }
}

/// What a bisect keeps between runs of the same command.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Every candidate tested, in order (the ends and the steps).
    steps: Vec<Tested>,
    wall_secs: f64,
    /// The answer, once the search found it (a resumed bisect goes
    /// straight to verifying it).
    #[serde(default)]
    named: Option<Candidate>,
    /// The verification checks made so far.
    #[serde(default)]
    checks: Vec<verify::Check>,
    /// With `--same-crash`: the bug's title, given or learned from the bad end.
    #[serde(default)]
    title: Option<String>,
    /// Rounds of candidates booted side by side so far (`--parallel`).
    #[serde(default)]
    rounds: u32,
}

impl State {
    /// The state saved at `path`; None when there is none. One that
    /// cannot be read or parsed is an error naming it: it is never
    /// silently dropped (`--restart` drops it).
    fn load(path: &Path) -> Result<Option<State>, BisectError> {
        let bad = |why: String| BisectError::BadState { path: path.to_owned(), why };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| bad(e.to_string()))
    }

    /// Saves it at `path` atomically: temp file, fsync, rename (a Ctrl-C,
    /// a full disk or a power cut never leaves half a file).
    fn save(&self, path: &Path) -> Result<(), BisectError> {
        let text = serde_json::to_string_pretty(self).expect("plain data");
        crate::host::atomic::write(path, text.as_bytes()).map_err(io(format!("write {}", path.display())))
    }

    fn tested(&self, id: &str) -> Option<&Tested> {
        self.steps.iter().find(|s| s.commit == id)
    }
}

/// A candidate of a round (`--parallel`), as the progress names it: its
/// step, and the (steps, revisions) left after it.
#[derive(Clone, Copy)]
struct Member<'c> {
    c: &'c Candidate,
    kind: TestKind,
    step: usize,
    left: (Option<u32>, Option<u32>),
}

/// The search's moving parts.
struct Search<'a> {
    opts: &'a Options,
    space: &'a mut dyn Space,
    booter: &'a mut dyn Booter,
    interrupted: &'a dyn Fn() -> bool,
    state: State,
    state_path: PathBuf,
    /// The bad end's id: its runs all go ahead, to measure the bug's rate.
    measure: Option<String>,
}

impl Search<'_> {
    fn check_interrupt(&self) -> Result<(), BisectError> {
        if (self.interrupted)() {
            return Err(BisectError::Interrupted);
        }
        Ok(())
    }

    /// `c`'s verdict: from the state when it was tested before, else
    /// tested now and saved.
    fn test(
        &mut self,
        c: &Candidate,
        kind: TestKind,
        step: usize,
        left: (Option<u32>, Option<u32>),
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<Tested, BisectError> {
        if let Some(done) = self.state.tested(&c.id) {
            return Ok(done.clone());
        }
        on(BisectEvent::Testing {
            commit: &c.id,
            subject: &c.label,
            step,
            steps_left: left.0,
            revs_left: left.1,
            kind,
        });
        let t = self.fresh(c, kind, on)?;
        self.record(&t, on)?;
        Ok(t)
    }

    /// A test made now: told, added to the state, and the state saved.
    fn record(&mut self, t: &Tested, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<(), BisectError> {
        on(BisectEvent::Tested(t));
        self.state.steps.push(t.clone());
        self.state.save(&self.state_path)
    }

    /// How runs count now (the bug's title may have been learned).
    fn rules(&self) -> Rules<'_> {
        Rules {
            remap: &self.opts.remap,
            min_bad: self.opts.min_bad,
            same_crash: self.opts.same_crash,
            title: self.state.title.as_deref(),
        }
    }

    /// `c` made ready and booted `--runs` times, fresh: fewer when the
    /// verdict is bad early, unless `c` is the bad end, whose runs measure
    /// the bug's rate. A kernel the same in code as one tested before (not
    /// when verifying) takes that one's verdict without booting.
    fn fresh(
        &mut self,
        c: &Candidate,
        kind: TestKind,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<Tested, BisectError> {
        let opts = self.opts;
        on(BisectEvent::Phase(self.space.words().made));
        let started = Instant::now();
        let made = self.space.kernel(c, on);
        // A build stopped by a signal fails as a build: the signal wins.
        self.check_interrupt()?;
        let made = made?;
        let build_secs = started.elapsed().as_secs_f64();
        let blank = |verdict: Mark, message: String| Tested { verdict, message, ..Tested::blank(c, kind, build_secs) };
        let (kernel, toolchain, fixes, phases, code_hash) = match made {
            Made::Kernel { kernel, toolchain, fixes, phases, code_hash } => {
                (kernel, toolchain, fixes, phases, code_hash)
            }
            Made::Untestable { why, toolchain, fixes, phases } => {
                return Ok(Tested { toolchain, fixes, phases, ..blank(Mark::Skip, why) });
            }
        };
        if let Some(same) = code_hash.as_ref().filter(|_| kind != TestKind::Verify).and_then(|h| {
            self.state
                .steps
                .iter()
                .find(|t| t.code_hash.as_ref() == Some(h) && t.verdict != Mark::Skip && t.same_kernel_as.is_none())
        }) {
            let message = format!("the same kernel as {}: its verdict, not booted", short(&same.commit));
            return Ok(Tested {
                toolchain,
                fixes,
                phases,
                counts: same.counts,
                // Its kernel's boots are these: their console and titles.
                console_log: same.console_log.clone(),
                titles: same.titles.clone(),
                code_hash,
                same_kernel_as: Some(same.commit.clone()),
                ..blank(same.verdict, message)
            });
        }
        let infrastructure = |message: String| BisectError::Infrastructure { commit: short(&c.id).to_owned(), message };
        let measure = self.measure.as_deref() == Some(c.id.as_str());
        let boot_started = Instant::now();
        let mut boots = Vec::new();
        let runs = opts.runs.max(1);
        for run in 1..=runs {
            on(BisectEvent::Phase(&format!("boot {run}/{runs}")));
            match self.booter.boot(&kernel, run, on) {
                Ok(b) => boots.push(b),
                Err(BootError::Interrupted) => return Err(BisectError::Interrupted),
                Err(e) => return Err(infrastructure(e.to_string())),
            }
            self.learn_title(&boots, on).map_err(&infrastructure)?;
            let counts = self.count_boots(&boots).map_err(&infrastructure)?;
            if !measure && !self.rules().needs_more_runs(&counts) {
                break;
            }
        }
        let base = Tested { toolchain, fixes, code_hash, phases, ..blank(Mark::Skip, String::new()) };
        self.tally(base, boots, boot_started.elapsed().as_secs_f64()).map_err(infrastructure)
    }

    /// With `--same-crash` and no title given, the bad end's first crash
    /// is the bug: learned from the first of `boots` that shows it.
    fn learn_title(&mut self, boots: &[BootSummary], on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<(), String> {
        if !self.opts.same_crash || self.state.title.is_some() {
            return Ok(());
        }
        for boot in boots {
            let bad = self.rules().shows(boot.outcome, None)? == verdict::Shows::Bug;
            if let (true, Some(t)) = (bad, boot.crash_title.clone()) {
                on(BisectEvent::Say(&format!("chasing the bad end's crash: {t}")));
                self.state.title = Some(t);
                return Ok(());
            }
        }
        Ok(())
    }

    fn count_boots(&self, boots: &[BootSummary]) -> Result<Counts, String> {
        let outcomes: Vec<Outcome> = boots.iter().map(|b| b.outcome).collect();
        let titles: Vec<Option<String>> = boots.iter().map(|b| b.crash_title.clone()).collect();
        self.count(&outcomes, &titles)
    }

    /// A candidate's boots added up into its test: `base` holds how it
    /// was made.
    fn tally(&self, base: Tested, boots: Vec<BootSummary>, boot_secs: f64) -> Result<Tested, String> {
        let counts = self.count_boots(&boots)?;
        let verdict = self.rules().verdict(&counts)?;
        let mut phases = base.phases;
        let (mut message, mut console_log) = (String::new(), None);
        let (mut outcomes, mut titles) = (Vec::new(), Vec::new());
        for boot in boots {
            phases.vmlinux += boot.prepare_secs;
            if outcomes.is_empty() || boot.outcome != Outcome::Pass {
                message = boot.message;
                console_log = Some(boot.console_log);
            }
            outcomes.push(boot.outcome);
            titles.push(boot.crash_title);
        }
        let flaky = outcomes.iter().any(|o| *o != outcomes[0]);
        phases.boot = (boot_secs - phases.vmlinux).max(0.0);
        Ok(Tested { verdict, outcomes, message, flaky, boot_secs, console_log, phases, titles, counts, ..base })
    }

    /// Candidates tested side by side (`--parallel`, a space whose kernels
    /// are prebuilt): each made ready in turn (fetched), then every boot
    /// of all of them at once, `--runs` each; saved in order. What was
    /// tested before keeps its verdict.
    fn test_round(
        &mut self,
        cs: &[Member<'_>],
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<Vec<Tested>, BisectError> {
        enum Ready {
            /// Tested before: its verdict stands.
            Known(Tested),
            /// Made ready just now, or found untestable (a skip to record).
            Untestable(Tested),
            Boot(Tested, Kernel),
        }
        self.state.rounds += 1;
        let round = self.state.rounds;
        let mut ready = Vec::new();
        for &Member { c, kind, step, left } in cs {
            if let Some(done) = self.state.tested(&c.id) {
                ready.push(Ready::Known(done.clone()));
                continue;
            }
            let (commit, subject) = (&c.id, &c.label);
            let (steps_left, revs_left) = left;
            on(BisectEvent::Testing { commit, subject, step, steps_left, revs_left, kind });
            on(BisectEvent::Phase(self.space.words().made));
            let started = Instant::now();
            let made = self.space.kernel(c, on);
            self.check_interrupt()?;
            let base = Tested { round: Some(round), ..Tested::blank(c, kind, started.elapsed().as_secs_f64()) };
            ready.push(match made? {
                Made::Kernel { kernel, toolchain, fixes, phases, code_hash } => {
                    Ready::Boot(Tested { toolchain, fixes, phases, code_hash, ..base }, kernel)
                }
                Made::Untestable { why, toolchain, fixes, phases } => {
                    Ready::Untestable(Tested { toolchain, fixes, phases, message: why, ..base })
                }
            });
        }
        let kernels: Vec<&Kernel> =
            ready.iter().filter_map(|r| if let Ready::Boot(_, k) = r { Some(k) } else { None }).collect();
        let runs = self.opts.runs.max(1);
        let jobs: Vec<(usize, u32)> = (0..kernels.len()).flat_map(|k| (1..=runs).map(move |run| (k, run))).collect();
        on(BisectEvent::Phase(&format!(
            "{} boots of {} kernels, {} at a time",
            jobs.len(),
            kernels.len(),
            self.opts.parallel.min(jobs.len() as u32)
        )));
        let boot_started = Instant::now();
        let mut results = self.booter.boot_many(&kernels, &jobs, self.opts.parallel, on).into_iter();
        let boot_secs = boot_started.elapsed().as_secs_f64();
        let mut tested = Vec::new();
        for r in ready {
            let t = match r {
                Ready::Known(t) => t,
                Ready::Untestable(t) => {
                    self.record(&t, on)?;
                    t
                }
                Ready::Boot(base, _) => {
                    let id = short(&base.commit).to_owned();
                    let infrastructure = |message: String| BisectError::Infrastructure { commit: id.clone(), message };
                    let mut boots = Vec::new();
                    for r in results.by_ref().take(runs as usize) {
                        match r {
                            Ok(b) => boots.push(b),
                            Err(BootError::Interrupted) => return Err(BisectError::Interrupted),
                            Err(e) => return Err(infrastructure(e.to_string())),
                        }
                    }
                    self.learn_title(&boots, on).map_err(&infrastructure)?;
                    // The round's boots ran side by side: each kernel's
                    // time is the round's.
                    let t = self.tally(base, boots, boot_secs).map_err(&infrastructure)?;
                    self.record(&t, on)?;
                    t
                }
            };
            tested.push(t);
        }
        Ok(tested)
    }

    fn count(&self, outcomes: &[Outcome], titles: &[Option<String>]) -> Result<Counts, String> {
        let rules = self.rules();
        let mut counts = Counts::default();
        for (o, t) in outcomes.iter().zip(titles) {
            counts.add(rules.shows(*o, t.as_deref())?);
        }
        Ok(counts)
    }

    /// `c`'s kernel's code hash: from a test of it, else made now (built,
    /// not booted); None where the space does not hash its kernels.
    fn code_hash_of(
        &mut self,
        c: &Candidate,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<Option<String>, BisectError> {
        // Tested: its hash, or none where the space does not hash kernels.
        if let Some(t) = self.state.steps.iter().find(|t| t.commit == c.id && t.verdict != Mark::Skip) {
            return Ok(t.code_hash.clone());
        }
        on(BisectEvent::Say(&format!("building {} to compare its kernel with the answer's", short(&c.id))));
        Ok(match self.space.kernel(c, on)? {
            Made::Kernel { code_hash, .. } => code_hash,
            Made::Untestable { .. } => None,
        })
    }

    /// The candidates the marks put on each side: (old side, the newest
    /// new-side one), from the ends and the steps.
    fn sides(&self, old_end: &Candidate, new_end: &Candidate) -> (Vec<Candidate>, Candidate) {
        let ff = self.opts.find_fix;
        let mut old = vec![old_end.clone()];
        let mut new = new_end.clone();
        for s in self.state.steps.iter().filter(|s| matches!(s.kind, TestKind::Bisect | TestKind::Release)) {
            let c = Candidate { id: s.commit.clone(), label: s.subject.clone() };
            match Side::of(s.verdict, ff) {
                Some(Side::Old) => old.push(c),
                // Each new-side mark lies before the one it narrowed from.
                Some(Side::New) => new = c,
                None => {}
            }
        }
        (old, new)
    }

    fn skipped(&self, id: &str) -> bool {
        self.state.steps.iter().any(|s| s.commit == id && s.verdict == Mark::Skip)
    }
}

/// Where the search ended.
enum End {
    /// The first new-side candidate.
    Found(Candidate),
    /// Only skipped candidates are left: one of them (or the newest
    /// new-side one) is the first.
    OnlySkipped(Vec<Candidate>),
}

/// Runs the bisect to its end. `interrupted` is polled between phases.
pub(crate) fn bisect(
    opts: &Options,
    space: &mut dyn Space,
    booter: &mut dyn Booter,
    cache: &Cache,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<BisectReport, BisectError> {
    let started = Instant::now();
    let (old_end, new_end) = space.ends();
    let words = space.words();
    let key = blake3::hash(
        format!(
            "{}\n{}\n{}\n{}\n{}\n{} {:?} {}",
            space.key(),
            opts.repro,
            opts.runs,
            opts.find_fix,
            opts.key_extra,
            opts.same_crash,
            opts.crash_title,
            opts.min_bad
        )
        .as_bytes(),
    )
    .to_hex()[..16]
        .to_owned();
    let state_dir = cache.bisect().join(&key);
    let state_path = state_dir.join("state.json");
    // One krepro at a time on a bisect's state.
    let what = format!("the bisect in {}", state_dir.display());
    let _lock = cache.lock(&state_dir.join("lock"), &what, &mut |m| on(BisectEvent::Say(m)))?;
    if opts.restart && state_path.exists() {
        std::fs::remove_file(&state_path).map_err(io(format!("remove {}", state_path.display())))?;
        on(BisectEvent::Say(&format!("--restart: dropped the saved state {}", state_path.display())));
    }
    let state = match State::load(&state_path)? {
        Some(s) => {
            on(BisectEvent::Say(&format!(
                "resuming the bisect in {} ({} {} tested so far)",
                state_dir.display(),
                s.steps.len(),
                words.many
            )));
            s
        }
        None => State { steps: opts.seed.clone(), ..State::default() },
    };
    std::fs::create_dir_all(&state_dir).map_err(io(format!("create {}", state_dir.display())))?;
    let ff = opts.find_fix;
    let bad_end = if ff { &old_end } else { &new_end };
    let measure = Some(bad_end.id.clone());
    let mut search = Search { opts, space, booter, interrupted, state, state_path, measure };
    if search.state.title.is_none() {
        search.state.title = opts.crash_title.clone().filter(|_| opts.same_crash);
    }

    let end = match search.state.named.clone() {
        // Interrupted while verifying: the answer stands, go on checking it.
        Some(named) => End::Found(named),
        None => {
            if opts.check_endpoints {
                // The newer end first: a repro that does not reproduce at
                // all is the most common wrong setup. Where kernels boot
                // side by side, both ends at once.
                let (old_flag, new_flag) = if ff { ("--bad", "--good") } else { ("--good", "--bad") };
                let ends = [(&new_end, Side::New, new_flag), (&old_end, Side::Old, old_flag)];
                let together = opts.parallel > 1 && !search.space.round(&[&old_end, &new_end], 2).is_empty();
                let mut at_once = if together {
                    search.check_interrupt()?;
                    let both: Vec<_> = ends
                        .iter()
                        .map(|e| Member { c: e.0, kind: TestKind::Endpoint, step: 0, left: (None, None) })
                        .collect();
                    search.test_round(&both, on)?
                } else {
                    Vec::new()
                }
                .into_iter();
                for (c, want, flag) in ends {
                    search.check_interrupt()?;
                    let t = match at_once.next() {
                        Some(t) => t,
                        None => search.test(c, TestKind::Endpoint, 0, (None, None), on)?,
                    };
                    if Side::of(t.verdict, ff) != Some(want) {
                        let runs: Vec<&str> = t.outcomes.iter().map(|o| o.name()).collect();
                        let seen = format!("{} {}", runs.join(", "), t.message);
                        return Err(BisectError::Endpoint(format!(
                            "{flag} {} tests {} instead of {}: {}",
                            short(&c.id),
                            t.verdict.name(),
                            want.mark(ff).name(),
                            seen.trim()
                        )));
                    }
                }
            }
            let mut step = search.state.steps.iter().filter(|s| s.kind == TestKind::Bisect).count();
            loop {
                search.check_interrupt()?;
                let (old, new) = search.sides(&old_end, &new_end);
                let old_refs: Vec<&Candidate> = old.iter().collect();
                let all = search.space.open(&old_refs, &new)?;
                let open: Vec<&Candidate> = all.iter().filter(|c| !search.skipped(&c.id)).collect();
                let Some(next) = open.first().map(|c| (*c).clone()) else {
                    if all.is_empty() {
                        break End::Found(new);
                    }
                    let mut left = all.clone();
                    left.push(new);
                    break End::OnlySkipped(left);
                };
                let revs = open.len() as u32;
                let mut round = if opts.parallel > 1 { search.space.round(&open, opts.parallel) } else { Vec::new() };
                round.retain(|c| search.state.tested(&c.id).is_none());
                if round.len() > 1 {
                    // A multisection: J candidates split the range into
                    // J+1 parts; one part is left after the round. Saved
                    // newest first, so that the last new-side mark is the
                    // oldest, as in a bisection (see `sides`).
                    let parts = round.len() as u32 + 1;
                    let revs_after = revs.saturating_sub(round.len() as u32) / parts;
                    let rounds_left = rounds(revs_after, parts);
                    let j = round.len() as u32;
                    let members: Vec<_> = round
                        .iter()
                        .rev()
                        .enumerate()
                        .map(|(m, c)| {
                            step += 1;
                            // Steps left: the round's others, then J a round.
                            let steps_left = j - 1 - m as u32 + rounds_left * j;
                            Member { c, kind: TestKind::Bisect, step, left: (Some(steps_left), Some(revs_after)) }
                        })
                        .collect();
                    search.test_round(&members, on)?;
                    continue;
                }
                step += 1;
                let steps_left = (u32::BITS - revs.leading_zeros()).saturating_sub(1);
                search.test(&next, TestKind::Bisect, step, (Some(steps_left), Some(revs - 1)), on)?;
            }
        }
    };

    let (old, _) = search.sides(&old_end, &new_end);
    let old_refs: Vec<&Candidate> = old.iter().collect();
    let (first, before, candidates) = match &end {
        End::Found(c) => (Some(c.clone()), search.space.before(c, &old_refs)?, Vec::new()),
        // The last old-side one is still news.
        End::OnlySkipped(list) => {
            let newest = list.last().expect("the new-side mark is in the list");
            (None, search.space.before(newest, &old_refs)?, list.iter().map(|c| c.id.clone()).collect())
        }
    };
    let verification = match (&first, opts.verify) {
        (Some(c), true) => {
            if search.state.named.is_none() {
                search.state.named = Some(c.clone());
                search.state.save(&search.state_path)?;
            }
            Some(verify_answer(&mut search, c, before.as_ref(), &new_end, on)?)
        }
        _ => None,
    };
    // Whether the answer changes the kernel at all: a commit that does
    // not (a comment) cannot be the cause, however the runs went.
    let changes_kernel = match (&first, &before) {
        (Some(c), Some(b)) => match search.code_hash_of(c, on)? {
            Some(x) => search.code_hash_of(b, on)?.map(|y| x != y),
            None => None,
        },
        _ => None,
    };
    let detail = search.space.detail(first.as_ref(), before.as_ref())?;
    let bisect_log = search.space.log(&search.state.steps, first.as_ref(), ff);
    search.space.done();
    let mut state = search.state;
    state.wall_secs += started.elapsed().as_secs_f64();
    let (good, bad) = if ff { (&new_end, &old_end) } else { (&old_end, &new_end) };
    let trust = Trust::of(&state.steps, &bad.id);
    let boots_saved = state
        .steps
        .iter()
        .filter_map(|t| t.same_kernel_as.as_ref())
        .filter_map(|id| state.steps.iter().find(|o| o.commit == *id && o.same_kernel_as.is_none()))
        .map(|o| o.outcomes.len() as u32)
        .sum();
    let report = BisectReport {
        crash_title: state.title.clone().filter(|_| opts.same_crash),
        trust,
        changes_kernel,
        boots_saved,
        found: format!("first {} {}", if ff { "fixed" } else { "bad" }, words.one),
        first,
        before,
        detail,
        candidates,
        repro: opts.repro.clone(),
        description: opts.description.clone(),
        good: good.id.clone(),
        bad: bad.id.clone(),
        flaky: state.steps.iter().any(|s| s.flaky),
        steps: state.steps,
        bisect_log,
        wall_secs: state.wall_secs,
        verification,
        words: Some(words),
    };
    // Done: the state goes.
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(report)
}

/// Rounds a search of `revs` open candidates takes when each round splits
/// what is open into `parts` (2: a bisection; J+1 with J boots at once).
pub(crate) fn rounds(revs: u32, parts: u32) -> u32 {
    let (mut left, mut n) = (revs, 0);
    while left > 0 {
        // A round tests parts-1 of them and leaves one part of the rest.
        left = left.saturating_sub(parts - 1) / parts + u32::from(left.saturating_sub(parts - 1) % parts != 0);
        n += 1;
    }
    n
}

/// Finds a good end for a bisect of `bad_end`: tests it first (it must
/// show the bug; its runs measure the bug's rate), then `candidates`
/// (releases, newest first) until one is on the old side. Every test
/// made comes back, to seed the bisect ([`Options::seed`]).
pub(crate) fn probe(
    opts: &Options,
    space: &mut dyn Space,
    booter: &mut dyn Booter,
    interrupted: &dyn Fn() -> bool,
    bad_end: &Candidate,
    candidates: &[Candidate],
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<Probed, BisectError> {
    let scratch = tempfile::tempdir().map_err(io("create a temp dir"))?;
    let state = State { title: opts.crash_title.clone().filter(|_| opts.same_crash), ..State::default() };
    let state_path = scratch.path().join("state.json");
    let mut search = Search { opts, space, booter, interrupted, state, state_path, measure: Some(bad_end.id.clone()) };
    let ff = opts.find_fix;
    let t = search.test(bad_end, TestKind::Endpoint, 0, (None, None), on)?;
    if Side::of(t.verdict, ff) != Some(Side::New) {
        let seen = format!("{} {}", t.counts.describe(), t.message);
        return Err(BisectError::Endpoint(format!(
            "{} does not show the bug ({}): {}",
            short(&bad_end.id),
            t.verdict.name(),
            seen.trim()
        )));
    }
    let mut found = None;
    for (i, c) in candidates.iter().enumerate() {
        search.check_interrupt()?;
        let left = (candidates.len() - i - 1) as u32;
        let t = search.test(c, TestKind::Release, i + 1, (Some(left), None), on)?;
        if Side::of(t.verdict, ff) == Some(Side::Old) {
            found = Some(c.clone());
            break;
        }
    }
    Ok(Probed { good: found, title: search.state.title.clone(), tested: search.state.steps })
}

/// What [`probe`] found.
pub(crate) struct Probed {
    /// The first candidate on the old side, if any.
    pub good: Option<Candidate>,
    /// The bug's title, given or learned from the bad end.
    pub title: Option<String>,
    /// Every test made, the bad end's first.
    pub tested: Vec<Tested>,
}

/// Tests the answer C again, as KernelCI does before it reports one: C
/// shows the bug again, the candidate before it does not, and whatever
/// the space adds (git: the new end with C reverted does not), each with
/// the bisect's `--runs`, fresh. With --find-fix the same with the roles
/// swapped. Checks made before an interruption are kept in the state.
fn verify_answer(
    search: &mut Search<'_>,
    culprit: &Candidate,
    before: Option<&Candidate>,
    new_end: &Candidate,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<verify::Verification, BisectError> {
    let ff = search.opts.find_fix;
    let started = Instant::now();
    let mut plan: Vec<ExtraCheck> = Vec::new();
    // What is before the answer: git's first parent, the list's neighbour.
    let before_c = before.cloned().unwrap_or_else(|| Candidate { id: "?".into(), label: String::new() });
    let (again, before_again) = search.space.check_words(culprit, &before_c, ff);
    plan.push(ExtraCheck {
        what: again,
        tested: culprit.id.clone(),
        expected: Side::New,
        candidate: Ok(culprit.clone()),
    });
    plan.push(ExtraCheck {
        what: before_again,
        tested: before_c.id.clone(),
        expected: Side::Old,
        candidate: before.cloned().ok_or_else(|| "there is no candidate before it".to_owned()),
    });
    plan.extend(search.space.extra_checks(culprit, new_end)?);
    for (i, check) in plan.iter().enumerate() {
        if search.state.checks.iter().any(|k| k.what == check.what) {
            continue;
        }
        search.check_interrupt()?;
        let expected = check.expected.mark(ff);
        let made = match &check.candidate {
            Err(why) => verify::Check::untestable(&check.what, &check.tested, expected, why.clone(), 0.0),
            Ok(c) => {
                on(BisectEvent::Testing {
                    commit: &c.id,
                    subject: &c.label,
                    step: i + 1,
                    steps_left: Some((plan.len() - i - 1) as u32),
                    revs_left: None,
                    kind: TestKind::Verify,
                });
                let t = search.fresh(c, TestKind::Verify, on)?;
                on(BisectEvent::Tested(&t));
                verify::Check::from_test(&check.what, &check.tested, expected, &t)
            }
        };
        search.state.checks.push(made);
        search.state.save(&search.state_path)?;
    }
    let made: Vec<verify::Check> =
        plan.iter().filter_map(|p| search.state.checks.iter().find(|k| k.what == p.what).cloned()).collect();
    let secs: f64 = made.iter().map(|k| k.build_secs + k.boot_secs).sum::<f64>().max(started.elapsed().as_secs_f64());
    Ok(verify::Verification::from_checks(made, secs))
}

impl BisectReport {
    /// The ready-to-paste Markdown report; `config` is (what it is on top
    /// of, the fragment), when krepro built the kernels.
    pub(crate) fn markdown(&self, config: Option<(&str, &str)>) -> String {
        let w = self.words.unwrap_or(Words {
            one: "commit",
            many: "commits",
            about: "subject",
            made: "build",
            compiled: true,
        });
        let mut md = String::new();
        let push = |md: &mut String, s: &str| {
            md.push_str(s);
            md.push('\n');
        };
        match self.detail.markdown_head(&self.found) {
            Some(head) => md.push_str(&head),
            None => {
                push(
                    &mut md,
                    &format!(
                        "## {}: one of {} {} that could not be tested\n",
                        self.found,
                        self.candidates.len(),
                        w.many
                    ),
                );
                for c in &self.candidates {
                    push(&mut md, &format!("- {c}"));
                }
            }
        }
        push(&mut md, &format!("- repro: `{}`: {}", self.repro, self.description));
        push(&mut md, &format!("- good: {}, bad: {}", short(&self.good), short(&self.bad)));
        push(
            &mut md,
            &format!(
                "- bisected by krepro in {:.0} s, {} {} tested{}",
                self.wall_secs,
                self.steps.len(),
                w.many,
                self.rounds_words()
            ),
        );
        if self.flaky {
            push(&mut md, &format!("- note: the repro is flaky: runs disagreed on at least one {}", w.one));
        }
        if let Some(t) = &self.crash_title {
            push(&mut md, &format!("- chasing `{t}`: runs that crashed otherwise counted as other crashes"));
        }
        if let Some(t) = &self.trust {
            let flag = if t.reliable { "" } else { " **unreliable**: run more (--runs) or find a surer repro" };
            push(
                &mut md,
                &format!(
                    "- confidence {:.2}{flag} (the bug showed in {:.0}% of the bad end's {} runs; each good verdict \
                     could have missed it)",
                    t.confidence,
                    t.rate * 100.0,
                    t.bad_end_runs
                ),
            );
        }
        if self.changes_kernel == Some(false) {
            push(
                &mut md,
                "- **no-op culprit**: its kernel is identical in code to the one before it, so it cannot \
                 cause the bug: the search was misled (a flaky repro, or a wrong --good/--bad)",
            );
        }
        if self.boots_saved > 0 {
            let same = self.steps.iter().filter(|s| s.same_kernel_as.is_some()).count();
            push(
                &mut md,
                &format!(
                    "- {} boots saved: {same} {} built a kernel identical to one tested before",
                    self.boots_saved,
                    if same == 1 { w.one } else { w.many }
                ),
            );
        }
        md.push_str(&self.detail.markdown_next());
        let (cc_head, cc_rule) = if w.compiled { (" compiler |", "---|") } else { ("", "") };
        push(
            &mut md,
            &format!(
                "\n| {} | {} | verdict | runs |{cc_head} {} | boot |\n|---|---|---|---|{cc_rule}---|---|",
                w.one, w.about, w.made
            ),
        );
        for s in &self.steps {
            let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
            let runs = if s.same_kernel_as.is_some() || runs.is_empty() {
                s.message.clone()
            } else if self.crash_title.is_some() || s.outcomes.len() > 1 {
                s.counts.describe()
            } else {
                runs.join(", ")
            };
            let fixes: Vec<&str> = s.fixes.iter().map(|f| short(f)).collect();
            let compiler = if fixes.is_empty() {
                s.toolchain.clone()
            } else {
                format!("{} + fix {}", s.toolchain, fixes.join(", "))
            };
            let row = [short(&s.commit), &s.subject, s.verdict.name(), &runs, &compiler].map(|c| c.replace('|', "\\|"));
            let cc = if w.compiled { format!(" {} |", row[4]) } else { String::new() };
            push(
                &mut md,
                &format!(
                    "| {} | {} | {} | {} |{cc} {:.0} s | {:.1} s |",
                    row[0], row[1], row[2], row[3], s.build_secs, s.boot_secs
                ),
            );
        }
        md.push_str(&self.phases_markdown());
        if let Some(v) = &self.verification {
            md.push_str(&v.markdown());
        }
        if let Some((base, fragment)) = config {
            push(&mut md, &format!("\nKernel config: {base} plus\n\n```\n{fragment}```"));
        }
        let first_bad =
            self.first.as_ref().and_then(|f| self.steps.iter().find(|s| s.commit == f.id && s.verdict == Mark::Bad));
        if let Some((step, log)) =
            first_bad.and_then(|s| Some((s, std::fs::read_to_string(s.console_log.as_ref()?).ok()?)))
        {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(30)..];
            let whose = match &step.same_kernel_as {
                Some(id) => format!(", booted as {}: the same kernel", short(id)),
                None => String::new(),
            };
            push(
                &mut md,
                &format!(
                    "\nConsole of the first bad {} (last {} lines{whose}):\n\n```\n{}\n```",
                    w.one,
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

    /// Where each step's time went, and the median of each phase over the
    /// steps that booted, beside make's own time: a Markdown table (empty
    /// when no step has phases).
    pub fn phases_markdown(&self) -> String {
        let steps: Vec<&Tested> = self.steps.iter().filter(|s| s.phases != Phases::default()).collect();
        if steps.is_empty() {
            return String::new();
        }
        let names = Phases::default().named().map(|(n, _)| n);
        let mut md = format!(
            "\n| where the time went (s) | {} | make |\n|---|{}---|\n",
            names.join(" | "),
            "---|".repeat(names.len())
        );
        let row = |label: &str, p: &Phases| {
            let cells: Vec<String> = p.named().iter().map(|(_, v)| format!("{v:.1}")).collect();
            format!("| {label} | {} | {:.1} |\n", cells.join(" | "), p.make())
        };
        for s in &steps {
            md.push_str(&row(short(&s.commit), &s.phases));
        }
        md.push_str(&row("**median**", &median_phases(steps.iter().map(|s| &s.phases))));
        // What the shared cache and the other machines saved, step by step.
        let cached: Vec<(&Tested, crate::builder::distribute::CacheStats)> =
            steps.iter().filter_map(|s| s.phases.ccache.map(|c| (*s, c))).collect();
        if !cached.is_empty() {
            md.push_str("\n| ccache | local hits | remote hits | compiled |\n|---|---|---|---|\n");
            for (s, c) in &cached {
                md.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    short(&s.commit),
                    c.local_hits,
                    c.remote_hits,
                    c.compiled
                ));
            }
        }
        md
    }

    /// Why the answer needs a human even if it verified: a no-op culprit,
    /// a merge commit; None when nothing is wrong with it.
    pub(crate) fn doubt(&self) -> Option<&'static str> {
        if self.changes_kernel == Some(false) {
            return Some("its kernel is identical in code to its parent's: a no-op culprit, the search was misled");
        }
        match &self.detail {
            Detail::Commit(c) if c.merge => Some("it is a merge commit"),
            _ => None,
        }
    }

    /// The answer in one line, for the terminal: None when only skipped
    /// candidates are left.
    /// ", in 4 rounds of up to 2 at once" when candidates were booted side
    /// by side (`--parallel`); empty otherwise.
    fn rounds_words(&self) -> String {
        let mut rounds: Vec<u32> = self.steps.iter().filter_map(|s| s.round).collect();
        let most = rounds.iter().fold(std::collections::BTreeMap::new(), |mut m, r| {
            *m.entry(*r).or_insert(0) += 1;
            m
        });
        rounds.dedup();
        let singles = self.steps.iter().filter(|s| s.round.is_none()).count();
        match most.values().max() {
            Some(j) => format!(", in {} rounds of up to {j} at once", rounds.len() + singles),
            None => String::new(),
        }
    }

    pub(crate) fn answer_line(&self) -> Option<String> {
        let first = self.first.as_ref()?;
        Some(match &self.detail {
            Detail::Kernels(k) => k.answer_line(),
            Detail::Config(c) => c.answer_line().unwrap_or_else(|| first.label.clone()),
            _ => format!("{} {}", short(&first.id), first.label),
        })
    }

    /// How the report names what was searched: "commits", "kernels".
    pub(crate) fn many(&self) -> &'static str {
        self.words.map_or("commits", |w| w.many)
    }
}

/// The median of `v` (0 for none).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Each phase's median over `phases`.
pub fn median_phases<'a>(phases: impl Iterator<Item = &'a Phases> + Clone) -> Phases {
    let m = |f: fn(&Phases) -> f64| median(&phases.clone().map(f).collect::<Vec<_>>());
    Phases {
        checkout: m(|p| p.checkout),
        fetch: m(|p| p.fetch),
        config: m(|p| p.config),
        compile: m(|p| p.compile),
        link: m(|p| p.link),
        image: m(|p| p.image),
        vmlinux: m(|p| p.vmlinux),
        boot: m(|p| p.boot),
        ccache: None,
    }
}

/// The real booter: qemu under the command's plan, one target per kernel
/// (made at its first run, reused for its other runs).
pub(crate) struct PlanBooter<'a> {
    pub plan: &'a crate::boot::run::Plan,
    target: Option<crate::boot::run::Bootable>,
}

impl<'a> PlanBooter<'a> {
    pub(crate) fn new(plan: &'a crate::boot::run::Plan) -> PlanBooter<'a> {
        PlanBooter { plan, target: None }
    }
}

impl Booter for PlanBooter<'_> {
    fn boot(
        &mut self,
        kernel: &Kernel,
        run: u32,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BootSummary, BootError> {
        // Modules and the PVH image depend on the kernel: one target per
        // kernel, made at its first run.
        let started = Instant::now();
        let target = match self.target.take() {
            Some(t) if t.kernel.path == kernel.path => t,
            _ => self.plan.target(kernel, &mut |m| on(BisectEvent::Say(m)))?,
        };
        let prepare_secs = started.elapsed().as_secs_f64();
        let r = crate::boot::run::run(self.plan, &target, run, &mut |ev| on(BisectEvent::Run(ev)));
        self.target = Some(target);
        let r = r?;
        Ok(summary(r, prepare_secs))
    }

    /// Each kernel's target made in turn, then the boots side by side.
    fn boot_many(
        &mut self,
        kernels: &[&Kernel],
        jobs: &[(usize, u32)],
        parallel: u32,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Vec<Result<BootSummary, BootError>> {
        let mut targets = Vec::new();
        for kernel in kernels {
            let started = Instant::now();
            match self.plan.target(kernel, &mut |m| on(BisectEvent::Say(m))) {
                Ok(t) => targets.push((t, started.elapsed().as_secs_f64())),
                Err(e) => return vec![Err(e)],
            }
        }
        let plan = self.plan;
        let boot = |i: u32, on: &mut dyn FnMut(crate::boot::run::RunEvent<'_>)| {
            let (k, run) = jobs[i as usize];
            let (target, prepared) = &targets[k];
            // A kernel's preparation counts once, with its first run.
            let prepare_secs = if run == 1 { *prepared } else { 0.0 };
            crate::boot::run::run(plan, target, run, on).map(|r| summary(r, prepare_secs))
        };
        let failed = crate::boot::parallel::after_an_error;
        crate::boot::parallel::boot_all(jobs.len() as u32, parallel, &boot, &failed, &mut |p| {
            if let crate::boot::parallel::Progress::Event(_, ev) = p {
                on(BisectEvent::Run(ev.as_run_event()));
            }
        })
    }
}

fn summary(r: crate::boot::run::RunResult, prepare_secs: f64) -> BootSummary {
    BootSummary {
        outcome: r.outcome,
        message: r.message,
        crash_title: r.crash.and_then(|c| c.title),
        console_log: r.console_log,
        prepare_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_follow_find_fix() {
        assert_eq!(Side::of(Mark::Good, false), Some(Side::Old));
        assert_eq!(Side::of(Mark::Bad, false), Some(Side::New));
        assert_eq!(Side::of(Mark::Good, true), Some(Side::New));
        assert_eq!(Side::of(Mark::Bad, true), Some(Side::Old));
        assert_eq!(Side::of(Mark::Skip, true), None);
        assert_eq!(Side::New.mark(true), Mark::Good);
        assert_eq!(Side::Old.mark(false), Mark::Good);
    }
}
