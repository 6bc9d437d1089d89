//! Bisect over prebuilt kernels: a list, oldest first (bzImage files, or
//! the Debian cloud kernels of some series, each fetched into the cache
//! only when a step needs it). Nothing is built. A binary search with the
//! same runs, decisions, resumable state and report as a git bisect; the
//! boundary it finds is checked again as a git culprit is, and the report
//! says which upstream range to bisect in git next.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::bisect::verify::{Check, Verification};
use crate::bisect::{boot_runs, BisectError, BisectEvent, BisectReport, Mark, State, TestKind, TestedCommit, Tester};
use crate::boot::outcome::Remap;
use crate::host::cache::Cache;
use crate::host::fetch::{self, Package};
use crate::image::kernel::{check_kernel, version_string};
use crate::RunError;

/// One kernel of the list, as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelInfo {
    /// The package name, or the file as given.
    pub name: String,
    /// Its release (`uname -r`), when known.
    pub release: Option<String>,
    /// The distro's package version (6.1.192-2), when it is a package or
    /// its image says (Debian's "... Debian 6.1.192-2 (date)").
    pub package_version: Option<String>,
    /// The upstream version it is built from (6.1.192), when known.
    pub upstream: Option<String>,
}

/// Where a listed kernel's bzImage comes from.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    /// Fetched into the cache when a step needs it.
    Package(Package),
}

/// A kernel of the list.
#[derive(Clone, Debug)]
pub struct Prebuilt {
    pub info: KernelInfo,
    pub source: Source,
}

impl Prebuilt {
    /// A bzImage file (checked here, before anything boots); its upstream
    /// version from the image's version string: Debian's package version
    /// when it names one, else the release's leading numbers.
    pub fn file(path: &Path) -> Result<Prebuilt, RunError> {
        let kernel = check_kernel(path)?;
        let version = version_string(path).unwrap_or_default();
        let package_version = version.split(' ').skip_while(|w| *w != "Debian").nth(1).map(str::to_owned);
        let upstream = package_version.as_deref().or(kernel.release.as_deref()).and_then(fetch::upstream_of);
        let info = KernelInfo { name: path.display().to_string(), release: kernel.release, package_version, upstream };
        Ok(Prebuilt { info, source: Source::File(path.to_owned()) })
    }

    /// A package the archive offers, fetched when a step needs it.
    pub fn package(p: Package) -> Prebuilt {
        let info = KernelInfo {
            name: p.name.clone(),
            release: Some(p.release.clone()),
            package_version: Some(p.version.clone()),
            upstream: p.upstream(),
        };
        Prebuilt { info, source: Source::Package(p) }
    }

    /// Whether `spec` (--good/--bad) names it: its name, its upstream
    /// version (6.12.111), or its release or the start of it up to a dash
    /// (6.1.0-50, 6.12.111+deb12).
    fn is(&self, spec: &str) -> bool {
        let i = &self.info;
        let release = i.release.as_deref().unwrap_or_default();
        i.name == spec
            || i.upstream.as_deref() == Some(spec)
            || release.strip_prefix(spec).is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    }

    /// How messages name it: the upstream version, else the name.
    fn label(&self) -> &str {
        self.info.upstream.as_deref().unwrap_or(&self.info.name)
    }
}

/// What to bisect.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// Oldest first.
    pub kernels: Vec<Prebuilt>,
    /// --good and --bad as given; None: the list's ends (the older one is
    /// good, or with --find-fix bad).
    pub good: Option<String>,
    pub bad: Option<String>,
    pub repro: String,
    pub runs: u32,
    pub remap: Remap,
    pub find_fix: bool,
    /// Also part of the state key: what else changes the answer.
    pub key_extra: String,
    /// Test the ends first and stop if they do not behave as said.
    pub check_endpoints: bool,
    /// Test the boundary again after the search.
    pub verify: bool,
    /// The flags that make the test (--repro NAME, --append ...), repeated
    /// in the git bisect the report suggests.
    pub repeat: Vec<String>,
}

/// What a bisect over prebuilt kernels found, beyond what every bisect
/// reports.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// The first kernel that behaves like the newer end: the first bad
    /// (with --find-fix: the first fixed). None when only skipped kernels
    /// are left (the report's candidates).
    pub first: Option<KernelInfo>,
    /// The kernel before it: the last good (with --find-fix: the last
    /// still broken).
    pub before: Option<KernelInfo>,
    /// The git bisect to run next over the upstream range between them.
    pub next: Option<NextBisect>,
    #[serde(skip)]
    find_fix: bool,
}

