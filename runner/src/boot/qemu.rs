//! qemu: finding (or installing) it, choosing the accelerator, and the
//! argument list, built as data by small pure functions.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use repros::protocol;
use serde::Serialize;

use super::BootError;
use crate::host::cache::Cache;
use crate::image::arch::Arch;

/// Flags every boot gets: no devices but the ones asked for, no display, no
/// user config, and a guest reboot (panic=-1) ends qemu instead of rebooting.
pub(crate) const FIXED_FLAGS: &[&str] = &["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"];

/// What `--machine` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MachineChoice {
    /// microvm on x86_64 (no PCI, no firmware to speak of: the fastest
    /// boot), virt on aarch64
    Auto,
    /// x86_64: the classic PC, virtio-serial over PCI
    Pc,
    /// x86_64: PCIe PC
    Q35,
    /// x86_64: qemu's minimal machine, virtio-serial over virtio-mmio
    Microvm,
    /// aarch64: qemu's virt board, PL011 console, virtio-serial over PCI
    Virt,
}

/// The machine a boot used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Machine {
    Pc,
    Q35,
    Microvm,
    Virt,
}

impl Machine {
    /// The machine `--machine` names for a guest of `arch`; an x86 machine
    /// for an arm64 guest (or the other way round) is an error.
    pub(crate) fn from_choice(c: MachineChoice, arch: Arch) -> Result<Machine, BootError> {
        let machine = match (c, arch) {
            (MachineChoice::Auto, Arch::X86_64) | (MachineChoice::Microvm, _) => Machine::Microvm,
            (MachineChoice::Auto, Arch::Aarch64) | (MachineChoice::Virt, _) => Machine::Virt,
            (MachineChoice::Pc, _) => Machine::Pc,
            (MachineChoice::Q35, _) => Machine::Q35,
        };
        if machine.arch() != arch {
            return Err(BootError::BadFlag(format!(
                "--machine {} is an {} machine; this guest is {arch} (use --machine auto)",
                machine.name(),
                machine.arch()
            )));
        }
        Ok(machine)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Machine::Pc => "pc",
            Machine::Q35 => "q35",
            Machine::Microvm => "microvm",
            Machine::Virt => "virt",
        }
    }

    /// The guest architecture the machine exists for.
    pub(crate) fn arch(self) -> Arch {
        match self {
            Machine::Pc | Machine::Q35 | Machine::Microvm => Arch::X86_64,
            Machine::Virt => Arch::Aarch64,
        }
    }

    /// `-machine` and the virtio-serial controller for its bus. microvm gets
    /// its PIT: without one (and tsc_early_khz, see [`host_tsc_khz`])
    /// TCG boots can hang in TSC calibration. Without ACPI (`acpi` false:
    /// the kernel has none), microvm announces its virtio-mmio devices on
    /// the kernel command line instead of in ACPI tables.
    fn flags(self, acpi: bool) -> [&'static str; 4] {
        match (self, acpi) {
            (Machine::Pc, _) => ["-machine", "pc", "-device", "virtio-serial-pci,id=krepro-serial"],
            (Machine::Q35, _) => ["-machine", "q35", "-device", "virtio-serial-pci,id=krepro-serial"],
            (Machine::Microvm, true) => {
                ["-machine", "microvm,pit=on", "-device", "virtio-serial-device,id=krepro-serial"]
            }
            (Machine::Microvm, false) => {
                ["-machine", "microvm,pit=on,acpi=off", "-device", "virtio-serial-device,id=krepro-serial"]
            }
            // virt's virtio-mmio slots would need VIRTIO_MMIO, a module in
            // Debian's arm64 kernels; its PCI host bridge and virtio-pci are
            // built in.
            (Machine::Virt, _) => ["-machine", "virt", "-device", "virtio-serial-pci,id=krepro-serial"],
        }
    }

    /// The modules the virtio-serial channel needs on this machine.
    pub fn channel_modules(self) -> &'static [&'static str] {
        match self {
            Machine::Pc | Machine::Q35 | Machine::Virt => &["virtio_pci", "virtio_console"],
            Machine::Microvm => &["virtio_mmio", "virtio_console"],
        }
    }

    /// The virtio transport module on this machine.
    pub(crate) fn bus_module(self) -> &'static str {
        self.channel_modules()[0]
    }

    /// Whether virtio devices sit on PCI (else virtio-mmio).
    pub(crate) fn has_pci(self) -> bool {
        self != Machine::Microvm
    }
}

