//! Directories, files and file systems: [`read_dir`], and thin wrappers of
//! rustix's calls that return the SDK's [`Error`], each naming its system
//! call as the step ([`Step::step`](crate::Step::step) renames it).

use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::sdk::{write_all, Cx, Error, Result, Step as _};

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

    /// mount(2): mounts `source` (a device, or a name for pseudo file
    /// systems) on `target` as `fstype`, with `data` as its options.
    ///
    /// <https://man7.org/linux/man-pages/man2/mount.2.html>
    pub fn mount(
        &self,
        source: &str,
        target: &str,
        fstype: &str,
        flags: MountFlags,
        data: Option<&CStr>,
    ) -> Result<()> {
        rustix::mount::mount(source, target, fstype, flags, data).step("mount")
    }

    /// umount2(2) with no flags.
    ///
    /// <https://man7.org/linux/man-pages/man2/umount2.2.html>
    pub fn umount(&self, target: &str) -> Result<()> {
        rustix::mount::unmount(target, UnmountFlags::empty()).step("umount2")
    }

    /// Makes directory `path` and any missing parents (mode 0755), as
    /// `mkdir -p` does. One that exists is fine.
    pub fn mkdir_all(&self, path: &str) -> Result<()> {
        let ends = path.match_indices('/').map(|(i, _)| i).chain(core::iter::once(path.len()));
        for end in ends {
            // Not sliced with [..end]: see guest::cmdline_words.
            let Some((dir, _)) = path.split_at_checked(end) else { continue };
            if dir.is_empty() {
                continue;
            }
            match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(errno) => return Err(Error::Errno { step: "mkdir", errno }),
            }
        }
        Ok(())
    }

    /// Creates `path` (or truncates it) holding `data`; the open file, to
    /// [`Cx::fsync`].
    pub fn create_file(&self, path: &str, data: &[u8]) -> Result<OwnedFd> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(0o644)).step("open")?;
        write_all(&fd, data)?;
        Ok(fd)
    }

    /// fsync(2).
    ///
    /// <https://man7.org/linux/man-pages/man2/fsync.2.html>
    pub fn fsync(&self, fd: impl AsFd) -> Result<()> {
        rustix::fs::fsync(fd).step("fsync")
    }

    /// Opens `path` (a file or a directory) and fsyncs it: after a
    /// rename, fsync the directory to make the new name durable.
    pub fn fsync_path(&self, path: &str) -> Result<()> {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).step("open")?;
        self.fsync(&fd)
    }

    /// rename(2).
    ///
    /// <https://man7.org/linux/man-pages/man2/rename.2.html>
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        rustix::fs::rename(from, to).step("rename")
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

    #[test]
    fn files_are_created_synced_renamed_and_read_back() {
        let cx = Cx::new(String::new(), None);
        let dir = std::env::temp_dir().join(format!("krepro-fs-{}", std::process::id()));
        let dir = dir.to_str().unwrap();
        let deep = format!("{dir}/a/b/c");
        cx.mkdir_all(&deep).unwrap();
        cx.mkdir_all(&deep).unwrap();
        cx.mkdir_all(&format!("{deep}/")).unwrap();
        let (tmp, dat) = (format!("{deep}/x.tmp"), format!("{deep}/x.dat"));
        let fd = cx.create_file(&tmp, b"hello").unwrap();
        cx.fsync(&fd).unwrap();
        cx.rename(&tmp, &dat).unwrap();
        cx.fsync_path(&deep).unwrap();
        assert_eq!(cx.read_dir(&deep).unwrap(), ["x.dat"]);
        assert_eq!(cx.read_dir(&dat), Err(Errno::NOTDIR));
        assert_eq!(cx.read_file(&dat).unwrap(), b"hello");
        assert_eq!(cx.read_file(&tmp).unwrap_err(), Errno::NOENT);
        assert_eq!(cx.rename(&tmp, &dat), Err(Error::Errno { step: "rename", errno: Errno::NOENT }));
        // A file where a directory should be.
        assert_eq!(cx.mkdir_all(&format!("{dat}/d")), Err(Error::Errno { step: "mkdir", errno: Errno::NOTDIR }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn mount_errors_are_the_kernels() {
        let cx = Cx::new(String::new(), None);
        // Not a mount point (EINVAL), or not allowed (EPERM) in a container.
        let e = cx.umount("/proc/self").unwrap_err();
        assert!(matches!(e.errno(), Some(Errno::INVAL | Errno::PERM)), "{e}");
        let e = cx.mount("none", "/nonexistent/krepro", "tmpfs", MountFlags::empty(), None).unwrap_err();
        assert!(matches!(e.errno(), Some(Errno::NOENT | Errno::PERM)), "{e}");
        assert_eq!(e.step(), "mount");
    }
}
