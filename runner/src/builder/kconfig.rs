//! Kernel configs: krepro's own fragment, merging requests into a .config,
//! checking what survived `olddefconfig`, and explaining what did not from
//! the tree's Kconfig files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::image::arch::Arch;
pub(crate) use crate::image::config::{parse_config, parse_line, Value};

/// Who asked for an option; decides whether losing it is fatal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Origin {
    /// krepro's init cannot boot or report without it.
    KreproEssential,
    /// krepro uses it when it is there (a faster or extra channel).
    Krepro,
    /// The repro declared it: the repro cannot run without it.
    Repro(String),
    /// A user fragment.
    Fragment(String),
    /// A boot flag (`--cpus 2`, `--disk new:64M:ext4`): the guest needs it
    /// to have what the flag gives it.
    BootFlag(String),
    /// A config bisect's step changes it.
    ConfigStep,
}

impl Origin {
    /// Whether the build must stop when this option is lost.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(self, Origin::KreproEssential | Origin::Repro(_) | Origin::BootFlag(_))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::KreproEssential => f.write_str("krepro's init needs it"),
            Origin::Krepro => f.write_str("krepro uses it"),
            Origin::Repro(name) => write!(f, "repro {name} needs it"),
            Origin::Fragment(file) => write!(f, "asked for in {file}"),
            Origin::BootFlag(flag) => write!(f, "{flag} needs it"),
            Origin::ConfigStep => f.write_str("the config bisect's step sets it"),
        }
    }
}

/// One requested option.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Request {
    /// Without `CONFIG_`.
    pub name: String,
    pub value: Value,
    pub origin: Origin,
}

/// What init and the verdict channels need on every architecture; losing
/// one of these fails the build.
const ESSENTIAL: &[&str] = &["64BIT", "BLK_DEV_INITRD", "RD_GZIP", "BINFMT_ELF", "PROC_FS", "TTY", "PRINTK"];
/// x86: the console is the 8250 UART (ttyS0).
const ESSENTIAL_X86: &[&str] = &["SERIAL_8250", "SERIAL_8250_CONSOLE"];
/// arm64 on qemu's virt machine: the console is the PL011 (ttyAMA0), and
/// PSCI is the only way the guest ends qemu (there is no isa-debug-exit):
/// SYSTEM_OFF on power-off, SYSTEM_RESET on panic=-1 under -no-reboot.
/// ARM64 selects ARM_PSCI_FW; asking for it keeps that promise checked.
const ESSENTIAL_ARM64: &[&str] = &["SERIAL_AMBA_PL011", "SERIAL_AMBA_PL011_CONSOLE", "ARM_PSCI_FW"];
/// Used when there, on every architecture: sysfs and devtmpfs (the
/// virtio port lookup, /dev/kmsg), /tmp, timerfd (init's clock), printk
/// times, the virtio-serial verdict channel (over PCI, or virtio-mmio).
const OPTIONAL: &[&str] = &[
    // `--exec script.sh`: the kernel runs the #! line.
    "BINFMT_SCRIPT",
    "SYSFS",
    "TIMERFD",
    "DEVTMPFS",
    "TMPFS",
    "SHMEM",
    "PRINTK_TIME",
    "PCI",
    "VIRTIO_MENU",
    "VIRTIO_PCI",
    "VIRTIO_MMIO",
    "VIRTIO_CONSOLE",
    // A kernel that can report its bugs: tinyconfig turns BUG off, which
    // leaves WARN_ON silent and BUG_ON a bare "invalid opcode"; without
    // KALLSYMS a report's frames are addresses, and crash titles (and
    // `--same-crash`) have no function to name.
    "BUG",
    "KALLSYMS",
];
/// x86 only.
const OPTIONAL_X86: &[&str] = &[
    // The isa-debug-exit channel: ioperm on port 0xf4.
    "X86_IOPL_IOPERM",
    "DEVPORT",
    // microvm has no PCI: virtio-mmio devices from the command line.
    "VIRTIO_MMIO_CMDLINE_DEVICES",
    // The PVH entry (boot the vmlinux directly) and KVM guest support.
    "HYPERVISOR_GUEST",
    "PARAVIRT",
    "KVM_GUEST",
    "PVH",
];
/// Optimise for speed, not size (tinyconfig picks size). Under TCG, -Os
/// code is slow where it matters to a boot: gcc inlines memset and memcpy
/// as `rep stosb`/`rep movsb`, which TCG runs a byte at a time, and freeing
/// init memory (a poisoning memset over pages full of translated code)
/// took 160 ms of a 0.6 s tinyconfig boot. A builder kernel's smoke run,
/// medians of 5 (`cargo xtask run --kernel K --json`): 600 ms -Os, 395 ms
/// -O2; the bzImage grows from 1.6 to 1.9 MB.
const OPTIONAL_CHOICES: &[(&str, Value)] =
    &[("CC_OPTIMIZE_FOR_PERFORMANCE", Value::Y), ("CC_OPTIMIZE_FOR_SIZE", Value::N)];
