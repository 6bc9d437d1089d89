//! Directories and files.

use alloc::string::String;
use alloc::vec::Vec;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sdk::Cx;

/// The names of the entries of directory `path`, `.` and `..` left out,
/// in the order the kernel gives them. Names that are not UTF-8 are
/// replaced lossily.
///
/// Read with getdents64(2) into a buffer on the stack (rustix's RawDir):
/// rustix's `Dir` costs PID 1 over 2 KiB more.
pub fn read_dir(path: &str) -> core::result::Result<Vec<String>, Errno> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 2048];
    let mut entries = rustix::fs::RawDir::new(&fd, &mut buf);
    let mut names = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

impl Cx {
    /// The names in directory `path`: see [`read_dir`].
    pub fn read_dir(&self, path: &str) -> core::result::Result<Vec<String>, Errno> {
        read_dir(path)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use alloc::format;

    #[test]
    fn directories_list_their_entries() {
        let cx = Cx::new(String::new(), None);
        let dir = std::env::temp_dir().join(format!("krepro-read-dir-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let d = dir.to_str().unwrap();
        assert_eq!(cx.read_dir(d).unwrap(), Vec::<String>::new());
        // More entries than one getdents64 buffer holds.
        let mut want: Vec<String> = (0..300).map(|i| format!("entry-with-a-long-name-{i:03}")).collect();
        for name in &want {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let mut got = cx.read_dir(d).unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(cx.read_dir(&format!("{d}/{}", want[0])), Err(Errno::NOTDIR));
        assert_eq!(cx.read_dir("/nonexistent/krepro"), Err(Errno::NOENT));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