/// The host's TSC frequency in kHz, for `tsc_early_khz=` on microvm under
/// TCG (the kernel otherwise calibrates against timers microvm emulates
/// poorly and can hang). From /proc/cpuinfo's "cpu MHz".
pub(crate) fn host_tsc_khz() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = text.lines().find_map(|l| l.strip_prefix("cpu MHz")?.split(':').nth(1)?.trim().parse().ok())?;
    Some((mhz * 1000.0).round() as u64)
}

/// The serial console goes to qemu's stdout, which the runner reads.
pub(crate) const CONSOLE_FLAGS: &[&str] = &["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"];

/// What `--accel` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when /dev/kvm works, else TCG (saying so); a KVM that fails at
    /// run time is noticed within seconds and the boot retried under TCG
    Auto,
    /// KVM or an error
    Kvm,
    /// software emulation
    Tcg,
}

/// The accelerator a boot used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// `-accel` and, where it matters, `-cpu`. Under TCG an arm64 guest
    /// gets `max` (every feature qemu emulates) with the cheap
    /// implementation-defined pointer-authentication algorithm: the
    /// architected QARMA5 costs TCG dearly on every function return.
    fn flags(self, arch: Arch) -> &'static [&'static str] {
        match (self, arch) {
            (Accel::Kvm, _) => &["-accel", "kvm", "-cpu", "host"],
            (Accel::Tcg, Arch::X86_64) => &["-accel", "tcg"],
            (Accel::Tcg, Arch::Aarch64) => &["-accel", "tcg", "-cpu", "max,pauth-impdef=on"],
        }
    }
}

/// The device `--accel kvm|auto` opens.
pub(crate) const KVM_DEVICE: &str = "/dev/kvm";

/// Whether the KVM device (`/dev/kvm`; tests pass another path) can be
/// opened for reading and writing.
pub(crate) fn kvm_usable(device: &Path) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .map(drop)
        .map_err(|e| format!("{}: {e}", device.display()))
}

fn host_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_owned())
}

/// Records in the cache that KVM failed at run time during this host
/// boot: a KVM that fails stays broken until the host reboots, so later
/// runs under `--accel auto` go straight to TCG instead of paying for the
/// failed attempt.
pub(crate) fn remember_kvm_broken(cache: &Cache, why: &str) {
    if let Some(boot) = host_boot_id() {
        let marker = cache.kvm_broken();
        let _ = std::fs::create_dir_all(cache.root());
        let _ = std::fs::write(&marker, format!("{boot}\n{why}\n"));
    }
}

/// Why KVM is taken as broken, if it failed at run time earlier in this host boot.
pub(crate) fn kvm_known_broken(cache: &Cache) -> Option<String> {
    let marker = cache.kvm_broken();
    let text = std::fs::read_to_string(&marker).ok()?;
    let (boot, why) = text.split_once('\n')?;
    (Some(boot) == host_boot_id().as_deref()).then(|| {
        format!(
            "KVM failed at run time earlier since this host booted ({}; delete {} to retry it)",
            why.trim(),
            marker.display()
        )
    })
}

/// What qemu prints on stderr when KVM fails at run time (it then hangs or
/// exits). Seen: "KVM internal error. Suberror: 1", "failed to set MSR".
const KVM_FAILURES: &[&str] = &[
    "KVM internal error",
    "failed to set MSR",
    "kvm run failed",
    "failed to initialize kvm",
    "Could not access KVM kernel module",
    "KVM: entry failed",
];

/// Whether a qemu stderr line says KVM failed.
pub(crate) fn is_kvm_failure(line: &str) -> bool {
    KVM_FAILURES.iter().any(|p| line.contains(p))
}

