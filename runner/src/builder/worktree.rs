//! One long-lived git worktree per repository, in krepro's cache, where
//! every build of that repository happens: `kernel build --source` of a git
//! tree builds a snapshot of it there, and a bisect bisects there. Moving a
//! worktree from one commit to the next rewrites only the files that
//! differ, so the build dir (keyed by the worktree's path) rebuilds only
//! what changed: a bisect's first step after the user built the same tree
//! is an incremental build, not a full one.
//!
//! The user's checkout is never written: the snapshot of uncommitted work
//! is made with a copy of their index (`GIT_INDEX_FILE`), and is a commit
//! object reachable from no ref of theirs.
//!
//! A worktree is held with a file lock for as long as one krepro uses it; a
//! second krepro (a `kernel build` while a bisect runs) takes the next
//! slot. A slot with a bisect in progress (stopped by Ctrl-C) is left for
//! that bisect to resume.

use std::path::{Path, PathBuf};

use crate::host::cache::Cache;
use crate::host::lock::{self, Lock, LockError};
use crate::host::spawn::{Cmd, CmdError};

/// How many worktrees one repository may have at once.
const SLOTS: usize = 4;

/// A worktree held for one use; the lock goes with it.
#[derive(Debug)]
pub(crate) struct Worktree {
    pub path: PathBuf,
    _lock: Lock,
}

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error(transparent)]
    Git(#[from] CmdError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WorktreeError {
    let context = context.into();
    move |source| WorktreeError::Io { context, source }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, CmdError> {
    Ok(String::from_utf8_lossy(&Cmd::new("git", args, dir).quiet().output()?.stdout).trim().to_owned())
}

/// The top of the git work tree `dir` is in, when `dir` is that top (a
/// kernel tree that is a git checkout); None for a plain directory.
pub(crate) fn git_top(dir: &Path) -> Option<PathBuf> {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).ok()?;
    let top = PathBuf::from(top).canonicalize().ok()?;
    (dir.canonicalize().ok()? == top).then_some(top)
}

/// The repository's identity: its common git dir (shared by its worktrees).
fn repo_key(repo: &Path) -> Result<String, WorktreeError> {
    let common = git(repo, &["rev-parse", "--path-format=absolute", "--git-common-dir"])?;
    let common = PathBuf::from(common).canonicalize().map_err(io("find the repository's git dir"))?;
    Ok(blake3::hash(common.as_os_str().as_encoded_bytes()).to_hex()[..16].to_owned())
}

/// Whether `path` is one of krepro's worktrees (a build of it needs no
/// snapshot).
pub(crate) fn is_ours(cache: &Cache, path: &Path) -> bool {
    path.canonicalize().is_ok_and(|p| cache.worktrees().canonicalize().is_ok_and(|w| p.starts_with(w)))
}

/// Whether a bisect is in progress in the worktree at `path`.
pub(crate) fn bisecting(path: &Path) -> bool {
    git(path, &["rev-parse", "--git-path", "BISECT_START"]).is_ok_and(|p| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p.is_file()
        } else {
            path.join(p).is_file()
        }
    })
}

