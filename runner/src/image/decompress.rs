//! Decompression with bounds: a kernel payload, a module or a gzip'd
//! Image is someone else's file, and a few kilobytes of xz can claim
//! gigabytes. Every decompressor here stops at an output cap, and the
//! xz/lzma ones at a memory limit for their dictionary, so that neither a
//! bomb nor a header that lies costs the memory; a truncated stream is an
//! error, never a short result.

use std::io::Read;

/// The most a kernel image (or a module) decompresses to: a vmlinux with
/// full debug info is some 300 MiB; a bzImage's payload is far less.
pub(crate) const OUTPUT_CAP: u64 = 512 << 20;
/// The most memory xz and lzma may take for their dictionary (the kernel's
/// own xz payloads use 32 MiB at most).
const MEMORY_LIMIT: u64 = 256 << 20;

/// A compression format, by its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Gzip,
    Xz,
    Zstd,
    /// LZ4's legacy frame, the one the kernel writes.
    Lz4Legacy,
    /// The .lzma ("lzma alone") format.
    Lzma,
    Bzip2,
    Lzo,
}

impl Format {
    /// The format `data` starts with, if a known one.
    pub(crate) fn sniff(data: &[u8]) -> Option<Format> {
        Some(match data {
            [0x1f, 0x8b, ..] => Format::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Format::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Format::Zstd,
            [0x02, 0x21, 0x4c, 0x18, ..] => Format::Lz4Legacy,
            // lc/lp/pb properties (the kernel's: 0x5d), then the dictionary size.
            [0x5d, 0, ..] => Format::Lzma,
            [b'B', b'Z', b'h', b'1'..=b'9', ..] => Format::Bzip2,
            [0x89, b'L', b'Z', b'O', ..] => Format::Lzo,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Lz4Legacy => "lz4",
            Format::Lzma => "lzma",
            Format::Bzip2 => "bzip2",
            Format::Lzo => "lzo",
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DecompressError {
    #[error("{format} data decompresses to more than {} MiB: refused (a compression bomb, or not a kernel)", cap >> 20)]
    TooBig { format: &'static str, cap: u64 },
    #[error("{format}: {why}")]
    Corrupt { format: &'static str, why: String },
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// `data` in `format`, decompressed, at most `cap` bytes of it. Bytes
/// after the end of the compressed stream (the kernel's size word) are
/// ignored.
pub(crate) fn decompress(format: Format, data: &[u8], cap: u64) -> Result<Vec<u8>, DecompressError> {
    let name = format.name();
    let corrupt = |why: String| DecompressError::Corrupt { format: name, why };
    match format {
        Format::Gzip => read_capped(flate2::read::GzDecoder::new(data), name, cap),
        Format::Xz => {
            let stream =
                liblzma::stream::Stream::new_stream_decoder(MEMORY_LIMIT, 0).map_err(|e| corrupt(e.to_string()))?;
            read_capped(liblzma::read::XzDecoder::new_stream(data, stream), name, cap)
        }
        Format::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(MEMORY_LIMIT).map_err(|e| corrupt(e.to_string()))?;
            read_capped(liblzma::read::XzDecoder::new_stream(data, stream), name, cap)
        }
        Format::Zstd => {
            let dec = ruzstd::decoding::StreamingDecoder::new(data).map_err(|e| corrupt(e.to_string()))?;
            read_capped(dec, name, cap)
        }
        Format::Bzip2 => read_capped(bzip2::read::BzDecoder::new(data), name, cap),
        Format::Lz4Legacy => lz4_legacy(data.get(4..).unwrap_or_default(), cap),
        Format::Lzo => Err(DecompressError::Unsupported("lzo")),
    }
}

/// Reads `r` to its end, failing past `cap` bytes (read as far as one
/// byte beyond: nothing more is allocated).
fn read_capped(r: impl Read, format: &'static str, cap: u64) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    r.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecompressError::Corrupt { format, why: e.to_string() })?;
    if out.len() as u64 > cap {
        return Err(DecompressError::TooBig { format, cap });
    }
    Ok(out)
}

/// LZ4's legacy frame format, as the kernel writes it: blocks of
/// `[u32 compressed size][block]`, each decompressing to at most 8 MiB.
fn lz4_legacy(mut data: &[u8], cap: u64) -> Result<Vec<u8>, DecompressError> {
    const BLOCK: usize = 8 << 20;
    const MAGIC: u32 = 0x184c_2102;
    let le32 = |b: &[u8]| Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?));
    let mut out = Vec::new();
    let mut buf = vec![0u8; BLOCK];
    while let Some(size) = le32(data) {
        let rest = data.get(4..).unwrap_or_default();
        if size == MAGIC {
            data = rest; // a concatenated frame
            continue;
        }
        let Some(block) = usize::try_from(size).ok().and_then(|size| rest.get(..size)) else { break };
        let n = lz4_flex::block::decompress_into(block, &mut buf)
            .map_err(|e| DecompressError::Corrupt { format: "lz4", why: e.to_string() })?;
        if (out.len() + n) as u64 > cap {
            return Err(DecompressError::TooBig { format: "lz4", cap });
        }
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
        data = rest.get(block.len()..).unwrap_or_default();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MIB: usize = 1 << 20;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new(data, 6).read_to_end(&mut out).unwrap();
        out
    }

    fn lzma_alone(data: &[u8]) -> Vec<u8> {
        let opts = liblzma::stream::LzmaOptions::new_preset(6).unwrap();
        let stream = liblzma::stream::Stream::new_lzma_encoder(&opts).unwrap();
        let mut out = Vec::new();
        liblzma::read::XzEncoder::new_stream(data, stream).read_to_end(&mut out).unwrap();
        out
    }

    fn bzip2(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bzip2::read::BzEncoder::new(data, bzip2::Compression::best()).read_to_end(&mut out).unwrap();
        out
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x02, 0x21, 0x4c, 0x18];
        for chunk in data.chunks(8 * MIB) {
            let block = lz4_flex::block::compress(chunk);
            out.extend_from_slice(&u32::try_from(block.len()).unwrap().to_le_bytes());
            out.extend_from_slice(&block);
        }
        out
    }

    type Compress = fn(&[u8]) -> Vec<u8>;
    const EVERY: [(Format, Compress); 6] = [
        (Format::Gzip, gzip),
        (Format::Xz, xz),
        (Format::Lzma, lzma_alone),
        (Format::Bzip2, bzip2),
        (Format::Zstd, zstd),
        (Format::Lz4Legacy, lz4),
    ];

    #[test]
    fn every_format_round_trips_and_is_known_by_its_magic() {
        let data: Vec<u8> = (0..300_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for (format, compress) in EVERY {
            let packed = compress(&data);
            assert_eq!(Format::sniff(&packed), Some(format));
            assert_eq!(decompress(format, &packed, OUTPUT_CAP).unwrap(), data, "{format:?}");
        }
    }

    #[test]
    fn lz4_legacy_blocks_and_frames_concatenate() {
        let a = lz4_flex::block::compress(b"hello, ");
        let b = lz4_flex::block::compress(b"world");
        let mut data = vec![0x02, 0x21, 0x4c, 0x18];
        for (i, blk) in [&a, &b].into_iter().enumerate() {
            if i == 1 {
                data.extend_from_slice(&[0x02, 0x21, 0x4c, 0x18]); // a second frame
            }
            data.extend_from_slice(&u32::try_from(blk.len()).unwrap().to_le_bytes());
            data.extend_from_slice(blk);
        }
        assert_eq!(decompress(Format::Lz4Legacy, &data, OUTPUT_CAP).unwrap(), b"hello, world");
    }

    #[test]
    fn a_bomb_stops_at_the_cap_in_every_format() {
        // 12 MiB of zeros against a 4 MiB cap: each compresses to little.
        let zeros = vec![0u8; 12 * MIB];
        for (format, compress) in EVERY {
            let packed = compress(&zeros);
            assert!(packed.len() < MIB, "{format:?}: {}", packed.len());
            let e = decompress(format, &packed, 4 << 20).unwrap_err();
            assert_eq!(e, DecompressError::TooBig { format: format.name(), cap: 4 << 20 }, "{format:?}");
            assert!(e.to_string().contains("more than 4 MiB"), "{e}");
        }
    }

    #[test]
    fn a_truncated_stream_is_an_error_not_a_short_result() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| (i * 7 % 253).to_le_bytes()).collect();
        for (format, compress) in EVERY {
            if format == Format::Lz4Legacy {
                continue; // its frame has no end marker: a short block is what the kernel's reader sees too
            }
            let packed = compress(&data);
            let cut = &packed[..packed.len() / 2];
            assert!(matches!(decompress(format, cut, OUTPUT_CAP), Err(DecompressError::Corrupt { .. })), "{format:?}");
        }
    }

    #[test]
    fn an_xz_header_that_claims_a_huge_dictionary_is_refused_before_allocating() {
        // lzma-alone: properties, then a 1.5 GiB dictionary, then an unknown size.
        let mut header = vec![0x5d];
        header.extend_from_slice(&(1536u32 << 20).to_le_bytes());
        header.extend_from_slice(&[0xff; 8]);
        header.extend_from_slice(&[0; 32]);
        let e = decompress(Format::Lzma, &header, OUTPUT_CAP).unwrap_err();
        assert!(matches!(e, DecompressError::Corrupt { format: "lzma", .. }), "{e}");
    }
}