/// The git bisect a kernel boundary leads to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NextBisect {
    /// The command, when there is an upstream range to bisect.
    pub command: Option<String>,
    /// Why this range (or why there is none), one line.
    pub why: String,
}

impl Answer {
    /// The report's head: the boundary.
    pub fn markdown_head(&self, found: &str) -> String {
        let describe = |k: &KernelInfo| {
            let mut facts = Vec::new();
            if let Some(v) = &k.package_version {
                facts.push(format!("package {v}"));
            }
            if let Some(r) = &k.release {
                facts.push(format!("release {r}"));
            }
            let upstream = k.upstream.as_deref().map(|u| format!(", upstream {u}")).unwrap_or_default();
            format!("{}{upstream} ({})", k.name, facts.join(", "))
        };
        let (first_word, before_word) =
            if self.find_fix { ("first fixed", "last broken") } else { ("first bad", "last good") };
        let mut md = String::new();
        if let Some(first) = &self.first {
            let upstream = first.upstream.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
            md.push_str(&format!("## {found}: {}{upstream}\n\n", first.name));
            md.push_str(&format!("- {first_word}: {}\n", describe(first)));
        }
        if let Some(before) = &self.before {
            md.push_str(&format!("- {before_word}: {}\n", describe(before)));
        }
        md
    }

    /// The report's "next" paragraph: the git bisect over the upstream range.
    pub fn markdown_next(&self) -> String {
        match &self.next {
            Some(NextBisect { command: Some(c), why }) => format!("\nNext, in git: {why}\n\n    {c}\n"),
            Some(NextBisect { command: None, why }) => format!("\nNext: {why}\n"),
            None => String::new(),
        }
    }
}

/// Which side of the boundary a verdict puts a kernel on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Like the older end: good (with --find-fix: broken).
    Old,
    /// Like the newer end: bad (with --find-fix: fixed).
    New,
}

fn side(verdict: Mark, find_fix: bool) -> Option<Side> {
    match (verdict, find_fix) {
        (Mark::Skip, _) => None,
        (Mark::Good, false) | (Mark::Bad, true) => Some(Side::Old),
        (Mark::Bad, false) | (Mark::Good, true) => Some(Side::New),
    }
}

/// The verdict a side means.
fn mark_of(side: Side, find_fix: bool) -> Mark {
    match (side, find_fix) {
        (Side::Old, false) | (Side::New, true) => Mark::Good,
        (Side::New, false) | (Side::Old, true) => Mark::Bad,
    }
}

/// What the search does next between the last old-side kernel `lo` and
/// the first new-side kernel `hi`.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Test this kernel: the untested one nearest the middle.
    Test(usize),
    /// `lo` and `hi` are neighbours: the boundary.
    Found,
    /// Only skipped kernels lie between: any of them, or `hi`, is the first.
    OnlySkipped(Vec<usize>),
}

fn next(lo: usize, hi: usize, skipped: &BTreeSet<usize>) -> Next {
    let open: Vec<usize> = (lo + 1..hi).filter(|i| !skipped.contains(i)).collect();
    let mid = lo + (hi - lo) / 2;
    match open.iter().min_by_key(|&&i| (i.abs_diff(mid), i)) {
        Some(&i) => Next::Test(i),
        None if hi - lo > 1 => Next::OnlySkipped((lo + 1..=hi).collect()),
        None => Next::Found,
    }
}

/// The index of the kernel `spec` names, or a one-line error.
fn find(kernels: &[Prebuilt], spec: &str, flag: &str) -> Result<usize, BisectError> {
    let hits: Vec<usize> = (0..kernels.len()).filter(|&i| kernels[i].is(spec)).collect();
    match hits[..] {
        [i] => Ok(i),
        [] => {
            let known: Vec<&str> = kernels.iter().map(Prebuilt::label).collect();
            Err(BisectError::BadInput(format!("{flag} {spec}: not one of the kernels ({})", known.join(", "))))
        }
        _ => {
            let names: Vec<&str> =
                hits.iter().map(|&i| kernels[i].info.release.as_deref().unwrap_or(&kernels[i].info.name)).collect();
            Err(BisectError::BadInput(format!(
                "{flag} {spec} names {} kernels ({}): give its release",
                hits.len(),
                names.join(", ")
            )))
        }
    }
}

