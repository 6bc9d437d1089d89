//! The commits of a git repository as a bisect's [`Space`]: what is left
//! between the marks is what git's own bisection would weigh (`git
//! rev-list --bisect-all`), so merges are bisected as git does; a commit
//! is built in krepro's long-lived worktree of the repository
//! ([`crate::builder::worktree`], where `kernel build --source` builds
//! too, so the first step builds incrementally from the user's last
//! build). The user's checkout, index, refs and stash are never touched:
//! no `git bisect` runs in their repository, and a revert made for
//! verification is a commit object no ref points to.

use std::path::{Path, PathBuf};

use serde::Serialize;

use std::time::Instant;

use super::{short, BisectError, BisectEvent, Candidate, Detail, ExtraCheck, Made, Phases, Side, Space, Tested, Words};
use crate::builder::worktree::{self, Worktree};
use crate::builder::BuildPhases;
use crate::host::cache::Cache;
use crate::host::spawn::{Cmd, CmdError};
use crate::image::kernel::{check_kernel, Kernel};

/// A commit, as the report names it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CommitInfo {
    pub hash: String,
    pub subject: String,
    pub author: String,
    pub date: String,
    /// A merge commit: rarely the cause itself (flagged in the report).
    pub merge: bool,
}

impl CommitInfo {
    pub(super) fn markdown_head(&self, found: &str) -> String {
        let merge = if self.merge {
            "- **a merge commit**: the cause is one of the merged commits, or how they meet; bisect the merged branch\n"
        } else {
            ""
        };
        format!(
            "## {found}: {} (\"{}\")\n\n- commit: {}\n- author: {}\n- date: {}\n{merge}",
            short(&self.hash),
            self.subject,
            self.hash,
            self.author,
            self.date
        )
    }
}

/// What building one commit gave.
pub(crate) enum BuildResult {
    Kernel {
        /// The image it left, checked.
        kernel: Kernel,
        /// The compiler ("gcc-12"), for the report.
        toolchain: String,
        /// Where the build's time went.
        phases: BuildPhases,
        /// [`Kernel::code_hash`] (None: could not be made).
        code_hash: Option<String>,
    },
    /// The tree does not build (or cannot give the repro its config): skip,
    /// unless `fix` names an upstream commit that fixes this failure (the
    /// compiler table's build fixes), which is then applied and built once.
    Failed { why: String, toolchain: String, fix: Option<String> },
}

/// Builds the worktree as it is checked out. The real one is the kernel
/// builder (or the user's --build-cmd); tests use a fake.
pub(crate) trait Builder {
    fn build(
        &mut self,
        worktree: &Path,
        commit: &str,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BuildResult, String>;
}

fn git(dir: &Path, args: &[&str]) -> Result<String, BisectError> {
    Ok(String::from_utf8_lossy(&Cmd::new("git", args, dir).quiet().output()?.stdout).into_owned())
}

/// Resolves a revision to a commit hash, or a one-line error.
pub(crate) fn resolve(repo: &Path, rev: &str, flag: &str) -> Result<String, BisectError> {
    git(repo, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
        .map(|s| s.trim().to_owned())
        .map_err(|_| BisectError::BadInput(format!("{flag} {rev}: not a commit in {}", repo.display())))
}

/// A repository's commits between two ends.
pub(crate) struct GitSpace<'a> {
    repo: PathBuf,
    worktree: Worktree,
    /// (older, newer): --good and --bad, swapped with --find-fix.
    ends: (Candidate, Candidate),
    picks: Vec<String>,
    find_fix: bool,
    builder: &'a mut dyn Builder,
}

/// What a git bisect searches, as the user gave it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Range<'a> {
    /// The repository (any directory of its work tree).
    pub dir: &'a Path,
    pub good: &'a str,
    pub bad: &'a str,
    /// `bad` is the older end: find the commit that fixed it.
    pub find_fix: bool,
    /// Commits to apply on top of every commit before it is built.
    pub cherry_picks: &'a [String],
}

