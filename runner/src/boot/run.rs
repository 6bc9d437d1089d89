//! One boot: qemu under a guard, the console read live, the verdict taken
//! from every channel, and the outcome decided.
//!
//! A command makes one [`Plan`] (what every boot shares: the session
//! checks the flags once and fills it in), one [`Bootable`] per kernel
//! (the checked image, its entry, the initrd with that kernel's modules),
//! then calls [`run`] once per boot.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use repros::protocol::{Kind, Report};
use serde::Serialize;

use super::classify::{ConsoleScan, Crash, CrashKind, LineKind};
use super::disk::{self, DiskSpec};
use super::log::{ConsoleLog, LogDir};
use super::outcome::Outcome;
use super::qemu::{self, Accel, AccelChoice, Machine, QemuParams};
use super::BootError;
use crate::host::cache::Cache;
use crate::host::spawn::{Cmd, Line, Stream};
use crate::image::kernel::{self, Kernel, KernelError};
use crate::image::vmlinux;
use crate::initrd::extras::Extras;
use rustix::fd::OwnedFd;

/// Under KVM, a guest that prints nothing this long is taken as a KVM that
/// does not work (a real KVM prints the first kernel line in well under 1 s).
pub(crate) const KVM_SILENCE: Duration = Duration::from_secs(10);
/// After the verdict, how long qemu gets to exit by itself.
const VERDICT_GRACE: Duration = Duration::from_secs(5);
/// After qemu exits, how long the console reader gets to hand over the
/// last lines (the verdict, the panic).
const DRAIN: Duration = Duration::from_secs(2);
/// With `--duration` (no verdict comes while the program runs), how long
/// after a crash's first line the boot goes on: the kernel's report is
/// printed in well under a second, even under TCG.
const CRASH_GRACE: Duration = Duration::from_secs(5);
/// After `Kernel panic - not syncing`, how long the boot goes on: the
/// kernel prints its last lines and stops (or resets: a microvm entered
/// through a bzImage then faults in its reset path for as long as it is
/// let, and qemu never exits).
const PANIC_GRACE: Duration = Duration::from_secs(3);
/// How often the run loop wakes up to check the clock and Ctrl-C.
const TICK: Duration = Duration::from_millis(50);

/// What every boot of one command shares, whatever the kernel.
#[derive(Clone, Debug)]
pub struct Plan {
    pub qemu: PathBuf,
    /// krepro's initrd (init and nothing else).
    pub initrd: PathBuf,
    pub repro: String,
    /// The user's kernel command line words: last, after krepro's own
    /// ([`qemu::Cmdline`]).
    pub append: Vec<String>,
    /// `--console quiet`.
    pub quiet: bool,
    /// Seconds the guest gives an `--exec` program (`--guest-timeout`).
    pub guest_timeout: Option<u64>,
    pub timeout: Duration,
    pub accel: AccelChoice,
    /// The KVM device to try (`/dev/kvm`).
    pub kvm_device: PathBuf,
    /// Under KVM, how long a silent guest may take before KVM is taken as
    /// broken ([`KVM_SILENCE`]).
    pub kvm_silence: Duration,
    pub machine: Machine,
    pub entry: EntryChoice,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Block devices, /dev/vda first.
    pub disks: Vec<DiskSpec>,
    /// The user's `--qemu-arg`s, passed after krepro's own.
    pub qemu_args: Vec<String>,
    pub warn_is_crash: bool,
    /// `krepro syz`: the program runs as a syzkaller reproducer for this
    /// long ([`repros::protocol::CMDLINE_DURATION`]), and a crash ends the
    /// boot [`CRASH_GRACE`] after its first line, its report printed.
    pub duration: Option<Duration>,
    /// Kernel command line words the command adds (`krepro syz`:
    /// `oops=panic panic_on_warn=1`), before the user's `--append`.
    pub kernel_words: Vec<String>,
    /// Whether the kernel command line gets [`qemu::speedup_words`]
    /// (`--no-speedups` clears it).
    pub speedups: bool,
    /// --exec, --file and --modules.
    pub extras: Extras,
    pub logs: LogDir,
    pub cache: Cache,
    /// Set by the signal handler (`session::plan` installs it); the run
    /// stops and cleans up when it becomes true.
    pub interrupt: Arc<AtomicBool>,
    /// Whether the channel's modules were said to be loaded (once a command).
    pub said_modules: Arc<AtomicBool>,
}

