//! Kernel images: checking a file is a bzImage, reading its release and
//! finding its config.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::RunError;

/// Offset of the "HdrS" magic in the x86 boot protocol's setup header.
const HDRS_OFFSET: u64 = 0x202;
/// Offset of `kernel_version`, a pointer (minus 0x200) to the version string.
const KERNEL_VERSION_OFFSET: u64 = 0x20e;

/// A kernel image that passed [`check_bzimage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub path: PathBuf,
    /// The release (`uname -r`) from the image's version string, if it has one.
    pub release: Option<String>,
}

/// Checks that `path` is a readable x86 bzImage ("HdrS" at 0x202) and reads
/// its release, before qemu is ever started.
pub fn check_bzimage(path: &Path) -> Result<Kernel, RunError> {
    let not_bz = |why: &str| RunError::NotABzImage { path: path.to_owned(), why: why.to_owned() };
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => RunError::KernelNotFound(path.to_owned()),
        _ => RunError::io(format!("open kernel {}", path.display()), e),
    })?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(not_bz("it is a directory"));
    }
    let mut header = [0u8; 0x210];
    if read_at(&mut file, 0, &mut header).is_err() {
        return Err(not_bz("too short for an x86 boot header"));
    }
    if &header[HDRS_OFFSET as usize..HDRS_OFFSET as usize + 4] != b"HdrS" {
        return Err(not_bz("no \"HdrS\" boot header magic at 0x202"));
    }
    // Everything up to the end of the protected-mode part must be there:
    // else a cut-off download or copy.
    let want = protected_mode(&header).map_or(0, |pm| pm.end);
    let have = file.metadata().map(|m| m.len()).unwrap_or(0);
    if have < want {
        return Err(not_bz(&format!("truncated: its boot header says {want} bytes, the file has {have}")));
    }
    let release = read_version(&mut file, &header).and_then(|v| release_from_version(&v));
    Ok(Kernel { path: path.to_owned(), release })
}

/// The whole version string of a bzImage ("6.1.0-56-cloud-amd64
/// (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian
/// 6.1.192-2 (2026-11-16)", what `/proc/version` says after "Linux version"),
/// if it has one.
pub fn version_string(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let mut header = [0u8; 0x210];
    read_at(&mut file, 0, &mut header).ok()?;
    read_version(&mut file, &header)
}

/// The version string `kernel_version` in `header` points at.
fn read_version(file: &mut File, header: &[u8; 0x210]) -> Option<String> {
    let ptr = u16::from_le_bytes([header[KERNEL_VERSION_OFFSET as usize], header[KERNEL_VERSION_OFFSET as usize + 1]]);
    if ptr == 0 {
        return None;
    }
    let mut text = [0u8; 256];
    let n = file.seek(SeekFrom::Start(u64::from(ptr) + 0x200)).and_then(|_| file.read(&mut text)).ok()?;
    let end = text[..n].iter().position(|&b| b == 0).unwrap_or(n);
    std::str::from_utf8(&text[..end]).ok().map(str::to_owned)
}

/// Where a bzImage's protected-mode part lies, from its setup header
/// (Documentation/arch/x86/boot.rst): after the boot sector and
/// `setup_sects` sectors (0 meaning 4), `syssize` 16-byte paragraphs long.
/// The kernel's build pads the file to exactly its end. None when `header`
/// is too short to say.
pub fn protected_mode(header: &[u8]) -> Option<std::ops::Range<u64>> {
    let setup_sects = match *header.get(0x1f1)? {
        0 => 4,
        n => u64::from(n),
    };
    let syssize = u64::from(u32::from_le_bytes(header.get(0x1f4..0x1f8)?.try_into().ok()?));
    // At most 256 * 512 and 2^32 * 16: no overflow.
    let start = (setup_sects + 1) * 512;
    Some(start..start + syssize * 16)
}

fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// "6.12.117+deb12-cloud-amd64 (debian-kernel@...) #1 SMP ..." -> the first word.
fn release_from_version(s: &str) -> Option<String> {
    let release = s.split_whitespace().next()?;
    release.chars().next()?.is_ascii_digit().then(|| release.to_owned())
}

