//! The boot loop against a fake qemu: a shell script standing in for
//! qemu-system-x86_64 that prints what a real one prints in each failure
//! (KVM internal error, a silent KVM guest, a PVH image it cannot load,
//! an early exit, a guest reset, a hang), so every fallback of
//! `boot::run::run` is tested deterministically and in well under a second
//! each. The cache, the logs and the KVM device are temp files.

// The fake's pid is read back to check it was killed; tests may use std.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use krepro_runner::boot::qemu::{Accel, AccelChoice};
use krepro_runner::boot::run::{self, BootImage, Bootable, Entry, Plan, RunEvent};
use krepro_runner::boot::BootError;
use krepro_runner::host::cache::Cache;
use krepro_runner::image::kernel::Kernel;
use krepro_runner::Outcome;
use repros::protocol::{Kind, Report, StartLine};

/// A temp world: cache, fake qemu, a kernel file, an initrd, a KVM device
/// that opens (a plain file) unless removed.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World { dir: tempfile::tempdir().unwrap() };
        std::fs::write(w.path("initrd.cpio.gz"), b"initrd").unwrap();
        std::fs::write(w.path("bzImage"), b"not booted by the fake").unwrap();
        std::fs::write(w.path("kvm"), b"").unwrap();
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cache(&self) -> Cache {
        Cache::at(self.path("cache"))
    }

    /// A plan whose qemu is `script` (a POSIX sh body; "$@" is qemu's
    /// argument list).
    fn plan(&self, script: &str) -> Plan {
        let qemu = self.path("qemu-system-x86_64");
        // Each start records its pid and its working directory (the boot's
        // scratch dir).
        std::fs::write(&qemu, format!("#!/bin/sh\necho \"$$ $PWD\" >> {}\n{script}\n", self.path("pids").display()))
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&qemu, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut plan = Plan::new(qemu, self.path("initrd.cpio.gz"), "smoke", self.cache());
        plan.kvm_device = self.path("kvm");
        plan.timeout = Duration::from_secs(3);
        plan.kvm_silence = Duration::from_millis(500);
        plan
    }

    fn target(&self, boot_image: BootImage) -> Bootable {
        Bootable {
            kernel: Kernel {
                path: self.path("bzImage"),
                release: Some("6.99.0-fake".into()),
                arch: krepro_runner::image::arch::Arch::X86_64,
            },
            boot_image,
            acpi: true,
            periodic_ticks_only: false,
            extra_initrd: Vec::new(),
            debug_vmlinux: None,
        }
    }

    /// Every fake qemu started so far is gone (killed and reaped), and so
    /// is its scratch dir.
    fn assert_no_fake_left(&self) {
        let pids = std::fs::read_to_string(self.path("pids")).unwrap();
        for line in pids.lines() {
            let (pid, scratch) = line.split_once(' ').unwrap();
            assert!(!Path::new(scratch).exists(), "scratch dir {scratch} left behind");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie would be state Z; a reaped process has no /proc entry
            // (or, rarely, a new process with that pid that is not ours).
            assert!(!stat.contains("qemu-system-x86"), "fake qemu {pid} still exists: {stat}");
        }
    }
}

/// Console lines of a guest that boots and passes.
fn passing_console() -> String {
    let verdict = Report { kind: Kind::Pass, repro: "smoke", message: "all good" };
    let lines = [
        "[    0.000000] Linux version 6.99.0-fake".to_owned(),
        StartLine { boot_ms: 640 }.to_string(),
        format!("{}", verdict.console_line()),
    ];
    lines.iter().map(|l| format!("echo '{l}'\n")).collect()
}

/// The script of a qemu that passes under TCG; `kvm` is what it does when
/// asked for KVM.
fn tcg_passes(kvm: &str) -> String {
    format!("case \"$*\" in *'-accel kvm'*) {kvm} ;; esac\n{}exit {}", passing_console(), Kind::Pass.qemu_status())
}

fn boot(plan: &Plan, target: &Bootable) -> (Result<run::RunResult, BootError>, Vec<String>) {
    let mut events = Vec::new();
    let r = run::run(plan, target, 1, &mut |ev| {
        if let RunEvent::Fallback { reason } = ev {
            events.push(reason.to_owned());
        }
    });
    (r, events)
}

