//! What krepro's cache holds and how much of the disk it takes, and
//! trimming it, as ccache's `-s`/`-c`/`-C` do: by part (kernels, builds,
//! worktrees, ...), least recently used first, never what a running
//! krepro holds (its lock, see [`super::lock`]) nor a paused bisect's
//! state unless asked.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use super::cache::Cache;

/// The default bound on the whole cache: a few kernel trees' worktrees
/// and build dirs, and the distro kernels a bisect fetched.
pub const DEFAULT_LIMIT: u64 = 20 << 30;

/// A part of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Distro kernel packages (`kernel fetch`, `bisect --debian`).
    Kernels,
    /// The builder's out-of-tree build dirs.
    Builds,
    /// Finished kernels of the builder.
    Built,
    /// Git worktrees of kernel trees (builds and bisects check out there).
    Worktrees,
    /// vmlinux images taken out of bzImages (the PVH entry).
    Vmlinux,
    /// Console logs.
    Logs,
    /// init builds, initrds, compiled C repros.
    Init,
    /// State of bisects in progress or paused.
    Bisect,
}

impl Part {
    pub const ALL: [Part; 8] = [
        Part::Kernels,
        Part::Builds,
        Part::Built,
        Part::Worktrees,
        Part::Vmlinux,
        Part::Logs,
        Part::Init,
        Part::Bisect,
    ];

    fn dir(self, cache: &Cache) -> PathBuf {
        match self {
            Part::Kernels => cache.kernels(),
            Part::Builds => cache.build_dirs(),
            Part::Built => cache.built(),
            Part::Worktrees => cache.worktrees(),
            Part::Vmlinux => cache.vmlinux(),
            Part::Logs => cache.logs(),
            Part::Init => cache.guest(),
            Part::Bisect => cache.bisect(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Part::Kernels => "kernels",
            Part::Builds => "builds",
            Part::Built => "built",
            Part::Worktrees => "worktrees",
            Part::Vmlinux => "vmlinux",
            Part::Logs => "logs",
            Part::Init => "init",
            Part::Bisect => "bisect",
        }
    }
}

/// One thing in a part that is kept or removed as a whole.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub part: Part,
    pub path: PathBuf,
    /// Bytes on disk (allocated blocks: a sparse file counts what it uses).
    pub bytes: u64,
    /// When it was last used (the newest of it and its lock).
    #[serde(skip)]
    pub used: SystemTime,
    /// A running krepro holds it.
    pub in_use: bool,
    /// A worktree whose repository is gone: removed by any gc.
    pub orphan: bool,
}

/// The cache's entries, part by part; a part whose dir is a symbolic link
/// (shared with another cache) is not krepro's to trim and is left out.
pub fn entries(cache: &Cache) -> Vec<Entry> {
    let mut out = Vec::new();
    for part in Part::ALL {
        let dir = part.dir(cache);
        if std::fs::symlink_metadata(&dir).map(|m| m.file_type().is_symlink()).unwrap_or(true) {
            continue;
        }
        let Ok(list) = std::fs::read_dir(&dir) else { continue };
        for e in list.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            // Locks and temp files go with what they belong to.
            if name.ends_with(".lock") || name.starts_with('.') {
                continue;
            }
            let lock = lock_of(part, &path);
            let used = [Some(path.as_path()), lock.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|p| std::fs::symlink_metadata(p).and_then(|m| m.modified()).ok())
                .max()
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let in_use = lock.as_deref().is_some_and(super::lock::held);
            let orphan = part == Part::Worktrees && worktree_repo(&path).is_none_or(|repo| !repo.exists());
            out.push(Entry { part, bytes: disk_usage(&path), path, used, in_use, orphan });
        }
    }
    out
}

/// The lock that guards an entry, where it has one.
fn lock_of(part: Part, path: &Path) -> Option<PathBuf> {
    match part {
        Part::Builds => Some(path.join(".krepro-lock")),
        Part::Worktrees => Some(path.with_extension("lock")),
        Part::Bisect => Some(path.join("lock")),
        Part::Kernels => Some(path.with_file_name(format!(".{}.lock", path.file_name()?.to_string_lossy()))),
        _ => None,
    }
}

/// The repository a worktree belongs to: its `.git` file says
/// `gitdir: <repo>/.git/worktrees/<name>`. None when it says nothing.
fn worktree_repo(worktree: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = PathBuf::from(text.strip_prefix("gitdir:")?.trim());
    // <repo>/.git/worktrees/<name> -> <repo>/.git
    Some(gitdir.parent()?.parent()?.to_owned())
}

/// Bytes allocated under `path`, symbolic links not followed.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path).map(|l| l.flatten().map(|e| disk_usage(&e.path())).sum()).unwrap_or(0);
    own + children
}