impl Range<'_> {
    /// The range checked against the repository: both ends are commits,
    /// the older an ancestor of the newer, every cherry-pick a commit.
    /// Only git is asked: nothing is built or checked out.
    pub(crate) fn check(&self) -> Result<Checked, BisectError> {
        let Range { dir, good, bad, find_fix, cherry_picks } = *self;
        let top = git(dir, &["rev-parse", "--show-toplevel"])
            .map_err(|_| BisectError::BadInput(format!("--source {}: not a git repository", dir.display())))?;
        let repo = PathBuf::from(top.trim());
        let good = resolve(&repo, good, "--good")?;
        let bad = resolve(&repo, bad, "--bad")?;
        if good == bad {
            return Err(BisectError::BadInput("--good and --bad are the same commit".into()));
        }
        let mut picks = Vec::new();
        for p in cherry_picks {
            picks.push(resolve(&repo, p, "--cherry-pick")?);
        }
        let (old, new) = if find_fix { (bad, good) } else { (good, bad) };
        if git(&repo, &["merge-base", "--is-ancestor", &old, &new]).is_err() {
            let (o, n) = if find_fix { ("--bad", "--good") } else { ("--good", "--bad") };
            return Err(BisectError::BadInput(format!(
                "{o} {} is not an ancestor of {n} {}",
                short(&old),
                short(&new)
            )));
        }
        let subject = |c: &str| git(&repo, &["show", "-s", "--format=%s", c]).map(|s| s.trim().to_owned());
        let ends = (Candidate { label: subject(&old)?, id: old }, Candidate { label: subject(&new)?, id: new });
        Ok(Checked { repo, ends, picks, find_fix })
    }
}

/// A [`Range`] that [`Range::check`] found sound.
#[derive(Clone, Debug)]
pub(crate) struct Checked {
    repo: PathBuf,
    ends: (Candidate, Candidate),
    picks: Vec<String>,
    find_fix: bool,
}

impl<'a> GitSpace<'a> {
    /// The commits of a checked range, in krepro's worktree of the
    /// repository (held until the bisect ends).
    pub(crate) fn new(
        range: Checked,
        builder: &'a mut dyn Builder,
        cache: &Cache,
        say: &mut dyn FnMut(&str),
    ) -> Result<GitSpace<'a>, BisectError> {
        let Checked { repo, ends, picks, find_fix } = range;
        let worktree = worktree::take(cache, &repo, None, say)?;
        Ok(GitSpace { repo, worktree, ends, picks, find_fix, builder })
    }

    fn wt(&self) -> &Path {
        &self.worktree.path
    }

    fn candidate(&self, hash: &str) -> Result<Candidate, BisectError> {
        let label = git(self.wt(), &["show", "-s", "--format=%s", hash])?.trim().to_owned();
        Ok(Candidate { id: hash.to_owned(), label })
    }

    /// Moves the worktree to `commit` with the cherry-picks on top; Err
    /// with why when one does not apply.
    fn check_out(&self, commit: &str) -> Result<Result<(), String>, BisectError> {
        worktree::checkout(self.wt(), commit)?;
        for p in &self.picks {
            if git(self.wt(), &["cherry-pick", "--no-commit", p]).is_err() {
                let _ = git(self.wt(), &["cherry-pick", "--abort"]);
                worktree::checkout(self.wt(), commit)?;
                return Ok(Err(format!("--cherry-pick {} does not apply", short(p))));
            }
        }
        Ok(Ok(()))
    }
}