/// The kernel's .config, where kernels keep it: `<image>.config` (what
/// `kernel build -o FILE` writes), beside the image as `config` (krepro's
/// build cache) or `config-<release>` (a distro's /boot), or at the top of
/// the tree for `arch/x86/boot/bzImage`.
pub fn config_of(kernel: &Kernel) -> Option<std::collections::BTreeMap<String, crate::build::kconfig::Value>> {
    let dir = kernel.path.parent()?;
    let mut own = kernel.path.clone().into_os_string();
    own.push(".config");
    let mut candidates = vec![PathBuf::from(own), dir.join("config"), dir.join("../../../.config")];
    if let Some(name) = kernel.path.file_name().and_then(|n| n.to_str()) {
        if let Some(rel) = name.strip_prefix("vmlinuz-") {
            candidates.insert(0, dir.join(format!("config-{rel}")));
        }
    }
    if let Some(rel) = &kernel.release {
        candidates.push(dir.join(format!("config-{rel}")));
    }
    candidates.iter().find_map(|c| std::fs::read_to_string(c).ok()).map(|t| crate::build::kconfig::parse_config(&t))
}

/// Whether the kernel has ACPI; unknown (no config found) counts as yes.
pub fn has_acpi(kernel: &Kernel) -> bool {
    config_of(kernel).is_none_or(|c| c.get("ACPI") == Some(&crate::build::kconfig::Value::Y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fake_bzimage(version: &str) -> tempfile::NamedTempFile {
        // One setup sector and no protected-mode part: 0x400 bytes in all.
        let mut img = vec![0u8; 0x400];
        img[0x1f1] = 1;
        img[0x202..0x206].copy_from_slice(b"HdrS");
        let ptr: u16 = 0x100; // string at 0x300
        img[0x20e..0x210].copy_from_slice(&ptr.to_le_bytes());
        img[0x300..0x300 + version.len()].copy_from_slice(version.as_bytes());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&img).unwrap();
        f
    }

    #[test]
    fn reads_release_from_the_header() {
        let f = fake_bzimage("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
        let k = check_bzimage(f.path()).unwrap();
        assert_eq!(k.release.as_deref(), Some("6.12.117+deb12-cloud-amd64"));
        assert_eq!(
            version_string(f.path()).as_deref(),
            Some("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP")
        );
    }

    #[test]
    fn refuses_a_truncated_bzimage() {
        let real = crate::image::elf::testing::cached_kernel("6.1");
        let bytes = std::fs::read(&real).unwrap();
        assert!(check_bzimage(&real).is_ok());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes[..bytes.len() - 1]).unwrap();
        let err = check_bzimage(f.path()).unwrap_err();
        let want = format!("truncated: its boot header says {} bytes, the file has {}", bytes.len(), bytes.len() - 1);
        assert!(matches!(&err, RunError::NotABzImage { why, .. } if *why == want), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_bzimage() {
        let err = check_bzimage(Path::new("/etc/passwd")).unwrap_err();
        assert!(matches!(err, RunError::NotABzImage { .. }), "{err:?}");
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
        let err = check_bzimage(Path::new("/nonexistent/bzImage")).unwrap_err();
        assert!(matches!(err, RunError::KernelNotFound(_)), "{err:?}");
        let err = check_bzimage(Path::new("/")).unwrap_err();
        assert!(matches!(err, RunError::NotABzImage { .. }), "{err:?}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[0u8; 0x400]).unwrap();
        assert!(matches!(check_bzimage(f.path()).unwrap_err(), RunError::NotABzImage { .. }));
    }

    #[test]
    fn acpi_comes_from_the_config_beside_the_kernel() {
        let d = tempfile::tempdir().unwrap();
        let k = Kernel { path: d.path().join("vmlinuz-6.1.0-9"), release: None };
        assert!(has_acpi(&k), "unknown counts as ACPI");
        std::fs::write(d.path().join("config-6.1.0-9"), "# CONFIG_ACPI is not set\n").unwrap();
        assert!(!has_acpi(&k));
        let built = Kernel { path: d.path().join("bzImage"), release: Some("6.1.192".into()) };
        std::fs::write(d.path().join("config"), "CONFIG_ACPI=y\n").unwrap();
        assert!(has_acpi(&built));
        std::fs::write(d.path().join("bzImage.config"), "# CONFIG_ACPI is not set\n").unwrap();
        assert!(!has_acpi(&built), "<image>.config comes first");
    }
}