/// Everything on one boot's kernel command line. [`Cmdline::render`] is
/// the one place it is put together: krepro's words first, the user's
/// `--append` words last, so that a word of the user's wins over one of
/// krepro's (the kernel takes the last of a repeated parameter), e.g.
/// `cryptomgr.notests=0` or `krepro.deadline_ms=5000`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cmdline<'a> {
    pub arch: Arch,
    /// The repro init runs (`exec` for a program).
    pub repro: &'a str,
    /// Which of `--runs N` this boot is.
    pub run: u32,
    /// The host's `--timeout`: racing repros stop before it.
    pub deadline_ms: u128,
    /// `--console quiet`.
    pub quiet: bool,
    /// Seconds the guest gives an `--exec` program.
    pub guest_timeout: Option<u64>,
    /// Seconds an `--exec` program runs as a syzkaller reproducer (`krepro syz`).
    pub duration_secs: Option<u64>,
    /// Words the command adds (`krepro syz`'s `panic_on_warn=1`).
    pub command_words: &'a [String],
    /// The host's TSC rate, for microvm under TCG (see [`host_tsc_khz`]).
    pub tsc_early_khz: Option<u64>,
    /// [`speedup_words`], unless `--no-speedups`.
    pub speedups: &'a [&'static str],
    /// The user's `--append`, last.
    pub user: &'a [String],
}

impl Cmdline<'_> {
    /// The words, in order: the console and reboot on panic (so qemu
    /// exits), then krepro's parameters for init, the guest's timing, the
    /// speed-ups, and the user's words.
    pub(crate) fn words(&self) -> Vec<String> {
        let param = |key: &str, value: &dyn std::fmt::Display| format!("{}{key}={value}", protocol::CMDLINE_PREFIX);
        let mut words = vec![
            format!("console={}", self.arch.console()),
            "panic=-1".to_owned(),
            param(protocol::CMDLINE_REPRO, &self.repro),
            param(protocol::CMDLINE_RUN, &self.run),
            param(protocol::CMDLINE_DEADLINE_MS, &self.deadline_ms),
            // The output port is attached: init waits for the kernel to show it.
            param(protocol::CMDLINE_OUTPUT_PORT, &1),
        ];
        if let Some(secs) = self.guest_timeout {
            words.push(param(protocol::CMDLINE_GUEST_TIMEOUT, &secs));
        }
        if let Some(secs) = self.duration_secs {
            words.push(param(protocol::CMDLINE_DURATION, &secs));
        }
        words.extend(self.command_words.iter().cloned());
        if self.quiet {
            words.push("quiet".to_owned());
        }
        if let Some(khz) = self.tsc_early_khz {
            words.push(format!("tsc_early_khz={khz}"));
        }
        words.extend(self.speedups.iter().map(|w| (*w).to_owned()));
        words.extend(self.user.iter().cloned());
        words
    }

    pub(crate) fn render(&self) -> String {
        self.words().join(" ")
    }
}

/// Kernel command-line words that cut boot time without changing what a
/// repro runs against: they skip boot-time self-checks and probes of
/// hardware the guest does not have. `--no-speedups` leaves them out.
/// Found by sampling the guest's instruction pointer during boots (`cargo
/// xtask bench --profile`); each effect is a median of alternating raw
/// qemu boots here (TCG, 2 cores), and `cargo xtask bench` shows them in
/// the whole run.
///
/// `pit_ticks`: the guest runs under TCG on one CPU, and its kernel is
/// known to tick periodically only (see [`crate::image::kernel::ConfigFacts`]).
pub(crate) fn speedup_words(arch: Arch, pit_ticks: bool) -> Vec<&'static str> {
    // Crypto self-tests run for every algorithm the kernel registers at
    // boot: 500 ms of Debian 6.12's 2.1 s. They test the crypto code, not
    // the bug; `--append cryptomgr.notests=0` brings them back.
    let mut words = vec!["cryptomgr.notests"];
    if arch == Arch::X86_64 {
        // An SMP kernel on one CPU rewrites every LOCK prefix in its text
        // to a NOP at boot, and under TCG each rewrite throws away
        // translated code: 250 ms of Debian 6.12's boot. The prefixes stay;
        // the kernel runs as it would on two CPUs.
        words.push("noreplace-smp");
        // Only ttyS0 exists (microvm and `-nodefaults` pc/q35 have one
        // UART); probing the other three legacy ports costs 30 to 100 ms
        // of port I/O under TCG.
        words.push("8250.nr_uarts=1");
        // TCG's local APIC has no TSC-deadline mode and no CPUID leaf for
        // its frequency, so the kernel calibrates its timer against the
        // PIT and then verifies it, 2 x 100 ms of guest time: 206 ms of a
        // 542 ms builder-kernel boot. nolapic_timer makes the PIT the clock
        // event device instead; a tinyconfig smoke run: 578 -> 364 ms.
        // Only where that changes nothing the guest sees: one CPU (the
        // others would need broadcast ticks) and a kernel that ticks
        // periodically and has no high-res timers, so the PIT never runs
        // one-shot (with one-shot ticks, Debian 6.1's first sleep in the
        // guest never woke), and without ACPI (see `run::pit_can_tick`).
        // Under KVM the APIC timer needs no calibration.
        if pit_ticks {
            words.push("nolapic_timer");
        }
    }
    words
}

