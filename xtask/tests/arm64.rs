//! arm64 guests on Debian's arm64 6.12 cloud kernel (an uncompressed
//! Image), under TCG: every outcome, threads on two CPUs, fork and exec
//! of a static aarch64 program, and what an arm64 run refuses. init is
//! cross-built by `cargo xtask` (Debian's rustc-web where rustup has no
//! aarch64 target); `cargo xtask ci` installs it and fetches the kernel.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::{arm64_612, console_log, require_qemu_for, temp, xtask, Run};
use krepro_runner::image::arch::Arch;

fn run(kernel: &Path, extra: &[&str]) -> Run {
    require_qemu_for(Arch::Aarch64);
    let mut args = vec!["run", "--kernel", kernel.to_str().unwrap(), "--json", "--accel", "tcg"];
    args.extend(extra);
    xtask(&args)
}

#[test]
fn every_outcome_on_the_debian_arm64_kernel() {
    let k = arm64_612();
    // (repro, exit code, outcome, whether the verdict channels carried it)
    let cases = [
        ("smoke", 0, "pass", true),
        ("selftest_fail", 1, "fail", true),
        ("selftest_skip", 125, "skip", true),
        ("selftest_panic", 2, "crash", false),
        ("selftest_hang", 3, "hang", false),
    ];
    for (repro, code, outcome, verdict) in cases {
        let r = run(&k, &["--repro", repro, "--timeout", "20"]);
        assert_eq!(r.code, code, "{repro}: {}", r.stderr);
        let j = r.json();
        assert_eq!(j["outcome"], outcome, "{repro}: {j}");
        assert_eq!(j["machine"], "virt", "{j}");
        assert_eq!(j["entry"], "image", "{j}");
        assert_eq!(j["accel"], "tcg", "{j}");
        assert!(j["kernel_release"].as_str().unwrap().ends_with("-cloud-arm64"), "{j}");
        let channels = &j["channels"];
        assert_eq!(channels["console"], verdict, "{repro}: {j}");
        assert_eq!(channels["virtio"], verdict, "{repro}: the virtio-serial port carries the verdict too: {j}");
        assert_eq!(channels["debug_exit"], false, "arm64 has no isa-debug-exit: {j}");
        if verdict {
            // qemu exits 0 on the PSCI power-off: never a verdict of its own.
            assert_eq!(j["qemu_status"], 0, "{j}");
        }
        let log = console_log(&r, &j);
        assert!(log.contains("Booting Linux on physical CPU"), "an arm64 kernel's console: {log}");
        if repro == "selftest_panic" {
            assert_eq!(j["crash"]["kind"], "panic", "{j}");
            assert_eq!(j["crash_title"], "kernel panic: sysrq triggered crash", "{j}");
        }
    }
}

/// examples/c/ksft_skip.c built static with `cc` into `dir`.
fn ksft_skip(dir: &Path, cc: &str) -> std::path::PathBuf {
    let exe = dir.join(format!("ksft_skip-{cc}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c/ksft_skip.c");
    let status =
        std::process::Command::new(cc).args(["-static", "-O2", "-o"]).arg(&exe).arg(&src).status().unwrap_or_else(
            |e| panic!("{cc}: {e} (apt-get install -y gcc-aarch64-linux-gnu, or run `cargo xtask ci`)"),
        );
    assert!(status.success(), "{cc} {}", src.display());
    exe
}

#[test]
fn threads_on_two_cpus_and_an_exec_on_arm64() {
    let k = arm64_612();
    // The SDK's threads (init's clone on arm64) on two CPUs.
    let r = run(&k, &["--repro", "race_two_cpus", "--cpus", "2"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["cpus"], 2);

    // fork + execve of a static aarch64 C program: exit 4 is KSFT_SKIP.
    let dir = temp("arm64-exec");
    let exe = ksft_skip(dir.path(), "aarch64-linux-gnu-gcc");
    let r = run(&k, &["--exec", exe.to_str().unwrap()]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    let j = r.json();
    assert_eq!(j["outcome"], "skip", "{j}");
    assert_eq!(j["repro"], "exec", "{j}");
}

#[test]
fn an_arm64_run_refuses_what_cannot_work_before_qemu() {
    let k = arm64_612();
    let k = k.to_str().unwrap();
    let dir = temp("arm64-refuse");
    let x86_exe = ksft_skip(dir.path(), "cc");
    let x86_error = format!("error: --exec {}: an x86_64 executable, but the guest is aarch64", x86_exe.display());
    let cases: [(&[&str], &str); 4] = [
        (&["--arch", "x86_64"], "error: --arch x86_64, but "),
        (&["--machine", "pc"], "error: --machine pc is an x86_64 machine; this guest is aarch64 (use --machine auto)"),
        (&["--accel", "kvm"], "error: KVM is not usable: KVM runs only guests of the host's own architecture"),
        (&["--exec", x86_exe.to_str().unwrap()], &x86_error),
    ];
    for (extra, want) in cases {
        let mut args = vec!["run", "--kernel", k];
        args.extend(extra);
        let r = xtask(&args);
        let stderr = r.stderr.trim();
        assert_eq!(r.code, 128, "{extra:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(want), "{extra:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
