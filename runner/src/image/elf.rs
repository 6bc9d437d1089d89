//! Just enough ELF: is an executable static (no loader needed in the
//! guest), and what does a kernel module's `.modinfo` say.

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;

/// Why a file cannot run as a static executable in the guest.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error("not an ELF file")]
    NotElf,
    #[error("not a 64-bit little-endian x86_64 ELF")]
    WrongArch,
    #[error("not an executable (ELF type {0})")]
    NotExecutable(u16),
    #[error("dynamically linked (it needs the loader {0}), and the guest has no libc")]
    Dynamic(String),
    #[error("truncated ELF headers")]
    Truncated,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    Ok(u16::from_le_bytes(b.get(at..at + 2).ok_or(ElfError::Truncated)?.try_into().expect("2 bytes")))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    Ok(u32::from_le_bytes(b.get(at..at + 4).ok_or(ElfError::Truncated)?.try_into().expect("4 bytes")))
}
fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    Ok(u64::from_le_bytes(b.get(at..at + 8).ok_or(ElfError::Truncated)?.try_into().expect("8 bytes")))
}

fn header(elf: &[u8]) -> Result<u16, ElfError> {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if elf[4] != 2 || elf[5] != 1 || u16_at(elf, 18)? != EM_X86_64 {
        return Err(ElfError::WrongArch);
    }
    u16_at(elf, 16)
}

/// Checks that `elf` runs without a loader: an x86_64 ET_EXEC, or a
/// static-pie ET_DYN, with no PT_INTERP. With `exec_only`, static-pie is
/// refused too (PID 1 itself must be ET_EXEC).
pub fn check_static(elf: &[u8], exec_only: bool) -> Result<(), ElfError> {
    let kind = header(elf)?;
    if kind != ET_EXEC && (exec_only || kind != ET_DYN) {
        return Err(ElfError::NotExecutable(kind));
    }
    let (phoff, phentsize, phnum) = (u64_at(elf, 32)? as usize, u16_at(elf, 54)? as usize, u16_at(elf, 56)? as usize);
    let mut dynamic = false;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        match u32_at(elf, at)? {
            PT_INTERP => {
                let (off, size) = (u64_at(elf, at + 8)? as usize, u64_at(elf, at + 32)? as usize);
                let interp = elf.get(off..off + size).ok_or(ElfError::Truncated)?;
                let interp = String::from_utf8_lossy(interp).trim_end_matches('\0').to_owned();
                return Err(ElfError::Dynamic(interp));
            }
            PT_DYNAMIC => dynamic = true,
            _ => {}
        }
    }
    // A static-pie has PT_DYNAMIC (for its own relocations) but no loader.
    if dynamic && kind == ET_EXEC {
        return Err(ElfError::Dynamic("(none named)".into()));
    }
    Ok(())
}

/// The `key=value` strings of a kernel module's `.modinfo` section.
pub fn modinfo(ko: &[u8]) -> Result<Vec<String>, ElfError> {
    if ko.len() < 64 || &ko[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(ko, 40)? as usize, u16_at(ko, 58)? as usize, u16_at(ko, 60)? as usize, u16_at(ko, 62)? as usize);
    let section = |i: usize| -> Result<(u32, usize, usize), ElfError> {
        let at = shoff + i * shentsize;
        Ok((u32_at(ko, at)?, u64_at(ko, at + 24)? as usize, u64_at(ko, at + 32)? as usize))
    };
    let (_, str_off, str_size) = section(shstrndx)?;
    let names = ko.get(str_off..str_off + str_size).ok_or(ElfError::Truncated)?;
    for i in 0..shnum {
        let (name, off, size) = section(i)?;
        let name = names.get(name as usize..).ok_or(ElfError::Truncated)?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if &name[..end] == b".modinfo" {
            let data = ko.get(off..off + size).ok_or(ElfError::Truncated)?;
            return Ok(data
                .split(|&b| b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect());
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests run tools directly
mod tests {
    use super::*;

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
        let src = dir.path().join("t.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        for (flags, exec_only_ok) in [(&["-static"][..], true), (&["-static-pie"][..], false)] {
            let out = dir.path().join("t");
            let ok =
                std::process::Command::new("cc").args(flags).arg("-o").arg(&out).arg(&src).status().unwrap().success();
            assert!(ok, "cc {flags:?}");
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(check_static(&bytes, false), Ok(()), "{flags:?}");
            assert_eq!(check_static(&bytes, true).is_ok(), exec_only_ok, "{flags:?}");
        }
    }
}