impl Plan {
    /// A plan with krepro's defaults: microvm, PVH when possible, accel
    /// auto, 256 MiB, 60 s, console logs in the cache.
    pub fn new(qemu: PathBuf, initrd: PathBuf, repro: &str, cache: Cache) -> Plan {
        Plan {
            qemu,
            initrd,
            repro: repro.to_owned(),
            append: Vec::new(),
            quiet: false,
            guest_timeout: None,
            timeout: Duration::from_secs(60),
            accel: AccelChoice::Auto,
            kvm_device: qemu::KVM_DEVICE.into(),
            kvm_silence: KVM_SILENCE,
            machine: Machine::Microvm,
            entry: EntryChoice::Auto,
            memory_mib: 256,
            cpus: 1,
            disks: Vec::new(),
            qemu_args: Vec::new(),
            warn_is_crash: false,
            duration: None,
            kernel_words: Vec::new(),
            speedups: true,
            extras: Extras::default(),
            logs: LogDir::new(cache.logs()),
            cache,
            interrupt: Arc::new(AtomicBool::new(false)),
            said_modules: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes `kernel` (checked) ready to boot: a kernel of the plan's
    /// architecture, its entry picked (the vmlinux taken out once,
    /// cached), the initrd additions packed with its modules. `say` gets
    /// any fallback.
    pub fn target(&self, kernel: &Kernel, say: &mut dyn FnMut(&str)) -> Result<Bootable, BootError> {
        let kernel = kernel.clone();
        let arch = self.machine.arch();
        if kernel.arch != arch {
            return Err(BootError::BadFlag(format!(
                "{} is an {} kernel, but this run boots {arch} guests (--arch {} or --machine {}); one run boots one architecture",
                kernel.path.display(),
                kernel.arch,
                kernel.arch,
                self.machine.name()
            )));
        }
        let boot_image = choose_entry(&kernel, self.entry, &self.cache, say)?;
        let channel = self.machine.channel_modules();
        let members = self.extras.members_for(&kernel, arch, channel, &self.device_modules())?;
        let loaded: Vec<&str> = channel
            .iter()
            .copied()
            .filter(|m| members.iter().any(|x| crate::initrd::modules::holds(&x.path, m)))
            .collect();
        if !loaded.is_empty() && !self.extras.names_modules() && !self.said_modules.swap(true, Ordering::Relaxed) {
            say(&format!(
                "loading {} (modules of this kernel) for the fast virtio-serial channel; --modules none leaves them out",
                loaded.join(", ")
            ));
        }
        let extra_initrd = match members.is_empty() {
            true => Vec::new(),
            false => crate::initrd::pack(&members).map_err(|e| BootError::io("pack the extra initrd", e))?,
        };
        let facts = kernel::config_facts(&kernel);
        // The config beside the kernel tells what it cannot do with what
        // was asked for; the boot goes ahead (the repro decides).
        if self.cpus > 1 && !facts.smp {
            say(&format!(
                "{} has no CONFIG_SMP (its config says): the guest uses one of its {} CPUs",
                kernel.path.display(),
                self.cpus
            ));
        }
        if !self.disks.is_empty() && !facts.virtio_blk {
            say(&format!(
                "{} has no CONFIG_VIRTIO_BLK (its config says): the guest will not see its --disk",
                kernel.path.display()
            ));
        }
        let debug_vmlinux = kernel::debug_vmlinux(&kernel);
        Ok(Bootable {
            debug_vmlinux,
            kernel,
            boot_image,
            acpi: facts.acpi,
            periodic_ticks_only: facts.periodic_ticks_only,
            extra_initrd,
        })
    }

    /// The modules the devices need where the kernel has them as modules:
    /// the virtio transport, virtio_blk and the filesystems of new disks.
    fn device_modules(&self) -> Vec<&str> {
        if self.disks.is_empty() {
            return Vec::new();
        }
        let mut needs = vec![self.machine.bus_module(), "virtio_blk"];
        for d in &self.disks {
            if let DiskSpec::New { fs: Some(fs), .. } = d {
                needs.push(fs.as_str());
            }
        }
        needs
    }
}

/// One kernel, ready to boot.
#[derive(Clone, Debug)]
pub struct Bootable {
    pub kernel: Kernel,
    /// What `-kernel` gets: the PVH vmlinux, or the bzImage.
    pub boot_image: BootImage,
    /// Whether the kernel has ACPI (unknown: yes).
    pub acpi: bool,
    /// Whether its config is known to tick periodically only (see
    /// [`kernel::ConfigFacts`]).
    pub periodic_ticks_only: bool,
    /// A gzip'd cpio appended to the initrd (--exec, --file, --modules);
    /// empty for none.
    pub extra_initrd: Vec<u8>,
    /// The kernel's vmlinux with debug info, if there is one: crash
    /// titles name inlined functions ([`kernel::debug_vmlinux`]).
    pub debug_vmlinux: Option<PathBuf>,
}

/// The image a boot starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootImage {
    /// The vmlinux taken out of the bzImage (or built beside it), entered through PVH.
    Pvh(PathBuf),
    /// The bzImage itself (emulated decompression first).
    BzImage,
    /// An arm64 Image (qemu's loader unpacks a gzip'd one first).
    Image,
}

impl BootImage {
    pub(crate) fn entry(&self) -> Entry {
        match self {
            BootImage::Pvh(_) => Entry::Pvh,
            BootImage::BzImage => Entry::Bzimage,
            BootImage::Image => Entry::Image,
        }
    }
}

/// How a boot entered the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Entry {
    Pvh,
    Bzimage,
    Image,
}

/// `--entry`: how the kernel is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EntryChoice {
    /// x86_64: PVH when the kernel has it, else the bzImage (saying why);
    /// aarch64: the Image, as its boot protocol has it
    Auto,
    /// PVH or an error
    Pvh,
    /// the bzImage, as a bootloader would
    Bzimage,
}

