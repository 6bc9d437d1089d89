//! The one ELF reader for every ELF krepro takes from the user: `--exec`
//! programs and init itself (complete, and static so that they run without
//! a loader in the guest), kernel modules (their `.modinfo`) and the
//! vmlinux taken out of a bzImage (complete, with the PVH note).
//!
//! Only 64-bit little-endian x86_64 files are read. Every offset, size and
//! count comes from the file, so every read is a `get()`, every end is a
//! u128 sum that cannot overflow, and the lints below keep it that way (no
//! indexing, no unchecked arithmetic, no `as`). [`Elf::parse`] checks the
//! header and the program header table, and reads the section header table
//! for when it is asked for; [`Elf::check_complete`] checks that every
//! segment, the section header table and every section lie inside the
//! file.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::as_conversions)]

use std::fmt;

const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
pub(crate) const PT_NOTE: u32 = 4;

const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;
const STT_FUNC: u8 = 2;
/// The size of an ELF64 symbol table entry.
const SYM_SIZE: u16 = 24;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 2;
/// In `e_shstrndx`: the index is in section 0's `sh_link`.
const SHN_XINDEX: u16 = 0xffff;

/// Sizes of the ELF64 header and of its table entries.
const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u16 = 56;
const SHDR_SIZE: u16 = 64;
/// binfmt_elf reads at most 64 KiB of 56-byte program headers
/// (`load_elf_phdrs`).
const MAX_PHNUM: usize = 1170;

/// Where in an ELF file something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The 64-byte ELF header.
    Header,
    /// The program header table.
    ProgramHeaders,
    /// The section header table.
    SectionHeaders,
    /// The file bytes of one program header's segment.
    Segment { index: usize, kind: u32 },
    /// The file bytes of one section; `name` is empty when unknown.
    Section { index: usize, name: String },
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Header => f.write_str("the ELF header"),
            Part::ProgramHeaders => f.write_str("the program header table"),
            Part::SectionHeaders => f.write_str("the section header table"),
            Part::Segment { index, kind } => write!(f, "program header {index} ({})", segment_kind(*kind)),
            Part::Section { index, name } if name.is_empty() => write!(f, "section {index}"),
            Part::Section { index, name } => write!(f, "section {index} ({name})"),
        }
    }
}

/// `PT_LOAD` for 1, `type 0x70000003` for what has no name here.
fn segment_kind(kind: u32) -> String {
    let name = match kind {
        0 => "PT_NULL",
        PT_LOAD => "PT_LOAD",
        PT_DYNAMIC => "PT_DYNAMIC",
        PT_INTERP => "PT_INTERP",
        PT_NOTE => "PT_NOTE",
        6 => "PT_PHDR",
        7 => "PT_TLS",
        0x6474_e550 => "PT_GNU_EH_FRAME",
        0x6474_e551 => "PT_GNU_STACK",
        0x6474_e552 => "PT_GNU_RELRO",
        0x6474_e553 => "PT_GNU_PROPERTY",
        _ => return format!("type {kind:#x}"),
    };
    name.to_owned()
}

/// What is wrong with an ELF file, for what krepro wants to do with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian x86_64 or aarch64 ELF")]
    WrongArch,
    #[error("not an executable (ELF type {0})")]
    NotExecutable(u16),
    #[error("not a kernel module (ELF type {0}, a module is 1)")]
    NotModule(u16),
    #[error("dynamically linked (it needs the loader {0}), and the guest has no libc")]
    Dynamic(String),
    #[error("truncated: {part} ends at byte {end} but the file has {len} bytes")]
    Truncated { part: Part, end: u128, len: usize },
    #[error("malformed: {0}")]
    Malformed(String),
}

/// `N` bytes of `b` at `at`, if it has them.
fn bytes<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    bytes(b, at).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    bytes(b, at).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    bytes(b, at).map(u64::from_le_bytes)
}

/// The `size` bytes of `data` at `offset`, or where `part` ends past the
/// end of the file.
fn slice(data: &[u8], offset: u64, size: u128, part: impl FnOnce() -> Part) -> Result<&[u8], ElfError> {
    // Sizes here are below 2^80 (a u64 count of u16-sized entries at
    // most): the sum never saturates.
    let end = u128::from(offset).saturating_add(size);
    let range = usize::try_from(offset).ok().zip(usize::try_from(end).ok());
    range.and_then(|(start, end)| data.get(start..end)).ok_or_else(|| ElfError::Truncated {
        part: part(),
        end,
        len: data.len(),
    })
}

