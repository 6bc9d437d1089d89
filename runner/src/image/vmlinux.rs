//! The PVH fast path: the vmlinux inside a bzImage, taken out once and
//! cached, boots directly (`-kernel vmlinux`, qemu's PVH entry) and skips
//! the emulated decompression, which is most of a TCG boot's first second.
//!
//! The x86 boot header gives the compressed payload's place
//! (`payload_offset`/`payload_length`); but for gzip (whose trailer has
//! it) the kernel appends the uncompressed size as 4 more bytes. gzip, xz,
//! zstd and LZ4 (legacy frames) are handled;
//! the result is an ELF, usable only if it carries the PVH entry note
//! (`XEN_ELFNOTE_PHYS32_ENTRY`, CONFIG_PVH=y).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::host::cache::Cache;

/// Bumped when extraction changes what it can do.
const EXTRACT_VERSION: u32 = 2;

/// Why the fast path is not available for a kernel.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PvhError {
    #[error("boot protocol older than 2.08 (no payload fields)")]
    OldProtocol,
    #[error("payload compressed with {0}, which krepro does not decompress")]
    Unsupported(&'static str),
    #[error("decompressing the payload: {0}")]
    Decompress(String),
    #[error("the payload is not an ELF vmlinux")]
    NotElf,
    #[error("no PVH entry note (the kernel lacks CONFIG_PVH)")]
    NoPvhNote,
    #[error("{0}")]
    Io(String),
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The compressed payload of a bzImage, as the header delimits it.
fn payload(bz: &[u8]) -> Result<&[u8], PvhError> {
    let version = le16(bz, 0x206).ok_or(PvhError::OldProtocol)?;
    if version < 0x0208 {
        return Err(PvhError::OldProtocol);
    }
    let setup_sects = match bz.get(0x1f1).copied().ok_or(PvhError::OldProtocol)? {
        0 => 4,
        n => usize::from(n),
    };
    let pm_start = (setup_sects + 1) * 512;
    let offset = le32(bz, 0x248).ok_or(PvhError::OldProtocol)? as usize;
    let length = le32(bz, 0x24c).ok_or(PvhError::OldProtocol)? as usize;
    let start = pm_start + offset;
    bz.get(start..start + length).ok_or(PvhError::Decompress("payload outside the file".into()))
}

/// Takes the vmlinux ELF out of a bzImage.
pub fn extract(bz: &[u8]) -> Result<Vec<u8>, PvhError> {
    let full = payload(bz)?;
    // Without the size word the kernel's Makefile appends (not to gzip).
    let p = &full[..full.len().saturating_sub(4)];
    let dec = |e: String| PvhError::Decompress(e);
    let mut out = Vec::new();
    match full {
        [0x1f, 0x8b, ..] => {
            flate2::read::GzDecoder::new(full).read_to_end(&mut out).map_err(|e| dec(e.to_string()))?;
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            // The kernel's xz payloads use the x86 BCJ filter: full liblzma.
            liblzma::read::XzDecoder::new(p).read_to_end(&mut out).map_err(|e| dec(e.to_string()))?;
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            let mut d = ruzstd::decoding::StreamingDecoder::new(p).map_err(|e| dec(e.to_string()))?;
            d.read_to_end(&mut out).map_err(|e| dec(e.to_string()))?;
        }
        [0x02, 0x21, 0x4c, 0x18, ..] => out = lz4_legacy(&p[4..])?,
        [0x5d, 0, 0, ..] => return Err(PvhError::Unsupported("lzma")),
        [b'B', b'Z', b'h', ..] => return Err(PvhError::Unsupported("bzip2")),
        [0x89, b'L', b'Z', b'O', ..] => return Err(PvhError::Unsupported("lzo")),
        _ => return Err(PvhError::Unsupported("an unknown format")),
    }
    if out.get(..4) != Some(b"\x7fELF") {
        return Err(PvhError::NotElf);
    }
    Ok(out)
}

/// LZ4's legacy frame format, as the kernel writes it: blocks of
/// `[u32 compressed size][block]`, each decompressing to at most 8 MiB.
fn lz4_legacy(mut data: &[u8]) -> Result<Vec<u8>, PvhError> {
    const BLOCK: usize = 8 << 20;
    const MAGIC: u32 = 0x184c_2102;
    let mut out = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    while data.len() >= 4 {
        let size = le32(data, 0).expect("4 bytes") as usize;
        if size == MAGIC as usize {
            data = &data[4..]; // a concatenated frame
            continue;
        }
        let Some(block) = data.get(4..4 + size) else { break };
        let n =
            lz4_flex::block::decompress_into(block, &mut buf).map_err(|e| PvhError::Decompress(format!("lz4: {e}")))?;
        out.extend_from_slice(&buf[..n]);
        data = &data[4 + size..];
    }
    Ok(out)
}

/// Whether an ELF carries the PVH entry note: an `ELF note "Xen"` of type
/// 18 (XEN_ELFNOTE_PHYS32_ENTRY) in a PT_NOTE segment.
pub fn has_pvh_note(elf: &[u8]) -> bool {
    let (Some(phoff), Some(phentsize), Some(phnum)) =
        (elf.get(32..40).map(|b| u64::from_le_bytes(b.try_into().expect("8"))), le16(elf, 54), le16(elf, 56))
    else {
        return false;
    };
    for i in 0..usize::from(phnum) {
        let at = phoff as usize + i * usize::from(phentsize);
        if le32(elf, at) != Some(4) {
            continue; // not PT_NOTE
        }
        let off = elf.get(at + 8..at + 16).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8")) as usize);
        let size = elf.get(at + 32..at + 40).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8")) as usize);
        let Some(mut notes) = elf.get(off..off + size) else { continue };
        while notes.len() >= 12 {
            let (namesz, descsz, kind) =
                (le32(notes, 0).unwrap_or(0) as usize, le32(notes, 4).unwrap_or(0) as usize, le32(notes, 8));
            let name = notes.get(12..12 + namesz).unwrap_or(&[]);
            if name.starts_with(b"Xen") && kind == Some(18) {
                return true;
            }
            let next = 12 + namesz.next_multiple_of(4) + descsz.next_multiple_of(4);
            notes = notes.get(next..).unwrap_or(&[]);
        }
    }
    false
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
pub fn pvh_vmlinux(cache: &Cache, bzimage: &Path) -> Result<PathBuf, PvhError> {
    if let Some(v) = vmlinux_beside(bzimage) {
        return Ok(v);
    }
    let bz = std::fs::read(bzimage).map_err(|e| PvhError::Io(format!("read {}: {e}", bzimage.display())))?;
    // The extractor's version is part of the key: a "no PVH" verdict from an
    // older extractor is not trusted.
    let key = format!("{}-v{EXTRACT_VERSION}", &blake3::hash(&bz).to_hex()[..24]);
    let dir = cache.vmlinux();
    let path = dir.join(format!("{key}.elf"));
    let no_pvh = dir.join(format!("{key}.no-pvh"));
    if path.is_file() {
        return Ok(path);
    }
    if let Ok(why) = std::fs::read_to_string(&no_pvh) {
        return Err(PvhError::Io(why));
    }
    let io = |e: std::io::Error| PvhError::Io(format!("write {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(io)?;
    let result = extract(&bz).and_then(|elf| if has_pvh_note(&elf) { Ok(elf) } else { Err(PvhError::NoPvhNote) });
    match result {
        Ok(elf) => {
            let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
            std::io::Write::write_all(&mut tmp, &elf).map_err(io)?;
            tmp.persist(&path).map_err(|e| io(e.error))?;
            Ok(path)
        }
        Err(e) => {
            // Remember why, so the next run does not decompress again.
            let _ = std::fs::write(&no_pvh, e.to_string());
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests run tools directly
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_modern_bzimage() {
        assert_eq!(payload(&[0u8; 0x300]).unwrap_err(), PvhError::OldProtocol);
        assert_eq!(extract(b"short").unwrap_err(), PvhError::OldProtocol);
    }

    /// A bzImage as the kernel's Makefile lays it out: boot header, then the
    /// payload at (setup_sects + 1) * 512.
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut bz = vec![0u8; 5 * 512];
        bz[0x1f1] = 4; // setup_sects
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        bz[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        bz.extend_from_slice(payload);
        bz
    }

    #[test]
    fn extracts_gzip_and_xz_with_the_x86_filter() {
        let elf = std::fs::read("/bin/ls").unwrap();
        // gzip: no size word (the trailer has it).
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &elf).unwrap();
        assert_eq!(extract(&fake_bzimage(&gz.finish().unwrap())).unwrap(), elf);
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
    fn lz4_legacy_blocks_concatenate() {
        let a = lz4_flex::block::compress(b"hello, ");
        let b = lz4_flex::block::compress(b"world");
        let mut data = Vec::new();
        for blk in [&a, &b] {
            data.extend_from_slice(&(blk.len() as u32).to_le_bytes());
            data.extend_from_slice(blk);
        }
        assert_eq!(lz4_legacy(&data).unwrap(), b"hello, world");
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
        assert!(!has_pvh_note(&std::fs::read("/bin/ls").unwrap()));
        assert!(!has_pvh_note(b"\x7fELF"));
    }
}