impl Space for GitSpace<'_> {
    fn words(&self) -> Words {
        Words { one: "commit", many: "commits", about: "subject", made: "build", compiled: true }
    }

    fn key(&self) -> String {
        format!("git\n{}\n{}\n{}\n{}", self.repo.display(), self.ends.0.id, self.ends.1.id, self.picks.join(","))
    }

    fn ends(&self) -> (Candidate, Candidate) {
        self.ends.clone()
    }

    /// By git's bisection weight (`--bisect-all`'s distance), and on a
    /// tie the older first (topological order: the same pick whatever
    /// the commit dates say).
    fn open(&mut self, old: &[&Candidate], new: &Candidate) -> Result<Vec<Candidate>, BisectError> {
        let range = |first: &[&str]| {
            let mut args: Vec<&str> = first.to_vec();
            args.extend([new.id.as_str(), "--not"]);
            args.extend(old.iter().map(|c| c.id.as_str()));
            git(self.wt(), &args)
        };
        let order = range(&["rev-list", "--topo-order", "--reverse"])?;
        let topo: std::collections::HashMap<&str, usize> = order.lines().enumerate().map(|(i, h)| (h, i)).collect();
        // "commit <hash> (dist=N)" (refs may come before the dist), then the subject.
        let listed = range(&["rev-list", "--bisect-all", "--format=%s"])?;
        let mut lines = listed.lines();
        let mut weighed: Vec<(u64, usize, Candidate)> = Vec::new();
        while let Some(head) = lines.next() {
            let subject = lines.next().unwrap_or_default();
            let Some(rest) = head.strip_prefix("commit ") else { continue };
            let hash = rest.split_whitespace().next().unwrap_or_default();
            if hash == new.id || hash.is_empty() {
                continue;
            }
            let dist = rest.split("dist=").nth(1).and_then(|d| d.trim_end_matches(')').parse().ok()).unwrap_or(0);
            let at = topo.get(hash).copied().unwrap_or(usize::MAX);
            weighed.push((dist, at, Candidate { id: hash.to_owned(), label: subject.to_owned() }));
        }
        weighed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(weighed.into_iter().map(|(_, _, c)| c).collect())
    }

    fn before(&mut self, c: &Candidate, _: &[&Candidate]) -> Result<Option<Candidate>, BisectError> {
        match git(self.wt(), &["rev-parse", "--verify", "--quiet", &format!("{}^", c.id)]) {
            Ok(parent) => Ok(Some(self.candidate(parent.trim())?)),
            Err(_) => Ok(None),
        }
    }

    fn kernel(&mut self, c: &Candidate, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<Made, BisectError> {
        let started = Instant::now();
        let checked_out = self.check_out(&c.id)?;
        let mut phases = Phases { checkout: started.elapsed().as_secs_f64(), ..Phases::default() };
        if let Err(why) = checked_out {
            return Ok(Made::Untestable { why, toolchain: String::new(), fixes: Vec::new(), phases });
        }
        let mut fixes: Vec<String> = Vec::new();
        let built = loop {
            let started = Instant::now();
            let built = self.builder.build(&self.worktree.path, &c.id, on);
            match &built {
                Ok(BuildResult::Kernel { phases: b, .. }) => {
                    phases.checkout += b.identify;
                    phases.config += b.toolchain + b.config;
                    phases.compile += b.compile;
                    phases.link += b.link;
                    phases.image += b.image;
                    phases.ccache = b.ccache;
                }
                // A build that failed: its time is make's.
                _ => phases.compile += started.elapsed().as_secs_f64(),
            }
            // A known failure with an upstream fix this commit lacks: the fix
            // goes on top, for this build only, once.
            if let Ok(BuildResult::Failed { fix: Some(fix), .. }) = &built {
                let wt = self.wt();
                let known = git(wt, &["cat-file", "-e", &format!("{fix}^{{commit}}")]).is_ok();
                let has_it = git(wt, &["merge-base", "--is-ancestor", fix, &c.id]).is_ok();
                if known && !has_it && !fixes.contains(fix) {
                    if git(wt, &["cherry-pick", "--no-commit", fix]).is_ok() {
                        on(BisectEvent::Say(&format!(
                            "applying the known build fix {} and building again",
                            short(fix)
                        )));
                        fixes.push(fix.clone());
                        continue;
                    }
                    let _ = git(wt, &["cherry-pick", "--abort"]);
                    if let Err(why) = self.check_out(&c.id)? {
                        return Ok(Made::Untestable { why, toolchain: String::new(), fixes, phases });
                    }
                }
            }
            break built;
        };
        if !self.picks.is_empty() || !fixes.is_empty() {
            worktree::checkout(self.wt(), &c.id)?;
        }
        match built {
            Ok(BuildResult::Kernel { kernel, toolchain, code_hash, .. }) => {
                Ok(Made::Kernel { kernel, toolchain, fixes, phases, code_hash })
            }
            Ok(BuildResult::Failed { why, toolchain, .. }) => Ok(Made::Untestable { why, toolchain, fixes, phases }),
            Err(message) => Err(BisectError::Infrastructure { commit: short(&c.id).to_owned(), message }),
        }
    }

    fn check_words(&self, culprit: &Candidate, before: &Candidate, find_fix: bool) -> (String, String) {
        let (shows, hides) = if find_fix { ("passes", "fails") } else { ("fails", "passes") };
        (format!("{} {shows} again", short(&culprit.id)), format!("its parent {} {hides}", short(&before.id)))
    }

    /// The new end with the culprit reverted (against its first parent,
    /// for a merge), a commit in krepro's worktree only.
    fn extra_checks(&mut self, culprit: &Candidate, new_end: &Candidate) -> Result<Vec<ExtraCheck>, BisectError> {
        let (c, n) = (short(&culprit.id).to_owned(), short(&new_end.id).to_owned());
        let (flag, hides) = if self.find_fix { ("--good", "fails") } else { ("--bad", "passes") };
        let what = format!("{flag} {n} with {c} reverted {hides}");
        let tested = format!("{n} - {c}");
        let wt = self.wt().to_owned();
        worktree::checkout(&wt, &new_end.id)?;
        let mut args = vec!["-c", "user.name=krepro", "-c", "user.email=krepro@localhost", "revert", "--no-edit"];
        let parents = git(&wt, &["show", "-s", "--format=%P", &culprit.id])?;
        if parents.split_whitespace().count() > 1 {
            args.extend(["-m", "1"]);
        }
        args.push(&culprit.id);
        let out = Cmd::new("git", &args, &wt).quiet().output_any_status()?;
        let candidate = if out.status.success() {
            let head = git(&wt, &["rev-parse", "HEAD"])?.trim().to_owned();
            Ok(Candidate { id: head, label: format!("Revert \"{}\"", culprit.label) })
        } else {
            let conflicts = git(&wt, &["diff", "--name-only", "--diff-filter=U"]).unwrap_or_default();
            let _ = git(&wt, &["revert", "--abort"]);
            worktree::checkout(&wt, &new_end.id)?;
            let files: Vec<&str> = conflicts.lines().collect();
            Err(if files.is_empty() {
                String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("git revert failed").to_owned()
            } else {
                format!("the revert conflicts in {}", files.join(", "))
            })
        };
        Ok(vec![ExtraCheck { what, tested, expected: Side::Old, candidate }])
    }

    fn detail(&mut self, first: Option<&Candidate>, _: Option<&Candidate>) -> Result<Detail, BisectError> {
        let Some(c) = first else { return Ok(Detail::None) };
        let show = git(self.wt(), &["show", "-s", "--format=%H%n%s%n%an <%ae>%n%ad%n%P", "--date=iso", &c.id])?;
        let mut l = show.lines().map(str::to_owned);
        Ok(Detail::Commit(CommitInfo {
            hash: l.next().unwrap_or_default(),
            subject: l.next().unwrap_or_default(),
            author: l.next().unwrap_or_default(),
            date: l.next().unwrap_or_default(),
            merge: l.next().is_some_and(|parents| parents.split_whitespace().count() > 1),
        }))
    }

    /// The marks as `git bisect log` writes them: `git bisect replay` on
    /// it redoes the search in any checkout.
    fn log(&self, tested: &[Tested], first: Option<&Candidate>, find_fix: bool) -> String {
        let (old_term, new_term) = if find_fix { ("broken", "fixed") } else { ("good", "bad") };
        let (old, new) = (&self.ends.0, &self.ends.1);
        let mut log = match find_fix {
            true => format!(
                "git bisect start '--term-old' '{old_term}' '--term-new' '{new_term}' '{}' '{}'\n",
                new.id, old.id
            ),
            false => format!("git bisect start '{}' '{}'\n", new.id, old.id),
        };
        let mut line = |term: &str, id: &str, label: &str| {
            log.push_str(&format!("# {term}: [{id}] {label}\ngit bisect {term} {id}\n"));
        };
        line(new_term, &new.id, &new.label);
        line(old_term, &old.id, &old.label);
        for t in tested.iter().filter(|t| t.kind == super::TestKind::Bisect) {
            let term = match Side::of(t.verdict, find_fix) {
                Some(Side::Old) => old_term,
                Some(Side::New) => new_term,
                None => "skip",
            };
            line(term, &t.commit, &t.subject);
        }
        if let Some(f) = first {
            log.push_str(&format!("# first {new_term} commit: [{}] {}\n", f.id, f.label));
        }
        log
    }
}