/// Takes a worktree of `repo`: `prefer` if it is free (a bisect resuming in
/// its own), else the first free slot with no bisect in progress, else
/// waits for slot 0 (saying so). Creates it (detached at HEAD) if needed.
pub(crate) fn take(
    cache: &Cache,
    repo: &Path,
    prefer: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> Result<Worktree, WorktreeError> {
    let key = repo_key(repo)?;
    let dir = cache.worktrees();
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    let slots: Vec<PathBuf> = (0..SLOTS).map(|i| dir.join(format!("{key}-{i}"))).collect();
    let mut order: Vec<&PathBuf> = slots.iter().filter(|s| Some(s.as_path()) == prefer).collect();
    order.extend(slots.iter().filter(|s| Some(s.as_path()) != prefer));
    let what = |slot: &Path| format!("the worktree {} of {}", slot.display(), repo.display());
    let mut held = None;
    for slot in order {
        let Some(lock) = lock::try_acquire(&slot.with_extension("lock"), &what(slot), say)? else { continue };
        if Some(slot.as_path()) != prefer && bisecting(slot) {
            // A bisect stopped here: it resumes in this worktree.
            continue;
        }
        held = Some((slot.clone(), lock));
        break;
    }
    let (path, file) = match held {
        Some(h) => h,
        // Every slot is busy: the first one's holder is named (or waited for).
        None => (slots[0].clone(), cache.lock(&slots[0].with_extension("lock"), &what(&slots[0]), say)?),
    };
    let registered = git(repo, &["worktree", "list", "--porcelain"])?
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .any(|w| Path::new(w) == path);
    if !registered || !path.join(".git").exists() {
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io(format!("remove {}", path.display())))?;
        }
        let _ = git(repo, &["worktree", "prune"]);
        say(&format!("checking out a worktree of {} in {} (once per repository)", repo.display(), path.display()));
        git(repo, &["worktree", "add", "--detach", "--force", &path.to_string_lossy(), "HEAD"])?;
    }
    clear_stale_index_lock(&path, say);
    Ok(Worktree { path, _lock: file })
}

/// Removes an `index.lock` a krepro killed in the middle of a checkout
/// left in the worktree's git dir: krepro's own lock on the worktree is
/// held, so no git of ours runs there, and git would otherwise stop every
/// later checkout with advice to delete files by hand.
fn clear_stale_index_lock(worktree: &Path, say: &mut dyn FnMut(&str)) {
    let Ok(text) = std::fs::read_to_string(worktree.join(".git")) else { return };
    let Some(gitdir) = text.strip_prefix("gitdir:").map(|d| PathBuf::from(d.trim())) else { return };
    let lock = gitdir.join("index.lock");
    if lock.exists() && std::fs::remove_file(&lock).is_ok() {
        say(&format!("removed {}, left by a git that was stopped in krepro's worktree", lock.display()));
    }
}