/// The `count` entries of `entsize` bytes at `offset`, each long enough
/// for the `min` bytes of its ELF64 layout.
fn table(
    data: &[u8],
    offset: u64,
    count: u64,
    entsize: u16,
    min: u16,
    part: Part,
) -> Result<std::slice::ChunksExact<'_, u8>, ElfError> {
    if count == 0 {
        let empty: &[u8] = &[];
        return Ok(empty.chunks_exact(1));
    }
    if entsize < min {
        return Err(ElfError::Malformed(format!("{part} has {entsize}-byte entries, an ELF64 entry has {min}")));
    }
    let table = slice(data, offset, u128::from(count).saturating_mul(u128::from(entsize)), || part)?;
    Ok(table.chunks_exact(usize::from(entsize)))
}

/// The ELF header fields the reader uses.
struct Header {
    kind: u16,
    phoff: u64,
    shoff: u64,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

impl Header {
    fn read(h: &[u8]) -> Option<Header> {
        Some(Header {
            kind: u16_at(h, 16)?,
            phoff: u64_at(h, 32)?,
            shoff: u64_at(h, 40)?,
            phentsize: u16_at(h, 54)?,
            phnum: u16_at(h, 56)?,
            shentsize: u16_at(h, 58)?,
            shnum: u16_at(h, 60)?,
            shstrndx: u16_at(h, 62)?,
        })
    }
}

/// A program header: a segment's type and where its file bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub index: usize,
    pub kind: u32,
    pub offset: u64,
    pub filesz: u64,
    pub align: u64,
}

impl Segment {
    fn read(index: usize, e: &[u8]) -> Option<Segment> {
        Some(Segment {
            index,
            kind: u32_at(e, 0)?,
            offset: u64_at(e, 8)?,
            filesz: u64_at(e, 32)?,
            align: u64_at(e, 48)?,
        })
    }

    fn part(&self) -> Part {
        Part::Segment { index: self.index, kind: self.kind }
    }
}

/// A section header: a section's name (an offset into the section names),
/// type and where its file bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Section {
    pub index: usize,
    pub name: u32,
    pub kind: u32,
    pub flags: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
}

impl Section {
    fn read(index: usize, e: &[u8]) -> Option<Section> {
        Some(Section {
            index,
            name: u32_at(e, 0)?,
            kind: u32_at(e, 4)?,
            flags: u64_at(e, 8)?,
            offset: u64_at(e, 24)?,
            size: u64_at(e, 32)?,
            link: u32_at(e, 40)?,
        })
    }
}

/// One ELF note: its owner's name (up to its NUL), type and descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Note<'a> {
    pub name: &'a [u8],
    pub kind: u32,
    pub desc: &'a [u8],
}

/// An x86_64 ELF64 file whose header and program header table lie inside
/// it.
#[derive(Debug)]
pub(crate) struct Elf<'a> {
    data: &'a [u8],
    kind: u16,
    machine: u16,
    phentsize: u16,
    segments: Vec<Segment>,
    /// The section header table, or why it cannot be read: kept until
    /// asked for, so that a file cut short names the missing segment (what
    /// the loader needs) before the section table (usually at the end).
    sections: Result<Sections, ElfError>,
}

/// The section header table's entries, and the index of the section
/// holding section names (0: none).
#[derive(Debug)]
struct Sections {
    all: Vec<Section>,
    names: usize,
}

/// An entry of a header table shorter than `table` already checked.
fn short(part: Part) -> ElfError {
    ElfError::Malformed(format!("an entry of {part} is too short"))
}

