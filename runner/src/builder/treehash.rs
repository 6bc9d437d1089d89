//! The identity of a kernel source tree, for the build cache: git's tree
//! hash for a clean git tree; git's tree hash plus a hash of the uncommitted
//! changes for a dirty one; a content hash of every file otherwise.
//!
//! Content hashing reuses, like git's index, the hash of every file whose
//! (inode, size, mtime) did not change since the last run, so a second look
//! at an unchanged tree costs a directory walk, not 1.5 GB of reading.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::host::spawn::Cmd;

/// Why a tree could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Git(#[from] crate::host::spawn::CmdError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TreeError {
    let context = context.into();
    move |source| TreeError::Io { context, source }
}

/// A string naming the exact contents of `dir`.
pub(crate) fn identity(dir: &Path, stat_cache: &Path) -> Result<String, TreeError> {
    if is_git_top(dir) {
        git_identity(dir)
    } else {
        Ok(format!("content:{}", content_hash(dir, stat_cache)?))
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, TreeError> {
    // --no-optional-locks: a status must not rewrite the user's index.
    let mut all = vec!["--no-optional-locks"];
    all.extend_from_slice(args);
    Ok(Cmd::new("git", all, dir).quiet().output()?.stdout)
}

/// Whether `dir` is the top of a git work tree.
pub(crate) fn is_git_top(dir: &Path) -> bool {
    match git(dir, &["rev-parse", "--show-toplevel"]) {
        Ok(out) => {
            let top = PathBuf::from(String::from_utf8_lossy(&out).trim());
            top.canonicalize().ok() == dir.canonicalize().ok()
        }
        Err(_) => false,
    }
}

fn git_identity(dir: &Path) -> Result<String, TreeError> {
    let tree = String::from_utf8_lossy(&git(dir, &["rev-parse", "HEAD^{tree}"])?).trim().to_owned();
    let status = git(dir, &["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
    if status.is_empty() {
        return Ok(format!("git:{tree}"));
    }
    let mut h = blake3::Hasher::new();
    h.update(&git(dir, &["diff", "HEAD", "--binary"])?);
    let untracked = git(dir, &["ls-files", "-z", "--others", "--exclude-standard"])?;
    for path in untracked.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let rel = String::from_utf8_lossy(path).into_owned();
        h.update(path);
        h.update(&std::fs::read(dir.join(&rel)).map_err(io(format!("read {rel}")))?);
    }
    Ok(format!("git:{tree}+dirty:{}", &h.finalize().to_hex()[..16]))
}

/// (inode, size, mtime in ns) of a file at the time its hash was taken.
type Stamp = (u64, u64, i128);

/// The content hash of every file under `dir` but `.git`, reusing the
/// hashes in `stat_cache` for files whose stamp is unchanged, and writing
/// the cache back.
pub(crate) fn content_hash(dir: &Path, stat_cache: &Path) -> Result<String, TreeError> {
    let old = load_stat_cache(stat_cache);
    let mut files: Vec<(String, bool, Stamp, PathBuf)> = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tree = blake3::Hasher::new();
    let mut new_cache = String::new();
    for (rel, exec, stamp, path) in &files {
        let hash = match old.get(rel.as_str()) {
            Some((s, hash)) if s == stamp => hash.clone(),
            _ => {
                let meta = std::fs::symlink_metadata(path).map_err(io(format!("stat {}", path.display())))?;
                let data = if meta.file_type().is_symlink() {
                    std::fs::read_link(path)
                        .map_err(io(format!("readlink {}", path.display())))?
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    std::fs::read(path).map_err(io(format!("read {}", path.display())))?
                };
                blake3::hash(&data).to_hex().to_string()
            }
        };
        tree.update(rel.as_bytes());
        tree.update(if *exec { b"\0x\0" } else { b"\0-\0" });
        tree.update(hash.as_bytes());
        let _ = writeln!(new_cache, "{} {} {} {hash} {rel}", stamp.0, stamp.1, stamp.2);
    }
    if let Some(parent) = stat_cache.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    // A cache: losing it costs a re-hash, half of one would mislead.
    let _ = crate::host::atomic::write(stat_cache, new_cache.as_bytes());
    Ok(tree.finalize().to_hex()[..32].to_owned())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, bool, Stamp, PathBuf)>) -> Result<(), TreeError> {
    for entry in std::fs::read_dir(dir).map_err(io(format!("list {}", dir.display())))? {
        let entry = entry.map_err(io(format!("list {}", dir.display())))?;
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).map_err(io(format!("stat {}", path.display())))?;
        if meta.is_dir() {
            if entry.file_name() != ".git" {
                walk(root, &path, out)?;
            }
            continue;
        }
        let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        out.push((rel, meta.mode() & 0o111 != 0, (meta.ino(), meta.size(), mtime), path));
    }
    Ok(())
}

fn load_stat_cache(path: &Path) -> HashMap<String, (Stamp, String)> {
    let Ok(text) = std::fs::read_to_string(path) else { return HashMap::new() };
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(5, ' ');
            let ino = parts.next()?.parse().ok()?;
            let size = parts.next()?.parse().ok()?;
            let mtime = parts.next()?.parse().ok()?;
            let hash = parts.next()?.to_owned();
            let rel = parts.next()?.to_owned();
            Some((rel, ((ino, size, mtime), hash)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_hash_follows_content_not_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let stat = cache.path().join("stat");
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/x.c"), "int x;\n").unwrap();
        std::fs::write(dir.path().join("Makefile"), "all:\n").unwrap();
        let h1 = content_hash(dir.path(), &stat).unwrap();
        assert_eq!(content_hash(dir.path(), &stat).unwrap(), h1, "cached");
        assert_eq!(content_hash(dir.path(), &cache.path().join("other")).unwrap(), h1, "uncached");
        // Same content, new mtime: same hash.
        std::fs::write(dir.path().join("a/b/x.c"), "int x;\n").unwrap();
        assert_eq!(content_hash(dir.path(), &stat).unwrap(), h1);
        std::fs::write(dir.path().join("a/b/x.c"), "int y;\n").unwrap();
        let h2 = content_hash(dir.path(), &stat).unwrap();
        assert_ne!(h2, h1);
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/HEAD"), "x").unwrap();
        assert_eq!(content_hash(dir.path(), &stat).unwrap(), h2, ".git is not content");
    }

    #[test]
    fn git_identity_is_the_tree_plus_changes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let run = |args: &[&str]| Cmd::new("git", args, d).quiet().output().unwrap();
        run(&["init", "-q"]);
        std::fs::write(d.join("f.c"), "int a;\n").unwrap();
        run(&["add", "f.c"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]);
        assert!(is_git_top(d));
        let stat = d.join("unused");
        let clean = identity(d, &stat).unwrap();
        assert!(clean.starts_with("git:") && !clean.contains("dirty"), "{clean}");
        std::fs::write(d.join("f.c"), "int b;\n").unwrap();
        let dirty = identity(d, &stat).unwrap();
        assert!(dirty.starts_with(&format!("{clean}+dirty:")), "{dirty}");
        std::fs::write(d.join("new.c"), "int c;\n").unwrap();
        assert_ne!(identity(d, &stat).unwrap(), dirty, "untracked files count");
        assert!(!is_git_top(&d.join(".git")));
    }
}
