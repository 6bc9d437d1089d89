//! Files that are whole or absent: written to a temp file beside the
//! target, fsynced, renamed over it, and the directory fsynced, so that a
//! Ctrl-C, a full disk or a power cut leaves the old file or the new one,
//! never half of either.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically. On error (ENOSPC included) the
/// old file, if any, is untouched and no temp file is left.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".krepro-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // A temp file is 0600; what krepro keeps is not secret.
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_is_replaced_whole_and_no_temp_file_stays() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        super::write(&p, b"one").unwrap();
        super::write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        // A directory that is gone: an error, nothing written.
        assert!(super::write(&d.path().join("no/such/file"), b"x").is_err());
    }
}