/// Picks the boot image for `kernel`; with `auto`, a kernel without the
/// PVH path boots its bzImage and `say` gets why.
pub(crate) fn choose_entry(
    kernel: &Kernel,
    choice: EntryChoice,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<BootImage, BootError> {
    if kernel.arch == crate::image::arch::Arch::Aarch64 {
        return match choice {
            EntryChoice::Auto => Ok(BootImage::Image),
            EntryChoice::Pvh | EntryChoice::Bzimage => Err(BootError::BadFlag(format!(
                "--entry {}: {} is an arm64 Image, which has one entry (use --entry auto)",
                if choice == EntryChoice::Pvh { "pvh" } else { "bzimage" },
                kernel.path.display()
            ))),
        };
    }
    if kernel::is_elf(&kernel.path) {
        // A vmlinux (checked: it has the PVH note) boots only through PVH.
        return match choice {
            EntryChoice::Bzimage => Err(BootError::BadFlag(format!(
                "--entry bzimage: {} is a vmlinux, which boots through PVH (use --entry auto)",
                kernel.path.display()
            ))),
            EntryChoice::Auto | EntryChoice::Pvh => Ok(BootImage::Pvh(kernel.path.clone())),
        };
    }
    match choice {
        EntryChoice::Bzimage => Ok(BootImage::BzImage),
        // Such a kernel resets at once when entered through PVH, before it
        // prints a line: found on 6.1's KASAN builds.
        EntryChoice::Auto if kernel::config_facts(kernel).kasan => {
            say("booting the bzImage: a KASAN kernel does not boot through PVH");
            Ok(BootImage::BzImage)
        }
        EntryChoice::Pvh => vmlinux::pvh_vmlinux(&cache.vmlinux(), &kernel.path)
            .map(BootImage::Pvh)
            .map_err(|e| BootError::BadFlag(format!("--entry pvh: {}: {e}", kernel.path.display()))),
        EntryChoice::Auto => match vmlinux::pvh_vmlinux(&cache.vmlinux(), &kernel.path) {
            Ok(p) => Ok(BootImage::Pvh(p)),
            // The kernel's own decompressor would fail on it too, and halt
            // the guest (a false hang) or overrun its memory.
            Err(e @ vmlinux::PvhError::Decompress(_)) => Err(BootError::Kernel(KernelError::NotAKernel {
                path: kernel.path.clone(),
                why: format!("{e} (--entry bzimage boots it anyway)"),
            })),
            Err(e) => {
                say(&format!("booting the bzImage (no PVH fast path: {e})"));
                Ok(BootImage::BzImage)
            }
        },
    }
}

/// What happens during a boot, in order. The terminal UI, the JSON writer,
/// bisect and the tests all read this stream.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// A faster path is not used (the accelerator, the PVH entry); why.
    Fallback { reason: &'a str },
    /// qemu started.
    QemuStarted { accel: Accel, command: &'a str },
    /// One console line.
    Console(&'a str),
    /// PID 1 started this long after boot.
    InitStarted { boot_ms: u64 },
    /// A kernel splat began.
    Crash(CrashKind),
    /// The console verdict line.
    Verdict(&'a Report<String>),
    /// A line qemu printed on stderr.
    QemuStderr(&'a str),
    /// A line of the guest's bulk output (an --exec program's stdout and
    /// stderr, a repro's prints) over the virtio-serial output port.
    Output(&'a str),
}

/// Which channels carried the verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Channels {
    pub console: bool,
    pub virtio: bool,
    pub debug_exit: bool,
}

/// What a boot found.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub outcome: Outcome,
    pub repro: String,
    pub message: String,
    pub kernel: PathBuf,
    pub kernel_release: Option<String>,
    pub accel: Accel,
    pub machine: Machine,
    pub entry: Entry,
    /// qemu's own lifetime: spawn to exit (wall_ms minus this is krepro's overhead).
    pub qemu_ms: u64,
    /// Host time from qemu's start to the kernel's entry (PID 1's start
    /// line minus boot_to_init_ms). It also holds the boot time the
    /// kernel's own clock misses: until its clocksource runs (and while
    /// it patches its text with interrupts off, 0.3 s of Debian 6.12's
    /// boot under TCG) the printk clock stands still.
    pub qemu_to_kernel_ms: Option<u64>,
    /// Host time from the verdict line to qemu's exit.
    pub verdict_to_exit_ms: Option<u64>,
    pub wall_ms: u64,
    pub boot_to_init_ms: Option<u64>,
    /// Host-measured time from PID 1's start line to its verdict line.
    pub init_to_verdict_ms: Option<u64>,
    pub console_log: PathBuf,
    pub channels: Channels,
    pub qemu_status: Option<i32>,
    pub crash: Option<Crash>,
    pub cpus: u32,
    /// The `--disk`s, in order (/dev/vda first).
    pub disks: Vec<String>,
    /// The user's `--qemu-arg`s: when not empty, the run was customised
    /// beyond what krepro knows (`customised` says so).
    pub qemu_args: Vec<String>,
    pub customised: bool,
    /// The whole kernel command line the guest got.
    pub cmdline: String,
}

/// Boots `target` once (run `run_index` of `--runs N`; the guest sees
/// `krepro.run=`) and decides the outcome. Under `--accel auto`, a KVM that
/// fails at run time is noticed (qemu's stderr, or a silent guest) and the
/// boot is retried under TCG; a PVH image qemu refuses is taken out of
/// the bzImage again once (a damaged cache entry), then the bzImage is
/// booted instead.
pub fn run(
    plan: &Plan,
    target: &Bootable,
    run_index: u32,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<RunResult, BootError> {
    let started = Instant::now();
    let arch = plan.machine.arch();
    let foreign = || {
        format!(
            "KVM runs only guests of the host's own architecture; this {arch} guest on {} runs under TCG",
            std::env::consts::ARCH
        )
    };
    let mut accel = match plan.accel {
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Kvm if !arch.kvm_capable() => return Err(BootError::KvmUnavailable(foreign())),
        AccelChoice::Kvm => {
            qemu::kvm_usable(&plan.kvm_device).map_err(BootError::KvmUnavailable)?;
            Accel::Kvm
        }
        AccelChoice::Auto if !arch.kvm_capable() => {
            on_event(RunEvent::Fallback { reason: &foreign() });
            Accel::Tcg
        }
        AccelChoice::Auto => {
            match qemu::kvm_usable(&plan.kvm_device)
                .and_then(|()| qemu::kvm_known_broken(&plan.cache).map_or(Ok(()), Err))
            {
                Ok(()) => Accel::Kvm,
                Err(why) => {
                    on_event(RunEvent::Fallback { reason: &format!("{why}; using TCG") });
                    Accel::Tcg
                }
            }
        }
    };
    let mut target = std::borrow::Cow::Borrowed(target);
    let mut pvh_retried = false;
    let mut emulator_faults = 0;
    loop {
        let attempt = match (boot(plan, &target, run_index, accel, started, on_event), &target.boot_image) {
            // A vmlinux booted as itself has no bzImage to fall back to.
            (Err(e @ BootError::QemuFailed { .. }), BootImage::Pvh(image)) if *image == target.kernel.path => {
                return Err(e)
            }
            // qemu refused its flags or the memory (a --qemu-arg, --memory):
            // the bzImage would fare no better, and the image is not to blame.
            (Err(BootError::QemuFailed { status, stderr }), BootImage::Pvh(image))
                if !about_the_image(&stderr, image) =>
            {
                return Err(BootError::QemuFailed { status, stderr })
            }
            (Err(BootError::QemuFailed { status, stderr }), BootImage::Pvh(image)) => {
                let image = image.clone();
                if !pvh_retried && image.starts_with(plan.cache.vmlinux()) {
                    // A cached image qemu cannot load is damaged: make it again, once.
                    pvh_retried = true;
                    let _ = std::fs::remove_file(&image);
                    on_event(RunEvent::Fallback {
                        reason: &format!(
                            "qemu could not boot the cached vmlinux {} ({status}: {stderr}); removed it, taking it out of the bzImage again",
                            image.display()
                        ),
                    });
                    if let Ok(fresh) = vmlinux::pvh_vmlinux(&plan.cache.vmlinux(), &target.kernel.path) {
                        target.to_mut().boot_image = BootImage::Pvh(fresh);
                        continue;
                    }
                }
                on_event(RunEvent::Fallback {
                    reason: &format!("the PVH boot failed (qemu {status}: {stderr}); booting the bzImage"),
                });
                target.to_mut().boot_image = BootImage::BzImage;
                continue;
            }
            (other, _) => other?,
        };
        match attempt {
            Attempt::Done(result) if result.outcome == Outcome::Crash && accel == Accel::Tcg && result.cpus > 1 => {
                let console = std::fs::read_to_string(&result.console_log).unwrap_or_default();
                let Some(why) = super::classify::emulation_fault(&console) else { return Ok(*result) };
                // The emulator's fault is no verdict: boot again.
                emulator_faults += 1;
                if emulator_faults >= EMULATOR_RETRIES {
                    return Err(BootError::EmulatorFault { boots: emulator_faults, why });
                }
                on_event(RunEvent::Fallback { reason: &format!("{why}; booting again") });
            }
            Attempt::Done(result) => return Ok(*result),
            Attempt::KvmBroken(why) if plan.accel == AccelChoice::Auto => {
                qemu::remember_kvm_broken(&plan.cache, &why);
                on_event(RunEvent::Fallback { reason: &format!("KVM failed at run time ({why}); retrying under TCG") });
                accel = Accel::Tcg;
            }
            Attempt::KvmBroken(why) => return Err(BootError::KvmFailed(why)),
        }
    }
}

/// Whether qemu's complaint (it exited before the kernel printed) is about
/// the kernel image it was given: it names the image or "kernel" (qemu's
/// "could not load kernel", "Error loading uncompressed kernel without
/// PVH ELF Note"), rather than a flag or the memory.
fn about_the_image(stderr: &str, image: &Path) -> bool {
    stderr.contains(&*image.to_string_lossy()) || stderr.to_lowercase().contains("kernel")
}

/// Boots in a row the emulator may fault in before the run stops (exit
/// 128): one is a rare race; three is a broken emulator.
const EMULATOR_RETRIES: u32 = 3;

enum Attempt {
    Done(Box<RunResult>),
    KvmBroken(String),
}

fn boot(
    plan: &Plan,
    target: &Bootable,
    run_index: u32,
    accel: Accel,
    started: Instant,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<Attempt, BootError> {
    let scratch =
        tempfile::Builder::new().prefix("krepro-").tempdir().map_err(|e| BootError::io("create a temp dir", e))?;
    let verdict_file = scratch.path().join("verdict");
    let log = plan
        .logs
        .create(&format!("{}-{}", plan.repro, accel.name()))
        .map_err(|e| BootError::io(format!("create a console log in {}", plan.logs.dir.display()), e))?;

    let initrd = if target.extra_initrd.is_empty() {
        plan.initrd.clone()
    } else {
        let combined = scratch.path().join("initrd.cpio.gz");
        let mut bytes =
            std::fs::read(&plan.initrd).map_err(|e| BootError::io(format!("read {}", plan.initrd.display()), e))?;
        bytes.extend_from_slice(&target.extra_initrd);
        std::fs::write(&combined, bytes).map_err(|e| BootError::io(format!("write {}", combined.display()), e))?;
        combined
    };
    let arch = plan.machine.arch();
    let speedups =
        if plan.speedups { qemu::speedup_words(arch, pit_can_tick(accel, plan.cpus, target)) } else { Vec::new() };
    let cmdline = qemu::Cmdline {
        arch,
        repro: &plan.repro,
        run: run_index,
        deadline_ms: plan.timeout.as_millis(),
        quiet: plan.quiet,
        guest_timeout: plan.guest_timeout,
        duration_secs: plan.duration.map(|d| d.as_secs()),
        command_words: &plan.kernel_words,
        tsc_early_khz: (plan.machine == Machine::Microvm && accel == Accel::Tcg).then(qemu::host_tsc_khz).flatten(),
        speedups: &speedups,
        user: &plan.append,
    }
    .render();
    let mut extra = disk::qemu_args(&plan.disks, scratch.path(), plan.machine.has_pci())?;
    extra.extend(plan.qemu_args.iter().map(Into::into));
    let output_fifo = scratch.path().join("output");
    let (output_reader, output_writer) = output_fifo_pair(&output_fifo)?;
    let image = match &target.boot_image {
        BootImage::Pvh(p) => p.as_path(),
        BootImage::BzImage | BootImage::Image => target.kernel.path.as_path(),
    };
    let params = QemuParams {
        kernel: image,
        initrd: &initrd,
        cmdline: &cmdline,
        accel,
        machine: plan.machine,
        acpi: target.acpi,
        memory_mib: plan.memory_mib,
        cpus: plan.cpus,
        verdict_file: &verdict_file,
        output_fifo: &output_fifo,
        extra: &extra,
    };
    let cmd =
        Cmd::new(&plan.qemu, qemu::qemu_args(&params), scratch.path()).quiet().contained().read_also(output_reader);
    let command_line = cmd.line().to_owned();
    // Dropping `qemu` kills and reaps it: on every path out of here.
    let mut qemu = cmd.spawn_lines()?;
    let qemu_started = Instant::now();
    on_event(RunEvent::QemuStarted { accel, command: &command_line });

    let mut watch = Watch {
        log,
        scan: ConsoleScan::default(),
        init_at: None,
        verdict_at: None,
        crash_at: None,
        kernel_starts: 0,
        panic_at: None,
        stderr: String::new(),
        open: [true; 3],
        warn_is_crash: plan.warn_is_crash,
        output_writer: Some(output_writer),
    };
    let mut timed_out = false;
    let status = loop {
        if let Ok(line) = qemu.recv_timeout(TICK) {
            if let Some(failure) = watch.line(line, on_event) {
                if accel == Accel::Kvm && qemu::is_kvm_failure(&failure) {
                    return Ok(Attempt::KvmBroken(failure.trim().to_owned()));
                }
            }
        }
        if plan.interrupt.load(Ordering::SeqCst) {
            return Err(BootError::Interrupted);
        }
        if let Some(status) = qemu.try_wait().map_err(|e| BootError::io("wait for qemu", e))? {
            // Take what the readers still hold: the console's last lines
            // matter most (the verdict, the panic), then the guest's output
            // still in the FIFO, then why qemu failed.
            let deadline = Instant::now() + DRAIN;
            while watch.open.iter().any(|o| *o) && Instant::now() < deadline {
                match qemu.recv_timeout(TICK) {
                    Ok(line) => {
                        watch.line(line, on_event);
                    }
                    Err(RecvTimeoutError::Disconnected) => watch.open = [false; 3],
                    Err(RecvTimeoutError::Timeout) => {}
                }
            }
            break Some(status);
        }
        let elapsed = qemu_started.elapsed();
        if accel == Accel::Kvm && watch.scan.lines == 0 && elapsed > plan.kvm_silence {
            return Ok(Attempt::KvmBroken(format!("no console output within {} s", plan.kvm_silence.as_secs_f64())));
        }
        if watch.verdict_at.is_some_and(|t| t.elapsed() > VERDICT_GRACE) {
            break None; // the verdict stands; qemu did not power off
        }
        if plan.duration.is_some() && watch.crash_at.is_some_and(|t| t.elapsed() > CRASH_GRACE) {
            break None; // the crash is the verdict; the kernel lives on
        }
        if watch.panic_at.is_some_and(|t| t.elapsed() > PANIC_GRACE) {
            break None; // the kernel is dead
        }
        if watch.kernel_starts > 1 {
            // The guest reset without qemu exiting (microvm entered through
            // a bzImage comes back through its firmware): this boot is over.
            break None;
        }
        if elapsed > plan.timeout {
            timed_out = true;
            break None;
        }
    };
    drop(qemu); // kills qemu if it is still running
    let qemu_ended = Instant::now();
    let Watch { log, scan, init_at, verdict_at, stderr, .. } = watch;
    let console_log = match log.finish() {
        Ok(path) => path,
        // The verdict may be right, but its evidence is lost: a full disk
        // stops the run (a bisect resumes once space is freed).
        Err((path, e)) if crate::host::usage::is_disk_full(&e) => {
            return Err(BootError::NoSpace(crate::host::usage::disk_full(path.parent().unwrap_or(&path), None)));
        }
        Err((path, e)) => return Err(BootError::io(format!("write the console log {}", path.display()), e)),
    };

    let qemu_status = status.and_then(|s| s.code());
    let virtio = std::fs::read_to_string(&verdict_file).ok();
    let virtio = virtio.as_deref().and_then(Report::parse_key_values);
    // Only isa-debug-exit makes qemu's status a verdict: elsewhere (arm64)
    // qemu exits 0 on power-off, and any other status is qemu's own.
    let exit_kind = qemu_status.filter(|_| plan.machine.arch().has_debug_exit()).and_then(Kind::from_qemu_status);

    if scan.lines == 0 && !timed_out && exit_kind.is_none() && qemu_status != Some(0) {
        // qemu never got a kernel to print anything: its own failure.
        let status = status.map_or_else(|| "killed".to_owned(), |s| s.to_string());
        return Err(BootError::QemuFailed { status, stderr: last_lines(&stderr, 3) });
    }

    // Inline frames from the kernel's debug info, when it has some: only
    // for a crash, and once per boot.
    let symbolizer = target
        .debug_vmlinux
        .as_deref()
        .filter(|_| scan.crash.is_some() || (plan.warn_is_crash && scan.warning.is_some()))
        .and_then(super::symbolize::Symbolizer::new);
    let symbolize = |lines: &[String]| symbolizer.as_ref().map_or_else(|| lines.to_vec(), |s| s.lines(lines));
    let counted = scan
        .counted_crash(plan.warn_is_crash, symbolizer.as_ref().map(|_| &symbolize as &super::classify::Symbolize<'_>));
    let obs = Observations {
        console: scan.verdict.as_ref().map(|r| (r.kind, r.repro.as_str(), r.message.as_str())),
        virtio: virtio.as_ref().map(|r| (r.kind, r.repro, r.message)),
        debug_exit: exit_kind,
        crash: counted.as_ref(),
        timed_out,
        timeout: plan.timeout,
        init_started: scan.boot_to_init_ms.is_some(),
        console_lines: scan.lines,
        memory_mib: plan.memory_mib,
        arch: plan.machine.arch(),
    };
    let (outcome, message) = decide(&obs);
    let channels =
        Channels { console: obs.console.is_some(), virtio: obs.virtio.is_some(), debug_exit: obs.debug_exit.is_some() };
    let repro = obs.console.or(obs.virtio).map_or(plan.repro.as_str(), |v| v.1).to_owned();
    let crash = obs.crash.cloned();
    drop(scratch);
    Ok(Attempt::Done(Box::new(RunResult {
        outcome,
        repro,
        message,
        kernel: target.kernel.path.clone(),
        kernel_release: target.kernel.release.clone(),
        accel,
        machine: plan.machine,
        entry: target.boot_image.entry(),
        qemu_ms: qemu_ended.duration_since(qemu_started).as_millis() as u64,
        qemu_to_kernel_ms: init_at.zip(scan.boot_to_init_ms).and_then(|(at, boot_ms)| {
            at.duration_since(qemu_started).checked_sub(Duration::from_millis(boot_ms)).map(|d| d.as_millis() as u64)
        }),
        verdict_to_exit_ms: verdict_at.map(|v| qemu_ended.saturating_duration_since(v).as_millis() as u64),
        wall_ms: started.elapsed().as_millis() as u64,
        boot_to_init_ms: scan.boot_to_init_ms,
        init_to_verdict_ms: init_at.zip(verdict_at).map(|(i, v)| v.saturating_duration_since(i).as_millis() as u64),
        console_log,
        channels,
        qemu_status,
        crash,
        cpus: plan.cpus,
        disks: plan.disks.iter().map(ToString::to_string).collect(),
        qemu_args: plan.qemu_args.clone(),
        customised: !plan.qemu_args.is_empty(),
        cmdline,
    })))
}

/// Whether the PIT can be the guest's clock event device in place of the
/// local APIC timer (`nolapic_timer`, a TCG speedup): one CPU, a kernel
/// that ticks periodically only, and no ACPI. With ACPI the kernel sets
/// up its interrupts from the MADT and, on microvm, never routes the
/// PIT's IRQ 0 as the timer (no "..TIMER:" line at boot): with the APIC
/// timer off nothing ticks, and the first sleep in the guest never ends.
/// Half of x86_64_defconfig (ACPI, HZ_PERIODIC, no HIGH_RES_TIMERS) hung
/// so in every boot.
fn pit_can_tick(accel: Accel, cpus: u32, target: &Bootable) -> bool {
    accel == Accel::Tcg && cpus == 1 && target.periodic_ticks_only && !target.acpi
}

/// The FIFOs of qemu's `pipe` chardev for the guest's output port
/// (`<base>.out`, which qemu writes, and `<base>.in`, which it reads and
/// nobody writes), and our ends of `<base>.out`: the reader, and a writer
/// that keeps a read from ending before qemu has opened its end.
/// Through a FIFO a guest that prints faster than we read waits instead
/// of filling memory: qemu stops taking from the virtio-serial port.
fn output_fifo_pair(base: &Path) -> Result<(std::fs::File, OwnedFd), BootError> {
    use rustix::fs::{FileType, Mode, OFlags, CWD};
    let fifo = |suffix: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let (out, input) = (fifo(".out"), fifo(".in"));
    for path in [&out, &input] {
        rustix::fs::mknodat(CWD, path, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| BootError::io(format!("mkfifo {}", path.display()), e.into()))?;
    }
    let open = |flags: OFlags| {
        rustix::fs::open(&out, flags | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| BootError::io(format!("open {}", out.display()), e.into()))
    };
    let reader = open(OFlags::RDONLY)?;
    let writer = open(OFlags::WRONLY)?;
    // Blocking reads from here on; fewer, larger reads with a bigger pipe.
    rustix::fs::fcntl_setfl(&reader, OFlags::empty()).map_err(|e| BootError::io("fcntl the output FIFO", e.into()))?;
    let _ = rustix::pipe::fcntl_setpipe_size(&reader, 1 << 20);
    Ok((std::fs::File::from(reader), writer))
}

/// Whether a console line is a kernel's first: its banner, printed at
/// time zero (a program that prints /proc/version is not a new kernel).
fn kernel_start(line: &str) -> bool {
    let line = line.trim_start_matches('\r');
    let at_zero = line.strip_prefix('[').is_some_and(|l| l.trim_start().starts_with("0.000000]"));
    at_zero && super::classify::kernel_text(line).starts_with("Linux version ")
}

/// Reads what qemu's readers hand over as it comes: the console (the log,
/// the scan, when PID 1 and the verdict showed up), the guest's bulk
/// output, qemu's stderr.
struct Watch {
    log: ConsoleLog,
    scan: ConsoleScan,
    init_at: Option<Instant>,
    verdict_at: Option<Instant>,
    /// When the first splat that counts as a crash began.
    crash_at: Option<Instant>,
    /// When the kernel panicked.
    panic_at: Option<Instant>,
    /// How many times a kernel started (its `Linux version` line).
    kernel_starts: u32,
    stderr: String,
    /// Whether the console, stderr and the output FIFO are still open.
    open: [bool; 3],
    /// Whether a warning counts as a crash (`--warn-is-crash`).
    warn_is_crash: bool,
    /// Our write end of the output FIFO, held until qemu has opened its
    /// own (so that reading it does not end before qemu starts), then
    /// dropped (so that it ends when qemu exits).
    output_writer: Option<OwnedFd>,
}

impl Watch {
    /// Takes one line; a line qemu printed on stderr is returned too (for
    /// the KVM check).
    fn line(&mut self, line: Line, on_event: &mut dyn FnMut(RunEvent<'_>)) -> Option<String> {
        let slot = |s: Stream| match s {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
            Stream::Extra => 2,
        };
        match line {
            Line::Text(Stream::Stdout, text) => {
                // The guest prints: qemu has opened every chardev by now.
                self.output_writer = None;
                self.console(&text, on_event);
            }
            Line::Text(Stream::Extra, text) => {
                self.log.line(&text);
                on_event(RunEvent::Output(&text));
            }
            Line::Text(Stream::Stderr, text) => {
                on_event(RunEvent::QemuStderr(&text));
                self.stderr.push_str(&text);
                self.stderr.push('\n');
                return Some(text);
            }
            Line::End(stream) => self.open[slot(stream)] = false,
        }
        None
    }

    fn console(&mut self, text: &str, on_event: &mut dyn FnMut(RunEvent<'_>)) {
        if kernel_start(text) {
            self.kernel_starts += 1;
        }
        self.log.line(text);
        on_event(RunEvent::Console(text));
        match self.scan.feed(text) {
            LineKind::InitStarted(boot_ms) => {
                self.init_at.get_or_insert_with(Instant::now);
                on_event(RunEvent::InitStarted { boot_ms })
            }
            LineKind::Verdict => {
                self.verdict_at.get_or_insert_with(Instant::now);
                if let Some(v) = &self.scan.verdict {
                    on_event(RunEvent::Verdict(v));
                }
            }
            LineKind::Crash(kind) => {
                if kind != CrashKind::Warning || self.warn_is_crash {
                    self.crash_at.get_or_insert_with(Instant::now);
                }
                if kind == CrashKind::Panic {
                    self.panic_at.get_or_insert_with(Instant::now);
                }
                on_event(RunEvent::Crash(kind))
            }
            LineKind::Plain => {}
        }
    }
}

/// What the channels said, for [`decide`].
#[derive(Debug)]
pub(crate) struct Observations<'a> {
    pub console: Option<(Kind, &'a str, &'a str)>,
    pub virtio: Option<(Kind, &'a str, &'a str)>,
    pub debug_exit: Option<Kind>,
    pub crash: Option<&'a Crash>,
    pub timed_out: bool,
    pub timeout: Duration,
    /// Whether PID 1 printed its start line.
    pub init_started: bool,
    pub console_lines: usize,
    pub memory_mib: u32,
    pub arch: crate::image::arch::Arch,
}

/// The outcome and its message. A `fail` verdict wins over a crash (the
/// repro saw its bug); a crash wins over any other verdict; channels that
/// disagree make an `error`, because then nothing can be trusted.
pub(crate) fn decide(o: &Observations<'_>) -> (Outcome, String) {
    let kinds = [o.console.map(|v| v.0), o.virtio.map(|v| v.0), o.debug_exit];
    let mut seen = kinds.iter().flatten();
    let kind = seen.next().copied();
    if let Some(k) = kind {
        if seen.any(|other| *other != k) {
            let say = |k: Option<Kind>| k.map_or("-", Kind::name);
            return (
                Outcome::Error,
                format!(
                    "verdict channels disagree: console={} virtio={} debug-exit={}",
                    say(kinds[0]),
                    say(kinds[1]),
                    say(kinds[2])
                ),
            );
        }
    }
    // virtio-serial's message first: the console's can lose its end to a
    // kernel line written into it.
    let message = o.virtio.or(o.console).map(|v| v.2.to_owned()).unwrap_or_default();
    match (kind, o.crash) {
        (Some(Kind::Fail), _) => (Outcome::Fail, message),
        (_, Some(crash)) => (Outcome::Crash, crash.line.clone()),
        (Some(Kind::Pass), None) => (Outcome::Pass, message),
        (Some(Kind::Skip), None) => (Outcome::Skip, message),
        (Some(Kind::Error), None) => (Outcome::Error, message),
        (None, None) if o.timed_out => (Outcome::Hang, format!("no verdict within {} s", o.timeout.as_secs())),
        (None, None) if !o.init_started => (Outcome::NoVerdict, early_reset(o)),
        (None, None) => (Outcome::NoVerdict, "the kernel stopped without a verdict or a crash".to_owned()),
    }
}

/// The message for a guest that reset or powered off before PID 1 started.
fn early_reset(o: &Observations<'_>) -> String {
    let printed = match o.console_lines {
        0 => "before printing anything".to_owned(),
        n => format!("after {n} console lines"),
    };
    let other_machine = match o.arch {
        crate::image::arch::Arch::X86_64 => "try --machine pc --entry bzimage",
        crate::image::arch::Arch::Aarch64 => "one built for qemu's virt board: PL011, PSCI, PCI_HOST_GENERIC",
    };
    format!(
        "the guest reset before init started ({printed}); likely causes: too little memory for this kernel and \
         initrd (--memory {} MiB; try --memory 512), a kernel that cannot boot on this machine ({other_machine}), \
         or a fault early in boot (see the console log)",
        o.memory_mib
    )
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// A run result to start a test's own from.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) fn result() -> RunResult {
        RunResult {
            outcome: Outcome::Pass,
            repro: "exec".into(),
            message: String::new(),
            kernel: "/k".into(),
            kernel_release: None,
            accel: Accel::Tcg,
            machine: Machine::Microvm,
            entry: Entry::Pvh,
            qemu_ms: 0,
            qemu_to_kernel_ms: None,
            verdict_to_exit_ms: None,
            wall_ms: 0,
            boot_to_init_ms: None,
            init_to_verdict_ms: None,
            console_log: "/log".into(),
            channels: Channels::default(),
            qemu_status: None,
            crash: None,
            cpus: 1,
            disks: Vec::new(),
            qemu_args: Vec::new(),
            customised: false,
            cmdline: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>() -> Observations<'a> {
        Observations {
            console: None,
            virtio: None,
            debug_exit: None,
            crash: None,
            timed_out: false,
            timeout: Duration::from_secs(20),
            init_started: true,
            console_lines: 40,
            memory_mib: 256,
            arch: crate::image::arch::Arch::X86_64,
        }
    }

    #[test]
    fn only_qemu_complaints_about_the_image_make_the_pvh_boot_fall_back() {
        let image = Path::new("/c/vmlinux/abc.elf");
        assert!(about_the_image("qemu-system-x86_64: Error loading uncompressed kernel without PVH ELF Note", image));
        assert!(about_the_image("qemu: could not load kernel '/c/vmlinux/abc.elf': Bad address", image));
        assert!(!about_the_image("qemu-system-x86_64: -bogus: invalid option", image));
        assert!(!about_the_image(
            "qemu-system-x86_64: cannot set up guest memory 'microvm.ram': Cannot allocate memory",
            image
        ));
    }

    #[test]
    fn the_pit_ticks_in_place_of_the_apic_timer_only_without_acpi() {
        let kernel =
            crate::image::kernel::Kernel { path: "/k".into(), release: None, arch: crate::image::arch::Arch::X86_64 };
        let target = |acpi, periodic_ticks_only| Bootable {
            kernel: kernel.clone(),
            boot_image: BootImage::BzImage,
            acpi,
            periodic_ticks_only,
            extra_initrd: Vec::new(),
            debug_vmlinux: None,
        };
        assert!(pit_can_tick(Accel::Tcg, 1, &target(false, true)));
        assert!(!pit_can_tick(Accel::Tcg, 1, &target(true, true)), "ACPI: IRQ 0 is not the timer");
        assert!(!pit_can_tick(Accel::Tcg, 1, &target(false, false)), "one-shot ticks");
        assert!(!pit_can_tick(Accel::Tcg, 2, &target(false, true)), "two CPUs");
        assert!(!pit_can_tick(Accel::Kvm, 1, &target(false, true)), "KVM needs no calibration");
    }

    #[test]
    fn a_kernel_starts_with_its_banner_at_time_zero_only() {
        let banner = "Linux version 6.12.118+deb12-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP";
        assert!(kernel_start(&format!("[    0.000000] {banner}")));
        assert!(kernel_start(&format!("\r[    0.000000] {banner}\r")));
        // A repro printing /proc/version, raw or through /dev/kmsg.
        assert!(!kernel_start(banner));
        assert!(!kernel_start(&format!("[    1.135000] {banner}")));
    }

    #[test]
    fn any_single_channel_is_enough() {
        let mut o = obs();
        o.debug_exit = Some(Kind::Pass);
        assert_eq!(decide(&o).0, Outcome::Pass);
        let mut o = obs();
        o.virtio = Some((Kind::Skip, "x", "why"));
        assert_eq!(decide(&o), (Outcome::Skip, "why".into()));
        let mut o = obs();
        o.console = Some((Kind::Error, "x", "unknown repro"));
        assert_eq!(decide(&o), (Outcome::Error, "unknown repro".into()));
    }

    #[test]
    fn fail_beats_crash_beats_other_verdicts() {
        let crash = Crash { kind: CrashKind::Oops, line: "Oops: 0002 [#1]".into(), title: None, fatal: true };
        let mut o = obs();
        o.crash = Some(&crash);
        o.console = Some((Kind::Fail, "x", "bug seen"));
        assert_eq!(decide(&o), (Outcome::Fail, "bug seen".into()));
        o.virtio = Some((Kind::Fail, "x", "bug seen at last"));
        assert_eq!(decide(&o), (Outcome::Fail, "bug seen at last".into()), "virtio-serial's message is whole");
        o.virtio = None;
        o.console = Some((Kind::Pass, "x", ""));
        assert_eq!(decide(&o), (Outcome::Crash, "Oops: 0002 [#1]".into()));
        o.console = None;
        o.timed_out = true;
        assert_eq!(decide(&o).0, Outcome::Crash);
    }

    #[test]
    fn nothing_is_hang_or_no_verdict() {
        let mut o = obs();
        assert_eq!(decide(&o).0, Outcome::NoVerdict);
        o.timed_out = true;
        assert_eq!(decide(&o), (Outcome::Hang, "no verdict within 20 s".into()));
    }

    #[test]
    fn a_reset_before_init_names_the_likely_causes() {
        let mut o = obs();
        o.init_started = false;
        o.console_lines = 0;
        let (outcome, message) = decide(&o);
        assert_eq!(outcome, Outcome::NoVerdict);
        assert!(message.starts_with("the guest reset before init started (before printing anything); likely causes: too little memory for this kernel and initrd (--memory 256 MiB"), "{message}");
        o.timed_out = true;
        assert_eq!(decide(&o).0, Outcome::Hang, "a silent guest until the timeout hangs");
    }

    #[test]
    fn disagreeing_channels_are_an_error() {
        let mut o = obs();
        o.console = Some((Kind::Pass, "x", ""));
        o.debug_exit = Some(Kind::Fail);
        assert_eq!(
            decide(&o),
            (Outcome::Error, "verdict channels disagree: console=pass virtio=- debug-exit=fail".into())
        );
    }
}