impl Sections {
    /// No section header table when e_shoff is 0; when the count or the
    /// names index do not fit the header, section 0 holds them, as the ELF
    /// spec says.
    fn read(data: &[u8], h: &Header) -> Result<Sections, ElfError> {
        let first = || {
            table(data, h.shoff, 1, h.shentsize, SHDR_SIZE, Part::SectionHeaders)?
                .next()
                .and_then(|e| Section::read(0, e))
                .ok_or_else(|| short(Part::SectionHeaders))
        };
        let count = match (h.shoff, h.shnum) {
            (0, _) => 0,
            (_, 0) => first()?.size,
            (_, n) => n.into(),
        };
        let names = match h.shstrndx {
            SHN_XINDEX if count > 0 => usize::try_from(first()?.link).unwrap_or(usize::MAX),
            i => i.into(),
        };
        let all = table(data, h.shoff, count, h.shentsize, SHDR_SIZE, Part::SectionHeaders)?
            .enumerate()
            .map(|(i, e)| Section::read(i, e))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| short(Part::SectionHeaders))?;
        Ok(Sections { all, names })
    }
}

/// A function symbol: its name, address and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FuncSymbol<'a> {
    pub name: &'a [u8],
    pub addr: u64,
    pub size: u64,
}

impl<'a> Elf<'a> {
    /// Reads the header and the program header table (where it lies, and
    /// each entry), and the section header table for later; not yet what
    /// the entries point at. `e_phnum` is taken as it is (PN_XNUM is for
    /// core dumps).
    pub(crate) fn parse(data: &'a [u8]) -> Result<Elf<'a>, ElfError> {
        if data.get(..ELF_MAGIC.len()) != Some(ELF_MAGIC) {
            return Err(ElfError::NotElf);
        }
        let header = slice(data, 0, EHDR_SIZE.into(), || Part::Header)?;
        if header.get(4) != Some(&ELFCLASS64) || header.get(5) != Some(&ELFDATA2LSB) {
            return Err(ElfError::WrongArch);
        }
        let machine = u16_at(header, 18).filter(|m| [EM_X86_64, EM_AARCH64].contains(m)).ok_or(ElfError::WrongArch)?;
        let h = Header::read(header).ok_or_else(|| short(Part::Header))?;

        let segments = table(data, h.phoff, h.phnum.into(), h.phentsize, PHDR_SIZE, Part::ProgramHeaders)?
            .enumerate()
            .map(|(i, e)| Segment::read(i, e))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| short(Part::ProgramHeaders))?;
        let sections = Sections::read(data, &h);
        Ok(Elf { data, kind: h.kind, machine, phentsize: h.phentsize, segments, sections })
    }

    /// `e_type`: 1 relocatable (a module), 2 executable, 3 shared or PIE.
    pub(crate) fn kind(&self) -> u16 {
        self.kind
    }

    /// `e_machine`: 62 x86_64, 183 aarch64 (see [`crate::image::arch::Arch::from_elf_machine`]).
    pub(crate) fn machine(&self) -> u16 {
        self.machine
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The section header table's entries, if it could be read.
    pub(crate) fn sections(&self) -> Result<&[Section], ElfError> {
        self.sections.as_ref().map(|s| s.all.as_slice()).map_err(Clone::clone)
    }

    /// Checks that the file holds every segment's bytes, the section header
    /// table and every section's bytes: a file cut short fails here.
    pub(crate) fn check_complete(&self) -> Result<(), ElfError> {
        for s in &self.segments {
            self.segment_data(s)?;
        }
        for s in self.sections()? {
            self.section_data(s)?;
        }
        Ok(())
    }

    /// A segment's bytes in the file.
    pub(crate) fn segment_data(&self, s: &Segment) -> Result<&'a [u8], ElfError> {
        slice(self.data, s.offset, s.filesz.into(), || s.part())
    }