/// arm64: virt's PCIe host bridge is the generic ECAM one from the device
/// tree (the virtio-serial-pci verdict channel sits behind it).
const OPTIONAL_ARM64: &[&str] = &["PCI_HOST_GENERIC"];

/// krepro's own fragment for guests of `arch`.
pub(crate) fn krepro_fragment(arch: Arch) -> Vec<Request> {
    let (essential, optional) = match arch {
        Arch::X86_64 => (ESSENTIAL_X86, OPTIONAL_X86),
        Arch::Aarch64 => (ESSENTIAL_ARM64, OPTIONAL_ARM64),
    };
    let req = |origin: Origin| {
        move |name: &&str| Request { name: (*name).to_owned(), value: Value::Y, origin: origin.clone() }
    };
    ESSENTIAL
        .iter()
        .chain(essential)
        .map(req(Origin::KreproEssential))
        .chain(OPTIONAL.iter().chain(optional).map(req(Origin::Krepro)))
        .chain(OPTIONAL_CHOICES.iter().map(|(name, value)| Request {
            name: (*name).to_owned(),
            value: value.clone(),
            origin: Origin::Krepro,
        }))
        .collect()
}

/// What the boot flags need from a kernel for `arch`: SMP for more than
/// one CPU (on x86 with the MP table, which is how microvm without ACPI
/// announces its CPUs; arm64 is always SMP, `config SMP def_bool y`, and
/// finds its CPUs in the device tree); the block layer, virtio-blk and the
/// filesystems of new disks.
pub(crate) fn boot_fragment(arch: Arch, cpus: u32, disks: &[crate::boot::disk::DiskSpec]) -> Vec<Request> {
    let mut out = Vec::new();
    let mut add = |names: &[&str], flag: String| {
        for name in names {
            out.push(Request { name: (*name).to_owned(), value: Value::Y, origin: Origin::BootFlag(flag.clone()) });
        }
    };
    if cpus > 1 {
        let smp: &[&str] = match arch {
            Arch::X86_64 => &["SMP", "X86_MPPARSE"],
            Arch::Aarch64 => &["SMP"],
        };
        add(smp, format!("--cpus {cpus}"));
    }
    for d in disks {
        add(&["BLOCK", "BLK_DEV", "VIRTIO_BLK"], format!("--disk {d}"));
        if let crate::boot::disk::DiskSpec::New { fs: Some(fs), .. } = d {
            let fs_opts: &[&str] = match fs.as_str() {
                "ext2" | "ext3" | "ext4" => &["EXT4_FS"],
                "xfs" => &["XFS_FS"],
                "btrfs" => &["BTRFS_FS"],
                "vfat" => &["VFAT_FS", "NLS_CODEPAGE_437", "NLS_ISO8859_1"],
                _ => &[],
            };
            add(fs_opts, format!("--disk {d}"));
        }
    }
    out
}

/// A repro's declared options (all `=y`).
pub(crate) fn repro_fragment(repro: &str, options: &[String]) -> Vec<Request> {
    options
        .iter()
        .map(|name| Request { name: name.clone(), value: Value::Y, origin: Origin::Repro(repro.to_owned()) })
        .collect()
}

/// A user fragment file's requests.
pub(crate) fn parse_fragment(text: &str, file: &str) -> Result<Vec<Request>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with("# CONFIG_")) {
            continue;
        }
        let (name, value) =
            parse_line(trimmed).ok_or_else(|| format!("{file}:{}: not a config line: {trimmed}", i + 1))?;
        out.push(Request { name, value, origin: Origin::Fragment(file.to_owned()) });
    }
    Ok(out)
}

fn render(name: &str, value: &Value) -> String {
    match value {
        Value::N => format!("# CONFIG_{name} is not set"),
        v => format!("CONFIG_{name}={v}"),
    }
}

