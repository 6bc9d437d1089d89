//! Kernel images: checking a file is a bzImage or an arm64 Image, reading
//! its release and finding its config.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::arch::Arch;
use super::decompress::{decompress, Format, OUTPUT_CAP};

/// Offset of the "HdrS" magic in the x86 boot protocol's setup header.
const HDRS_OFFSET: u64 = 0x202;
/// Offset of `kernel_version`, a pointer (minus 0x200) to the version string.
const KERNEL_VERSION_OFFSET: u64 = 0x20e;
/// The arm64 Image header (Documentation/arch/arm64/booting.rst): 64
/// bytes, "ARM\x64" at 56.
const ARM64_HEADER: usize = 64;
const ARM64_MAGIC_OFFSET: usize = 56;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
/// An EFI zboot image (arm64 `vmlinuz.efi`): "MZ", then "zimg" at 4 and
/// the payload's compression name at 24 (drivers/firmware/efi/libstub/zboot-header.S).
const ZBOOT_MAGIC: &[u8; 4] = b"zimg";
/// Where `linux_banner` begins: "Linux version " and the release.
const BANNER: &[u8] = b"Linux version ";

/// Why a file is not a kernel krepro can boot.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("kernel {0} does not exist")]
    NotFound(PathBuf),
    #[error("{path} is not a kernel image (an x86 bzImage or an arm64 Image): {why}")]
    NotAKernel { path: PathBuf, why: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> KernelError {
    move |source| KernelError::Io { context, source }
}

/// The largest kernel file krepro reads: a vmlinux with full debug info
/// (syzbot's, KASAN and all) is under 1 GiB; anything bigger is a wrong
/// path, and is refused before it is read.
const KERNEL_FILE_CAP: u64 = 2 << 30;

/// A kernel image that passed [`check_kernel`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    pub path: PathBuf,
    /// The release (`uname -r`) from the image's version string, if it has one.
    pub release: Option<String>,
    pub arch: Arch,
}

impl Kernel {
    /// A hash of the code and data this kernel loads (hex), the same for
    /// two builds whose difference cannot matter: for a vmlinux (or a
    /// bzImage's, taken out into `vmlinux_dir` and cached there) its
    /// allocated sections' ([`super::elf::code_hash`]); for another image
    /// (arm64's Image, the loaded bytes themselves) the whole file's.
    pub(crate) fn code_hash(&self, vmlinux_dir: &Path) -> Result<String, KernelError> {
        let bytes = std::fs::read(&self.path).map_err(io(format!("read {}", self.path.display())))?;
        let not_kernel =
            |e: &dyn std::fmt::Display| KernelError::NotAKernel { path: self.path.clone(), why: e.to_string() };
        let elf = if bytes.starts_with(b"\x7fELF") {
            bytes
        } else if self.arch == Arch::X86_64 {
            let v = super::vmlinux::pvh_vmlinux(vmlinux_dir, &self.path).map_err(|e| not_kernel(&e))?;
            std::fs::read(&v).map_err(io(format!("read {}", v.display())))?
        } else {
            return Ok(blake3::hash(&bytes).to_hex().to_string());
        };
        super::elf::code_hash(&elf).map(|h| h.to_hex().to_string()).map_err(|e| not_kernel(&e))
    }
}

