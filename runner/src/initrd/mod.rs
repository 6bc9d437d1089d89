//! The initrd: a gzip'd newc cpio archive, written byte-for-byte the same
//! for the same input (members sorted, mtimes and owners zero, inode numbers
//! assigned in order, gzip header without a time or name).
//!
//! cpio-archive only reads newc, so the writer is here; tests read its
//! output back with cpio-archive and GNU cpio.

pub(crate) mod extras;
pub mod modules;

use std::io::{self, Write};
use std::path::Path;

use flate2::{Compression, GzBuilder};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file with its contents.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A character device node.
    CharDev { major: u32, minor: u32 },
    /// A symbolic link to this target.
    Symlink(String),
}

/// One archive member. `path` is relative, without a leading `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub mode: u32,
    pub node: Node,
}

impl Member {
    pub fn file(path: &str, mode: u32, data: Vec<u8>) -> Member {
        Member { path: path.into(), mode, node: Node::File(data) }
    }

    pub fn dir(path: &str) -> Member {
        Member { path: path.into(), mode: 0o755, node: Node::Dir }
    }

    pub fn char_dev(path: &str, mode: u32, major: u32, minor: u32) -> Member {
        Member { path: path.into(), mode, node: Node::CharDev { major, minor } }
    }

    pub(crate) fn symlink(path: &str, target: &str) -> Member {
        Member { path: path.into(), mode: 0o777, node: Node::Symlink(target.into()) }
    }
}

/// The members of krepro's initrd: `/init`, the directories it mounts on and
/// `/dev/console` (the kernel opens it for PID 1's stdio before init runs).
pub(crate) fn standard_members(init: Vec<u8>) -> Vec<Member> {
    vec![
        Member::dir("dev"),
        Member::char_dev("dev/console", 0o600, 5, 1),
        Member::file("init", 0o755, init),
        Member::dir("proc"),
        Member::dir("sys"),
        Member::dir("tmp"),
    ]
}

/// Drops repeated directory members (the same path, both directories),
/// keeping the first: pieces of an initrd made apart (--exec, --file,
/// --modules, the standard members) may each bring a parent directory.
/// Any other repeat is left for [`write_newc`] to refuse.
pub(crate) fn dedup_dirs(members: Vec<Member>) -> Vec<Member> {
    let mut seen = std::collections::BTreeSet::new();
    members.into_iter().filter(|e| e.node != Node::Dir || seen.insert(e.path.clone())).collect()
}

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFLNK: u32 = 0o120000;

/// Writes `members` as a newc ("070701") archive, sorted by path, with the
/// `TRAILER!!!` entry.
pub(crate) fn write_newc(members: &[Member], mut out: impl Write) -> io::Result<()> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(w) = sorted.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("duplicate initrd entry {}", w[0].path)));
    }
    for (i, e) in sorted.iter().enumerate() {
        let (kind, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match &e.node {
            Node::File(d) => (S_IFREG, 1, d, (0, 0)),
            Node::Dir => (S_IFDIR, 2, &[], (0, 0)),
            Node::CharDev { major, minor } => (S_IFCHR, 1, &[], (*major, *minor)),
            Node::Symlink(target) => (S_IFLNK, 1, target.as_bytes(), (0, 0)),
        };
        let header = NewcHeader { ino: i as u32 + 1, mode: kind | (e.mode & 0o7777), nlink, size: data.len(), rdev };
        header.write(&e.path, &mut out)?;
        out.write_all(data)?;
        pad4(data.len(), &mut out)?;
    }
    NewcHeader { ino: 0, mode: 0, nlink: 1, size: 0, rdev: (0, 0) }.write("TRAILER!!!", &mut out)
}

struct NewcHeader {
    ino: u32,
    mode: u32,
    nlink: u32,
    size: usize,
    rdev: (u32, u32),
}

impl NewcHeader {
    fn write(&self, name: &str, out: &mut impl Write) -> io::Result<()> {
        let size = u32::try_from(self.size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: larger than 4 GiB")))?;
        let namesize = name.len() + 1;
        // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
        // devminor, rdevmajor, rdevminor, namesize, check
        write!(
            out,
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, self.mode, 0, 0, self.nlink, 0, size, 0, 0, self.rdev.0, self.rdev.1, namesize, 0
        )?;
        out.write_all(name.as_bytes())?;
        out.write_all(&[0])?;
        pad4(110 + namesize, out)
    }
}

fn pad4(len: usize, out: &mut impl Write) -> io::Result<()> {
    out.write_all(&[0; 3][..(4 - len % 4) % 4])
}

/// The architecture of the `init` in a gzip'd newc initrd (krepro's own,
/// as [`write_file`] makes it), from its ELF header; None when the file is
/// not such an archive or has no ELF init. Only the first gzip member is
/// read: the one that holds init.
pub(crate) fn init_arch(path: &Path) -> Option<crate::image::arch::Arch> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let mut data = Vec::new();
    // An initrd is small; the cap keeps a wrong --initrd from filling memory.
    flate2::read::GzDecoder::new(file).take(256 << 20).read_to_end(&mut data).ok()?;
    let mut at = 0;
    while data.get(at..at + 6)? == b"070701" {
        let field = |i: usize| {
            let hex = std::str::from_utf8(data.get(at + 6 + 8 * i..at + 14 + 8 * i)?).ok()?;
            usize::from_str_radix(hex, 16).ok()
        };
        let (size, namesize) = (field(6)?, field(11)?);
        let name = data.get(at + 110..at + 110 + namesize.checked_sub(1)?)?;
        let body = (at + 110 + namesize).next_multiple_of(4);
        if name == b"init" {
            let elf = crate::image::elf::Elf::parse(data.get(body..body + size)?).ok()?;
            return crate::image::arch::Arch::from_elf_machine(elf.machine());
        }
        if name == b"TRAILER!!!" {
            return None;
        }
        at = (body + size).next_multiple_of(4);
    }
    None
}

