//! Locks on krepro's state (a worktree, a bisect, a build dir, a fetch)
//! that name their owner, as git's lock files do, without git's stale
//! files: the lock is an flock(2) on a file that holds the owner's pid,
//! command line and start time. The kernel drops the lock when its holder
//! dies, however it dies; the owner line it leaves behind says who that
//! was, and the next krepro takes over with a note.
//!
//! A second krepro that needs a held lock says who holds it in one line
//! and stops (exit 128), or waits with `--wait`. A fetch always waits:
//! it takes seconds and its result is the waiter's too.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{flock, FlockOperation};

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Drop for Lock {
    /// Clears the owner line while still holding the lock: an owner line
    /// found later means its holder died without this.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// Who holds (or held) a lock, as its file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub started: u64,
    pub command: String,
}

impl Owner {
    fn me() -> Owner {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let command = std::env::args().map(|a| if a.contains(' ') { format!("'{a}'") } else { a }).collect::<Vec<_>>();
        Owner { pid: std::process::id(), started, command: command.join(" ") }
    }

    /// "pid 1234 started 06:12:03 UTC" "(`krepro bisect ...`)".
    fn describe(&self) -> String {
        let t = self.started % 86_400;
        let ago = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).saturating_sub(self.started);
        format!(
            "krepro pid {} (`{}`, started {:02}:{:02}:{:02} UTC, {} min ago)",
            self.pid,
            self.command,
            t / 3600,
            t / 60 % 60,
            t % 60,
            ago / 60
        )
    }

    fn line(&self) -> String {
        format!("{} {} {}\n", self.pid, self.started, self.command)
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut words = text.trim_end().splitn(3, ' ');
        let pid = words.next()?.parse().ok()?;
        let started = words.next()?.parse().ok()?;
        Some(Owner { pid, started, command: words.next().unwrap_or_default().to_owned() })
    }

    fn alive(&self) -> bool {
        Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} is in use by {}: wait for it to finish, or pass --wait", .owner.as_ref().map_or("another krepro".to_owned(), Owner::describe))]
    Busy { what: String, owner: Option<Owner> },
    #[error("lock {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Takes the lock at `path` for `what` ("the bisect in DIR"); when it is
/// held, fails naming the holder, or with `wait` waits for it (saying
/// so). A lock whose last owner is gone is taken over with a note.
pub(crate) fn acquire(path: &Path, what: &str, wait: bool, say: &mut dyn FnMut(&str)) -> Result<Lock, LockError> {
    take(path, what, Some(wait), say).map(|l| l.expect("a lock, or an error"))
}

/// The lock at `path` if it is free now; None if anyone holds it (this
/// process included): for trying one of several slots.
pub(crate) fn try_acquire(path: &Path, what: &str, say: &mut dyn FnMut(&str)) -> Result<Option<Lock>, LockError> {
    take(path, what, None, say)
}

/// `wait`: None to give up on a held lock (Ok(None)).
fn take(path: &Path, what: &str, wait: Option<bool>, say: &mut dyn FnMut(&str)) -> Result<Option<Lock>, LockError> {
    let err = |source: std::io::Error| LockError::Io { path: path.to_owned(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(err)?;
    let Some(wait) = wait else {
        if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
            return Ok(None);
        }
        return own(file, path, what, say).map(Some);
    };
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut owner = read_owner(&mut file);
        // Held without an owner line: a holder between its flock and its
        // line, or one that just let go while a child forked from one of
        // this process's threads still held its descriptor on the way to
        // exec. Either ends within moments.
        for _ in 0..100 {
            if owner.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return own(file, path, what, say).map(Some);
            }
            owner = read_owner(&mut file);
        }
        if owner.as_ref().is_some_and(|o| o.pid == std::process::id()) {
            // This process's other thread (a fetch in the background): its
            // result is this one's too.
            flock(&file, FlockOperation::LockExclusive).map_err(|e| err(e.into()))?;
        } else if !wait {
            return Err(LockError::Busy { what: what.to_owned(), owner });
        } else {
            let who = owner.as_ref().map_or("another krepro".to_owned(), Owner::describe);
            say(&format!("waiting for {who} to finish with {what}"));
            flock(&file, FlockOperation::LockExclusive).map_err(|e| err(e.into()))?;
        }
        return own(file, path, what, &mut |_| {}).map(Some);
    }
    own(file, path, what, say).map(Some)
}