/// A commit of `repo` as its work tree is now: HEAD when nothing differs,
/// else a commit on top of HEAD with the uncommitted and untracked (not
/// ignored) changes. Made with a copy of the user's index: their index,
/// HEAD and refs are not touched.
pub(crate) fn snapshot(repo: &Path) -> Result<String, WorktreeError> {
    let head = git(repo, &["rev-parse", "HEAD"])?;
    let index = PathBuf::from(git(repo, &["rev-parse", "--path-format=absolute", "--git-path", "index"])?);
    let tmp = tempfile::tempdir().map_err(io("create a temp dir"))?;
    let copy = tmp.path().join("index");
    if index.is_file() {
        std::fs::copy(&index, &copy).map_err(io(format!("copy {}", index.display())))?;
    }
    let with_index = |args: &[&str]| -> Result<String, CmdError> {
        Ok(String::from_utf8_lossy(&Cmd::new("git", args, repo).quiet().env("GIT_INDEX_FILE", &copy).output()?.stdout)
            .trim()
            .to_owned())
    };
    with_index(&["add", "-A"])?;
    let tree = with_index(&["write-tree"])?;
    if tree == git(repo, &["rev-parse", "HEAD^{tree}"])? {
        return Ok(head);
    }
    let out =
        Cmd::new("git", ["commit-tree", &tree, "-p", &head, "-m", "krepro: snapshot of uncommitted changes"], repo)
            .quiet()
            .env("GIT_AUTHOR_NAME", "krepro")
            .env("GIT_AUTHOR_EMAIL", "krepro@localhost")
            .env("GIT_COMMITTER_NAME", "krepro")
            .env("GIT_COMMITTER_EMAIL", "krepro@localhost")
            .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Moves the worktree to `commit`, discarding anything left in it.
pub(crate) fn checkout(wt: &Path, commit: &str) -> Result<(), WorktreeError> {
    git(wt, &["checkout", "-q", "--force", "--detach", commit])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let g = |args: &[&str]| git(d, args).unwrap();
        g(&["init", "-q", "-b", "main"]);
        g(&["config", "user.name", "t"]);
        g(&["config", "user.email", "t@example.com"]);
        std::fs::write(d.join("a"), "1\n").unwrap();
        std::fs::write(d.join(".gitignore"), "*.o\n").unwrap();
        g(&["add", "-A"]);
        g(&["commit", "-qm", "one"]);
        dir
    }

    #[test]
    fn snapshots_leave_the_user_alone_and_worktrees_are_reused() {
        let dir = repo();
        let d = dir.path();
        let g = |args: &[&str]| git(d, args).unwrap();
        let head = g(&["rev-parse", "HEAD"]);
        assert_eq!(snapshot(d).unwrap(), head, "a clean tree is its HEAD");
        std::fs::write(d.join("a"), "2\n").unwrap();
        std::fs::write(d.join("new.c"), "x\n").unwrap();
        std::fs::write(d.join("built.o"), "obj\n").unwrap();
        // (git status refreshes the index's stat data: read it after.)
        let status_before = g(&["status", "--porcelain"]);
        let index_before = std::fs::read(d.join(".git/index")).unwrap();
        let snap = snapshot(d).unwrap();
        assert_ne!(snap, head);
        assert_eq!(g(&["show", &format!("{snap}:a")]), "2");
        assert_eq!(g(&["show", &format!("{snap}:new.c")]), "x");
        assert!(git(d, &["show", &format!("{snap}:built.o")]).is_err(), "ignored files stay out");
        assert_eq!(std::fs::read(d.join(".git/index")).unwrap(), index_before);
        assert_eq!(g(&["status", "--porcelain"]), status_before);
        assert_eq!(g(&["rev-parse", "HEAD"]), head);

        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let first = take(&cache, d, None, &mut |_| {}).unwrap();
        checkout(&first.path, &snap).unwrap();
        assert_eq!(std::fs::read_to_string(first.path.join("new.c")).unwrap(), "x\n");
        assert!(is_ours(&cache, &first.path) && !is_ours(&cache, d));
        // Held: a second user gets another slot.
        let second = take(&cache, d, None, &mut |_| {}).unwrap();
        assert_ne!(first.path, second.path);
        let path = first.path.clone();
        drop(first);
        drop(second);
        // Free again: the same worktree, as it was left.
        let again = take(&cache, d, None, &mut |_| {}).unwrap();
        assert_eq!(again.path, path);
        assert_eq!(git(&again.path, &["rev-parse", "HEAD"]).unwrap(), snap);
        // A bisect in progress keeps its slot for itself.
        git(&again.path, &["bisect", "start"]).unwrap();
        assert!(bisecting(&again.path));
        drop(again);
        let other = take(&cache, d, None, &mut |_| {}).unwrap();
        assert_ne!(other.path, path);
        drop(other);
        let resumed = take(&cache, d, Some(&path), &mut |_| {}).unwrap();
        assert_eq!(resumed.path, path);
    }

    #[test]
    fn every_slot_busy_names_the_holder_and_a_stale_index_lock_is_cleared() {
        let dir = repo();
        let d = dir.path();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let held: Vec<Worktree> = (0..SLOTS).map(|_| take(&cache, d, None, &mut |_| {}).unwrap()).collect();
        // The holders are this process; another's owner line is what a
        // second krepro would read.
        std::fs::write(held[0].path.with_extension("lock"), "1 1700000000 krepro bisect\n").unwrap();
        let e = take(&cache, d, None, &mut |_| {}).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "the worktree {} of {} is in use by krepro pid 1 (`krepro bisect`",
                held[0].path.display(),
                d.display()
            )),
            "{e}"
        );
        let path = held[0].path.clone();
        drop(held);
        // A git killed mid-checkout left its index.lock: cleared, said.
        let gitdir = git(&path, &["rev-parse", "--git-dir"]).unwrap();
        std::fs::write(Path::new(&gitdir).join("index.lock"), "").unwrap();
        let mut said = Vec::new();
        let wt = take(&cache, d, Some(&path), &mut |m| said.push(m.to_owned())).unwrap();
        assert!(said.iter().any(|m| m.starts_with("removed ") && m.contains("index.lock")), "{said:?}");
        checkout(&wt.path, "HEAD").unwrap();
    }
}