/// Checks that `path` is a readable kernel image qemu can boot and reads
/// its release, before qemu is ever started: an x86 bzImage ("HdrS" at
/// 0x202), or an arm64 Image ("ARM\x64" at 56), plain, gzip'd (Debian's
/// older `vmlinuz`, `Image.gz`) or as an EFI zboot image.
pub fn check_kernel(path: &Path) -> Result<Kernel, KernelError> {
    // qemu runs in a temp dir of its own: a relative path is made absolute
    // here, once.
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let path = absolute.as_path();
    let not_kernel = |why: &str| KernelError::NotAKernel { path: path.to_owned(), why: why.to_owned() };
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KernelError::NotFound(path.to_owned()),
        _ => io(format!("open kernel {}", path.display()))(e),
    })?;
    let meta = file.metadata().map_err(io(format!("stat {}", path.display())))?;
    if meta.is_dir() {
        return Err(not_kernel("it is a directory"));
    }
    if !meta.is_file() {
        return Err(not_kernel("not a regular file (a device, a socket or a pipe)"));
    }
    if meta.len() > KERNEL_FILE_CAP {
        let why =
            format!("{} MiB, more than any kernel image ({} MiB at most)", meta.len() >> 20, KERNEL_FILE_CAP >> 20);
        return Err(not_kernel(&why));
    }
    let mut header = [0u8; 0x210];
    let n = read_up_to(&mut file, &mut header).map_err(io(format!("read {}", path.display())))?;
    let head = &header[..n];
    if head.len() >= ARM64_HEADER && &head[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC {
        let release = arm64_version(path).and_then(|v| release_from_version(&v));
        return Ok(Kernel { path: path.to_owned(), release, arch: Arch::Aarch64 });
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        let mut inner = [0u8; ARM64_HEADER];
        let read = flate2::read::GzDecoder::new(std::io::BufReader::new(
            File::open(path).map_err(io(format!("open kernel {}", path.display())))?,
        ))
        .read_exact(&mut inner);
        if read.is_ok() && &inner[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC {
            let release = arm64_version(path).and_then(|v| release_from_version(&v));
            return Ok(Kernel { path: path.to_owned(), release, arch: Arch::Aarch64 });
        }
        return Err(not_kernel("a gzip file that does not hold an arm64 Image"));
    }
    if head.starts_with(b"\x7fELF") {
        return elf_vmlinux(path, &not_kernel);
    }
    if head.len() >= 8 && head.starts_with(b"MZ") && &head[4..8] == ZBOOT_MAGIC {
        // qemu unpacks zboot images itself; the release is inside the
        // compressed payload, so it stays unknown.
        return Ok(Kernel { path: path.to_owned(), release: None, arch: Arch::Aarch64 });
    }
    if head.len() < header.len() {
        return Err(not_kernel("too short for an x86 boot header or an arm64 Image header"));
    }
    if &header[HDRS_OFFSET as usize..HDRS_OFFSET as usize + 4] != b"HdrS" {
        return Err(not_kernel("no \"HdrS\" boot header magic at 0x202 (x86) nor \"ARM\\x64\" at 0x38 (arm64)"));
    }
    // Everything up to the end of the protected-mode part must be there:
    // else a cut-off download or copy.
    let want = protected_mode(&header).map_or(0, |pm| pm.end);
    let have = file.metadata().map(|m| m.len()).unwrap_or(0);
    if have < want {
        return Err(not_kernel(&format!("truncated: its boot header says {want} bytes, the file has {have}")));
    }
    let release = read_version(&mut file, &header).and_then(|v| release_from_version(&v));
    Ok(Kernel { path: path.to_owned(), release, arch: Arch::X86_64 })
}

/// An x86_64 vmlinux (the ELF a build links before it makes the bzImage)
/// that carries the PVH entry note: qemu boots it directly. krepro's
/// builder makes only this when it will boot the kernel itself.
fn elf_vmlinux(path: &Path, not_kernel: &dyn Fn(&str) -> KernelError) -> Result<Kernel, KernelError> {
    let data = std::fs::read(path).map_err(io(format!("read {}", path.display())))?;
    let machine = super::elf::Elf::parse(&data)
        .map_err(|e| not_kernel(&format!("an ELF file that does not parse: {e}")))?
        .machine();
    match Arch::from_elf_machine(machine) {
        Some(Arch::X86_64) => {}
        Some(Arch::Aarch64) => return Err(not_kernel("an arm64 vmlinux: boot its Image (arch/arm64/boot/Image)")),
        None => return Err(not_kernel(&format!("an ELF file for machine {machine}, not a kernel krepro boots"))),
    }
    super::vmlinux::check_pvh(&data)
        .map_err(|e| not_kernel(&format!("an x86_64 vmlinux qemu cannot boot directly ({e}): boot its bzImage")))?;
    let release = banner_version(&data).and_then(|v| release_from_version(&v));
    Ok(Kernel { path: path.to_owned(), release, arch: Arch::X86_64 })
}

/// Whether `path` is an ELF file (a vmlinux, not a boot image).
pub fn is_elf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == *b"\x7fELF"
}