/// A release tag's version: `v6.2` is (6, 2, None), `v6.2-rc3` (6, 2,
/// Some(3)); stable tags (`v6.1.5`) and others are not releases here.
fn release_version(tag: &str) -> Option<(u32, u32, Option<u32>)> {
    let v = tag.strip_prefix('v')?;
    let (v, rc) = match v.split_once("-rc") {
        Some((v, rc)) => (v, Some(rc.parse().ok()?)),
        None => (v, None),
    };
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?, rc))
}

/// The releases before `bad` (tags `vX.Y` and `vX.Y-rcN` it contains, not
/// on `bad` itself) in the order `krepro syz --bisect` tries them for a
/// good end: the two newest, then older releases (no -rc) 1, 2, 4, 8, ...
/// back, so that a bug years old is found in a few builds.
pub(crate) fn release_candidates(dir: &Path, bad: &str) -> Result<Vec<Candidate>, BisectError> {
    let bad = resolve(dir, bad, "--bad")?;
    let refs = git(
        dir,
        &["for-each-ref", "--merged", &bad, "--format=%(refname:short) %(objectname) %(*objectname)", "refs/tags/v*"],
    )?;
    let mut tags: Vec<((u32, u32, u32), String)> = refs
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (tag, object) = (w.next()?, w.next()?);
            let commit = w.next().unwrap_or(object);
            let (major, minor, rc) = release_version(tag)?;
            (commit != bad).then(|| ((major, minor, rc.unwrap_or(u32::MAX)), tag.to_owned()))
        })
        .collect();
    tags.sort_by_key(|t| std::cmp::Reverse(t.0));
    let mut picks: Vec<String> = tags.iter().take(2).map(|(_, t)| t.clone()).collect();
    let older: Vec<&String> = tags.iter().skip(2).filter(|(v, _)| v.2 == u32::MAX).map(|(_, t)| t).collect();
    let mut back = 1usize;
    while let Some(t) = older.get(back - 1) {
        picks.push((*t).clone());
        back *= 2;
    }
    picks.into_iter().map(|tag| Ok(Candidate { id: resolve(dir, &tag, "release")?, label: tag })).collect()
}

