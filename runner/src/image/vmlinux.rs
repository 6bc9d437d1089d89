//! The PVH fast path: the vmlinux inside a bzImage, taken out once and
//! cached, boots directly (`-kernel vmlinux`, qemu's PVH entry) and skips
//! the emulated decompression, which is most of a TCG boot's first second.
//!
//! The x86 boot header gives the compressed payload's place
//! (`payload_offset`/`payload_length`); but for gzip (whose trailer has
//! it) the kernel appends the uncompressed size as 4 more bytes. gzip, xz,
//! zstd and LZ4 (legacy frames) are handled. A bzImage shorter than its
//! header says is refused before anything is decompressed. The result is
//! read with [`crate::image::elf`]: usable only if it is a complete ELF
//! and carries the PVH entry note (`XEN_ELFNOTE_PHYS32_ENTRY`,
//! CONFIG_PVH=y).

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::as_conversions)]

use crate::image::decompress::{decompress, DecompressError, Format, OUTPUT_CAP};
use std::path::{Path, PathBuf};

use crate::image::elf::{Elf, ElfError, PT_NOTE};

/// Bumped when extraction changes what it can do. 3: the vmlinux must be a
/// complete ELF (a cached one from 2 may not be).
const EXTRACT_VERSION: u32 = 3;

/// Where the setup header's fields are (Documentation/arch/x86/boot.rst).
const VERSION: usize = 0x206;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// Where the last field read here ends.
const HEADER_END: u64 = 0x250;