    /// A section's bytes in the file (none for SHT_NOBITS, like .bss).
    pub(crate) fn section_data(&self, s: &Section) -> Result<&'a [u8], ElfError> {
        if s.kind == SHT_NOBITS {
            return Ok(&[]);
        }
        slice(self.data, s.offset, s.size.into(), || {
            let name = self.section_name(s).map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
            Part::Section { index: s.index, name }
        })
    }

    /// The section holding section names, as bytes.
    fn names(&self) -> Result<&'a [u8], ElfError> {
        let (all, i) = self.sections.as_ref().map(|s| (&s.all, s.names)).map_err(Clone::clone)?;
        let s = all.get(i).filter(|_| i != 0).ok_or_else(|| {
            ElfError::Malformed(format!("the section names index is {i}, and there are {} sections", all.len()))
        })?;
        // Not section_data: its error names the section, which needs this.
        slice(self.data, s.offset, s.size.into(), || Part::Section { index: i, name: String::new() })
    }

    /// A section's name, without its NUL.
    pub(crate) fn section_name(&self, s: &Section) -> Result<&'a [u8], ElfError> {
        let names = self.names()?;
        let name = usize::try_from(s.name).ok().and_then(|at| names.get(at..)).ok_or_else(|| {
            ElfError::Malformed(format!(
                "section {} has its name at byte {} of a {}-byte names section",
                s.index,
                s.name,
                names.len()
            ))
        })?;
        Ok(name.split(|&b| b == 0).next().unwrap_or_default())
    }

    /// The first section named `name`.
    pub(crate) fn section_by_name(&self, name: &[u8]) -> Result<Option<&Section>, ElfError> {
        for s in self.sections()? {
            if self.section_name(s)? == name {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The function symbols of the symbol table (none in a stripped file).
    pub(crate) fn functions(&self) -> Result<Vec<FuncSymbol<'a>>, ElfError> {
        let Some(symtab) = self.sections()?.iter().find(|s| s.kind == SHT_SYMTAB) else { return Ok(Vec::new()) };
        let strtab = usize::try_from(symtab.link)
            .ok()
            .and_then(|i| self.sections().ok()?.get(i))
            .ok_or_else(|| ElfError::Malformed(format!("the symbol table links to section {}", symtab.link)))?;
        let names = self.section_data(strtab)?;
        let count = symtab.size.checked_div(u64::from(SYM_SIZE)).unwrap_or(0);
        let mut out = Vec::new();
        for e in table(self.data, symtab.offset, count, SYM_SIZE, SYM_SIZE, Part::SectionHeaders)? {
            let (Some(name), Some(info), Some(addr), Some(size)) =
                (u32_at(e, 0), e.get(4), u64_at(e, 8), u64_at(e, 16))
            else {
                continue;
            };
            if info & 0xf != STT_FUNC {
                continue;
            }
            let Some(name) = usize::try_from(name).ok().and_then(|at| names.get(at..)) else { continue };
            out.push(FuncSymbol { name: name.split(|&b| b == 0).next().unwrap_or_default(), addr, size });
        }
        Ok(out)
    }

    /// The notes in a (PT_NOTE) segment.
    pub(crate) fn notes(&self, s: &Segment) -> Result<Vec<Note<'a>>, ElfError> {
        let mut rest = self.segment_data(s)?;
        // Each note's name and descriptor are padded to the segment's
        // alignment: 4, or 8 (GNU property notes).
        let align: usize = if s.align == 8 { 8 } else { 4 };
        let mut notes = Vec::new();
        while !rest.is_empty() {
            let note = note(rest, align).ok_or_else(|| {
                ElfError::Malformed(format!("note {} in {} runs past the segment", notes.len(), s.part()))
            })?;
            notes.push(note.0);
            rest = note.1;
        }
        Ok(notes)
    }
}

/// The note at the start of `b` and what follows it.
fn note(b: &[u8], align: usize) -> Option<(Note<'_>, &[u8])> {
    let namesz = usize::try_from(u32_at(b, 0)?).ok()?;
    let descsz = usize::try_from(u32_at(b, 4)?).ok()?;
    let kind = u32_at(b, 8)?;
    let name_end = namesz.checked_add(12)?;
    let desc_start = name_end.checked_next_multiple_of(align)?;
    let desc_end = desc_start.checked_add(descsz)?;
    let name = b.get(12..name_end)?;
    let desc = b.get(desc_start..desc_end)?;
    // The last note's padding may be left out.
    let next = desc_end.checked_next_multiple_of(align)?.min(b.len());
    let name = name.split(|&c| c == 0).next().unwrap_or_default();
    Some((Note { name, kind, desc }, b.get(next..)?))
}