/// The gzip'd archive in memory.
pub(crate) fn pack(members: &[Member]) -> io::Result<Vec<u8>> {
    // GzBuilder writes mtime 0 and no file name unless told to.
    let mut gz = GzBuilder::new().write(Vec::new(), Compression::best());
    write_newc(members, &mut gz)?;
    gz.finish()
}

/// Writes the gzip'd archive to `path` atomically (a temp file beside it,
/// then rename), so concurrent builders never see half a file.
pub fn write_file(members: &[Member], path: &Path) -> io::Result<()> {
    let bytes = pack(members)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    crate::host::atomic::write(path, &bytes)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests run tools directly
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    fn sample() -> Vec<Member> {
        let mut e = standard_members(b"\x7fELF fake init".to_vec());
        e.push(Member::file("etc/data.txt", 0o644, b"hello\n".to_vec()));
        e.push(Member::dir("etc"));
        e.push(Member::dir("bin"));
        e.push(Member::symlink("bin/sh", "busybox"));
        e
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn init_arch_reads_the_elf_header_of_init() {
        let d = tempfile::tempdir().unwrap();
        let exe = crate::image::elf::testing::cc(d.path(), &["-static"], "int main(void) { return 0; }");
        let path = d.path().join("initrd.gz");
        let mut members = standard_members(exe);
        members.push(Member::file("aaa", 0o644, b"before init in the archive".to_vec()));
        write_file(&members, &path).unwrap();
        assert_eq!(init_arch(&path), Some(crate::image::arch::Arch::X86_64));
        write_file(&sample(), &path).unwrap();
        assert_eq!(init_arch(&path), None, "not an ELF init");
        assert_eq!(init_arch(Path::new("/etc/passwd")), None);
    }

    #[test]
    fn output_is_byte_identical_and_order_independent() {
        let a = pack(&sample()).unwrap();
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(a, pack(&reversed).unwrap());
        // gzip header: no mtime (bytes 4..8), no name flag.
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[3] & 0x08, 0);
    }

    #[test]
    fn cpio_archive_reads_it_back() {
        let raw = gunzip(&pack(&sample()).unwrap());
        use cpio_archive::CpioReader as _;
        let mut reader = cpio_archive::NewcReader::new(std::io::Cursor::new(raw));
        let mut seen = Vec::new();
        while let Some(header) = reader.read_next().unwrap() {
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            assert_eq!((header.uid(), header.gid(), header.mtime()), (0, 0, 0));
            seen.push((header.name().to_owned(), header.mode(), header.inode(), data));
        }
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/sh", "dev", "dev/console", "etc", "etc/data.txt", "init", "proc", "sys", "tmp"]);
        let inodes: Vec<u32> = seen.iter().map(|s| s.2).collect();
        assert_eq!(inodes, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(seen[0].1, 0o040755);
        assert_eq!((seen[1].1, seen[1].3.as_slice()), (0o120777, &b"busybox"[..]));
        assert_eq!(seen[3].1, 0o020600);
        assert_eq!(seen[5].3, b"hello\n");
        assert_eq!(seen[6].1, 0o100755);
        assert_eq!(seen[6].3, b"\x7fELF fake init");
    }

    #[test]
    fn gnu_cpio_lists_it() {
        let raw = gunzip(&pack(&sample()).unwrap());
        let mut child = Command::new("cpio")
            .args(["-it", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("GNU cpio is needed for this test: apt-get install -y cpio");
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10, "{text}");
        assert!(lines[1].starts_with("lrwxrwxrwx") && lines[1].ends_with("bin/sh -> busybox"), "{}", lines[1]);
        assert!(
            lines[3].starts_with("crw-------") && lines[3].contains("5,   1") && lines[3].ends_with("dev/console"),
            "{}",
            lines[3]
        );
        assert!(lines[6].starts_with("-rwxr-xr-x") && lines[6].ends_with(" init"), "{}", lines[6]);
    }

    #[test]
    fn duplicates_are_refused() {
        let mut e = sample();
        e.push(Member::dir("proc"));
        let err = write_newc(&e, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "duplicate initrd entry proc");
    }

    #[test]
    fn repeated_dirs_merge_but_files_do_not() {
        let merged = dedup_dirs(vec![Member::dir("srv"), Member::file("srv/a", 0o644, vec![]), Member::dir("srv")]);
        assert_eq!(merged.len(), 2);
        write_newc(&merged, Vec::new()).unwrap();
        let files = dedup_dirs(vec![Member::file("x", 0o644, vec![1]), Member::file("x", 0o644, vec![2])]);
        assert_eq!(write_newc(&files, Vec::new()).unwrap_err().to_string(), "duplicate initrd entry x");
    }

    #[test]
    fn atomic_write_creates_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/initrd.cpio.gz");
        write_file(&sample(), &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), pack(&sample()).unwrap());
    }
}
