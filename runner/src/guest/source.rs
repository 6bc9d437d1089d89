//! The guest side's source as runner/build.rs embedded it (init/, repros/,
//! their workspace manifest, Cargo.lock), written out into the cache once
//! per version so that cargo can build init from it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/guest_source.rs"));
}

/// Where the built-in repros are, in the guest workspace.
pub(crate) const BUILTIN_DIR: &str = "repros/src/repros";

/// Every embedded file: (path in the guest workspace, contents), by path.
fn files() -> &'static [(&'static str, &'static [u8])] {
    embedded::FILES
}

/// A hash of every embedded file and its path: names this version of the
/// guest side in cache keys and directory names.
pub(crate) fn hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        for (path, data) in files() {
            h.update(&(path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update(&(data.len() as u64).to_le_bytes());
            h.update(data);
        }
        h.finalize().to_hex()[..16].to_owned()
    })
}

/// The built-in repro files: (file name, text), in the order `krepro
/// repros` lists them (`NN-name.rs` first, by number, then by name).
pub(crate) fn builtin_repros() -> Vec<(&'static str, &'static str)> {
    let prefix = format!("{BUILTIN_DIR}/");
    let mut found: Vec<(&str, &str)> = files()
        .iter()
        .filter_map(|(path, data)| {
            let name = path.strip_prefix(prefix.as_str()).filter(|n| n.ends_with(".rs") && !n.contains('/'))?;
            Some((name, std::str::from_utf8(data).expect("krepro's repro files are UTF-8")))
        })
        .collect();
    found.sort_by_key(|(name, _)| repros::decl::file_order(name));
    found
}

/// The guest workspace under `dir` (`<cache>/guest`), written out if it
/// is not there yet: `dir/src-<hash>`. Written into a temp dir and renamed,
/// so a second krepro never sees half of it.
pub(crate) fn extract(dir: &Path) -> std::io::Result<PathBuf> {
    let dest = dir.join(format!("src-{}", hash()));
    if dest.join("Cargo.toml").is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new().prefix(".src-").tempdir_in(dir)?;
    for (path, data) in files() {
        let file = tmp.path().join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, data)?;
    }
    match std::fs::rename(tmp.path(), &dest) {
        Ok(()) => {
            // Renamed away: nothing left for the TempDir to remove.
            let _ = tmp.keep();
            Ok(dest)
        }
        // Another krepro wrote it first: theirs is the same.
        Err(_) if dest.join("Cargo.toml").is_file() => Ok(dest),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_workspace_is_embedded_whole() {
        let paths: Vec<&str> = files().iter().map(|(p, _)| *p).collect();
        for needed in [
            "Cargo.toml",
            "Cargo.lock",
            "init/Cargo.toml",
            "init/src/main.rs",
            "init/link.ld",
            "repros/src/lib.rs",
            "repros/src/decl.rs",
        ] {
            assert!(paths.contains(&needed), "{needed} is not embedded: {paths:?}");
        }
        let manifest = std::str::from_utf8(files().iter().find(|(p, _)| *p == "Cargo.toml").unwrap().1).unwrap();
        assert!(manifest.contains("members = [\"init\", \"repros\"]"), "{manifest}");
        assert!(manifest.contains("[profile.init]") && !manifest.contains("krepro-runner"), "{manifest}");
    }

    #[test]
    fn built_in_repros_come_in_file_order() {
        let names: Vec<&str> = builtin_repros().iter().map(|(n, _)| *n).collect();
        assert_eq!(names[..2], ["01-smoke.rs", "02-listen_backlog.rs"]);
    }

    #[test]
    fn extracting_twice_writes_once() {
        let d = tempfile::tempdir().unwrap();
        let a = extract(d.path()).unwrap();
        assert!(a.join("init/src/main.rs").is_file());
        let before = std::fs::metadata(a.join("Cargo.toml")).unwrap().modified().unwrap();
        assert_eq!(extract(d.path()).unwrap(), a);
        assert_eq!(std::fs::metadata(a.join("Cargo.toml")).unwrap().modified().unwrap(), before);
        let entries: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(entries.len(), 1, "no temp dir left: {entries:?}");
    }
}