/// The real builder: the kernel builder for the session's guest, or the
/// user's --build-cmd.
pub(crate) struct RealBuilder<'a> {
    pub cache: &'a Cache,
    /// What the kernel builder builds at a worktree; None: `build_cmd`.
    pub options: Option<Box<dyn Fn(PathBuf) -> crate::builder::BuildOptions + 'a>>,
    pub build_cmd: Option<String>,
    pub logs: &'a crate::boot::log::LogDir,
    pub out: tempfile::TempDir,
}

impl Builder for RealBuilder<'_> {
    fn build(&mut self, wt: &Path, commit: &str, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<BuildResult, String> {
        if let Some(cmd) = &self.build_cmd {
            let started = Instant::now();
            let bz = self.out.path().join(format!("bzImage-{commit}"));
            // Beside the console logs, rotated with them: the report links it.
            let (log, logf) = self
                .logs
                .create_file(&format!("build-{}", short(commit)))
                .map_err(|e| format!("create a build log in {}: {e}", self.logs.dir.display()))?;
            // The user's own command line, run as they wrote it.
            let status = Cmd::shell(cmd, wt)
                .quiet()
                .env("KREPRO_WORKTREE", wt)
                .env("KREPRO_BZIMAGE", &bz)
                .status_to_log(logf)
                .map_err(|e: CmdError| e.to_string())?;
            let failed = |why: String| BuildResult::Failed { why, toolchain: "--build-cmd".into(), fix: None };
            if !status.success() {
                return Ok(failed(format!("--build-cmd {status} (log {})", log.display())));
            }
            if !bz.is_file() {
                return Ok(failed(format!("--build-cmd left no bzImage at $KREPRO_BZIMAGE (log {})", log.display())));
            }
            // A file that is not a kernel is a broken setup, not a verdict
            // on the commit: the bisect stops.
            let kernel = check_kernel(&bz).map_err(|e| format!("--build-cmd's image: {e}"))?;
            // The user's command is one phase to krepro: make's.
            let phases = BuildPhases { compile: started.elapsed().as_secs_f64(), ..BuildPhases::default() };
            let code_hash = kernel.code_hash(&self.cache.vmlinux()).ok();
            return Ok(BuildResult::Kernel { kernel, toolchain: "--build-cmd".into(), phases, code_hash });
        }
        let opts = (self.options.as_ref().expect("the builder or --build-cmd"))(wt.to_owned());
        build_result(crate::builder::build(&opts, self.cache, &mut |ev| on(BisectEvent::Build(ev))), self.cache)
    }
}