/// Everything one boot needs to know.
#[derive(Clone, Debug)]
pub(crate) struct QemuParams<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub cmdline: &'a str,
    pub accel: Accel,
    /// The machine (and with it the guest's architecture).
    pub machine: Machine,
    /// Whether the kernel has ACPI (unknown: assume it does).
    pub acpi: bool,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Where the virtio-serial verdict port is written.
    pub verdict_file: &'a Path,
    /// The base of the FIFO pair the output port's `pipe` chardev uses
    /// (`<base>.in`, `<base>.out`).
    pub output_fifo: &'a Path,
    /// Disk drives and devices, then the user's `--qemu-arg`s, last.
    pub extra: &'a [OsString],
}

/// The full qemu argument list (without the program).
pub(crate) fn qemu_args(p: &QemuParams<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &[&str]| args.extend(a.iter().map(OsString::from));
    push(FIXED_FLAGS);
    let [m, machine, d, controller] = p.machine.flags(p.acpi);
    push(&[m, machine]);
    let arch = p.machine.arch();
    push(p.accel.flags(arch));
    push(&["-m", &p.memory_mib.to_string(), "-smp", &p.cpus.to_string()]);
    push(CONSOLE_FLAGS);
    if arch.has_debug_exit() {
        push(&[
            "-device",
            &format!(
                "isa-debug-exit,iobase={:#x},iosize={:#04x}",
                protocol::DEBUG_EXIT_PORT,
                protocol::DEBUG_EXIT_IOSIZE
            ),
        ]);
    }
    push(&[d, controller]);
    // qemu option values escape a comma by doubling it.
    let verdict = p.verdict_file.to_string_lossy().replace(',', ",,");
    args.extend(["-chardev".into(), format!("file,id=verdict,path={verdict}").into()]);
    args.extend([
        "-device".into(),
        format!("virtserialport,chardev=verdict,name={}", protocol::VIRTIO_PORT_NAME).into(),
    ]);
    let output = p.output_fifo.to_string_lossy().replace(',', ",,");
    args.extend(["-chardev".into(), format!("pipe,id=output,path={output}").into()]);
    args.extend([
        "-device".into(),
        format!("virtserialport,chardev=output,name={}", protocol::OUTPUT_PORT_NAME).into(),
    ]);
    args.extend(["-kernel".into(), p.kernel.into(), "-initrd".into(), p.initrd.into()]);
    args.extend(["-append".into(), p.cmdline.into()]);
    args.extend(p.extra.iter().cloned());
    args
}