/// What a trim removed and what it left.
#[derive(Debug, Default, Serialize)]
pub struct Trimmed {
    pub removed: Vec<PathBuf>,
    pub freed: u64,
    /// Entries it would have removed but a running krepro holds.
    pub skipped_in_use: Vec<PathBuf>,
    /// The cache's size after it.
    pub left: u64,
}

/// Removes worktrees of repositories that are gone, then the least
/// recently used entries until the cache is within `limit` bytes. Never
/// an entry in use, nor a bisect's state (a paused bisect resumes from
/// it; `clean bisect` removes it).
pub fn gc(cache: &Cache, limit: u64) -> Trimmed {
    let mut all = entries(cache);
    let mut total: u64 = all.iter().map(|e| e.bytes).sum();
    let mut out = Trimmed::default();
    all.sort_by_key(|e| (!e.orphan, e.used));
    for e in all {
        let wanted = e.orphan || total > limit;
        if !wanted || e.part == Part::Bisect {
            continue;
        }
        if e.in_use {
            out.skipped_in_use.push(e.path);
            continue;
        }
        if remove(&e) {
            total = total.saturating_sub(e.bytes);
            out.freed += e.bytes;
            out.removed.push(e.path);
        }
    }
    out.left = total;
    out
}

/// Empties `parts` (every part for none), but what is in use.
pub fn clean(cache: &Cache, parts: &[Part]) -> Trimmed {
    let mut out = Trimmed::default();
    let mut left = 0;
    for e in entries(cache) {
        if !parts.is_empty() && !parts.contains(&e.part) {
            left += e.bytes;
        } else if e.in_use {
            left += e.bytes;
            out.skipped_in_use.push(e.path);
        } else if remove(&e) {
            out.freed += e.bytes;
            out.removed.push(e.path);
        } else {
            left += e.bytes;
        }
    }
    out.left = left;
    out
}

/// Removes an entry (a worktree also from its repository's list); false
/// when it could not be.
fn remove(e: &Entry) -> bool {
    let repo = (e.part == Part::Worktrees).then(|| worktree_repo(&e.path)).flatten();
    let gone = match std::fs::symlink_metadata(&e.path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(&e.path).is_ok(),
        Ok(_) => std::fs::remove_file(&e.path).is_ok(),
        Err(_) => true,
    };
    if let Some(lock) = lock_of(e.part, &e.path).filter(|_| gone && e.part != Part::Builds && e.part != Part::Bisect) {
        let _ = std::fs::remove_file(lock);
    }
    if let Some(git_dir) = repo.filter(|r| gone && r.exists()) {
        // The repository forgets the worktree (git worktree prune's work).
        let _ = crate::host::spawn::Cmd::new("git", ["worktree", "prune"], git_dir.parent().unwrap_or(&git_dir))
            .quiet()
            .output();
    }
    gone
}

/// Bytes free for an unprivileged writer on the filesystem of `path`.
pub fn free_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The line for a full disk: where, what is free there, what is needed.
pub fn disk_full(dir: &Path, need: Option<u64>) -> String {
    let free = free_space(dir).map_or("?".to_owned(), human);
    let need = need.map(|n| format!(", {} needed", human(n))).unwrap_or_default();
    format!(
        "the disk is full: {} has {free} free{need}; free some space (`krepro cache gc` trims krepro's cache) and run the \
         same command",
        dir.display()
    )
}

/// Whether an I/O error is a full disk (or quota).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// Whether a tool's output says the disk (or a quota) was full.
pub fn says_disk_full(text: &str) -> bool {
    text.contains("No space left on device") || text.contains("Disk quota exceeded")
}

/// Marks `path` (a file or a directory) as used now, for the least
/// recently used order of [`gc`]; a cache hit calls it.
pub(crate) fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// "1.5 GiB", "3.2 MiB", "12 KiB", "0 B".
pub fn human(n: u64) -> String {
    let units = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    match units.iter().find(|(_, shift)| n >= 1 << shift) {
        Some((unit, shift)) => format!("{:.1} {unit}", n as f64 / (1u64 << shift) as f64),
        None => format!("{n} B"),
    }
}

/// "20G", "512M", "1500000" (bytes) -> bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, shift) = match s.char_indices().last() {
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'T' | 't')) => (&s[..i], 40),
        _ => (s, 0),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{s}: not a size (e.g. 20G, 512M)"))
}

/// The cache's bound: `$KREPRO_CACHE_MAX` ("20G"), else [`DEFAULT_LIMIT`].
pub fn limit_from_env() -> Result<u64, String> {
    match std::env::var("KREPRO_CACHE_MAX") {
        Ok(v) if !v.is_empty() => parse_size(&v).map_err(|e| format!("KREPRO_CACHE_MAX={e}")),
        _ => Ok(DEFAULT_LIMIT),
    }
}