/// What the kernel builder's answer means to a bisect: a kernel (with its
/// code hash), a tree that does not build (a skip, with a known fix where
/// the compiler table has one), or an error that stops the search.
pub(crate) fn build_result(
    built: Result<crate::builder::Built, crate::builder::BuildError>,
    cache: &Cache,
) -> Result<BuildResult, String> {
    match built {
        Ok(b) => match check_kernel(&b.image) {
            Ok(kernel) => {
                let code_hash = kernel.code_hash(&cache.vmlinux()).ok();
                Ok(BuildResult::Kernel { kernel, toolchain: b.compiler, phases: b.phases, code_hash })
            }
            Err(e) => Err(format!("the build left no kernel image: {e}")),
        },
        Err(e) if e.is_tree_failure() => {
            let (toolchain, fix) = match &e {
                crate::builder::BuildError::Make { compiler, known, .. } => {
                    (compiler.clone(), known.and_then(|k| k.fix).map(str::to_owned))
                }
                _ => (String::new(), None),
            };
            // The first error line, not make's summary.
            Ok(BuildResult::Failed { why: e.first_error(), toolchain, fix })
        }
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bisect::verify;
    use crate::bisect::{BisectReport, BootSummary, Booter, Options, TestKind};
    use crate::boot::outcome::{Mark, Outcome::*, Remap};
    use crate::boot::BootError;
    use crate::image::arch::Arch;
    use std::cell::{Cell, RefCell};

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
        booted: RefCell<std::collections::HashSet<PathBuf>>,
        /// The build fix an "old-" tree's failure names.
        fix: Option<String>,
        /// Hash kernels by their state word: commits of one state build
        /// the same kernel.
        hash_kernels: bool,
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
                hash_kernels: false,
                out: tempfile::tempdir().unwrap(),
            }
        }
    }

    impl Builder for &Fake {
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
            std::fs::write(&k, &word).unwrap();
            let kernel = Kernel { path: k, release: None, arch: Arch::X86_64 };
            Ok(BuildResult::Kernel {
                kernel,
                toolchain: "fake".into(),
                phases: BuildPhases { compile: 0.5, ..BuildPhases::default() },
                code_hash: self.hash_kernels.then_some(word),
            })
        }
    }

    impl Booter for &Fake {
        fn boot(
            &mut self,
            kernel: &Kernel,
            run: u32,
            on: &mut dyn FnMut(BisectEvent<'_>),
        ) -> Result<BootSummary, BootError> {
            let kernel = kernel.path.as_path();
            self.boots.set(self.boots.get() + 1);
            on(BisectEvent::Run(crate::boot::run::RunEvent::Fallback { reason: "fake: no KVM" }));
            let word = std::fs::read_to_string(kernel).unwrap();
            let first_boot = self.booted.borrow_mut().insert(kernel.to_owned());
            // "crash:TITLE" crashes with that title.
            let crash_title = word.strip_prefix("crash:").map(str::to_owned);
            let outcome = match word.as_str() {
                "infra" => {
                    return Err(BootError::QemuFailed { status: "exit status: 1".into(), stderr: "boom".into() })
                }
                w if w.starts_with("bad") && self.fail_on_run.is_none_or(|r| r == run) => Fail,
                _ if crash_title.is_some() => Crash,
                "flaky" if first_boot => Fail,
                _ => Pass,
            };
            let message = String::new();
            Ok(BootSummary { outcome, message, crash_title, console_log: kernel.to_owned(), prepare_secs: 0.0 })
        }
    }

    /// A git bisect as `krepro bisect` sets it up.
    #[derive(Clone)]
    struct BisectOptions {
        dir: PathBuf,
        good: String,
        bad: String,
        runs: u32,
        find_fix: bool,
        verify: bool,
        check_endpoints: bool,
        same_crash: bool,
        min_bad: u32,
    }

    fn opts(dir: &Path, good: &str, bad: &str) -> BisectOptions {
        BisectOptions {
            dir: dir.to_owned(),
            good: good.into(),
            bad: bad.into(),
            runs: 1,
            find_fix: false,
            verify: true,
            check_endpoints: true,
            same_crash: false,
            min_bad: 1,
        }
    }

    fn bisect(
        o: &BisectOptions,
        cache: &Cache,
        fake: &mut Fake,
        interrupted: &dyn Fn() -> bool,
        on: &mut dyn FnMut(BisectEvent<'_>),
    ) -> Result<BisectReport, BisectError> {
        let fake: &Fake = fake;
        let (mut builder, mut booter) = (fake, fake);
        let range = Range { dir: &o.dir, good: &o.good, bad: &o.bad, find_fix: o.find_fix, cherry_picks: &[] };
        let mut space = GitSpace::new(range.check()?, &mut builder, cache, &mut |_| {})?;
        let opts = Options {
            restart: false,
            repro: "smoke".into(),
            description: String::new(),
            runs: o.runs,
            remap: Remap::default(),
            find_fix: o.find_fix,
            key_extra: String::new(),
            check_endpoints: o.check_endpoints,
            verify: o.verify,
            same_crash: o.same_crash,
            crash_title: None,
            min_bad: o.min_bad,
            parallel: 1,
            seed: Vec::new(),
        };
        super::super::bisect(&opts, &mut space, &mut booter, cache, interrupted, on)
    }

    fn hash(r: &BisectReport) -> &str {
        &r.first.as_ref().expect("an answer").id
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
        assert_eq!(hash(&report), c[4]);
        assert_eq!(report.first.as_ref().unwrap().label, "commit 4: bad");
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
        // Each step's time is in the report, by phase.
        assert!(report.steps.iter().all(|s| s.phases.compile == 0.5 && s.phases.checkout > 0.0), "{:?}", report.steps);
        let md = report.markdown(Some(("tinyconfig", "CONFIG_NET=y\n")));
        assert!(md.contains("| where the time went (s) | checkout | fetch | config | compile | link | image | vmlinux | boot | make |"), "{md}");
        assert!(md.contains("| **median** | "), "{md}");
        assert!(md.starts_with(&format!("## first bad commit: {} (\"commit 4: bad\")", &c[4][..12])), "{md}");
        assert!(md.contains("| bad |") && md.contains("CONFIG_NET=y"), "{md}");
    }

    #[test]
    fn only_skipped_commits_left_gives_the_candidates() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "broken", "broken", "bad"]);
        let report = bisect(&opts(dir.path(), &c[0], &c[3]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert!(report.first.is_none());
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
        assert_eq!(hash(&report), c[4]);
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
        assert_eq!(hash(&report), c[3]);
        assert!(report.flaky);
        // With one run, the bad end already looks good: the endpoint check says so.
        let (dir, c) = repo(&["good", "bad", "bad"]);
        let mut fake = Fake::new();
        fake.fail_on_run = Some(3);
        let err = bisect(&opts(dir.path(), &c[0], &c[2]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), format!("--bad {} tests good instead of bad: pass", &c[2][..12]));
    }

    #[test]
    fn same_crash_skips_commits_with_only_another_crash() {
        let (_cache_dir, cache) = temp_cache();
        let other = "crash:BUG: unable to handle kernel NULL pointer dereference in prctl";
        let bug = "crash:WARNING in __x64_sys_prctl";
        let states = ["good", "good", other, other, other, "good", bug, bug];
        let (dir, c) = repo(&states);
        // Plain: any crash is the bug, and the other crash misleads it.
        let plain = bisect(&opts(dir.path(), &c[0], &c[7]), &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(hash(&plain), c[2], "misled to the other crash");
        // --same-crash: the bad end's title is the bug; the other crash is skipped.
        let mut o = opts(dir.path(), &c[0], &c[7]);
        o.same_crash = true;
        let mut said = Vec::new();
        let report = bisect(&o, &cache, &mut Fake::new(), &|| false, &mut |ev| {
            if let BisectEvent::Say(s) = ev {
                said.push(s.to_owned())
            }
        })
        .unwrap();
        assert_eq!(hash(&report), c[6]);
        assert_eq!(report.crash_title.as_deref(), Some("WARNING in __x64_sys_prctl"));
        assert!(said.contains(&"chasing the bad end's crash: WARNING in __x64_sys_prctl".to_owned()), "{said:?}");
        let skipped: Vec<&Tested> = report.steps.iter().filter(|s| s.verdict == Mark::Skip).collect();
        assert!(!skipped.is_empty() && skipped.iter().all(|s| s.counts.other == 1), "{:?}", report.steps);
        assert!(report.markdown(None).contains("chasing `WARNING in __x64_sys_prctl`"));
    }

    #[test]
    fn identical_kernels_reuse_a_verdict_and_a_no_op_culprit_is_flagged() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "good", "bad", "bad", "bad", "bad"]);
        let mut fake = Fake::new();
        fake.hash_kernels = true;
        let report = bisect(&opts(dir.path(), &c[0], &c[7]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(hash(&report), c[4]);
        let reused: Vec<&Tested> = report.steps.iter().filter(|s| s.same_kernel_as.is_some()).collect();
        assert!(!reused.is_empty(), "{:?}", report.steps);
        assert!(reused.iter().all(|s| s.outcomes.is_empty() && s.message.starts_with("the same kernel as ")));
        assert_eq!(report.boots_saved as usize, reused.len());
        assert_eq!(report.changes_kernel, Some(true));
        assert!(report.doubt().is_none());
        // A wrong --good, unchecked: the answer is a commit that builds the
        // same kernel as its parent.
        let mut o = opts(dir.path(), &c[5], &c[6]);
        (o.check_endpoints, o.verify) = (false, false);
        let mut fake = Fake::new();
        fake.hash_kernels = true;
        let report = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(hash(&report), c[6]);
        assert_eq!(report.changes_kernel, Some(false));
        assert_eq!(fake.boots.get(), 0);
        assert!(report.doubt().unwrap().contains("no-op culprit"));
        assert!(report.markdown(None).contains("**no-op culprit**"));
    }

    #[test]
    fn a_flaky_bug_gets_a_confidence_and_min_bad() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "bad", "bad"]);
        let mut o = opts(dir.path(), &c[0], &c[3]);
        o.runs = 4;
        let mut fake = Fake::new();
        fake.fail_on_run = Some(2); // one run in four
        let report = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(hash(&report), c[2]);
        let t = report.trust.unwrap();
        assert_eq!((t.rate, t.bad_end_runs), (0.25, 4));
        // Two good verdicts of four clean runs each: (1 - 0.75^4)^2.
        assert!((t.confidence - (1.0 - 0.75_f64.powi(4)).powi(2)).abs() < 1e-9, "{t:?}");
        assert!(!t.reliable);
        assert!(report.markdown(None).contains("**unreliable**"));
        // The bad end ran all four times, to measure; others stop at the first sighting.
        assert_eq!(report.steps[0].outcomes.len(), 4);
        // --min-bad 2: one sighting in four is no longer enough.
        let (dir, c) = repo(&["good", "bad"]);
        let mut o = opts(dir.path(), &c[0], &c[1]);
        (o.runs, o.min_bad) = (4, 2);
        let mut fake = Fake::new();
        fake.fail_on_run = Some(2);
        let err = bisect(&o, &cache, &mut fake, &|| false, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("tests good instead of bad"), "{err}");
    }

    #[test]
    fn releases_are_tried_newest_first_then_further_back() {
        let (dir, c) = repo(&["good"; 12]);
        let d = dir.path();
        let tags = [
            (0, "v5.15"),
            (1, "v5.16"),
            (2, "v5.17"),
            (3, "v5.18"),
            (4, "v5.19"),
            (5, "v6.0"),
            (6, "v6.1"),
            (7, "v6.2-rc1"),
            (8, "v6.2"),
            (9, "v6.3-rc1"),
            (9, "v6.1.5"),
            (10, "v6.3-rc2"),
            (11, "v6.3-rc3"),
        ];
        for (i, t) in tags {
            git(d, &["tag", t, &c[i]]).unwrap();
        }
        let got: Vec<String> = release_candidates(d, &c[11]).unwrap().into_iter().map(|c| c.label).collect();
        // v6.3-rc3 is the bad commit itself; then the two newest, then
        // releases 1, 2, 4 back from there.
        assert_eq!(got, ["v6.3-rc2", "v6.3-rc1", "v6.2", "v6.1", "v5.19", "v5.15"]);
        assert_eq!(release_version("v6.2-rc3"), Some((6, 2, Some(3))));
        assert_eq!(release_version("v6.1.5"), None);
        assert!(release_candidates(d, "nope").is_err());
    }

    #[test]
    fn find_fix_finds_the_first_good_commit() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["bad", "bad", "bad", "good", "good"]);
        let mut o = opts(dir.path(), &c[4], &c[0]);
        o.find_fix = true;
        let report = bisect(&o, &cache, &mut Fake::new(), &|| false, &mut |_| {}).unwrap();
        assert_eq!(report.found, "first fixed commit");
        assert_eq!(hash(&report), c[3]);
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
        assert_eq!(e.to_string(), "--source /: not a git repository");
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
        assert_eq!(hash(&report), c[3]);
    }

    #[test]
    fn the_culprit_is_verified_by_a_retest_its_parent_and_a_revert() {
        let (_cache_dir, cache) = temp_cache();
        let (dir, c) = repo(&["good", "good", "good", "bad", "bad", "bad"]);
        let before = user_state(dir.path());
        let mut fake = Fake::new();
        let report = bisect(&opts(dir.path(), &c[0], &c[5]), &cache, &mut fake, &|| false, &mut |_| {}).unwrap();
        assert_eq!(hash(&report), c[3]);
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
        assert_eq!(hash(&report), c[2]);
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
        assert_eq!(hash(&report), c[2]);
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
        assert_eq!(hash(&report), c[2]);
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
        assert_eq!(hash(&report), c[2]);
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
        assert_eq!(hash(&report), c[2]);
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