#[test]
fn a_pass_reads_every_line_and_the_exit_status() {
    let w = World::new();
    let mut plan = w.plan(&tcg_passes("exit 99"));
    plan.accel = AccelChoice::Tcg;
    let (r, events) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!(
        (r.outcome, r.message.as_str(), r.accel, r.entry),
        (Outcome::Pass, "all good", Accel::Tcg, Entry::Bzimage)
    );
    assert!(r.channels.console && r.channels.debug_exit && !r.channels.virtio);
    assert_eq!(r.boot_to_init_ms, Some(640));
    assert!(events.is_empty(), "{events:?}");
    assert!(r.console_log.starts_with(w.cache().logs()), "{}", r.console_log.display());
    assert_eq!(std::fs::read_to_string(&r.console_log).unwrap().lines().count(), 3);
    w.assert_no_fake_left();
}

#[test]
fn kvm_internal_error_is_retried_under_tcg_and_remembered() {
    let w = World::new();
    let plan = w.plan(&tcg_passes("echo 'KVM internal error. Suberror: 1' >&2; sleep 30"));
    let (r, events) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!((r.outcome, r.accel), (Outcome::Pass, Accel::Tcg));
    assert_eq!(events, ["KVM failed at run time (KVM internal error. Suberror: 1); retrying under TCG"]);
    assert!(w.cache().kvm_broken().is_file(), "the failure is remembered in the cache");
    // The next run goes straight to TCG, saying why.
    let (r, events) = boot(&plan, &w.target(BootImage::BzImage));
    assert_eq!(r.unwrap().accel, Accel::Tcg);
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("KVM failed at run time earlier since this host booted"), "{events:?}");
    w.assert_no_fake_left();
}

#[test]
fn a_silent_kvm_guest_is_retried_under_tcg() {
    let w = World::new();
    let plan = w.plan(&tcg_passes("sleep 30"));
    let (r, events) = boot(&plan, &w.target(BootImage::BzImage));
    assert_eq!(r.unwrap().accel, Accel::Tcg);
    assert_eq!(events, ["KVM failed at run time (no console output within 0.5 s); retrying under TCG"]);
    w.assert_no_fake_left();
}

#[test]
fn accel_kvm_fails_instead_of_falling_back() {
    let w = World::new();
    let mut plan = w.plan(&tcg_passes("echo 'KVM internal error. Suberror: 1' >&2; sleep 30"));
    plan.accel = AccelChoice::Kvm;
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    assert!(matches!(&r, Err(BootError::KvmFailed(why)) if why == "KVM internal error. Suberror: 1"), "{r:?}");
    std::fs::remove_file(w.path("kvm")).unwrap();
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    assert!(
        matches!(&r, Err(BootError::KvmUnavailable(why)) if why.ends_with("No such file or directory (os error 2)")),
        "{r:?}"
    );
    // auto without a KVM device: TCG from the start, saying so.
    plan.accel = AccelChoice::Auto;
    let (r, events) = boot(&plan, &w.target(BootImage::BzImage));
    assert_eq!(r.unwrap().accel, Accel::Tcg);
    assert!(events[0].ends_with("No such file or directory (os error 2); using TCG"), "{events:?}");
    w.assert_no_fake_left();
}

#[test]
fn a_pvh_image_qemu_refuses_falls_back_to_the_bzimage() {
    let w = World::new();
    let mut plan = w.plan(&format!(
        "case \"$*\" in *'.elf -initrd'*) echo 'qemu-system-x86_64: Error loading uncompressed kernel without PVH ELF Note' >&2; exit 1 ;; esac\n{}",
        tcg_passes("exit 99")
    ));
    plan.accel = AccelChoice::Tcg;
    // A damaged cache entry: removed, and (the fake kernel has no vmlinux
    // to take out again) the bzImage booted.
    let cached = w.cache().vmlinux().join("0123-v1.elf");
    std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
    std::fs::write(&cached, b"\x7fELF truncated").unwrap();
    let (r, events) = boot(&plan, &w.target(BootImage::Pvh(cached.clone())));
    let r = r.unwrap();
    assert_eq!((r.outcome, r.entry), (Outcome::Pass, Entry::Bzimage));
    assert!(!cached.exists(), "the damaged cache entry is removed");
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("qemu could not boot the cached vmlinux"), "{events:?}");
    assert!(events[0].contains("removed it, taking it out of the bzImage again"), "{events:?}");
    assert!(events[1].starts_with("the PVH boot failed (qemu exit status: 1: "), "{events:?}");
    w.assert_no_fake_left();
}