/// Reads into `buf` until it is full or the file ends; how much it read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The whole version string of a kernel image ("6.1.0-56-cloud-amd64
/// (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian
/// 6.1.192-2 (2026-11-16)", what `/proc/version` says after "Linux version"),
/// if it has one.
pub(crate) fn version_string(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let mut header = [0u8; 0x210];
    let n = read_up_to(&mut file, &mut header).ok()?;
    if n == header.len() && &header[HDRS_OFFSET as usize..HDRS_OFFSET as usize + 4] == b"HdrS" {
        return read_version(&mut file, &header);
    }
    arm64_version(path)
}

/// An arm64 Image has no pointer to its version: the version is the
/// `linux_banner` string in its data, "Linux version " then a release that
/// starts with a digit (format strings that also say "Linux version" do
/// not). A gzip'd Image is read through the decompressor.
fn arm64_version(path: &Path) -> Option<String> {
    let raw = std::fs::read(path).ok()?;
    let data = if raw.starts_with(&[0x1f, 0x8b]) { decompress(Format::Gzip, &raw, OUTPUT_CAP).ok()? } else { raw };
    banner_version(&data)
}

/// The version in an uncompressed kernel's `linux_banner` ("Linux version
/// " then a release that starts with a digit; format strings that also
/// say "Linux version" do not): an arm64 Image's, an x86 vmlinux's.
fn banner_version(data: &[u8]) -> Option<String> {
    memchr::memmem::find_iter(data, BANNER).find_map(|at| {
        let rest = &data[at + BANNER.len()..];
        if !rest.first()?.is_ascii_digit() {
            return None;
        }
        let end = rest.iter().take(512).position(|&b| b == 0 || b == b'\n')?;
        std::str::from_utf8(&rest[..end]).ok().map(str::to_owned)
    })
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
pub(crate) fn protected_mode(header: &[u8]) -> Option<std::ops::Range<u64>> {
    let setup_sects = match *header.get(0x1f1)? {
        0 => 4,
        n => u64::from(n),
    };
    let syssize = u64::from(u32::from_le_bytes(header.get(0x1f4..0x1f8)?.try_into().ok()?));
    // At most 256 * 512 and 2^32 * 16: no overflow.
    let start = (setup_sects + 1) * 512;
    Some(start..start + syssize * 16)
}

/// "6.12.117+deb12-cloud-amd64 (debian-kernel@...) #1 SMP ..." -> the first word.
fn release_from_version(s: &str) -> Option<String> {
    let release = s.split_whitespace().next()?;
    release.chars().next()?.is_ascii_digit().then(|| release.to_owned())
}

/// The kernel's .config, where kernels keep it: `<image>.config` (what
/// `kernel build -o FILE` writes), beside the image as `config` (krepro's
/// build cache) or `config-<release>` (a distro's /boot), or at the top of
/// the tree for `arch/*/boot/bzImage` or `Image`.
pub fn config_of(kernel: &Kernel) -> Option<std::collections::BTreeMap<String, super::config::Value>> {
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
    candidates.iter().find_map(|c| std::fs::read_to_string(c).ok()).map(|t| super::config::parse_config(&t))
}

/// The vmlinux with debug info for `kernel`, where there is one to be
/// sure of: the kernel itself (a vmlinux); `vmlinux.debug` beside it (the
/// builder keeps one for a config with DEBUG_INFO); a tree's `vmlinux`
/// (beside a bzImage, or three levels up from arch/x86/boot) that is no
/// older than the image. Checked for a `.debug_info` section.
pub(crate) fn debug_vmlinux(kernel: &Kernel) -> Option<PathBuf> {
    let dir = kernel.path.parent()?;
    let image_time = std::fs::metadata(&kernel.path).and_then(|m| m.modified()).ok()?;
    let fresh = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).is_ok_and(|t| t >= image_time);
    let mut candidates = Vec::new();
    if is_elf(&kernel.path) {
        candidates.push(kernel.path.clone());
    }
    candidates.push(dir.join("vmlinux.debug"));
    candidates.extend([dir.join("vmlinux"), dir.join("../../../vmlinux")].into_iter().filter(|p| fresh(p)));
    candidates.into_iter().find(|c| {
        // The section headers are at the end: read the file once, here.
        std::fs::read(c).ok().is_some_and(|data| {
            super::elf::Elf::parse(&data)
                .ok()
                .is_some_and(|e| e.section_by_name(b".debug_info").ok().flatten().is_some())
        })
    })
}

