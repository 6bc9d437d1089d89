//! Bisect over prebuilt kernels: a list, oldest first (bzImage files, or
//! the Debian cloud kernels of some series, each fetched into the cache
//! only when a step needs it). Nothing is built. A binary search with the
//! same runs, decisions, resumable state and report as a git bisect; the
//! boundary it finds is checked again as a git culprit is, and the report
//! says which upstream range to bisect in git next.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{BisectError, BisectEvent, Candidate, Detail, ExtraCheck, Made, Space, Tested, Words};
use crate::host::cache::Cache;
use crate::host::fetch::{self, Package};
use crate::image::kernel::{check_kernel, version_string, Kernel, KernelError};

/// One kernel of the list, as the report names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct KernelInfo {
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
pub(crate) enum Source {
    /// A file, checked when the list was made.
    File(Kernel),
    /// Fetched into the cache when a step needs it.
    Package(Package),
}

/// A kernel of the list.
#[derive(Clone, Debug)]
pub(crate) struct Prebuilt {
    pub info: KernelInfo,
    pub source: Source,
}

impl Prebuilt {
    /// A bzImage file (checked here, before anything boots); its upstream
    /// version from the image's version string: Debian's package version
    /// when it names one, else the release's leading numbers.
    pub(crate) fn file(path: &Path) -> Result<Prebuilt, KernelError> {
        let kernel = check_kernel(path)?;
        let version = version_string(path).unwrap_or_default();
        let package_version = version.split(' ').skip_while(|w| *w != "Debian").nth(1).map(str::to_owned);
        let upstream = package_version.as_deref().or(kernel.release.as_deref()).and_then(fetch::upstream_of);
        let info =
            KernelInfo { name: path.display().to_string(), release: kernel.release.clone(), package_version, upstream };
        Ok(Prebuilt { info, source: Source::File(kernel) })
    }