/// A lock just taken: notes a holder that died with it, writes this
/// process as the owner.
fn own(mut file: File, path: &Path, what: &str, say: &mut dyn FnMut(&str)) -> Result<Lock, LockError> {
    let err = |source: std::io::Error| LockError::Io { path: path.to_owned(), source };
    if let Some(gone) = read_owner(&mut file).filter(|o| o.pid != std::process::id() && !o.alive()) {
        say(&format!("taking over {what}: its last holder, {}, is gone", gone.describe()));
    }
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    file.write_all(Owner::me().line().as_bytes()).map_err(err)?;
    Ok(Lock { file })
}

/// Whether the lock at `path` is held now (by any process, this one
/// included); a missing file is no lock.
pub(crate) fn held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else { return false };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(&file, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}

fn read_owner(file: &mut File) -> Option<Owner> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    Owner::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_owner_and_is_free_once_dropped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        let mut said = Vec::new();
        let first = acquire(&path, "the bisect in /b", false, &mut |m| said.push(m.to_owned())).unwrap();
        assert!(held(&path));
        // Another process's holder: write a foreign owner line (the lock
        // itself is this process's, held on another file description).
        std::fs::write(&path, format!("1 {} krepro bisect", 1_700_000_000)).unwrap();
        let e = acquire(&path, "the bisect in /b", false, &mut |_| {}).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("the bisect in /b is in use by krepro pid 1 (`krepro bisect`, started 22:13:20 UTC")
                && text.ends_with("min ago): wait for it to finish, or pass --wait"),
            "{text}"
        );
        drop(first);
        assert!(!held(&path));
        // A holder that let go cleared its line: no note for the next one.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        acquire(&path, "the bisect in /b", false, &mut |m| said.push(m.to_owned())).unwrap();
        assert!(said.is_empty(), "{said:?}");
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over_with_a_note() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        // A pid that is not running: past the kernel's pid_max.
        std::fs::write(&path, "4194305 1700000000 krepro bisect --good v1\n").unwrap();
        let mut said = Vec::new();
        let _l = acquire(&path, "the worktree /w", false, &mut |m| said.push(m.to_owned())).unwrap();
        assert_eq!(said.len(), 1);
        assert!(said[0].starts_with("taking over the worktree /w: its last holder, krepro pid 4194305 (`krepro bisect --good v1`, started 22:13:20 UTC"), "{said:?}");
        let owner = Owner::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(owner.pid, std::process::id());
    }

    #[test]
    fn a_thread_of_the_same_process_waits_without_asking() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        let first = acquire(&path, "the fetch of p", false, &mut |_| {}).unwrap();
        taken_quietly_once_let_go(&path, first);
    }

    /// `holder` let go of the lock at `path` 100 ms from now, in a thread:
    /// the lock is taken without `--wait` and without a word.
    fn taken_quietly_once_let_go<T: Send + 'static>(path: &Path, holder: T) {
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(holder);
        });
        let mut said = Vec::new();
        acquire(path, "the lock", false, &mut |m| said.push(m.to_owned())).unwrap();
        assert!(said.is_empty(), "{said:?}");
        t.join().unwrap();
    }

    #[test]
    fn a_lock_held_without_an_owner_line_is_waited_for_a_moment() {
        // A lock just let go whose descriptor a child forked from another
        // thread still holds on its way to exec: held, its line cleared.
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        let inherited = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&path).unwrap();
        flock(&inherited, FlockOperation::NonBlockingLockExclusive).unwrap();
        taken_quietly_once_let_go(&path, inherited);
    }

    #[test]
    fn waiting_waits_for_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.lock");
        let first = acquire(&path, "the build dir /b", false, &mut |_| {}).unwrap();
        std::fs::write(&path, "1 1700000000 krepro run -b").unwrap();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = released.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            r.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(first);
        });
        let mut said = Vec::new();
        let _second = acquire(&path, "the build dir /b", true, &mut |m| said.push(m.to_owned())).unwrap();
        assert!(released.load(std::sync::atomic::Ordering::SeqCst));
        assert!(said[0].starts_with("waiting for krepro pid "), "{said:?}");
        t.join().unwrap();
    }
}