/// `base` with every requested option set (later requests win): the
/// option's old lines are removed and the request appended, ready for
/// `make olddefconfig`.
pub(crate) fn merge(base: &str, requests: &[Request]) -> String {
    let mut wanted: BTreeMap<&str, &Value> = BTreeMap::new();
    for r in requests {
        wanted.insert(&r.name, &r.value);
    }
    let mut out: String = base
        .lines()
        .filter(|l| parse_line(l).is_none_or(|(name, _)| !wanted.contains_key(name.as_str())))
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str("# krepro: requested options\n");
    for r in requests {
        if wanted.get(r.name.as_str()) == Some(&&r.value) {
            // Write each option once, at its last request.
            wanted.remove(r.name.as_str());
            out.push_str(&render(&r.name, &r.value));
            out.push('\n');
        }
    }
    out
}

/// A requested option that the final config does not have as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Lost {
    pub request: Request,
    /// What the final config has (N when absent).
    pub got: Value,
}

/// The requests the final config does not honour. `=y` is honoured by y
/// only, `=m` by m or y, `=n` by absence.
pub(crate) fn check(final_config: &BTreeMap<String, Value>, requests: &[Request]) -> Vec<Lost> {
    let mut last: BTreeMap<&str, &Request> = BTreeMap::new();
    for r in requests {
        last.insert(&r.name, r);
    }
    let mut lost = Vec::new();
    for r in requests {
        if !std::ptr::eq(last[r.name.as_str()], r) {
            continue;
        }
        let got = final_config.get(&r.name).cloned().unwrap_or(Value::N);
        let ok = match (&r.value, &got) {
            (Value::M, Value::Y) => true,
            (want, got) => want == got,
        };
        if !ok {
            lost.push(Lost { request: r.clone(), got });
        }
    }
    lost
}