/// Checks that `elf` runs without a loader: a complete x86_64 ET_EXEC, or
/// a static-pie ET_DYN, with no PT_INTERP. With `exec_only`, static-pie is
/// refused too (PID 1 itself must be ET_EXEC).
pub(crate) fn check_static(elf: &[u8], exec_only: bool) -> Result<(), ElfError> {
    let elf = Elf::parse(elf)?;
    let kind = elf.kind();
    if kind != ET_EXEC && (exec_only || kind != ET_DYN) {
        return Err(ElfError::NotExecutable(kind));
    }
    // What binfmt_elf insists on before it maps anything (load_elf_phdrs).
    let phnum = elf.segments().len();
    if !(1..=MAX_PHNUM).contains(&phnum) {
        return Err(ElfError::Malformed(format!("{phnum} program headers (the kernel loads 1 to {MAX_PHNUM})")));
    }
    if elf.phentsize != PHDR_SIZE {
        return Err(ElfError::Malformed(format!(
            "{}-byte program headers (the kernel loads only {PHDR_SIZE}-byte ones)",
            elf.phentsize
        )));
    }
    elf.check_complete()?;
    if let Some(interp) = elf.segments().iter().find(|s| s.kind == PT_INTERP) {
        let loader = elf.segment_data(interp)?;
        return Err(ElfError::Dynamic(String::from_utf8_lossy(loader).trim_end_matches('\0').to_owned()));
    }
    // A static-pie has PT_DYNAMIC (for its own relocations) but no loader.
    if kind == ET_EXEC && elf.segments().iter().any(|s| s.kind == PT_DYNAMIC) {
        return Err(ElfError::Dynamic("(none named)".into()));
    }
    Ok(())
}

/// A hash of what a vmlinux loads: its allocated sections that have bytes
/// in the file (not NOBITS) and are not notes (the build ID differs with
/// debug info alone), each name and content in order. Two kernels with
/// the same hash run the same code on the same data: a commit between
/// them (a comment, a file the config does not build) cannot change what
/// a repro sees. syzkaller's bisection hashes vmlinux the same way.
pub(crate) fn code_hash(vmlinux: &[u8]) -> Result<blake3::Hash, ElfError> {
    let elf = Elf::parse(vmlinux)?;
    elf.check_complete()?;
    let mut h = blake3::Hasher::new();
    for s in elf.sections()? {
        if s.flags & SHF_ALLOC == 0 || s.kind == SHT_NOBITS || s.kind == SHT_NOTE {
            continue;
        }
        let name = elf.section_name(s)?;
        let data = elf.section_data(s)?;
        for part in [name, data] {
            h.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_le_bytes());
            h.update(part);
        }
    }
    Ok(h.finalize())
}

/// The `key=value` strings of a kernel module's `.modinfo` section, from a
/// complete module (finit_module refuses anything less).
pub(crate) fn modinfo(ko: &[u8]) -> Result<Vec<String>, ElfError> {
    let elf = Elf::parse(ko)?;
    if elf.kind() != ET_REL {
        return Err(ElfError::NotModule(elf.kind()));
    }
    elf.check_complete()?;
    let Some(section) = elf.section_by_name(b".modinfo")? else {
        return Ok(Vec::new());
    };
    Ok(elf
        .section_data(section)?
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect())
}

/// What the tests of every reader of user files share: cutting files
/// short, flipping their bits, and the real kernels in krepro's cache.
#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::as_conversions)]
pub(crate) mod testing {
    use std::ops::Range;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::path::{Path, PathBuf};