/// After a command: trims the cache to its limit, at most once every ten
/// minutes (a walk of the cache costs a little); what it removed is told
/// to `say`. Errors are not the command's: a cache that cannot be
/// trimmed is said and left.
pub fn auto_gc(cache: &Cache, say: &mut dyn FnMut(&str)) {
    let stamp = cache.root().join("gc-stamp");
    let recent = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(600));
    if recent || !cache.root().is_dir() {
        return;
    }
    let _ = std::fs::write(&stamp, b"");
    let limit = match limit_from_env() {
        Ok(l) => l,
        Err(e) => return say(&format!("cache not trimmed: {e}")),
    };
    let t = gc(cache, limit);
    if !t.removed.is_empty() {
        say(&format!(
            "trimmed the cache to {} (limit {}): removed {} least recently used entries, {}",
            human(t.left),
            human(limit),
            t.removed.len(),
            human(t.freed)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn file(path: &Path, bytes: usize, age_secs: u64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![1u8; bytes]).unwrap();
        age(path, age_secs);
    }

    fn age(path: &Path, age_secs: u64) {
        let f = std::fs::File::options().write(true).open(path).or_else(|_| std::fs::File::open(path)).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_secs)).unwrap();
    }

    #[test]
    fn gc_removes_least_recently_used_first_and_never_what_is_held_or_a_bisect() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path().join("krepro"));
        let mib = 1 << 20;
        file(&cache.vmlinux().join("old.elf"), 3 * mib, 3000);
        file(&cache.vmlinux().join("new.elf"), 3 * mib, 10);
        file(&cache.logs().join("run.log"), mib, 2000);
        file(&cache.bisect().join("k/state.json"), mib, 9000);
        // An old build dir that a running krepro holds.
        let held_dir = cache.build_dirs().join("b1");
        file(&held_dir.join("vmlinux.o"), 3 * mib, 9000);
        let _held = super::super::lock::acquire(&held_dir.join(".krepro-lock"), "b1", false, &mut |_| {}).unwrap();
        age(&held_dir.join(".krepro-lock"), 9000);
        age(&held_dir, 9000);

        let before: u64 = entries(&cache).iter().map(|e| e.bytes).sum();
        assert!(before >= 11 * mib as u64, "{before}");
        // Room for 7 MiB: the oldest unheld entries go (old.elf, then run.log).
        let t = gc(&cache, (7 * mib as u64) + (200 << 10));
        let removed: Vec<String> =
            t.removed.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(removed, ["old.elf", "run.log"], "{t:?}");
        assert_eq!(t.skipped_in_use, std::slice::from_ref(&held_dir));
        assert!(cache.vmlinux().join("new.elf").exists() && cache.bisect().join("k/state.json").exists());
        // Clean empties a part, but what is held.
        let t = clean(&cache, &[Part::Builds]);
        assert!(t.removed.is_empty() && t.skipped_in_use == [held_dir.clone()]);
        let t = clean(&cache, &[Part::Bisect, Part::Vmlinux]);
        assert_eq!(t.removed.len(), 2, "{t:?}");
    }

    #[test]
    fn a_worktree_of_a_repository_that_is_gone_is_removed_and_links_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path().join("krepro"));
        let wt = cache.worktrees().join("abc-0");
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(wt.join(".git"), format!("gitdir: {}/gone/.git/worktrees/abc-0\n", d.path().display())).unwrap();
        std::fs::write(wt.join("Makefile"), "x").unwrap();
        // A kernels dir shared by a link (as the tests share theirs).
        let shared = d.path().join("shared");
        file(&shared.join("pkg/boot/vmlinuz"), 4096, 99_999);
        std::os::unix::fs::symlink(&shared, cache.kernels()).unwrap();
        let e = entries(&cache);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].orphan);
        let t = gc(&cache, u64::MAX);
        assert_eq!(t.removed, std::slice::from_ref(&wt));
        assert!(!wt.exists() && shared.join("pkg/boot/vmlinuz").exists());
    }

    #[test]
    fn full_disks_are_told_apart_from_other_failures() {
        assert!(says_disk_full("fs/ext4/super.o: No space left on device\nmake: *** Error 1"));
        assert!(says_disk_full("write error: Disk quota exceeded"));
        assert!(!says_disk_full("error: implicit declaration of function 'foo'"));
        assert!(free_space(Path::new("/")).is_some());
    }

    #[test]
    fn sizes_read_and_print_as_people_write_them() {
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert_eq!(human(1536 << 20), "1.5 GiB");
        assert_eq!(human(10), "10 B");
    }
}
