//! Checks on the init binary: a static x86_64 executable, no interpreter,
//! no dynamic section.

use anyhow::{bail, ensure, Result};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const EM_X86_64: u16 = 62;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Fails unless `elf` is a 64-bit little-endian x86_64 ET_EXEC with no
/// PT_INTERP and no PT_DYNAMIC program header.
pub fn check_static(elf: &[u8]) -> Result<()> {
    ensure!(elf.len() >= 64 && &elf[..4] == b"\x7fELF", "not an ELF file");
    ensure!(elf[4] == 2 && elf[5] == 1, "not a 64-bit little-endian ELF");
    ensure!(u16_at(elf, 18) == EM_X86_64, "not an x86_64 ELF");
    ensure!(u16_at(elf, 16) == ET_EXEC, "not ET_EXEC (a PIE or shared object needs a loader)");
    let (phoff, phentsize, phnum) = (u64_at(elf, 32) as usize, u16_at(elf, 54) as usize, u16_at(elf, 56) as usize);
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        ensure!(at + 4 <= elf.len(), "program header {i} out of bounds");
        match u32_at(elf, at) {
            PT_INTERP => bail!("it has an interpreter (PT_INTERP)"),
            PT_DYNAMIC => bail!("it is dynamically linked (PT_DYNAMIC)"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_binaries_are_refused() {
        let ls = std::fs::read("/bin/ls").unwrap();
        let err = check_static(&ls).unwrap_err().to_string();
        assert!(err.contains("ET_EXEC") || err.contains("interpreter"), "{err}");
        assert_eq!(check_static(b"#!/bin/sh\n").unwrap_err().to_string(), "not an ELF file");
    }
}
