//! `--disk`: block devices for the guest, as virtio-blk, in order
//! /dev/vda, /dev/vdb, ...
//!
//! ```text
//! --disk FILE            the guest's writes are discarded (qemu's
//!                        snapshot=on); FILE is never written
//! --disk FILE:rw         the guest's writes go to FILE
//! --disk new:SIZE[:FS]   a fresh sparse scratch disk in the boot's temp
//!                        dir, made with `mkfs.FS` on the host when FS
//!                        is given (e.g. new:64M:ext4)
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::BootError;
use crate::host::spawn::Cmd;

/// One `--disk`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiskSpec {
    /// The user's image; `rw`: writes go through.
    File { path: PathBuf, rw: bool },
    /// A scratch disk of `bytes`, formatted with `fs` when given.
    New { bytes: u64, fs: Option<String> },
}

impl std::str::FromStr for DiskSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<DiskSpec, String> {
        if let Some(rest) = s.strip_prefix("new:") {
            let (size, fs) = match rest.split_once(':') {
                Some((size, fs)) => (size, Some(fs)),
                None => (rest, None),
            };
            let bytes = parse_size(size).ok_or_else(|| format!("{size}: a size like 64M, 1G or 512K"))?;
            if bytes < 1 << 20 {
                return Err(format!("{size}: a disk of at least 1M"));
            }
            let fs = match fs {
                Some(fs) if fs.is_empty() || !fs.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    return Err(format!("{fs}: a filesystem name like ext4, xfs, vfat, btrfs"))
                }
                fs => fs.map(str::to_owned),
            };
            return Ok(DiskSpec::New { bytes, fs });
        }
        let (path, rw) = match s.strip_suffix(":rw") {
            Some(p) => (p, true),
            None => (s, false),
        };
        if path.is_empty() {
            return Err("FILE, FILE:rw or new:SIZE[:FS]".into());
        }
        // qemu runs in a temp dir of its own: the path as the user meant it.
        Ok(DiskSpec::File { path: std::path::absolute(path).unwrap_or_else(|_| path.into()), rw })
    }
}

impl std::fmt::Display for DiskSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiskSpec::File { path, rw } => write!(f, "{}{}", path.display(), if *rw { ":rw" } else { "" }),
            DiskSpec::New { bytes, fs } => {
                write!(f, "new:{}M", bytes >> 20)?;
                fs.as_ref().map_or(Ok(()), |fs| write!(f, ":{fs}"))
            }
        }
    }
}

/// "64M" -> 64 MiB; K, M, G (binary), or plain bytes.
fn parse_size(s: &str) -> Option<u64> {
    let (num, shift) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 10),
        (i, 'M' | 'm') => (&s[..i], 20),
        (i, 'G' | 'g') => (&s[..i], 30),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Checks what can be checked before anything boots: the user's image
/// exists (and is writable with :rw), the mkfs of a new disk is installed.
pub(crate) fn check(spec: &DiskSpec) -> Result<(), BootError> {
    match spec {
        DiskSpec::File { path, rw } => {
            let meta =
                std::fs::metadata(path).map_err(|e| BootError::BadFlag(format!("--disk {}: {e}", path.display())))?;
            if meta.is_dir() {
                return Err(BootError::BadFlag(format!("--disk {}: a directory, not a disk image", path.display())));
            }
            // A block device is a disk qemu can take (raw); a character
            // device, a pipe or a socket is not.
            use std::os::unix::fs::FileTypeExt;
            let kind = meta.file_type();
            if kind.is_char_device() || kind.is_fifo() || kind.is_socket() {
                return Err(BootError::BadFlag(format!(
                    "--disk {}: a character device, a pipe or a socket, not a disk image (a file or a block device)",
                    path.display()
                )));
            }
            std::fs::File::open(path).map_err(|e| BootError::BadFlag(format!("--disk {spec}: cannot read it: {e}")))?;
            if *rw {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| BootError::BadFlag(format!("--disk {spec}: cannot write it: {e}")))?;
            }
            Ok(())
        }
        DiskSpec::New { fs: Some(fs), .. } => mkfs(fs).map(drop),
        DiskSpec::New { fs: None, .. } => Ok(()),
    }
}

fn mkfs(fs: &str) -> Result<PathBuf, BootError> {
    let tool = format!("mkfs.{fs}");
    which::which(&tool).or_else(|_| which::which(Path::new("/usr/sbin").join(&tool))).map_err(|_| {
        BootError::BadFlag(format!("--disk new:...:{fs}: {tool} is not installed (e.g. apt-get install -y e2fsprogs)"))
    })
}