    /// xorshift64: a fixed seed, so a failure comes back on every run.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed | 1)
        }

        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A number in `0..n` (`n` > 0).
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Lengths to cut a `len`-byte file at, all below `len`: each of the
    /// first 300, then about 500 spread over the rest, the half, `len - 1`.
    pub(crate) fn cuts(len: usize) -> Vec<usize> {
        let step = (len / 500).max(1);
        let mut cuts: Vec<usize> = (0..300.min(len)).chain((300..len).step_by(step)).collect();
        cuts.extend([len / 2, len.saturating_sub(1)]);
        cuts.retain(|&c| c < len);
        cuts.sort_unstable();
        cuts.dedup();
        cuts
    }

    /// Runs `check` on `bytes` with each byte in `ranges` changed in turn
    /// (each bit alone, then all eight), then `random` times with 1 to 4
    /// random bytes in `ranges` set to random values. `check` must not
    /// panic; `bytes` is restored.
    pub(crate) fn flips(bytes: &mut [u8], ranges: &[Range<usize>], random: usize, check: impl Fn(&[u8])) {
        let run = |bytes: &[u8], what: &dyn Fn() -> String| {
            if catch_unwind(AssertUnwindSafe(|| check(bytes))).is_err() {
                panic!("the reader panicked with {}", what());
            }
        };
        let places: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).filter(|&i| i < bytes.len()).collect();
        for &at in &places {
            let was = bytes[at];
            for mask in (0..8).map(|b| 1u8 << b).chain([0xff]) {
                bytes[at] = was ^ mask;
                run(bytes, &|| format!("byte {at} xor {mask:#04x}"));
            }
            bytes[at] = was;
        }
        let mut rng = Rng::new(0x6b72_6570_726f);
        for _ in 0..random {
            let mut changed = Vec::new();
            for _ in 0..=rng.below(4) {
                let at = places[rng.below(places.len())];
                changed.push((at, bytes[at]));
                bytes[at] = rng.next() as u8;
            }
            run(bytes, &|| format!("bytes {:?} changed", changed.iter().map(|c| c.0).collect::<Vec<_>>()));
            for &(at, was) in changed.iter().rev() {
                bytes[at] = was;
            }
        }
    }

    /// Where the header, the program header table and the section header
    /// table are (as the header says; for files that parse).
    pub(crate) fn header_ranges(bytes: &[u8]) -> Vec<Range<usize>> {
        let h = super::Header::read(bytes).unwrap();
        let table = |at: u64, n: u16, size: u16| at as usize..at as usize + usize::from(n) * usize::from(size);
        vec![0..64, table(h.phoff, h.phnum, h.phentsize), table(h.shoff, h.shnum, h.shentsize)]
    }

    /// Where the last byte an ELF's headers point at ends: cutting the file
    /// anywhere before leaves something out.
    pub(crate) fn extent(bytes: &[u8]) -> usize {
        let elf = super::Elf::parse(bytes).unwrap();
        let segments = elf.segments().iter().map(|s| (s.offset + s.filesz) as usize);
        let sections = elf.sections().unwrap().iter().filter(|s| s.kind != super::SHT_NOBITS);
        let sections = sections.map(|s| (s.offset + s.size) as usize);
        header_ranges(bytes).into_iter().map(|r| r.end).chain(segments).chain(sections).max().unwrap()
    }

    /// `cc FLAGS -o out src.c` in `dir`: the output's bytes.
    pub(crate) fn cc(dir: &Path, flags: &[&str], source: &str) -> Vec<u8> {
        let (src, out) = (dir.join("src.c"), dir.join("out"));
        std::fs::write(&src, source).unwrap();
        let ok = std::process::Command::new("cc").args(flags).arg("-o").arg(&out).arg(&src).status().unwrap();
        assert!(ok.success(), "cc {flags:?}");
        std::fs::read(&out).unwrap()
    }

    /// The newest cached Debian cloud kernel of a series (its bzImage), or
    /// a failure that says how to get one.
    pub(crate) fn cached_kernel(series: &str) -> PathBuf {
        let dir = crate::host::cache::Cache::from_env().kernels();
        crate::host::fetch::newest_cached(&dir, crate::image::arch::Arch::X86_64, Some(series)).unwrap_or_else(|| {
            panic!("no Debian {series} cloud kernel in {}: run `cargo xtask kernel fetch {series}`", dir.display())
        })
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::indexing_slicing, clippy::arithmetic_side_effects, clippy::as_conversions)]
mod tests {
    use super::testing::{cc, cuts, flips, header_ranges};
    use super::*;

    const MAIN: &str = "int main(void) { return 0; }\n";

    /// A relocatable object laid out like a kernel module: `.modinfo`
    /// strings, an init function.
    const MODULE: &str = r#"
__attribute__((section(".modinfo"), used)) static const char license[] = "license=GPL";
__attribute__((section(".modinfo"), used)) static const char depends[] = "depends=vsock,virtio_ring";
int init_module(void) { return 0; }
"#;

    #[test]
    fn host_binaries_are_dynamic() {
        let ls = std::fs::read("/bin/ls").unwrap();
        let err = check_static(&ls, false).unwrap_err();
        assert!(matches!(&err, ElfError::Dynamic(l) if l.starts_with("/lib64/ld-linux-x86-64.so")), "{err}");
        assert_eq!(check_static(b"#!/bin/sh\n", false).unwrap_err(), ElfError::NotElf);
    }