#[test]
fn qemu_dying_before_the_kernel_prints_is_an_error_with_its_stderr() {
    let w = World::new();
    let mut plan = w.plan("echo 'qemu-system-x86_64: -machine microvm: unsupported machine type' >&2; exit 1");
    plan.accel = AccelChoice::Tcg;
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    match r {
        Err(BootError::QemuFailed { status, stderr }) => {
            assert_eq!(status, "exit status: 1");
            assert_eq!(stderr, "qemu-system-x86_64: -machine microvm: unsupported machine type");
        }
        other => panic!("{other:?}"),
    }
    let mut plan = w.plan("exit 0");
    plan.accel = AccelChoice::Tcg;
    plan.memory_mib = 64;
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!(r.outcome, Outcome::NoVerdict);
    assert!(r.message.starts_with("the guest reset before init started (before printing anything)"), "{}", r.message);
    assert!(r.message.contains("--memory 64 MiB"), "{}", r.message);
    w.assert_no_fake_left();
}

#[test]
fn the_console_is_drained_after_qemu_exits() {
    let w = World::new();
    // Many lines, the verdict last, and qemu gone at once: every line must
    // still be read, the verdict included.
    let verdict = Report { kind: Kind::Fail, repro: "smoke", message: "seen" };
    let mut plan = w.plan(&format!(
        "i=0; while [ $i -lt 3000 ]; do echo \"[    1.0] line $i\"; i=$((i+1)); done; echo '{}'; exit {}",
        verdict.console_line(),
        Kind::Fail.qemu_status()
    ));
    plan.accel = AccelChoice::Tcg;
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!((r.outcome, r.message.as_str()), (Outcome::Fail, "seen"));
    assert!(r.channels.console, "the verdict line arrived after qemu's exit");
    assert_eq!(std::fs::read_to_string(&r.console_log).unwrap().lines().count(), 3001);
}

#[test]
fn a_silent_guest_hangs_and_qemu_is_killed() {
    let w = World::new();
    let mut plan = w.plan("echo '[    0.000000] Linux version 6.99.0-fake'; sleep 30");
    plan.accel = AccelChoice::Tcg;
    plan.timeout = Duration::from_secs(1);
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!((r.outcome, r.message.as_str()), (Outcome::Hang, "no verdict within 1 s"));
    w.assert_no_fake_left();
}

#[test]
fn a_kernel_that_panics_and_never_resets_ends_soon_after_the_panic() {
    // A microvm entered through a bzImage does not come back from the
    // reset that panic=-1 asks for: the guest faults on, qemu never exits.
    let w = World::new();
    let mut plan = w.plan(
        "echo '[    0.000000] Linux version 6.99.0-fake'; echo '[    1.000000] Kernel panic - not syncing: dumptest'; \
         while true; do echo '[    1.100000] general protection fault, probably for non-canonical address 0xe3fffbfffe085688: 0000 [#2] SMP'; sleep 0.2; done",
    );
    plan.accel = AccelChoice::Tcg;
    plan.timeout = Duration::from_secs(30);
    let started = std::time::Instant::now();
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    let r = r.unwrap();
    assert_eq!((r.outcome, r.message.as_str()), (Outcome::Crash, "Kernel panic - not syncing: dumptest"));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}: not the 30 s timeout", started.elapsed());
    w.assert_no_fake_left();
}

#[test]
fn an_interrupt_stops_qemu_and_removes_its_files() {
    let w = World::new();
    let mut plan = w.plan("echo '[    0.000000] Linux version 6.99.0-fake'; sleep 30");
    plan.accel = AccelChoice::Tcg;
    plan.timeout = Duration::from_secs(20);
    let flag = plan.interrupt.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        flag.store(true, Ordering::SeqCst);
    });
    let started = std::time::Instant::now();
    let (r, _) = boot(&plan, &w.target(BootImage::BzImage));
    setter.join().unwrap();
    assert!(matches!(r, Err(BootError::Interrupted)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    w.assert_no_fake_left();
}