/// Makes the disks of one boot (new ones in `scratch`) and returns qemu's
/// arguments for them: a drive and a virtio-blk device each, in order.
pub(crate) fn qemu_args(specs: &[DiskSpec], scratch: &Path, pci: bool) -> Result<Vec<OsString>, BootError> {
    let mut args = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let (path, extra) = match spec {
            DiskSpec::File { path, rw } => (path.clone(), if *rw { "" } else { ",snapshot=on" }),
            DiskSpec::New { bytes, fs } => {
                let path = scratch.join(format!("disk{i}.img"));
                let file =
                    std::fs::File::create(&path).map_err(|e| BootError::io(format!("create {}", path.display()), e))?;
                file.set_len(*bytes).map_err(|e| BootError::io(format!("size {}", path.display()), e))?;
                if let Some(fs) = fs {
                    let tool = mkfs(fs)?;
                    let force: &[&str] = match fs.as_str() {
                        "ext2" | "ext3" | "ext4" => &["-q", "-F"],
                        "xfs" | "btrfs" => &["-q", "-f"],
                        _ => &[],
                    };
                    Cmd::new(&tool, force.iter().map(OsString::from).chain([path.clone().into_os_string()]), scratch)
                        .quiet()
                        .output()?;
                }
                (path, "")
            }
        };
        let format = if image_is_qcow2(&path) { "qcow2" } else { "raw" };
        // qemu option values escape a comma by doubling it.
        let file = path.to_string_lossy().replace(',', ",,");
        args.push("-drive".into());
        args.push(format!("file={file},if=none,id=krepro-disk{i},format={format}{extra}").into());
        args.push("-device".into());
        let dev = if pci { "virtio-blk-pci" } else { "virtio-blk-device" };
        args.push(format!("{dev},drive=krepro-disk{i}").into());
    }
    Ok(args)
}

/// qcow2 images start with "QFI\xfb"; anything else is taken as raw (never
/// probed by qemu, which would let a guest-written header change it).
fn image_is_qcow2(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
        && magic == *b"QFI\xfb"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let p = |s: &str| s.parse::<DiskSpec>();
        assert_eq!(p("new:64M:ext4").unwrap(), DiskSpec::New { bytes: 64 << 20, fs: Some("ext4".into()) });
        assert_eq!(p("new:1G").unwrap(), DiskSpec::New { bytes: 1 << 30, fs: None });
        assert_eq!(p("/tmp/a.img").unwrap(), DiskSpec::File { path: "/tmp/a.img".into(), rw: false });
        assert_eq!(p("/tmp/a:b.img:rw").unwrap(), DiskSpec::File { path: "/tmp/a:b.img".into(), rw: true });
        for s in ["new:64M:ext4", "new:1024M", "/tmp/a.img:rw", "/x"] {
            assert_eq!(p(s).unwrap().to_string(), s);
        }
        assert_eq!(p("new:lots").unwrap_err(), "lots: a size like 64M, 1G or 512K");
        assert_eq!(p("new:4K").unwrap_err(), "4K: a disk of at least 1M");
        assert_eq!(p("new:64M:ext4;rm").unwrap_err(), "ext4;rm: a filesystem name like ext4, xfs, vfat, btrfs");
        assert!(p("").is_err() && p(":rw").is_err());
    }

    #[test]
    fn disks_become_drives_and_devices_in_order() {
        let d = tempfile::tempdir().unwrap();
        let user = d.path().join("user,1.img");
        std::fs::write(&user, [0u8; 4096]).unwrap();
        let specs = [
            DiskSpec::File { path: user.clone(), rw: false },
            DiskSpec::New { bytes: 2 << 20, fs: None },
            DiskSpec::File { path: user.clone(), rw: true },
        ];
        let args: Vec<String> =
            qemu_args(&specs, d.path(), false).unwrap().into_iter().map(|a| a.into_string().unwrap()).collect();
        let esc = user.display().to_string().replace(',', ",,");
        let new = d.path().join("disk1.img");
        assert_eq!(
            args,
            [
                "-drive".to_owned(),
                format!("file={esc},if=none,id=krepro-disk0,format=raw,snapshot=on"),
                "-device".into(),
                "virtio-blk-device,drive=krepro-disk0".into(),
                "-drive".into(),
                format!("file={},if=none,id=krepro-disk1,format=raw", new.display()),
                "-device".into(),
                "virtio-blk-device,drive=krepro-disk1".into(),
                "-drive".into(),
                format!("file={esc},if=none,id=krepro-disk2,format=raw"),
                "-device".into(),
                "virtio-blk-device,drive=krepro-disk2".into(),
            ]
        );
        let meta = std::fs::metadata(&new).unwrap();
        assert_eq!(meta.len(), 2 << 20);
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 < meta.len(), "a scratch disk is sparse");
        let pci = qemu_args(&specs[..1], d.path(), true).unwrap();
        assert_eq!(pci[3], "virtio-blk-pci,drive=krepro-disk0");
    }

    #[test]
    fn a_new_ext4_disk_is_formatted_on_the_host() {
        let d = tempfile::tempdir().unwrap();
        let spec: DiskSpec = "new:8M:ext4".parse().unwrap();
        check(&spec).expect("mkfs.ext4 (e2fsprogs) is needed for this test");
        qemu_args(&[spec], d.path(), false).unwrap();
        let img = std::fs::read(d.path().join("disk0.img")).unwrap();
        // The ext superblock's magic 0xef53 at byte 1024 + 56.
        assert_eq!(&img[1024 + 56..1024 + 58], &[0x53, 0xef]);
    }

    #[test]
    fn bad_disks_are_refused_before_boot() {
        let e = check(&DiskSpec::File { path: "/nonexistent.img".into(), rw: false }).unwrap_err();
        assert!(e.to_string().starts_with("--disk /nonexistent.img: "), "{e}");
        let e = check(&DiskSpec::File { path: "/".into(), rw: false }).unwrap_err();
        assert_eq!(e.to_string(), "--disk /: a directory, not a disk image");
        let e = check(&DiskSpec::File { path: "/dev/null".into(), rw: false }).unwrap_err();
        assert!(e.to_string().starts_with("--disk /dev/null: a character device, a pipe or a socket"), "{e}");
        let e = check(&"new:8M:nosuchfs".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("mkfs.nosuchfs is not installed"), "{e}");
    }
}