    #[test]
    fn static_binaries_pass() {
        let dir = tempfile::tempdir().unwrap();
        for (flags, exec_only_ok) in [(&["-static"][..], true), (&["-static-pie"][..], false)] {
            let bytes = cc(dir.path(), flags, MAIN);
            assert_eq!(check_static(&bytes, false), Ok(()), "{flags:?}");
            assert_eq!(check_static(&bytes, true).is_ok(), exec_only_ok, "{flags:?}");
        }
    }

    #[test]
    fn every_cut_of_a_static_binary_is_refused_with_where_it_ends() {
        let dir = tempfile::tempdir().unwrap();
        for flags in [&["-static"][..], &["-static-pie"][..]] {
            let bytes = cc(dir.path(), flags, MAIN);
            for cut in cuts(bytes.len()) {
                let err = check_static(&bytes[..cut], false).expect_err(&format!("{flags:?} cut at {cut}"));
                match cut {
                    0..4 => assert_eq!(err, ElfError::NotElf),
                    4..64 => assert_eq!(err, ElfError::Truncated { part: Part::Header, end: 64, len: cut }),
                    _ => assert!(matches!(err, ElfError::Truncated { len, .. } if len == cut), "{cut}: {err}"),
                }
            }
            // The program header table fits in 2000 bytes; the code does not.
            let err = check_static(&bytes[..2000], false).unwrap_err();
            let ElfError::Truncated { part: Part::Segment { kind: PT_LOAD, .. }, end, len: 2000 } = err else {
                panic!("{err}")
            };
            assert!(end > 2000 && end <= bytes.len() as u128, "{end}");
            assert!(err.to_string().starts_with("truncated: program header "), "{err}");
            assert!(err.to_string().ends_with(&format!(" (PT_LOAD) ends at byte {end} but the file has 2000 bytes")));
        }
    }