/// The PVH entry note: `ELF note "Xen"` of type XEN_ELFNOTE_PHYS32_ENTRY.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Why the fast path is not available for a kernel.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PvhError {
    #[error("boot protocol older than 2.08 (no payload fields)")]
    OldProtocol,
    #[error("truncated bzImage: its boot header says it ends at byte {end} but the file has {len} bytes")]
    Truncated { end: u64, len: usize },
    #[error("the payload (bytes {offset}..+{length} of the protected-mode code) is outside its {size} bytes")]
    PayloadOutside { offset: u32, length: u32, size: usize },
    #[error("payload compressed with {0}, which krepro does not decompress")]
    Unsupported(&'static str),
    #[error("decompressing the payload: {0}")]
    Decompress(String),
    #[error("the payload is not a usable vmlinux: {0}")]
    BadVmlinux(ElfError),
    #[error("no PVH entry note (the kernel lacks CONFIG_PVH)")]
    NoPvhNote,
    #[error("{0}")]
    Io(String),
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

/// The compressed payload of a bzImage, as the header delimits it. The
/// protected-mode code follows the setup sectors and has `syssize` 16-byte
/// paragraphs (the kernel's build pads the file to exactly that): a file
/// shorter than this is cut short.
fn payload(bz: &[u8]) -> Result<&[u8], PvhError> {
    let version = le16(bz, VERSION).ok_or(PvhError::OldProtocol)?;
    if version < 0x0208 {
        return Err(PvhError::OldProtocol);
    }
    let short_header = || PvhError::Truncated { end: HEADER_END, len: bz.len() };
    let field = |at: usize| le32(bz, at).ok_or_else(short_header);
    let (offset, length) = (field(PAYLOAD_OFFSET)?, field(PAYLOAD_LENGTH)?);
    let pm = crate::image::kernel::protected_mode(bz).ok_or_else(short_header)?;
    let (pm_start, pm_end) = (pm.start, pm.end);
    let range = usize::try_from(pm_start).ok().zip(usize::try_from(pm_end).ok());
    let pm =
        range.and_then(|(start, end)| bz.get(start..end)).ok_or(PvhError::Truncated { end: pm_end, len: bz.len() })?;
    let range = usize::try_from(offset).ok().zip(usize::try_from(u64::from(offset).saturating_add(length.into())).ok());
    range.and_then(|(start, end)| pm.get(start..end)).ok_or(PvhError::PayloadOutside { offset, length, size: pm.len() })
}

/// Takes the vmlinux ELF out of a bzImage and checks that it is complete.
pub fn extract(bz: &[u8]) -> Result<Vec<u8>, PvhError> {
    let full = payload(bz)?;
    let format = Format::sniff(full).ok_or(PvhError::Unsupported("an unknown format"))?;
    // Without the size word the kernel's Makefile appends (gzip ends by itself).
    let p = match format {
        Format::Gzip => full,
        _ => full.get(..full.len().saturating_sub(4)).unwrap_or_default(),
    };
    let out = decompress(format, p, OUTPUT_CAP).map_err(|e| match e {
        DecompressError::Unsupported(what) => PvhError::Unsupported(what),
        e => PvhError::Decompress(e.to_string()),
    })?;
    Elf::parse(&out).and_then(|elf| elf.check_complete()).map_err(PvhError::BadVmlinux)?;
    Ok(out)
}

/// Checks that a vmlinux is a complete ELF that carries the PVH entry
/// note (`ELF note "Xen"` of type XEN_ELFNOTE_PHYS32_ENTRY in a PT_NOTE
/// segment, CONFIG_PVH=y).
pub(crate) fn check_pvh(vmlinux: &[u8]) -> Result<(), PvhError> {
    let elf = Elf::parse(vmlinux).map_err(PvhError::BadVmlinux)?;
    elf.check_complete().map_err(PvhError::BadVmlinux)?;
    for s in elf.segments().iter().filter(|s| s.kind == PT_NOTE) {
        let notes = elf.notes(s).map_err(PvhError::BadVmlinux)?;
        if notes.iter().any(|n| n.name == b"Xen" && n.kind == XEN_ELFNOTE_PHYS32_ENTRY) {
            return Ok(());
        }
    }
    Err(PvhError::NoPvhNote)
}

/// Whether a vmlinux is complete and carries the PVH entry note
/// ([`check_pvh`] without the reason).
pub fn has_pvh_note(vmlinux: &[u8]) -> bool {
    check_pvh(vmlinux).is_ok()
}

/// A vmlinux built with the bzImage, where a kernel tree leaves it
/// (`arch/x86/boot/bzImage` -> `vmlinux` at the top) or beside it, that is
/// no older than the bzImage and has the PVH note.
fn vmlinux_beside(bzimage: &Path) -> Option<PathBuf> {
    let dir = bzimage.parent()?;
    let bz_time = std::fs::metadata(bzimage).and_then(|m| m.modified()).ok()?;
    let candidates = [dir.join("vmlinux"), dir.join("../../../vmlinux")];
    candidates.into_iter().find(|c| {
        let fresh = std::fs::metadata(c).and_then(|m| m.modified()).is_ok_and(|t| t >= bz_time);
        fresh && std::fs::read(c).is_ok_and(|elf| has_pvh_note(&elf))
    })
}

/// The PVH-bootable vmlinux for a bzImage: one built beside it, else the
/// one taken out of it (cached, made on first use).
/// `dir` is where taken-out images are kept (the cache's `vmlinux/`).
pub(crate) fn pvh_vmlinux(dir: &Path, bzimage: &Path) -> Result<PathBuf, PvhError> {
    if let Some(v) = vmlinux_beside(bzimage) {
        return Ok(v);
    }
    let bz = std::fs::read(bzimage).map_err(|e| PvhError::Io(format!("read {}: {e}", bzimage.display())))?;
    // The extractor's version is part of the key: a "no PVH" verdict from an
    // older extractor is not trusted.
    let key = format!("{}-v{EXTRACT_VERSION}", &blake3::hash(&bz).to_hex()[..24]);
    let path = dir.join(format!("{key}.elf"));
    let no_pvh = dir.join(format!("{key}.no-pvh"));
    if path.is_file() {
        // Used now: the cache's trim goes least recently used first.
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        return Ok(path);
    }
    if let Ok(why) = std::fs::read_to_string(&no_pvh) {
        return Err(PvhError::Io(why));
    }
    let io = |e: std::io::Error| PvhError::Io(format!("write {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(io)?;
    let result = extract(&bz).and_then(|elf| check_pvh(&elf).map(|()| elf));
    match result {
        Ok(elf) => {
            // Whole or absent (image/ sits below host::atomic, so by hand).
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
            std::io::Write::write_all(&mut tmp, &elf).map_err(io)?;
            tmp.as_file().sync_all().map_err(io)?;
            tmp.persist(&path).map_err(|e| io(e.error))?;
            Ok(path)
        }
        // A payload that does not decompress is not remembered: the
        // caller refuses such a kernel, and must know it is that.
        Err(e @ PvhError::Decompress(_)) => Err(e),
        Err(e) => {
            // Remember why, so the next run does not decompress again.
            let _ = std::fs::write(&no_pvh, e.to_string());
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::as_conversions)]
mod tests {
    use super::*;
    use crate::image::elf::testing::{cached_kernel, cuts, extent, flips, header_ranges};

    #[test]
    fn refuses_what_is_not_a_modern_bzimage() {
        assert_eq!(payload(&[0u8; 0x300]).unwrap_err(), PvhError::OldProtocol);
        assert_eq!(extract(b"short").unwrap_err(), PvhError::OldProtocol);
    }

    /// A bzImage as the kernel's Makefile lays it out: boot header, then
    /// the protected-mode code at (setup_sects + 1) * 512, here only the
    /// payload, padded to the 16-byte paragraphs `syssize` counts.
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut bz = vec![0u8; 5 * 512];
        bz[0x1f1] = 4; // setup_sects
        bz[0x1f4..0x1f8].copy_from_slice(&(payload.len().div_ceil(16) as u32).to_le_bytes());
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        bz[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bz.extend_from_slice(payload);
        bz.resize(bz.len().next_multiple_of(16), 0);
        bz
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn extracts_gzip_and_xz_with_the_x86_filter() {
        let elf = std::fs::read("/bin/ls").unwrap();
        // gzip: no size word (the trailer has it).
        assert_eq!(extract(&fake_bzimage(&gzip(&elf))).unwrap(), elf);
        // xz with the x86 BCJ filter, as scripts/xz_wrap.sh makes it, plus the size word.
        let out = std::process::Command::new("xz")
            .args(["--format=xz", "--check=crc32", "--x86", "--lzma2=dict=1MiB", "-c", "/bin/ls"])
            .output()
            .expect("xz (apt-get install -y xz-utils)");
        assert!(out.status.success());
        let mut payload = out.stdout;
        payload.extend_from_slice(&(elf.len() as u32).to_le_bytes());
        assert_eq!(extract(&fake_bzimage(&payload)).unwrap(), elf);
    }

    #[test]
    fn every_cut_of_a_bzimage_is_refused_before_decompressing() {
        let bz = fake_bzimage(&gzip(&std::fs::read("/bin/ls").unwrap()));
        for cut in cuts(bz.len()) {
            let want = match cut {
                0..0x208 => PvhError::OldProtocol,
                0x208..0x250 => PvhError::Truncated { end: 0x250, len: cut },
                _ => PvhError::Truncated { end: bz.len() as u64, len: cut },
            };
            assert_eq!(extract(&bz[..cut]), Err(want), "cut at {cut}");
        }
        assert_eq!(
            extract(&bz[..3000]).unwrap_err().to_string(),
            format!("truncated bzImage: its boot header says it ends at byte {} but the file has 3000 bytes", bz.len())
        );
    }

    #[test]
    fn flipped_bits_in_a_bzimage_header_never_panic() {
        // A small payload: the flips are for the header, not the decompressors.
        let mut bz = fake_bzimage(&gzip(b"\x7fELF and not much more"));
        let header = 0x1f0..0x260;
        flips(&mut bz, std::slice::from_ref(&header), 3000, |b| {
            let _ = extract(b);
        });
        let lz4_magic_only = fake_bzimage(&[0x02, 0x21, 0x4c, 0x18]);
        assert_eq!(extract(&lz4_magic_only), Err(PvhError::BadVmlinux(ElfError::NotElf)));
        let outside = {
            let mut bz = fake_bzimage(b"payload");
            bz[0x248..0x24c].copy_from_slice(&u32::MAX.to_le_bytes());
            bz
        };
        assert_eq!(extract(&outside), Err(PvhError::PayloadOutside { offset: u32::MAX, length: 7, size: 16 }));
    }

    #[test]
    fn an_incomplete_vmlinux_is_refused() {
        let elf = std::fs::read("/bin/ls").unwrap();
        let err = extract(&fake_bzimage(&gzip(&elf[..elf.len() / 2]))).unwrap_err();
        assert!(matches!(err, PvhError::BadVmlinux(ElfError::Truncated { .. })), "{err}");
    }

    #[test]
    fn a_vmlinux_beside_is_used_only_with_the_pvh_note() {
        let d = tempfile::tempdir().unwrap();
        let boot = d.path().join("arch/x86/boot");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::write(boot.join("bzImage"), b"x").unwrap();
        std::fs::copy("/bin/ls", d.path().join("vmlinux")).unwrap();
        assert_eq!(vmlinux_beside(&boot.join("bzImage")), None);
    }

    #[test]
    fn host_binaries_have_no_pvh_note() {
        assert_eq!(check_pvh(&std::fs::read("/bin/ls").unwrap()), Err(PvhError::NoPvhNote));
        assert!(!has_pvh_note(b"\x7fELF"));
    }

    /// The Debian 6.1 kernel (LZ4, the quickest to decompress): its
    /// vmlinux has the note; cutting the bzImage or the vmlinux anywhere
    /// is refused; flipped header bits never panic.
    #[test]
    fn a_real_vmlinux_and_every_cut_of_it() {
        let path = cached_kernel("6.1");
        let bz = std::fs::read(&path).unwrap();
        let mut elf = extract(&bz).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(check_pvh(&elf), Ok(()));
        for cut in [0x250, 0x1000, bz.len() / 2, bz.len() - 1] {
            assert_eq!(extract(&bz[..cut]), Err(PvhError::Truncated { end: bz.len() as u64, len: cut }));
        }
        let end = extent(&elf);
        for cut in cuts(end) {
            assert!(matches!(check_pvh(&elf[..cut]), Err(PvhError::BadVmlinux(_))), "cut at {cut}");
        }
        let mut ranges = header_ranges(&elf);
        let notes = {
            let parsed = Elf::parse(&elf).unwrap();
            parsed
                .segments()
                .iter()
                .filter(|s| s.kind == PT_NOTE)
                .map(|s| s.offset..s.offset + s.filesz)
                .collect::<Vec<_>>()
        };
        ranges.extend(notes.into_iter().map(|r| r.start as usize..r.end as usize));
        flips(&mut elf, &ranges, 3000, |b| {
            let _ = check_pvh(b);
        });
        assert_eq!(check_pvh(&elf), Ok(()), "restored");
    }
}
