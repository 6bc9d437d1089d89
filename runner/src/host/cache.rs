//! krepro's cache: $XDG_CACHE_HOME/krepro (default ~/.cache/krepro). Never
//! inside a kernel tree.
//!
//! A [`Cache`] is a value handed to whatever reads or writes there (fetch,
//! build, bisect, the PVH vmlinux, the KVM marker, console logs), so tests
//! point it at a temp dir and never touch the user's.

use std::path::{Path, PathBuf};

use super::lock::{self, Lock, LockError};

/// Where krepro keeps what outlives one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
    /// Whether a lock another krepro holds is waited for (`--wait`)
    /// rather than reported.
    wait: bool,
}

impl Cache {
    /// The user's cache: `$XDG_CACHE_HOME/krepro`, else `$HOME/.cache/krepro`.
    pub fn from_env() -> Cache {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = match (var("XDG_CACHE_HOME"), var("HOME")) {
            (Some(xdg), _) => PathBuf::from(xdg).join("krepro"),
            (None, Some(home)) => PathBuf::from(home).join(".cache/krepro"),
            (None, None) => std::env::temp_dir().join("krepro-cache"),
        };
        Cache { root, wait: false }
    }

    /// A cache rooted at `root` (tests: a temp dir).
    pub fn at(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into(), wait: false }
    }

    /// The same cache; `wait`: wait for locks other krepros hold (`--wait`).
    pub fn waiting(self, wait: bool) -> Cache {
        Cache { wait, ..self }
    }

    /// Takes the lock at `path` for `what` ("the bisect in DIR"): see
    /// [`lock::acquire`]; waits for another krepro only with `--wait`.
    pub(crate) fn lock(&self, path: &Path, what: &str, say: &mut dyn FnMut(&str)) -> Result<Lock, LockError> {
        lock::acquire(path, what, self.wait, say)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unpacked distro kernel packages: `kernels/<package>/boot/vmlinuz-*`.
    pub fn kernels(&self) -> PathBuf {
        self.root.join("kernels")
    }

    /// Console logs of past runs (rotated, see [`crate::boot::log`]).
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// vmlinux images taken out of bzImages, for the PVH entry.
    pub fn vmlinux(&self) -> PathBuf {
        self.root.join("vmlinux")
    }

    /// Out-of-tree build dirs of the kernel builder.
    pub(crate) fn build_dirs(&self) -> PathBuf {
        self.root.join("build")
    }

    /// Finished kernels of the builder, by key.
    pub(crate) fn built(&self) -> PathBuf {
        self.root.join("built")
    }

    /// The source-identity stat caches of the builder.
    pub(crate) fn treehash(&self) -> PathBuf {
        self.root.join("treehash")
    }

    /// Bisect state while a bisect runs: its worktree, git's bisect state
    /// and `state.json` (a bisect over prebuilt kernels: only that); gone
    /// when it ends.
    pub(crate) fn bisect(&self) -> PathBuf {
        self.root.join("bisect")
    }

    /// The long-lived git worktrees builds and bisects of a repository
    /// share (`<repo>-<slot>`, with a `.lock` beside each).
    pub(crate) fn worktrees(&self) -> PathBuf {
        self.root.join("worktrees")
    }

    /// The guest side: krepro's embedded source written out, cargo's
    /// target dirs, built inits and initrds (by content), compiled C
    /// repros.
    pub(crate) fn guest(&self) -> PathBuf {
        self.root.join("guest")
    }

    /// Where `--accel auto` remembers that KVM failed at run time.
    pub fn kvm_broken(&self) -> PathBuf {
        self.root.join("kvm-broken")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_below_the_root() {
        let c = Cache::at("/t/krepro");
        for p in [
            c.kernels(),
            c.logs(),
            c.vmlinux(),
            c.build_dirs(),
            c.built(),
            c.treehash(),
            c.bisect(),
            c.guest(),
            c.kvm_broken(),
        ] {
            assert!(p.starts_with("/t/krepro") && p != Path::new("/t/krepro"), "{}", p.display());
        }
    }
}