/// Why an option did not survive, from the tree's Kconfig files (those
/// of `arch` under arch/): its `depends on` lines (and enclosing `if`
/// blocks), with the symbols among them that the final config does not
/// have.
pub(crate) fn explain(source: &Path, arch: Arch, name: &str, final_config: &BTreeMap<String, Value>) -> String {
    let index = super::kindex::Index::read(source, arch);
    let Some(entry) = index.entries.get(name) else { return "this tree has no such option".to_owned() };
    let mut deps = entry.depends.clone();
    if deps.is_empty() {
        return "its Kconfig entry has no 'depends on' (a choice, a select, or a menu that is off)".to_owned();
    }
    deps.sort();
    deps.dedup();
    let mut off: Vec<String> = entry
        .depends_on()
        .into_iter()
        .filter(|s| !matches!(final_config.get(s.as_str()), Some(Value::Y | Value::M)))
        .collect();
    off.sort();
    let mut text = format!("depends on {}", deps.join(" && "));
    if !off.is_empty() {
        text.push_str(&format!(" (not set: {})", off.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real .config: Debian's linux-source-6.1, `make ARCH=x86_64
    /// tinyconfig` + krepro's fragment + smoke's, then olddefconfig.
    const TINY_SMOKE_61: &str = include_str!("../../tests/fixtures/config-tiny-smoke-6.1");
    /// The same for arm64: `make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu-
    /// tinyconfig` + krepro's arm64 fragment + smoke's + `--cpus 2`'s,
    /// then olddefconfig, as the builder made it.
    const TINY_SMOKE_61_ARM64: &str = include_str!("../../tests/fixtures/config-tiny-smoke-6.1-arm64");

    fn req(name: &str, value: Value) -> Request {
        Request { name: name.into(), value, origin: Origin::Fragment("f".into()) }
    }

    #[test]
    fn parses_config_lines() {
        assert_eq!(parse_line("CONFIG_PRINTK=y"), Some(("PRINTK".into(), Value::Y)));
        assert_eq!(parse_line("# CONFIG_SMP is not set"), Some(("SMP".into(), Value::N)));
        assert_eq!(parse_line("CONFIG_LOCALVERSION=\"\""), Some(("LOCALVERSION".into(), Value::Raw("\"\"".into()))));
        assert_eq!(parse_line("CONFIG_NR_CPUS=1"), Some(("NR_CPUS".into(), Value::Raw("1".into()))));
        assert_eq!(parse_line("# comment"), None);
    }

    #[test]
    fn merge_replaces_old_lines_and_last_request_wins() {
        let base = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n# a comment\n";
        let merged = merge(
            base,
            &[req("B", Value::Y), req("C", Value::N), req("B", Value::M), req("D", Value::Raw("3".into()))],
        );
        assert_eq!(
            merged,
            "CONFIG_A=y\n# a comment\n# krepro: requested options\n# CONFIG_C is not set\nCONFIG_B=m\nCONFIG_D=3\n"
        );
    }

    #[test]
    fn check_on_a_real_tinyconfig() {
        let cfg = parse_config(TINY_SMOKE_61);
        // What krepro asked for and kconfig kept.
        for name in ["64BIT", "BLK_DEV_INITRD", "SERIAL_8250_CONSOLE", "INET", "VIRTIO_CONSOLE", "PVH"] {
            assert_eq!(cfg.get(name), Some(&Value::Y), "{name}");
        }
        let lost = check(
            &cfg,
            &[
                req("PRINTK", Value::Y),
                req("MODULES", Value::Y),
                req("NO_SUCH_OPTION", Value::Y),
                req("SMP", Value::N),
                req("INET", Value::M),
            ],
        );
        let names: Vec<&str> = lost.iter().map(|l| l.request.name.as_str()).collect();
        assert_eq!(names, ["MODULES", "NO_SUCH_OPTION"]);
        assert_eq!(lost[0].got, Value::N);
    }

    #[test]
    fn fragments_parse_and_reject_junk() {
        let f = parse_fragment("# net\nCONFIG_NET=y\n# CONFIG_IPV6 is not set\n\n", "net.config").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].value, Value::N);
        assert_eq!(f[1].origin, Origin::Fragment("net.config".into()));
        assert_eq!(parse_fragment("NET=y\n", "x").unwrap_err(), "x:1: not a config line: NET=y");
    }

    #[test]
    fn explains_from_kconfig_entries() {
        // A help paragraph that reads like a dependency is help.
        let text = "if HYPERVISOR_GUEST\nconfig PARAVIRT\n\tbool \"x\"\nconfig KVM_GUEST\n\tbool \"KVM\"\n\tdepends on PARAVIRT\n\tselect X\n\thelp\n\t  depends on nothing\nendif\nconfig OTHER\n\tdepends on KVM_GUEST\n";
        assert_eq!(
            super::super::kindex::symbols("PCI && (X86_64 || !COMPILE_TEST) && m"),
            ["PCI", "X86_64", "COMPILE_TEST"]
        );

        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("arch/x86")).unwrap();
        std::fs::write(dir.path().join("arch/x86/Kconfig"), text).unwrap();
        let cfg = parse_config("CONFIG_PARAVIRT=y\n");
        assert_eq!(
            explain(dir.path(), Arch::X86_64, "KVM_GUEST", &cfg),
            "depends on HYPERVISOR_GUEST && PARAVIRT (not set: HYPERVISOR_GUEST)"
        );
        assert_eq!(explain(dir.path(), Arch::X86_64, "NOPE", &cfg), "this tree has no such option");
        // Another arch's Kconfig is not read: arm64 has its own PARAVIRT.
        std::fs::create_dir_all(dir.path().join("arch/arm64")).unwrap();
        std::fs::write(dir.path().join("arch/arm64/Kconfig"), "config PARAVIRT\n\tbool \"x\"\n").unwrap();
        assert_eq!(explain(dir.path(), Arch::Aarch64, "KVM_GUEST", &cfg), "this tree has no such option");
        assert_eq!(
            explain(dir.path(), Arch::Aarch64, "PARAVIRT", &cfg),
            "its Kconfig entry has no 'depends on' (a choice, a select, or a menu that is off)"
        );
        assert_eq!(
            explain(dir.path(), Arch::X86_64, "PARAVIRT", &cfg),
            "depends on HYPERVISOR_GUEST (not set: HYPERVISOR_GUEST)"
        );
    }

    #[test]
    fn boot_flags_ask_for_smp_and_block_devices() {
        assert!(boot_fragment(Arch::X86_64, 1, &[]).is_empty());
        let disks = ["new:64M:ext4".parse().unwrap(), "/tmp/x.img".parse().unwrap()];
        let f = boot_fragment(Arch::X86_64, 2, &disks);
        let names: Vec<(&str, String)> = f.iter().map(|r| (r.name.as_str(), r.origin.to_string())).collect();
        assert_eq!(
            names,
            [
                ("SMP", "--cpus 2 needs it".to_owned()),
                ("X86_MPPARSE", "--cpus 2 needs it".into()),
                ("BLOCK", "--disk new:64M:ext4 needs it".into()),
                ("BLK_DEV", "--disk new:64M:ext4 needs it".into()),
                ("VIRTIO_BLK", "--disk new:64M:ext4 needs it".into()),
                ("EXT4_FS", "--disk new:64M:ext4 needs it".into()),
                ("BLOCK", "--disk /tmp/x.img needs it".into()),
                ("BLK_DEV", "--disk /tmp/x.img needs it".into()),
                ("VIRTIO_BLK", "--disk /tmp/x.img needs it".into()),
            ]
        );
        assert!(f.iter().all(|r| r.origin.is_fatal()));
        // arm64 is always SMP and has no MP table.
        let f = boot_fragment(Arch::Aarch64, 2, &disks[1..]);
        let names: Vec<(&str, String)> = f.iter().map(|r| (r.name.as_str(), r.origin.to_string())).collect();
        assert_eq!(
            names,
            [
                ("SMP", "--cpus 2 needs it".to_owned()),
                ("BLOCK", "--disk /tmp/x.img needs it".into()),
                ("BLK_DEV", "--disk /tmp/x.img needs it".into()),
                ("VIRTIO_BLK", "--disk /tmp/x.img needs it".into()),
            ]
        );
    }

    #[test]
    fn krepro_fragment_marks_what_is_essential() {
        let f = krepro_fragment(Arch::X86_64);
        assert!(f.iter().any(|r| r.name == "SERIAL_8250_CONSOLE" && r.origin.is_fatal()));
        assert!(f.iter().any(|r| r.name == "VIRTIO_CONSOLE" && !r.origin.is_fatal()));
        // -O2 over tinyconfig's -Os, both halves of the choice asked for.
        let opt = |name: &str| f.iter().find(|r| r.name == name).map(|r| (r.value.clone(), r.origin.is_fatal()));
        assert_eq!(opt("CC_OPTIMIZE_FOR_PERFORMANCE"), Some((Value::Y, false)));
        assert_eq!(opt("CC_OPTIMIZE_FOR_SIZE"), Some((Value::N, false)));
        let smoke = repro_fragment("smoke", &["PROC_FS".into(), "NET".into(), "INET".into()]);
        assert!(smoke.iter().all(|r| r.origin == Origin::Repro("smoke".into()) && r.origin.is_fatal()));
    }

    #[test]
    fn krepro_fragment_per_arch() {
        let names = |arch, fatal: bool| -> Vec<String> {
            krepro_fragment(arch).into_iter().filter(|r| r.origin.is_fatal() == fatal).map(|r| r.name).collect()
        };
        assert_eq!(
            names(Arch::Aarch64, true),
            [
                "64BIT",
                "BLK_DEV_INITRD",
                "RD_GZIP",
                "BINFMT_ELF",
                "PROC_FS",
                "TTY",
                "PRINTK",
                "SERIAL_AMBA_PL011",
                "SERIAL_AMBA_PL011_CONSOLE",
                "ARM_PSCI_FW"
            ]
        );
        let arm_optional = names(Arch::Aarch64, false);
        for name in ["VIRTIO_CONSOLE", "VIRTIO_PCI", "PCI", "PCI_HOST_GENERIC", "DEVTMPFS", "SYSFS"] {
            assert!(arm_optional.iter().any(|n| n == name), "{name}");
        }
        for name in names(Arch::Aarch64, true).iter().chain(&arm_optional) {
            assert!(!name.starts_with("X86_") && !name.starts_with("SERIAL_8250"), "{name}");
            assert!(
                !["PVH", "PARAVIRT", "KVM_GUEST", "HYPERVISOR_GUEST", "DEVPORT"].contains(&name.as_str()),
                "{name}"
            );
        }
        let x86: Vec<String> = krepro_fragment(Arch::X86_64).into_iter().map(|r| r.name).collect();
        assert!(x86.iter().all(|n| !n.contains("AMBA") && !n.starts_with("ARM_")), "{x86:?}");
        assert!(x86.iter().any(|n| n == "PVH") && x86.iter().any(|n| n == "X86_IOPL_IOPERM"));
    }

    /// Every option krepro asks for on arm64 survives olddefconfig on a
    /// real tinyconfig: none is dropped by a dependency the fragment forgot.
    #[test]
    fn the_arm64_fragment_survives_a_real_tinyconfig() {
        assert!(TINY_SMOKE_61_ARM64.contains("\n# Linux/arm64 6.1.192 Kernel Configuration\n"));
        let cfg = parse_config(TINY_SMOKE_61_ARM64);
        let mut reqs = krepro_fragment(Arch::Aarch64);
        reqs.extend(repro_fragment("smoke", &["PROC_FS".into(), "NET".into(), "INET".into()]));
        reqs.extend(boot_fragment(Arch::Aarch64, 2, &[]));
        assert_eq!(check(&cfg, &reqs), []);
    }
}