/// The search's ends: (older, newer) indexes, checked.
fn ends(opts: &KernelOptions) -> Result<(usize, usize), BisectError> {
    let k = &opts.kernels;
    if k.len() < 2 {
        return Err(BisectError::BadInput(format!(
            "a bisect over kernels needs at least two, oldest first (got {})",
            k.len()
        )));
    }
    for (i, a) in k.iter().enumerate() {
        if k[..i].iter().any(|b| b.info.name == a.info.name) {
            return Err(BisectError::BadInput(format!("{} is in the list twice", a.info.name)));
        }
    }
    let last = k.len() - 1;
    let good = opts.good.as_deref().map(|s| find(k, s, "--good")).transpose()?;
    let bad = opts.bad.as_deref().map(|s| find(k, s, "--bad")).transpose()?;
    let (old, new, old_flag, new_flag) = if opts.find_fix {
        (bad.unwrap_or(0), good.unwrap_or(last), "--bad", "--good")
    } else {
        (good.unwrap_or(0), bad.unwrap_or(last), "--good", "--bad")
    };
    if old >= new {
        let fix = if opts.find_fix { " (with --find-fix the broken kernel is the older one)" } else { "" };
        return Err(BisectError::BadInput(format!(
            "{old_flag} {} is not older than {new_flag} {} in the list{fix}",
            k[old].label(),
            k[new].label()
        )));
    }
    Ok((old, new))
}

/// The git bisect to run over the upstream range between `before` and
/// `first` (oldest first), repeating `repeat`.
pub fn next_bisect(before: &KernelInfo, first: &KernelInfo, find_fix: bool, repeat: &[String]) -> NextBisect {
    let (Some(a), Some(b)) = (&before.upstream, &first.upstream) else {
        let unknown = if before.upstream.is_none() { &before.name } else { &first.name };
        return NextBisect { command: None, why: format!("the upstream version of {unknown} is not known") };
    };
    if a == b {
        let (va, vb) = (before.package_version.as_deref(), first.package_version.as_deref());
        let change = match (va, vb) {
            (Some(va), Some(vb)) => format!(" ({va} to {vb})"),
            _ => String::new(),
        };
        return NextBisect {
            command: None,
            why: format!(
                "both are upstream {a}: what changed is the distro's patches, config or build{change}, not an upstream range"
            ),
        };
    }
    let series = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    let (tree, old, new, why) = if series(a) == series(b) {
        let why = format!("{a} and {b} are on the {}.y stable branch: bisect linux-stable between them", series(a));
        ("<linux-stable>", tag(a), tag(b), why)
    } else {
        let why = format!(
            "{a} and {b} are on different stable branches, neither an ancestor of the other: bisect mainline from v{} to v{}",
            series(a),
            series(b)
        );
        ("<linux>", format!("v{}", series(a)), format!("v{}", series(b)), why)
    };
    let range =
        if find_fix { format!("--find-fix --bad {old} --good {new}") } else { format!("--good {old} --bad {new}") };
    let rest: Vec<String> = repeat.iter().map(|w| shell_word(w)).collect();
    let command = format!("cargo xtask bisect --linux {tree} {range} {}", rest.join(" "));
    NextBisect { command: Some(command.trim_end().to_owned()), why }
}

/// The git tag of an upstream version: v6.12.111; v6.12 for 6.12.0.
fn tag(upstream: &str) -> String {
    match upstream.strip_suffix(".0") {
        Some(release) if release.matches('.').count() == 1 => format!("v{release}"),
        _ => format!("v{upstream}"),
    }
}

/// A word as a shell reads it back: quoted when it has anything but
/// plain characters.
fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// The search's moving parts: what tests a kernel and where its steps go.
struct Search<'a> {
    opts: &'a KernelOptions,
    cache: &'a Cache,
    tester: &'a mut dyn Tester,
    interrupted: &'a dyn Fn() -> bool,
    state: State,
    state_path: PathBuf,
}