/// What the runner needs to know of a kernel's config (found beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConfigFacts {
    /// Whether the kernel has ACPI; unknown (no config found) counts as yes.
    pub acpi: bool,
    /// Whether its ticks are known to be periodic and nothing else
    /// (HZ_PERIODIC, no HIGH_RES_TIMERS): no clock event device is ever
    /// programmed one-shot. Unknown counts as no.
    pub periodic_ticks_only: bool,
    /// Whether it can use a second CPU (SMP); unknown counts as yes.
    pub smp: bool,
    /// Whether it has virtio-blk, built in or as a module; unknown counts
    /// as yes.
    pub virtio_blk: bool,
    /// Whether it has KASAN: such a kernel (6.1's, at least) resets at
    /// once when entered through PVH. Unknown counts as no.
    pub kasan: bool,
}

pub(crate) fn config_facts(kernel: &Kernel) -> ConfigFacts {
    use super::config::Value;
    match config_of(kernel) {
        None => ConfigFacts { acpi: true, periodic_ticks_only: false, smp: true, virtio_blk: true, kasan: false },
        Some(c) => ConfigFacts {
            acpi: c.get("ACPI") == Some(&Value::Y),
            periodic_ticks_only: c.get("HZ_PERIODIC") == Some(&Value::Y) && c.get("HIGH_RES_TIMERS") != Some(&Value::Y),
            smp: c.get("SMP") == Some(&Value::Y),
            virtio_blk: matches!(c.get("VIRTIO_BLK"), Some(Value::Y | Value::M)),
            kasan: c.get("KASAN") == Some(&Value::Y),
        },
    }
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
        let k = check_kernel(f.path()).unwrap();
        assert_eq!(k.release.as_deref(), Some("6.12.117+deb12-cloud-amd64"));
        assert_eq!(k.arch, Arch::X86_64);
        assert_eq!(
            version_string(f.path()).as_deref(),
            Some("6.12.117+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP")
        );
    }

    #[test]
    fn a_vmlinux_with_the_pvh_note_is_a_kernel_and_others_are_not() {
        let bz = std::fs::read(crate::image::elf::testing::cached_kernel("6.12")).unwrap();
        let vmlinux = crate::image::vmlinux::extract(&bz).unwrap();
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("vmlinux");
        std::fs::write(&path, &vmlinux).unwrap();
        let k = check_kernel(&path).unwrap();
        assert_eq!(k.arch, Arch::X86_64);
        assert!(k.release.as_deref().unwrap().starts_with("6.12."), "{k:?}");
        assert!(is_elf(&path) && !is_elf(&crate::image::elf::testing::cached_kernel("6.12")));
        // An ELF that is not a kernel qemu can enter: refused, saying why.
        let exe = std::fs::read("/proc/self/exe").unwrap();
        std::fs::write(&path, exe).unwrap();
        let e = check_kernel(&path).unwrap_err().to_string();
        assert!(e.contains("an x86_64 vmlinux qemu cannot boot directly"), "{e}");
    }

    #[test]
    fn refuses_a_truncated_bzimage() {
        let real = crate::image::elf::testing::cached_kernel("6.1");
        let bytes = std::fs::read(&real).unwrap();
        assert!(check_kernel(&real).is_ok());
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes[..bytes.len() - 1]).unwrap();
        let err = check_kernel(f.path()).unwrap_err();
        let want = format!("truncated: its boot header says {} bytes, the file has {}", bytes.len(), bytes.len() - 1);
        assert!(matches!(&err, KernelError::NotAKernel { why, .. } if *why == want), "{err}");
    }

    #[test]
    fn refuses_what_is_not_a_bzimage() {
        let err = check_kernel(Path::new("/etc/passwd")).unwrap_err();
        assert!(matches!(err, KernelError::NotAKernel { .. }), "{err:?}");
        assert!(err.to_string().contains("/etc/passwd"), "{err}");
        let err = check_kernel(Path::new("/nonexistent/bzImage")).unwrap_err();
        assert!(matches!(err, KernelError::NotFound(_)), "{err:?}");
        let err = check_kernel(Path::new("/")).unwrap_err();
        assert!(matches!(err, KernelError::NotAKernel { .. }), "{err:?}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&[0u8; 0x400]).unwrap();
        assert!(matches!(check_kernel(f.path()).unwrap_err(), KernelError::NotAKernel { .. }));
    }

    fn fake_arm64_image(banner: &str) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + 4].copy_from_slice(ARM64_MAGIC);
        // A format string first, which must not be taken for the banner.
        let fmt = b"Linux version %s\n\0";
        img[1000..1000 + fmt.len()].copy_from_slice(fmt);
        let text = format!("Linux version {banner}\n\0");
        img[2000..2000 + text.len()].copy_from_slice(text.as_bytes());
        img
    }

    #[test]
    fn recognises_arm64_images_plain_and_gzipped() {
        let banner = "6.12.117+deb12-cloud-arm64 (debian-kernel@lists.debian.org) #1 SMP Debian 6.12.117-1~deb12u1";
        let img = fake_arm64_image(banner);
        let mut plain = tempfile::NamedTempFile::new().unwrap();
        plain.write_all(&img).unwrap();
        let k = check_kernel(plain.path()).unwrap();
        assert_eq!((k.arch, k.release.as_deref()), (Arch::Aarch64, Some("6.12.117+deb12-cloud-arm64")));
        assert_eq!(version_string(plain.path()).as_deref(), Some(banner));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&img).unwrap();
        let mut zipped = tempfile::NamedTempFile::new().unwrap();
        zipped.write_all(&gz.finish().unwrap()).unwrap();
        let k = check_kernel(zipped.path()).unwrap();
        assert_eq!((k.arch, k.release.as_deref()), (Arch::Aarch64, Some("6.12.117+deb12-cloud-arm64")));

        let mut zboot = vec![0u8; 512];
        zboot[..2].copy_from_slice(b"MZ");
        zboot[4..8].copy_from_slice(ZBOOT_MAGIC);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&zboot).unwrap();
        assert_eq!(check_kernel(f.path()).unwrap().arch, Arch::Aarch64);
    }

    #[test]
    fn a_gzip_file_that_is_not_a_kernel_is_refused() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 200]).unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&gz.finish().unwrap()).unwrap();
        let err = check_kernel(f.path()).unwrap_err();
        assert!(err.to_string().ends_with("a gzip file that does not hold an arm64 Image"), "{err}");
        let mut short = tempfile::NamedTempFile::new().unwrap();
        short.write_all(b"MZ").unwrap();
        let err = check_kernel(short.path()).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
    }

    #[test]
    fn config_facts_come_from_the_config_beside_the_kernel() {
        let d = tempfile::tempdir().unwrap();
        let k = Kernel { path: d.path().join("vmlinuz-6.1.0-9"), release: None, arch: Arch::X86_64 };
        let unknown = config_facts(&k);
        assert!(unknown.acpi, "unknown counts as ACPI");
        assert!(!unknown.periodic_ticks_only, "unknown counts as one-shot ticks");
        std::fs::write(d.path().join("config-6.1.0-9"), "# CONFIG_ACPI is not set\nCONFIG_NO_HZ_IDLE=y\n").unwrap();
        let none = ConfigFacts { acpi: false, periodic_ticks_only: false, smp: false, virtio_blk: false, kasan: false };
        assert_eq!(config_facts(&k), none);
        let built = Kernel { path: d.path().join("bzImage"), release: Some("6.1.192".into()), arch: Arch::X86_64 };
        let text = "CONFIG_ACPI=y\nCONFIG_HZ_PERIODIC=y\nCONFIG_SMP=y\nCONFIG_VIRTIO_BLK=m\n";
        std::fs::write(d.path().join("config"), text).unwrap();
        let all = ConfigFacts { acpi: true, periodic_ticks_only: true, smp: true, virtio_blk: true, kasan: false };
        assert_eq!(config_facts(&built), all);
        std::fs::write(d.path().join("bzImage.config"), "CONFIG_HZ_PERIODIC=y\nCONFIG_HIGH_RES_TIMERS=y\n").unwrap();
        assert_eq!(config_facts(&built), none, "<image>.config comes first; high-res timers are one-shot");
    }
}
