//! The guest architectures krepro boots, and everything that differs
//! between them in one table: qemu, the console, the kernel's `ARCH=`, the
//! Debian architecture, the Rust target of init, the cross compiler.

use serde::Serialize;

/// A guest architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// x86_64: bzImage, microvm/pc/q35, isa-debug-exit
    #[value(name = "x86_64", alias = "amd64", alias = "x86")]
    X86_64,
    /// arm64: Image (or Image.gz), qemu's virt machine, PL011 console
    #[value(name = "aarch64", alias = "arm64")]
    Aarch64,
}

impl Arch {
    /// The host's architecture, if krepro knows it as a guest.
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The host's architecture, or x86_64: the default guest when no kernel
    /// says otherwise.
    pub fn host_or_default() -> Arch {
        Arch::host().unwrap_or(Arch::X86_64)
    }

    /// The name users type and reports show (`uname -m`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The qemu binary for this guest.
    pub fn qemu(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    /// The Debian package that has [`Arch::qemu`].
    pub fn qemu_package(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-system-x86",
            Arch::Aarch64 => "qemu-system-arm",
        }
    }

    /// Debian's name for it (`dpkg --print-architecture`, package suffixes).
    pub(crate) fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The kernel's `ARCH=`/`SRCARCH` (arch/<this>/ in the tree).
    pub(crate) fn kernel_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Aarch64 => "arm64",
        }
    }

    /// What `make ARCH=` gets. Not [`Arch::kernel_arch`] on x86: with
    /// `ARCH=x86` the 64BIT option has a prompt (arch/x86/Kconfig), so
    /// tinyconfig (allnoconfig underneath) would make a 32-bit base;
    /// `ARCH=x86_64` fixes 64BIT=y.
    pub(crate) fn make_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// Where `make` leaves the bootable image, relative to the build dir.
    pub(crate) fn boot_image(self) -> &'static str {
        match self {
            Arch::X86_64 => "arch/x86/boot/bzImage",
            Arch::Aarch64 => "arch/arm64/boot/Image",
        }
    }

    /// The Rust target init is built for.
    pub fn rust_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The GNU triple prefix of a cross toolchain for it (Debian's
    /// gcc-<triple> packages), e.g. for `CROSS_COMPILE=`.
    pub fn gnu_triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Aarch64 => "aarch64-linux-gnu",
        }
    }

    /// The kernel console the first serial port is: the 8250 UART on x86,
    /// the PL011 on arm64's virt machine.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }

    /// ELF `e_machine` of its executables.
    pub(crate) fn elf_machine(self) -> u16 {
        match self {
            Arch::X86_64 => 62,
            Arch::Aarch64 => 183,
        }
    }

    /// The architecture of an ELF `e_machine`.
    pub(crate) fn from_elf_machine(machine: u16) -> Option<Arch> {
        [Arch::X86_64, Arch::Aarch64].into_iter().find(|a| a.elf_machine() == machine)
    }

    /// Whether qemu has the isa-debug-exit device for it: the verdict as
    /// qemu's exit status. arm64 has none (qemu exits 0 on a PSCI
    /// power-off, which is never read as a verdict).
    pub(crate) fn has_debug_exit(self) -> bool {
        self == Arch::X86_64
    }

    /// Whether KVM can run this guest on this host: only the host's own
    /// architecture.
    pub(crate) fn kvm_capable(self) -> bool {
        Arch::host() == Some(self)
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn names_and_debian_aliases_parse() {
        for (text, arch) in
            [("x86_64", Arch::X86_64), ("amd64", Arch::X86_64), ("aarch64", Arch::Aarch64), ("arm64", Arch::Aarch64)]
        {
            assert_eq!(Arch::from_str(text, false), Ok(arch), "{text}");
        }
        assert!(Arch::from_str("riscv64", false).is_err());
    }

    #[test]
    fn elf_machines_round_trip() {
        for arch in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(Arch::from_elf_machine(arch.elf_machine()), Some(arch));
        }
        assert_eq!(Arch::from_elf_machine(3), None, "i386");
    }
}