    #[test]
    fn flipped_bits_in_a_static_binary_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = cc(dir.path(), &["-static"], MAIN);
        let ranges = header_ranges(&bytes);
        flips(&mut bytes, &ranges, 4000, |b| {
            let _ = check_static(b, false);
            let _ = check_static(b, true);
            let _ = modinfo(b);
            if let Ok(elf) = Elf::parse(b) {
                for s in elf.segments() {
                    let _ = elf.notes(s);
                }
            }
        });
        assert_eq!(check_static(&bytes, true), Ok(()), "restored");
    }

    #[test]
    fn modinfo_of_a_module_shaped_object() {
        let dir = tempfile::tempdir().unwrap();
        let ko = cc(dir.path(), &["-c"], MODULE);
        let mut info = modinfo(&ko).unwrap();
        info.sort();
        assert_eq!(info, ["depends=vsock,virtio_ring", "license=GPL"]);
        assert_eq!(check_static(&ko, false), Err(ElfError::NotExecutable(ET_REL)));
        let exe = cc(dir.path(), &["-static"], MAIN);
        assert_eq!(modinfo(&exe), Err(ElfError::NotModule(ET_EXEC)));
    }

    #[test]
    fn every_cut_of_a_module_is_refused_and_flipped_bits_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut ko = cc(dir.path(), &["-c"], MODULE);
        for cut in cuts(ko.len()) {
            assert!(modinfo(&ko[..cut]).is_err(), "cut at {cut}");
        }
        let mut ranges = header_ranges(&ko);
        let elf = Elf::parse(&ko).unwrap();
        // The section names and .modinfo too.
        for name in [&b".shstrtab"[..], b".modinfo"] {
            let s = elf.section_by_name(name).unwrap().unwrap();
            ranges.push(s.offset as usize..(s.offset + s.size) as usize);
        }
        flips(&mut ko, &ranges, 4000, |b| {
            let _ = modinfo(b);
        });
        assert_eq!(modinfo(&ko).unwrap().len(), 2, "restored");
    }

    /// A header with the given program and section header fields and
    /// nothing behind it.
    fn header(phoff: u64, phnum: u16, shoff: u64, shnum: u16, shstrndx: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(ELF_MAGIC);
        h[4] = ELFCLASS64;
        h[5] = ELFDATA2LSB;
        h[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
        h[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        h[32..40].copy_from_slice(&phoff.to_le_bytes());
        h[40..48].copy_from_slice(&shoff.to_le_bytes());
        h[54..56].copy_from_slice(&PHDR_SIZE.to_le_bytes());
        h[56..58].copy_from_slice(&phnum.to_le_bytes());
        h[58..60].copy_from_slice(&SHDR_SIZE.to_le_bytes());
        h[60..62].copy_from_slice(&shnum.to_le_bytes());
        h[62..64].copy_from_slice(&shstrndx.to_le_bytes());
        h
    }

    #[test]
    fn offsets_near_the_top_of_u64_are_truncations() {
        let h = header(u64::MAX, 0xffff, 0, 0, 0);
        let end = u128::from(u64::MAX) + 0xffff * 56;
        assert_eq!(check_static(&h, false), Err(ElfError::Truncated { part: Part::ProgramHeaders, end, len: 64 }));

        // One PT_LOAD right after the header, its bytes at the top of u64.
        let mut elf = header(64, 1, 0, 0, 0);
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&PT_LOAD.to_le_bytes());
        ph[8..16].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        ph[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        elf.extend_from_slice(&ph);
        let err = check_static(&elf, false).unwrap_err();
        let end = 2 * u128::from(u64::MAX) - 1;
        assert_eq!(err, ElfError::Truncated { part: Part::Segment { index: 0, kind: PT_LOAD }, end, len: 120 });
        assert_eq!(
            err.to_string(),
            "truncated: program header 0 (PT_LOAD) ends at byte 36893488147419103229 but the file has 120 bytes"
        );
    }

    #[test]
    fn malformed_headers_are_named() {
        let mut h = header(64, 1, 0, 0, 0);
        h[54..56].copy_from_slice(&8u16.to_le_bytes());
        assert_eq!(
            check_static(&h, false),
            Err(ElfError::Malformed("the program header table has 8-byte entries, an ELF64 entry has 56".into()))
        );
        let none = header(0, 0, 0, 0, 0);
        assert_eq!(
            check_static(&none, false),
            Err(ElfError::Malformed("0 program headers (the kernel loads 1 to 1170)".into()))
        );
        // A section count in section 0 (e_shnum 0) must still fit the file.
        let mut elf = header(0, 0, 64, 0, SHN_XINDEX);
        let mut sh0 = vec![0u8; 64];
        sh0[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        elf.extend_from_slice(&sh0);
        let end = 64 + u128::from(u64::MAX) * 64;
        let parsed = Elf::parse(&elf).unwrap();
        assert_eq!(parsed.sections(), Err(ElfError::Truncated { part: Part::SectionHeaders, end, len: 128 }));
        // Two sections, names index 5.
        let mut elf = header(0, 0, 64, 2, 5);
        elf[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        elf.extend_from_slice(&[0u8; 128]);
        assert_eq!(
            modinfo(&elf),
            Err(ElfError::Malformed("the section names index is 5, and there are 2 sections".into()))
        );
    }

    #[test]
    fn notes_are_read_with_their_padding() {
        let mut notes = Vec::new();
        for (name, kind, desc) in [(&b"Xen\0"[..], 18u32, &[1u8, 2, 3, 4, 5][..]), (b"GNU\0", 3, &[9; 4])] {
            notes.extend_from_slice(&(name.len() as u32).to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&kind.to_le_bytes());
            notes.extend_from_slice(name);
            notes.extend_from_slice(desc);
            notes.resize(notes.len().next_multiple_of(4), 0);
        }
        let mut elf = header(64, 1, 0, 0, 0);
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&PT_NOTE.to_le_bytes());
        ph[8..16].copy_from_slice(&120u64.to_le_bytes());
        ph[32..40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
        ph[48..56].copy_from_slice(&4u64.to_le_bytes());
        elf.extend_from_slice(&ph);
        elf.extend_from_slice(&notes);
        let parsed = Elf::parse(&elf).unwrap();
        let got = parsed.notes(&parsed.segments()[0]).unwrap();
        assert_eq!(
            got,
            [Note { name: b"Xen", kind: 18, desc: &[1, 2, 3, 4, 5] }, Note { name: b"GNU", kind: 3, desc: &[9; 4] }]
        );
        // A descriptor size past the segment's end.
        let at = 120 + 4;
        elf[at..at + 4].copy_from_slice(&1000u32.to_le_bytes());
        let parsed = Elf::parse(&elf).unwrap();
        assert_eq!(
            parsed.notes(&parsed.segments()[0]),
            Err(ElfError::Malformed("note 0 in program header 0 (PT_NOTE) runs past the segment".into()))
        );
    }
}