/// Finds qemu for `arch`; when it is missing and we are root on a
/// Debian-family system, installs it with apt-get (saying so), else fails
/// with the exact command.
pub(crate) fn find_or_install(arch: Arch, say: &mut dyn FnMut(&str)) -> Result<PathBuf, BootError> {
    crate::host::install::find_or_install(arch.qemu(), arch.qemu_package(), say).map_err(|e| match e {
        crate::host::install::InstallError::Missing { tool, hint } => BootError::QemuMissing { qemu: tool, hint },
        crate::host::install::InstallError::Failed { package, reason } => BootError::QemuInstall { package, reason },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmdline<'a>(speedups: &'a [&'static str], user: &'a [String]) -> Cmdline<'a> {
        Cmdline {
            arch: Arch::X86_64,
            repro: "smoke",
            run: 2,
            deadline_ms: 60_000,
            quiet: false,
            guest_timeout: None,
            duration_secs: None,
            command_words: &[],
            tsc_early_khz: None,
            speedups,
            user,
        }
    }

    #[test]
    fn cmdline_has_console_panic_and_krepros_words_then_the_users() {
        let user = ["krepro.max_uptime_ms=10".to_owned(), "quiet".to_owned()];
        assert_eq!(
            cmdline(&["cryptomgr.notests"], &user).render(),
            "console=ttyS0 panic=-1 krepro.repro=smoke krepro.run=2 krepro.deadline_ms=60000 krepro.output_port=1 \
             cryptomgr.notests krepro.max_uptime_ms=10 quiet"
        );
        let all = Cmdline { quiet: true, guest_timeout: Some(9), tsc_early_khz: Some(2_000_000), ..cmdline(&[], &[]) };
        assert!(all.render().ends_with(" krepro.guest_timeout=9 quiet tsc_early_khz=2000000"), "{}", all.render());
    }

    #[test]
    fn a_users_word_comes_after_every_word_krepro_adds() {
        // Every word krepro can add, with a value or not.
        let speedups = speedup_words(Arch::X86_64, true);
        let syz = ["oops=panic".to_owned(), "panic_on_warn=1".to_owned()];
        let full = Cmdline {
            quiet: true,
            guest_timeout: Some(9),
            duration_secs: Some(150),
            command_words: &syz,
            tsc_early_khz: Some(1),
            ..cmdline(&speedups, &[])
        };
        let ours = full.words();
        assert!(ours.len() >= 16, "{ours:?}");
        assert!(ours.contains(&"krepro.duration=150".to_owned()) && ours.contains(&syz[1]), "{ours:?}");
        for word in &ours {
            // The user's own value for it: the kernel takes the last.
            let key = word.split('=').next().unwrap_or(word);
            let theirs = [format!("{key}=user")];
            let words = Cmdline { user: &theirs, ..full.clone() }.words();
            let mine = words.iter().rposition(|w| w == word).unwrap();
            let user = words.iter().rposition(|w| *w == theirs[0]).unwrap();
            assert!(user > mine && user == words.len() - 1, "{key}: {words:?}");
        }
    }

    #[test]
    fn speedups_fit_the_arch_and_the_ticks() {
        assert_eq!(speedup_words(Arch::X86_64, false), ["cryptomgr.notests", "noreplace-smp", "8250.nr_uarts=1"]);
        assert_eq!(speedup_words(Arch::X86_64, true).last(), Some(&"nolapic_timer"));
        assert_eq!(speedup_words(Arch::Aarch64, true), ["cryptomgr.notests"]);
    }

    #[test]
    fn whole_argument_list_under_tcg() {
        let p = QemuParams {
            kernel: Path::new("/k/bzImage"),
            initrd: Path::new("/t/initrd.gz"),
            cmdline: "console=ttyS0 panic=-1 krepro.repro=smoke",
            accel: Accel::Tcg,
            machine: Machine::Pc,
            acpi: true,
            memory_mib: 256,
            cpus: 2,
            verdict_file: Path::new("/tmp/x/verdict"),
            output_fifo: Path::new("/tmp/x/output"),
            extra: &["-cpu".into(), "max".into()],
        };
        let args: Vec<String> = qemu_args(&p).into_iter().map(|a| a.into_string().unwrap()).collect();
        let want = [
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-machine",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-smp",
            "2",
            "-chardev",
            "stdio,id=console,signal=off",
            "-serial",
            "chardev:console",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-device",
            "virtio-serial-pci,id=krepro-serial",
            "-chardev",
            "file,id=verdict,path=/tmp/x/verdict",
            "-device",
            "virtserialport,chardev=verdict,name=krepro.verdict",
            "-chardev",
            "pipe,id=output,path=/tmp/x/output",
            "-device",
            "virtserialport,chardev=output,name=krepro.output",
            "-kernel",
            "/k/bzImage",
            "-initrd",
            "/t/initrd.gz",
            "-append",
            "console=ttyS0 panic=-1 krepro.repro=smoke",
            "-cpu",
            "max",
        ];
        assert_eq!(args, want);
    }

    #[test]
    fn kvm_gets_the_host_cpu() {
        let p = QemuParams {
            kernel: Path::new("k"),
            initrd: Path::new("i"),
            cmdline: "",
            accel: Accel::Kvm,
            machine: Machine::Microvm,
            acpi: true,
            memory_mib: 128,
            cpus: 1,
            verdict_file: Path::new("v"),
            output_fifo: Path::new("o"),
            extra: &[],
        };
        let args = qemu_args(&p);
        let at = args.iter().position(|a| a == "-machine").unwrap();
        assert_eq!(args[at + 1], "microvm,pit=on");
        let no_acpi = qemu_args(&QemuParams { acpi: false, ..p.clone() });
        assert!(no_acpi.iter().any(|a| a == "microvm,pit=on,acpi=off"));
        assert!(args.iter().any(|a| a == "virtio-serial-device,id=krepro-serial"));
        let at = args.iter().position(|a| a == "-accel").unwrap();
        assert_eq!(&args[at..at + 4], &["-accel", "kvm", "-cpu", "host"].map(OsString::from));
    }

    #[test]
    fn an_arm64_guest_gets_virt_pl011_and_no_debug_exit() {
        let p = QemuParams {
            kernel: Path::new("/k/Image"),
            initrd: Path::new("i"),
            cmdline: &Cmdline { arch: Arch::Aarch64, ..cmdline(&[], &[]) }.render(),
            accel: Accel::Tcg,
            machine: Machine::from_choice(MachineChoice::Auto, Arch::Aarch64).unwrap(),
            acpi: true,
            memory_mib: 256,
            cpus: 1,
            verdict_file: Path::new("v"),
            output_fifo: Path::new("o"),
            extra: &[],
        };
        let args: Vec<String> = qemu_args(&p).into_iter().map(|a| a.into_string().unwrap()).collect();
        let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].as_str();
        assert_eq!(after("-machine"), "virt");
        assert_eq!(after("-cpu"), "max,pauth-impdef=on");
        assert!(after("-append").starts_with("console=ttyAMA0 panic=-1 "), "{args:?}");
        assert!(args.iter().any(|a| a == "virtio-serial-pci,id=krepro-serial"), "{args:?}");
        assert!(!args.iter().any(|a| a.starts_with("isa-debug-exit")), "{args:?}");
        let kvm = qemu_args(&QemuParams { accel: Accel::Kvm, ..p });
        let at = kvm.iter().position(|a| a == "-accel").unwrap();
        assert_eq!(&kvm[at..at + 4], &["-accel", "kvm", "-cpu", "host"].map(OsString::from));
    }

    #[test]
    fn machines_belong_to_one_architecture() {
        assert_eq!(Machine::from_choice(MachineChoice::Auto, Arch::X86_64).unwrap(), Machine::Microvm);
        assert_eq!(Machine::from_choice(MachineChoice::Q35, Arch::X86_64).unwrap(), Machine::Q35);
        let err = Machine::from_choice(MachineChoice::Virt, Arch::X86_64).unwrap_err();
        assert_eq!(err.to_string(), "--machine virt is an aarch64 machine; this guest is x86_64 (use --machine auto)");
        assert!(Machine::from_choice(MachineChoice::Microvm, Arch::Aarch64).is_err());
    }

    #[test]
    fn kvm_failures_are_recognised() {
        assert!(is_kvm_failure("KVM internal error. Suberror: 1"));
        assert!(is_kvm_failure("qemu-system-x86_64: error: failed to set MSR 0x345 to 0x2000"));
        assert!(!is_kvm_failure("qemu-system-x86_64: warning: host doesn't support requested feature"));
    }
}