impl Search<'_> {
    /// Kernel `i`'s verdict: from the state when it was tested before,
    /// else tested now and saved.
    fn test(
        &mut self,
        i: usize,
        kind: TestKind,
        step: usize,
        steps_left: Option<u32>,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<TestedCommit, BisectError> {
        let opts = self.opts;
        let name = &opts.kernels[i].info.name;
        if let Some(done) = self.state.steps.iter().find(|s| s.commit == *name) {
            return Ok(done.clone());
        }
        let s = self.boot(i, kind, step, steps_left, on)?;
        self.state.steps.push(s.clone());
        self.state.save(&self.state_path)?;
        Ok(s)
    }

    /// Kernel `i` made ready (fetched, for a package) and booted `--runs`
    /// times, fresh.
    fn boot(
        &mut self,
        i: usize,
        kind: TestKind,
        step: usize,
        steps_left: Option<u32>,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<TestedCommit, BisectError> {
        let opts = self.opts;
        let k = &opts.kernels[i];
        let subject = k.info.upstream.clone().or(k.info.release.clone()).unwrap_or_default();
        on(BisectEvent::Testing { commit: &k.info.name, subject: &subject, step, steps_left, revs_left: None, kind });
        let fetch_started = Instant::now();
        let image = match &k.source {
            Source::File(path) => path.clone(),
            Source::Package(p) => {
                on(BisectEvent::Phase("fetch"));
                fetch::fetch_package(self.cache, &p.name, &p.release, &mut |m| on(BisectEvent::Say(m))).map_err(
                    |e| match (self.interrupted)() {
                        true => BisectError::Interrupted,
                        false => BisectError::Infrastructure { commit: p.name.clone(), message: e.to_string() },
                    },
                )?
            }
        };
        let fetch_secs = fetch_started.elapsed().as_secs_f64();
        if (self.interrupted)() {
            return Err(BisectError::Interrupted);
        }
        let runs = boot_runs(&image, &k.info.name, opts.runs, &opts.remap, self.tester, on)?;
        let s = TestedCommit {
            commit: k.info.name.clone(),
            subject,
            verdict: runs.verdict,
            outcomes: runs.outcomes,
            message: runs.message,
            flaky: runs.flaky,
            build_secs: fetch_secs,
            boot_secs: runs.boot_secs,
            console_log: runs.console_log,
            kind,
            // Prebuilt: nothing of ours compiled it.
            toolchain: String::new(),
            fixes: Vec::new(),
        };
        on(BisectEvent::Tested(&s));
        Ok(s)
    }
}

/// Runs the bisect over `opts.kernels` to its end. `interrupted` is polled
/// between steps; the state is kept in the cache, so the same call after
/// an interruption goes on where it stopped.
pub fn bisect_kernels(
    opts: &KernelOptions,
    cache: &Cache,
    tester: &mut dyn Tester,
    interrupted: &dyn Fn() -> bool,
    on: &mut dyn FnMut(BisectEvent<'_>),
) -> Result<BisectReport, BisectError> {
    let started = Instant::now();
    let (old, new) = ends(opts)?;
    let names: Vec<&str> = opts.kernels.iter().map(|k| k.info.name.as_str()).collect();
    let key = blake3::hash(
        format!(
            "kernels\n{}\n{old} {new}\n{}\n{}\n{}\n{}",
            names.join("\n"),
            opts.repro,
            opts.runs,
            opts.find_fix,
            opts.key_extra
        )
        .as_bytes(),
    )
    .to_hex()[..16]
        .to_owned();
    let state_dir = cache.bisect().join(&key);
    let state_path = state_dir.join("state.json");
    let state = match State::load(&state_path) {
        Some(s) => {
            on(BisectEvent::Say(&format!(
                "resuming the bisect in {} ({} kernels tested so far)",
                state_dir.display(),
                s.steps.len()
            )));
            s
        }
        None => {
            std::fs::create_dir_all(&state_dir).map_err(super::io(format!("create {}", state_dir.display())))?;
            State::default()
        }
    };
    let mut search = Search { opts, cache, tester, interrupted, state, state_path };
    let ff = opts.find_fix;
    let (old_flag, new_flag) = if ff { ("--bad", "--good") } else { ("--good", "--bad") };

    if opts.check_endpoints {
        // The newer end first, as in a git bisect: a repro that does not
        // reproduce at all is the most common wrong setup.
        for (i, want, flag) in [(new, Side::New, new_flag), (old, Side::Old, old_flag)] {
            if interrupted() {
                return Err(BisectError::Interrupted);
            }
            let s = search.test(i, TestKind::Endpoint, 0, None, on)?;
            if side(s.verdict, ff) != Some(want) {
                let runs: Vec<&str> = s.outcomes.iter().map(|o| o.name()).collect();
                let seen = format!("{} {}", runs.join(", "), s.message);
                return Err(BisectError::Endpoint(format!(
                    "{flag} {} tests {} instead of {}: {}",
                    opts.kernels[i].info.name,
                    s.verdict.name(),
                    mark_of(want, ff).name(),
                    seen.trim()
                )));
            }
        }
    }

    let (mut lo, mut hi) = (old, new);
    let mut skipped = BTreeSet::new();
    let mut step = 0;
    let candidates = loop {
        if interrupted() {
            return Err(BisectError::Interrupted);
        }
        match next(lo, hi, &skipped) {
            Next::Found => break None,
            Next::OnlySkipped(c) => break Some(c),
            Next::Test(i) => {
                step += 1;
                let open = (lo + 1..hi).filter(|j| !skipped.contains(j)).count();
                let steps_left = (usize::BITS - open.leading_zeros()).saturating_sub(1);
                let s = search.test(i, TestKind::Bisect, step, Some(steps_left), on)?;
                match side(s.verdict, ff) {
                    Some(Side::Old) => lo = i,
                    Some(Side::New) => hi = i,
                    None => {
                        skipped.insert(i);
                    }
                }
            }
        }
    };

    let info = |i: usize| opts.kernels[i].info.clone();
    let mut verification = None;
    if candidates.is_none() && opts.verify {
        // Fresh boots of both sides of the boundary, not the steps' results.
        let verify_started = Instant::now();
        let (first_what, before_what) = if ff {
            ("the first fixed kernel passes again", "the last broken kernel fails again")
        } else {
            ("the first bad kernel fails again", "the last good kernel passes again")
        };
        let mut checks = Vec::new();
        for (i, what, want) in [(hi, first_what, Side::New), (lo, before_what, Side::Old)] {
            if interrupted() {
                return Err(BisectError::Interrupted);
            }
            let s = search.boot(i, TestKind::Verify, 0, None, on)?;
            checks.push(Check::from_test(what, &opts.kernels[i].info.name, mark_of(want, ff), &s));
        }
        verification = Some(Verification::from_checks(checks, verify_started.elapsed().as_secs_f64()));
    }

    let mut state = search.state;
    state.wall_secs += started.elapsed().as_secs_f64();
    let answer = match &candidates {
        None => Answer {
            first: Some(info(hi)),
            before: Some(info(lo)),
            next: Some(next_bisect(&info(lo), &info(hi), ff, &opts.repeat)),
            find_fix: ff,
        },
        Some(_) => Answer { first: None, before: Some(info(lo)), next: None, find_fix: ff },
    };
    let report = BisectReport {
        found: if ff { "first fixed kernel".into() } else { "first bad kernel".into() },
        commit: None,
        candidates: candidates.unwrap_or_default().into_iter().map(|i| opts.kernels[i].info.name.clone()).collect(),
        kernels: Some(answer),
        repro: opts.repro.clone(),
        good: opts.kernels[if ff { new } else { old }].info.name.clone(),
        bad: opts.kernels[if ff { old } else { new }].info.name.clone(),
        flaky: state.steps.iter().any(|s| s.flaky),
        steps: state.steps,
        bisect_log: String::new(),
        wall_secs: state.wall_secs,
        verification,
    };
    // Done: the state goes.
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bisect::verify::VerifyStatus;
    use crate::bisect::{BootSummary, BuildResult};
    use crate::boot::outcome::Outcome;

    /// Kernel i is a file holding its word: "good", "bad" or "skip".
    struct Fake {
        dir: tempfile::TempDir,
        boots: Vec<String>,
        /// Kernels whose second test (the re-test) gives the opposite.
        flip_on_retest: Vec<String>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake { dir: tempfile::tempdir().unwrap(), boots: Vec::new(), flip_on_retest: Vec::new() }
        }

        fn kernels(&self, words: &str) -> Vec<Prebuilt> {
            words
                .split(' ')
                .enumerate()
                .map(|(i, w)| {
                    let path = self.dir.path().join(format!("k{i}"));
                    std::fs::write(&path, w).unwrap();
                    let info = KernelInfo {
                        name: format!("k{i}"),
                        release: Some(format!("6.12.{i}0+deb12-cloud-amd64")),
                        package_version: None,
                        upstream: Some(format!("6.12.{i}0")),
                    };
                    Prebuilt { info, source: Source::File(path) }
                })
                .collect()
        }
    }

    impl Tester for Fake {
        fn build(&mut self, _: &Path, _: &str, _: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BuildResult, String> {
            unreachable!("nothing is built")
        }
        fn boot(&mut self, k: &Path, _: u32, _: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BootSummary, RunError> {
            let name = k.file_name().unwrap().to_string_lossy().into_owned();
            let again = self.boots.contains(&name) && self.flip_on_retest.contains(&name);
            self.boots.push(name);
            let outcome = match (std::fs::read_to_string(k).unwrap().as_str(), again) {
                ("good", false) | ("bad", true) => Outcome::Pass,
                ("bad", false) | ("good", true) => Outcome::Fail,
                ("skip", _) => Outcome::Skip,
                ("infra", _) => return Err(RunError::QemuFailed { status: "1".into(), stderr: "boom".into() }),
                (w, _) => unreachable!("{w}"),
            };
            Ok(BootSummary { outcome, message: String::new(), console_log: k.to_owned() })
        }
    }

    fn opts(kernels: Vec<Prebuilt>) -> KernelOptions {
        KernelOptions {
            kernels,
            good: None,
            bad: None,
            repro: "selftest_version".into(),
            runs: 1,
            remap: Remap::default(),
            find_fix: false,
            key_extra: String::new(),
            check_endpoints: true,
            verify: true,
            repeat: vec![
                "--repro".into(),
                "selftest_version".into(),
                "--append".into(),
                "krepro.fail_from=6.12.50".into(),
            ],
        }
    }

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(dir.path().join("krepro"));
        (dir, cache)
    }

    fn run(o: &KernelOptions, cache: &Cache, fake: &mut Fake) -> Result<BisectReport, BisectError> {
        bisect_kernels(o, cache, fake, &|| false, &mut |_| {})
    }

    #[test]
    fn finds_the_boundary_in_log_steps_and_verifies_it() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let o = opts(fake.kernels("good good good good good bad bad bad bad bad bad"));
        let r = run(&o, &cache, &mut fake).unwrap();
        let k = r.kernels.as_ref().unwrap();
        assert_eq!(k.first.as_ref().unwrap().name, "k5");
        assert_eq!(k.before.as_ref().unwrap().name, "k4");
        // Two ends, then 5, 2, 3, 4 (or so): at most ceil(log2(9)) = 4 steps.
        let bisect_steps = r.steps.iter().filter(|s| s.kind == TestKind::Bisect).count();
        assert!(bisect_steps <= 4, "{:?}", fake.boots);
        assert_eq!(r.steps.len(), 2 + bisect_steps);
        let v = r.verification.as_ref().unwrap();
        assert_eq!(v.status, VerifyStatus::Verified, "{}", v.summary);
        assert_eq!(v.summary, "the first bad kernel fails again, the last good kernel passes again");
        // The re-tests are fresh boots: k5 and k4 were booted twice.
        assert_eq!(fake.boots.iter().filter(|b| *b == "k5").count(), 2, "{:?}", fake.boots);
        assert_eq!(fake.boots[fake.boots.len() - 2..], ["k5", "k4"]);
        assert_eq!((r.good.as_str(), r.bad.as_str()), ("k0", "k10"));
        let next = k.next.as_ref().unwrap();
        assert_eq!(
            next.command.as_deref(),
            Some("cargo xtask bisect --linux <linux-stable> --good v6.12.40 --bad v6.12.50 --repro selftest_version --append krepro.fail_from=6.12.50")
        );
        let md = r.markdown(None);
        assert!(md.starts_with("## first bad kernel: k5 (6.12.50)\n\n- first bad: k5, upstream 6.12.50 (release 6.12.50+deb12-cloud-amd64)\n- last good: k4"), "{md}");
        assert!(md.contains("| kernel | version | verdict | runs | fetch | boot |"), "{md}");
        assert!(md.contains("    cargo xtask bisect --linux <linux-stable>"), "{md}");
        assert!(!md.contains("git bisect log"), "{md}");
        // Done: no state left.
        assert!(std::fs::read_dir(cache.bisect()).unwrap().next().is_none());
    }

    #[test]
    fn a_skipped_kernel_is_stepped_around() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        // The middle (3) skips: its neighbours are tried instead.
        let o = opts(fake.kernels("good good good skip good bad bad"));
        let r = run(&o, &cache, &mut fake).unwrap();
        assert_eq!(r.kernels.as_ref().unwrap().first.as_ref().unwrap().name, "k5");
        assert!(r.steps.iter().any(|s| s.commit == "k3" && s.verdict == Mark::Skip), "{:?}", fake.boots);
        assert_eq!(r.verification.unwrap().status, VerifyStatus::Verified);
    }

    #[test]
    fn only_skipped_kernels_left_gives_the_candidates() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let o = opts(fake.kernels("good skip skip bad"));
        let r = run(&o, &cache, &mut fake).unwrap();
        assert_eq!(r.candidates, ["k1", "k2", "k3"]);
        assert!(r.kernels.as_ref().unwrap().first.is_none());
        assert!(r.verification.is_none());
        assert!(r.markdown(None).starts_with("## first bad kernel: one of 3 kernels that could not be tested"));
    }

    #[test]
    fn find_fix_finds_the_first_fixed_kernel() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let mut o = opts(fake.kernels("bad bad bad good good"));
        o.find_fix = true;
        o.repeat = vec!["--repro".into(), "x y".into()];
        let r = run(&o, &cache, &mut fake).unwrap();
        let k = r.kernels.as_ref().unwrap();
        assert_eq!(r.found, "first fixed kernel");
        assert_eq!(k.first.as_ref().unwrap().name, "k3");
        assert_eq!((r.good.as_str(), r.bad.as_str()), ("k4", "k0"));
        let v = r.verification.unwrap();
        assert_eq!(v.summary, "the first fixed kernel passes again, the last broken kernel fails again");
        assert_eq!(
            k.next.as_ref().unwrap().command.as_deref(),
            Some("cargo xtask bisect --linux <linux-stable> --find-fix --bad v6.12.20 --good v6.12.30 --repro 'x y'")
        );
    }

    #[test]
    fn a_retest_that_disagrees_is_not_verified() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        fake.flip_on_retest = vec!["k2".into()];
        let r = run(&opts(fake.kernels("good good bad bad")), &cache, &mut fake).unwrap();
        let v = r.verification.unwrap();
        assert_eq!(v.status, VerifyStatus::NotVerified);
        assert!(
            v.summary.starts_with("did not hold: the first bad kernel fails again (k2): good [pass]"),
            "{}",
            v.summary
        );
        // --no-verify: no re-test at all.
        let mut fake = Fake::new();
        let mut o = opts(fake.kernels("good good bad bad"));
        o.verify = false;
        let r = run(&o, &cache, &mut fake).unwrap();
        assert!(r.verification.is_none());
        assert_eq!(fake.boots.len(), r.steps.len());
    }

    #[test]
    fn ends_that_do_not_behave_stop_and_ends_can_be_named() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let err = run(&opts(fake.kernels("good good good")), &cache, &mut fake).unwrap_err();
        assert_eq!(err.to_string(), "--bad k2 tests good instead of bad: pass");
        // --good/--bad by upstream version or release narrow the range.
        let mut fake = Fake::new();
        let mut o = opts(fake.kernels("bad good good bad bad bad"));
        o.good = Some("6.12.10".into());
        o.bad = Some("6.12.40+deb12".into());
        let r = run(&o, &cache, &mut fake).unwrap();
        assert_eq!(r.kernels.unwrap().first.unwrap().name, "k3");
        assert!(!fake.boots.contains(&"k0".to_owned()) && !fake.boots.contains(&"k5".to_owned()));
    }

    #[test]
    fn bad_input_is_one_line() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let ks = fake.kernels("good bad bad");
        let err = |o: KernelOptions, fake: &mut Fake| run(&o, &cache, fake).unwrap_err().to_string();
        let mut o = opts(ks.clone());
        o.good = Some("6.12.99".into());
        assert_eq!(err(o, &mut fake), "--good 6.12.99: not one of the kernels (6.12.00, 6.12.10, 6.12.20)");
        let mut o = opts(ks.clone());
        o.good = Some("6.12.20".into());
        o.bad = Some("k1".into());
        assert_eq!(err(o, &mut fake), "--good 6.12.20 is not older than --bad 6.12.10 in the list");
        let mut o = opts(ks.clone());
        o.find_fix = true;
        o.bad = Some("6.12.20".into());
        assert_eq!(
            err(o, &mut fake),
            "--bad 6.12.20 is not older than --good 6.12.20 in the list (with --find-fix the broken kernel is the older one)"
        );
        assert_eq!(
            err(opts(ks[..1].to_vec()), &mut fake),
            "a bisect over kernels needs at least two, oldest first (got 1)"
        );
        assert_eq!(err(opts(vec![ks[0].clone(), ks[0].clone()]), &mut fake), "k0 is in the list twice");
        let mut twins = ks.clone();
        twins[1].info.upstream = Some("6.12.00".into());
        let mut o = opts(twins);
        o.good = Some("6.12.00".into());
        assert_eq!(
            err(o, &mut fake),
            "--good 6.12.00 names 2 kernels (6.12.00+deb12-cloud-amd64, 6.12.10+deb12-cloud-amd64): give its release"
        );
        assert!(fake.boots.is_empty(), "nothing booted: {:?}", fake.boots);
    }

    #[test]
    fn an_infrastructure_error_stops_and_the_same_call_resumes() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let ks = fake.kernels("good good good infra bad bad bad");
        let err = run(&opts(ks.clone()), &cache, &mut fake).unwrap_err();
        assert!(matches!(&err, BisectError::Infrastructure { commit, .. } if commit == "k3"), "{err}");
        std::fs::write(fake.dir.path().join("k3"), "good").unwrap();
        fake.boots.clear();
        let mut said = Vec::new();
        let r = bisect_kernels(&opts(ks), &cache, &mut fake, &|| false, &mut |e| {
            if let BisectEvent::Say(s) = e {
                said.push(s.to_owned());
            }
        })
        .unwrap();
        assert!(
            said.iter().any(|s| s.starts_with("resuming the bisect") && s.ends_with("(2 kernels tested so far)")),
            "{said:?}"
        );
        assert_eq!(r.kernels.unwrap().first.unwrap().name, "k4");
        assert!(!fake.boots[..fake.boots.len() - 2].contains(&"k6".to_owned()), "the ends again: {:?}", fake.boots);
    }

    #[test]
    fn the_next_bisect_follows_the_branches() {
        let k = |upstream: Option<&str>, version: Option<&str>| KernelInfo {
            name: "linux-image-x".into(),
            release: None,
            package_version: version.map(str::to_owned),
            upstream: upstream.map(str::to_owned),
        };
        let across =
            next_bisect(&k(Some("6.1.192"), None), &k(Some("6.12.107"), None), false, &["--repro".into(), "r".into()]);
        assert_eq!(
            across.command.as_deref(),
            Some("cargo xtask bisect --linux <linux> --good v6.1 --bad v6.12 --repro r")
        );
        assert!(across.why.contains("different stable branches, neither an ancestor of the other"), "{}", across.why);
        let same =
            next_bisect(&k(Some("6.1.192"), Some("6.1.192-1")), &k(Some("6.1.192"), Some("6.1.192-2")), false, &[]);
        assert_eq!(same.command, None);
        assert!(same.why.contains("(6.1.192-1 to 6.1.192-2)"), "{}", same.why);
        let base = next_bisect(&k(Some("6.12.0"), None), &k(Some("6.12.3"), None), false, &[]);
        assert_eq!(
            base.command.as_deref(),
            Some("cargo xtask bisect --linux <linux-stable> --good v6.12 --bad v6.12.3")
        );
        assert_eq!(next_bisect(&k(None, None), &k(Some("6.1"), None), false, &[]).command, None);
        assert_eq!(shell_word("krepro.fail_from=6.12.111"), "krepro.fail_from=6.12.111");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn search_order() {
        let none = BTreeSet::new();
        assert_eq!(next(0, 10, &none), Next::Test(5));
        assert_eq!(next(4, 5, &none), Next::Found);
        let skipped: BTreeSet<usize> = [5].into();
        assert_eq!(next(0, 10, &skipped), Next::Test(4), "the nearest untested, the older on a tie");
        let skipped: BTreeSet<usize> = [1, 2].into();
        assert_eq!(next(0, 3, &skipped), Next::OnlySkipped(vec![1, 2, 3]));
    }
}