    /// A package the archive offers, fetched when a step needs it.
    pub(crate) fn package(p: Package) -> Prebuilt {
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

/// What a bisect over prebuilt kernels found, beyond what every bisect
/// reports.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Answer {
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
pub(crate) struct NextBisect {
    /// The command, when there is an upstream range to bisect.
    pub command: Option<String>,
    /// Why this range (or why there is none), one line.
    pub why: String,
}

impl Answer {
    /// The report's head: the boundary.
    pub(crate) fn markdown_head(&self, found: &str) -> String {
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

    /// The answer in one line: the first kernel and the one before it.
    pub(crate) fn answer_line(&self) -> String {
        let version = |k: &KernelInfo| k.upstream.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        match (&self.first, &self.before) {
            (Some(f), Some(b)) => format!("{}{}, after {}{}", f.name, version(f), b.name, version(b)),
            (Some(f), None) => format!("{}{}", f.name, version(f)),
            _ => String::new(),
        }
    }

    /// The report's "next" paragraph: the git bisect over the upstream range.
    pub(crate) fn markdown_next(&self) -> String {
        match &self.next {
            Some(NextBisect { command: Some(c), why }) => format!("\nNext, in git: {why}\n\n    {c}\n"),
            Some(NextBisect { command: None, why }) => format!("\nNext: {why}\n"),
            None => String::new(),
        }
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

/// The search's ends: (older, newer) indexes, checked. `good` and `bad`
/// name kernels of the list (None: its ends).
fn ends(k: &[Prebuilt], good: Option<&str>, bad: Option<&str>, find_fix: bool) -> Result<(usize, usize), BisectError> {
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
    let good = good.map(|s| find(k, s, "--good")).transpose()?;
    let bad = bad.map(|s| find(k, s, "--bad")).transpose()?;
    let (old, new, old_flag, new_flag) = if find_fix {
        (bad.unwrap_or(0), good.unwrap_or(last), "--bad", "--good")
    } else {
        (good.unwrap_or(0), bad.unwrap_or(last), "--good", "--bad")
    };
    if old >= new {
        let fix = if find_fix { " (with --find-fix the broken kernel is the older one)" } else { "" };
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
pub(crate) fn next_bisect(before: &KernelInfo, first: &KernelInfo, find_fix: bool, repeat: &[String]) -> NextBisect {
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
    let command = format!("krepro bisect --source {tree} {range} {}", rest.join(" "));
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

/// A list of prebuilt kernels, oldest first, between two of them.
pub(crate) struct PrebuiltSpace<'a> {
    kernels: Vec<Prebuilt>,
    /// (older, newer) indexes.
    ends: (usize, usize),
    find_fix: bool,
    /// The flags that make the test, repeated in the git bisect the
    /// report suggests next.
    repeat: Vec<String>,
    cache: &'a Cache,
    interrupted: &'a dyn Fn() -> bool,
    /// The range the search last asked about: (last old-side, newest new-side).
    range: Option<(usize, usize)>,
    /// Packages being fetched in the background while a kernel boots:
    /// the two the next step may need.
    prefetch: Vec<(String, std::thread::JoinHandle<Result<PathBuf, String>>)>,
    /// Whether the search goes in rounds (`--parallel`): the round
    /// fetches what it tests, and no bisection midpoint is fetched ahead.
    in_rounds: std::cell::Cell<bool>,
}

impl<'a> PrebuiltSpace<'a> {
    /// The list, checked: at least two kernels, none twice, `good` and
    /// `bad` (None: the list's ends) naming one each, the older first.
    pub(crate) fn new(
        kernels: Vec<Prebuilt>,
        good: Option<&str>,
        bad: Option<&str>,
        find_fix: bool,
        repeat: Vec<String>,
        cache: &'a Cache,
        interrupted: &'a dyn Fn() -> bool,
    ) -> Result<PrebuiltSpace<'a>, BisectError> {
        let ends = ends(&kernels, good, bad, find_fix)?;
        Ok(PrebuiltSpace {
            kernels,
            ends,
            find_fix,
            repeat,
            cache,
            interrupted,
            range: None,
            prefetch: Vec::new(),
            in_rounds: std::cell::Cell::new(false),
        })
    }

    fn candidate(&self, i: usize) -> Candidate {
        let k = &self.kernels[i];
        Candidate {
            id: k.info.name.clone(),
            label: k.info.upstream.clone().or(k.info.release.clone()).unwrap_or_default(),
        }
    }

    fn index(&self, c: &Candidate) -> Option<usize> {
        self.kernels.iter().position(|k| k.info.name == c.id)
    }

    /// The newest old-side kernel below `hi`.
    fn lo(&self, old: &[&Candidate], hi: usize) -> usize {
        old.iter().filter_map(|c| self.index(c)).filter(|i| *i < hi).max().unwrap_or(self.ends.0)
    }
}

impl PrebuiltSpace<'_> {
    /// While kernel `i` boots, fetches in the background the kernels the
    /// next step tests: the middle of the range below it (if it turns out
    /// new-side) and of the range above it (if old-side).
    fn prefetch_next(&mut self, i: usize) {
        let Some((lo, hi)) = self.range.filter(|(lo, hi)| *lo < i && i < *hi) else { return };
        for (a, b) in [(lo, i), (i, hi)] {
            if b - a < 2 {
                continue;
            }
            let Source::Package(p) = &self.kernels[a + (b - a) / 2].source else { continue };
            let cached = self.cache.kernels().join(&p.name).join(format!("boot/vmlinuz-{}", p.release)).is_file();
            if cached || self.prefetch.iter().any(|(name, _)| *name == p.name) {
                continue;
            }
            let (cache, name, release) = (self.cache.clone(), p.name.clone(), p.release.clone());
            let handle = std::thread::spawn(move || {
                fetch::fetch_package(&cache, &name, &release, &mut |_| {}).map_err(|e| e.to_string())
            });
            self.prefetch.push((p.name.clone(), handle));
        }
    }
}

impl Space for PrebuiltSpace<'_> {
    fn words(&self) -> Words {
        Words { one: "kernel", many: "kernels", about: "version", made: "fetch", compiled: false }
    }

    fn key(&self) -> String {
        let names: Vec<&str> = self.kernels.iter().map(|k| k.info.name.as_str()).collect();
        format!("kernels\n{}\n{} {}", names.join("\n"), self.ends.0, self.ends.1)
    }

    fn ends(&self) -> (Candidate, Candidate) {
        (self.candidate(self.ends.0), self.candidate(self.ends.1))
    }

    /// The kernels between, nearest the middle first (the older on a tie).
    fn open(&mut self, old: &[&Candidate], new: &Candidate) -> Result<Vec<Candidate>, BisectError> {
        let hi = self.index(new).unwrap_or(self.ends.1);
        let lo = self.lo(old, hi);
        self.range = Some((lo, hi));
        let mid = lo + (hi - lo) / 2;
        let mut open: Vec<usize> = (lo + 1..hi).collect();
        open.sort_by_key(|&i| (i.abs_diff(mid), i));
        Ok(open.into_iter().map(|i| self.candidate(i)).collect())
    }

    fn before(&mut self, c: &Candidate, old: &[&Candidate]) -> Result<Option<Candidate>, BisectError> {
        Ok(self.index(c).map(|hi| self.candidate(self.lo(old, hi))))
    }

    fn kernel(&mut self, c: &Candidate, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<Made, BisectError> {
        let i = self.index(c).expect("a kernel of the list");
        let started = std::time::Instant::now();
        let kernel = match &self.kernels[i].source {
            Source::File(kernel) => kernel.clone(),
            Source::Package(p) => {
                let p = p.clone();
                let fetched = match self.prefetch.iter().position(|(name, _)| *name == p.name) {
                    // Fetched (or being fetched) in the background: wait for it.
                    Some(at) => {
                        let (_, handle) = self.prefetch.swap_remove(at);
                        let fetched = handle.join().unwrap_or_else(|_| Err("the background fetch panicked".into()));
                        if fetched.is_ok() {
                            on(BisectEvent::Say(&format!("{} was fetched in the background", p.name)));
                        }
                        fetched
                    }
                    None => fetch::fetch_package(self.cache, &p.name, &p.release, &mut |m| on(BisectEvent::Say(m)))
                        .map_err(|e| e.to_string()),
                };
                let image = fetched.map_err(|message| match (self.interrupted)() {
                    true => BisectError::Interrupted,
                    false => BisectError::Infrastructure { commit: p.name.clone(), message },
                })?;
                check_kernel(&image)
                    .map_err(|e| BisectError::Infrastructure { commit: c.id.clone(), message: e.to_string() })?
            }
        };
        if !self.in_rounds.get() {
            self.prefetch_next(i);
        }
        // Prebuilt: nothing of ours compiled it.
        let phases = super::Phases { fetch: started.elapsed().as_secs_f64(), ..super::Phases::default() };
        Ok(Made::Kernel { kernel, toolchain: String::new(), fixes: Vec::new(), phases, code_hash: None })
    }

    fn done(&mut self) {
        // What was fetched for a step that never came stays in the cache.
        for (_, handle) in self.prefetch.drain(..) {
            let _ = handle.join();
        }
    }

    fn check_words(&self, _: &Candidate, _: &Candidate, find_fix: bool) -> (String, String) {
        let (first, before) = if find_fix {
            ("the first fixed kernel passes again", "the last broken kernel fails again")
        } else {
            ("the first bad kernel fails again", "the last good kernel passes again")
        };
        (first.to_owned(), before.to_owned())
    }

    fn extra_checks(&mut self, _: &Candidate, _: &Candidate) -> Result<Vec<ExtraCheck>, BisectError> {
        Ok(Vec::new())
    }

    fn detail(&mut self, first: Option<&Candidate>, before: Option<&Candidate>) -> Result<Detail, BisectError> {
        let info = |c: Option<&Candidate>| c.and_then(|c| self.index(c)).map(|i| self.kernels[i].info.clone());
        let (first, before) = (info(first), info(before));
        let next = match (&first, &before) {
            (Some(f), Some(b)) => Some(next_bisect(b, f, self.find_fix, &self.repeat)),
            _ => None,
        };
        Ok(Detail::Kernels(Answer { first, before, next, find_fix: self.find_fix }))
    }

    fn log(&self, _: &[Tested], _: Option<&Candidate>, _: bool) -> String {
        String::new()
    }

    /// Prebuilt kernels boot side by side: J of them, evenly spaced.
    fn round(&self, open: &[&Candidate], j: u32) -> Vec<Candidate> {
        let mut at: Vec<usize> = open.iter().filter_map(|c| self.index(c)).collect();
        at.sort_unstable();
        let (n, j) = (at.len(), (j as usize).min(at.len()));
        if j < 2 {
            return Vec::new();
        }
        self.in_rounds.set(true);
        let picks: std::collections::BTreeSet<usize> = (1..=j).map(|k| at[k * (n + 1) / (j + 1) - 1]).collect();
        picks.into_iter().map(|i| self.candidate(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bisect::verify::VerifyStatus;
    use crate::bisect::{bisect, BisectReport, BootSummary, Booter, Options, TestKind};
    use crate::boot::outcome::{Mark, Outcome, Remap};
    use crate::boot::BootError;
    use crate::image::arch::Arch;
    use std::collections::BTreeSet;

    /// Kernel i is a file holding its word: "good", "bad" or "skip".
    struct Fake {
        dir: tempfile::TempDir,
        boots: Vec<String>,
        /// Kernels whose second test (the re-test) gives the opposite.
        flip_on_retest: Vec<String>,
        /// The kernels of each round booted side by side (a boot on its
        /// own is a round of one).
        rounds: Vec<Vec<String>>,
        in_round: bool,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                dir: tempfile::tempdir().unwrap(),
                boots: Vec::new(),
                flip_on_retest: Vec::new(),
                rounds: Vec::new(),
                in_round: false,
            }
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
                    let kernel = Kernel { path, release: info.release.clone(), arch: Arch::X86_64 };
                    Prebuilt { info, source: Source::File(kernel) }
                })
                .collect()
        }
    }

    impl Booter for Fake {
        fn boot(&mut self, k: &Kernel, _: u32, _: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BootSummary, BootError> {
            let k = k.path.as_path();
            let name = k.file_name().unwrap().to_string_lossy().into_owned();
            let again = self.boots.contains(&name) && self.flip_on_retest.contains(&name);
            if !self.in_round {
                self.rounds.push(vec![name.clone()]);
            }
            self.boots.push(name);
            let outcome = match (std::fs::read_to_string(k).unwrap().as_str(), again) {
                ("good", false) | ("bad", true) => Outcome::Pass,
                ("bad", false) | ("good", true) => Outcome::Fail,
                ("skip", _) => Outcome::Skip,
                ("infra", _) => return Err(BootError::QemuFailed { status: "1".into(), stderr: "boom".into() }),
                (w, _) => unreachable!("{w}"),
            };
            Ok(BootSummary {
                outcome,
                message: String::new(),
                crash_title: None,
                console_log: k.to_owned(),
                prepare_secs: 0.0,
            })
        }

        fn boot_many(
            &mut self,
            kernels: &[&Kernel],
            jobs: &[(usize, u32)],
            _: u32,
            on: &mut dyn FnMut(BisectEvent<'_>),
        ) -> Vec<Result<BootSummary, BootError>> {
            let names = kernels.iter().map(|k| k.path.file_name().unwrap().to_string_lossy().into_owned());
            self.rounds.push(names.collect());
            self.in_round = true;
            let results = jobs.iter().map(|&(k, run)| self.boot(kernels[k], run, on)).collect();
            self.in_round = false;
            results
        }
    }

    /// A bisect of the list, as `krepro bisect --kernels` sets it up.
    struct Args {
        kernels: Vec<Prebuilt>,
        good: Option<String>,
        bad: Option<String>,
        find_fix: bool,
        verify: bool,
        repeat: Vec<String>,
        parallel: u32,
    }

    fn opts(kernels: Vec<Prebuilt>) -> Args {
        Args {
            kernels,
            good: None,
            bad: None,
            find_fix: false,
            verify: true,
            parallel: 1,
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

    fn run_with(
        a: &Args,
        cache: &Cache,
        fake: &mut Fake,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BisectReport, BisectError> {
        let never = || false;
        let mut space = PrebuiltSpace::new(
            a.kernels.clone(),
            a.good.as_deref(),
            a.bad.as_deref(),
            a.find_fix,
            a.repeat.clone(),
            cache,
            &never,
        )?;
        let o = Options {
            restart: false,
            repro: "selftest_version".into(),
            description: String::new(),
            runs: 1,
            remap: Remap::default(),
            find_fix: a.find_fix,
            key_extra: String::new(),
            check_endpoints: true,
            verify: a.verify,
            same_crash: false,
            crash_title: None,
            min_bad: 1,
            parallel: a.parallel,
            seed: Vec::new(),
        };
        bisect(&o, &mut space, fake, cache, &never, on)
    }

    fn run(a: &Args, cache: &Cache, fake: &mut Fake) -> Result<BisectReport, BisectError> {
        run_with(a, cache, fake, &mut |_| {})
    }

    fn answer(r: &BisectReport) -> &Answer {
        match &r.detail {
            Detail::Kernels(k) => k,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finds_the_boundary_in_log_steps_and_verifies_it() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let o = opts(fake.kernels("good good good good good bad bad bad bad bad bad"));
        let r = run(&o, &cache, &mut fake).unwrap();
        let k = answer(&r);
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
            Some("krepro bisect --source <linux-stable> --good v6.12.40 --bad v6.12.50 --repro selftest_version --append krepro.fail_from=6.12.50")
        );
        let md = r.markdown(None);
        assert!(md.starts_with("## first bad kernel: k5 (6.12.50)\n\n- first bad: k5, upstream 6.12.50 (release 6.12.50+deb12-cloud-amd64)\n- last good: k4"), "{md}");
        assert!(md.contains("| kernel | version | verdict | runs | fetch | boot |"), "{md}");
        assert!(md.contains("    krepro bisect --source <linux-stable>"), "{md}");
        assert!(!md.contains("git bisect log"), "{md}");
        // Done: no state left.
        assert!(std::fs::read_dir(cache.bisect()).unwrap().next().is_none());
    }

    #[test]
    fn two_at_once_finds_every_boundary_of_eleven_kernels_in_fewer_rounds() {
        // The 11 Debian 6.1 and 6.12 cloud kernels the issue counts: the
        // ends, then 9 open between them, wherever the boundary is.
        let mut worst = (0, 0);
        for first_bad in 1..=10 {
            let words: Vec<&str> = (0..11).map(|i| if i < first_bad { "good" } else { "bad" }).collect();
            let mut found = Vec::new();
            let mut rounds = Vec::new();
            for parallel in [1, 2] {
                let (_d, cache) = cache();
                let mut fake = Fake::new();
                let o = Args { parallel, ..opts(fake.kernels(&words.join(" "))) };
                let r = run(&o, &cache, &mut fake).unwrap();
                found.push(answer(&r).first.as_ref().unwrap().name.clone());
                let searched = r.steps.iter().filter(|s| s.kind == TestKind::Bisect).count();
                // Less the ends (one round or two) and verification's two re-tests.
                let ends = if parallel == 1 { 2 } else { 1 };
                assert!(parallel == 2 || fake.rounds.len() - ends - 2 == searched, "{:?}", fake.rounds);
                rounds.push(fake.rounds.len() - ends - 2);
                if parallel == 2 {
                    // The ends in one round; then at most two a round, newest first.
                    assert_eq!(fake.rounds[0], ["k10", "k0"], "{:?}", fake.rounds);
                    assert!(fake.rounds.iter().all(|r| r.len() <= 2), "{:?}", fake.rounds);
                    let verify = r.verification.as_ref().unwrap();
                    assert_eq!(verify.status, VerifyStatus::Verified, "{}", verify.summary);
                }
            }
            assert_eq!(found, [format!("k{first_bad}"), format!("k{first_bad}")]);
            assert!(rounds[1] <= rounds[0], "boundary {first_bad}: {rounds:?}");
            worst = (worst.0.max(rounds[0]), worst.1.max(rounds[1]));
        }
        // Bisection: up to 4 rounds after the ends; two at a time: 3.
        assert_eq!(worst, (4, 3));
        assert_eq!((crate::bisect::rounds(9, 2), crate::bisect::rounds(9, 3)), (4, 3));
    }

    #[test]
    fn a_skipped_kernel_is_stepped_around() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        // The middle (3) skips: its neighbours are tried instead.
        let o = opts(fake.kernels("good good good skip good bad bad"));
        let r = run(&o, &cache, &mut fake).unwrap();
        assert_eq!(answer(&r).first.as_ref().unwrap().name, "k5");
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
        assert!(answer(&r).first.is_none());
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
        let k = answer(&r);
        assert_eq!(r.found, "first fixed kernel");
        assert_eq!(k.first.as_ref().unwrap().name, "k3");
        assert_eq!((r.good.as_str(), r.bad.as_str()), ("k4", "k0"));
        let v = r.verification.as_ref().unwrap();
        assert_eq!(v.summary, "the first fixed kernel passes again, the last broken kernel fails again");
        assert_eq!(
            k.next.as_ref().unwrap().command.as_deref(),
            Some("krepro bisect --source <linux-stable> --find-fix --bad v6.12.20 --good v6.12.30 --repro 'x y'")
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
        assert_eq!(answer(&r).first.as_ref().unwrap().name, "k3");
        assert!(!fake.boots.contains(&"k0".to_owned()) && !fake.boots.contains(&"k5".to_owned()));
    }

    #[test]
    fn bad_input_is_one_line() {
        let (_d, cache) = cache();
        let mut fake = Fake::new();
        let ks = fake.kernels("good bad bad");
        let err = |o: Args, fake: &mut Fake| run(&o, &cache, fake).unwrap_err().to_string();
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
        let r = run_with(&opts(ks), &cache, &mut fake, &mut |e| {
            if let BisectEvent::Say(s) = e {
                said.push(s.to_owned());
            }
        })
        .unwrap();
        assert!(
            said.iter().any(|s| s.starts_with("resuming the bisect") && s.ends_with("(2 kernels tested so far)")),
            "{said:?}"
        );
        assert_eq!(answer(&r).first.as_ref().unwrap().name, "k4");
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
        assert_eq!(across.command.as_deref(), Some("krepro bisect --source <linux> --good v6.1 --bad v6.12 --repro r"));
        assert!(across.why.contains("different stable branches, neither an ancestor of the other"), "{}", across.why);
        let same =
            next_bisect(&k(Some("6.1.192"), Some("6.1.192-1")), &k(Some("6.1.192"), Some("6.1.192-2")), false, &[]);
        assert_eq!(same.command, None);
        assert!(same.why.contains("(6.1.192-1 to 6.1.192-2)"), "{}", same.why);
        let base = next_bisect(&k(Some("6.12.0"), None), &k(Some("6.12.3"), None), false, &[]);
        assert_eq!(base.command.as_deref(), Some("krepro bisect --source <linux-stable> --good v6.12 --bad v6.12.3"));
        assert_eq!(next_bisect(&k(None, None), &k(Some("6.1"), None), false, &[]).command, None);
        assert_eq!(shell_word("krepro.fail_from=6.12.111"), "krepro.fail_from=6.12.111");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_middle_first_then_outwards_the_older_on_a_tie() {
        let (_d, cache) = cache();
        let fake = Fake::new();
        let never = || false;
        let mut space =
            PrebuiltSpace::new(fake.kernels("a b c d e f g h i j k"), None, None, false, vec![], &cache, &never)
                .unwrap();
        let c = |i: usize| space.candidate(i);
        let (k0, k10, k4, k5) = (c(0), c(10), c(4), c(5));
        let ids = |v: Vec<Candidate>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(space.open(&[&k0], &k10).unwrap())[..3], ["k5", "k4", "k6"]);
        assert!(space.open(&[&k0, &k4], &k5).unwrap().is_empty(), "neighbours: found");
        assert_eq!(space.before(&k5, &[&k0, &k4]).unwrap().unwrap().id, "k4");
        let _ = BTreeSet::<usize>::new();
    }
}
