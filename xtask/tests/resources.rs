//! Guest resources on real kernels: `--cpus`, `--disk` (a user's image
//! left untouched, `:rw` written through, a fresh ext4 scratch disk),
//! `--qemu-arg`, and shell scripts under `--exec`, on both Debian kernels
//! (whose virtio_blk is a module, loaded for the disks).

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{console_log, k61, k612, require_qemu, run_exec as run, static_fixture, temp, xtask, Run};
use serde_json::Value;

/// The device probe, built static once per test binary (tests run in
/// parallel: one build, not one per test over the same file).
fn probe() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| static_fixture("devices.c")).clone()
}

fn outcome(run: &Run, want: &str, code: i32) -> Value {
    let j = run.json();
    assert_eq!((j["outcome"].as_str(), run.code), (Some(want), code), "{j}\n{}", run.stderr);
    j
}

/// The probe's lines from the console.
fn probed(run: &Run, j: &Value) -> Vec<String> {
    console_log(run, j).lines().filter_map(|l| l.split_once("devices: ").map(|(_, r)| r.trim().to_owned())).collect()
}

fn image(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let mut bytes = b"ORIGINAL".to_vec();
    bytes.resize(4 << 20, 0);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn two_cpus_are_online_on_both_kernels() {
    for k in [k612(), k61()] {
        let r = run(&k, &probe(), &["--cpus", "2"]);
        let j = outcome(&r, "pass", 0);
        assert_eq!(j["cpus"], 2, "{j}");
        assert_eq!(probed(&r, &j)[0], "nproc=2", "{}", k.display());
    }
    let r = run(&k612(), &probe(), &[]);
    let j = outcome(&r, "pass", 0);
    assert_eq!(probed(&r, &j)[0], "nproc=1", "one CPU by default");
}

/// A kernel whose config says it cannot use what was asked for gets a
/// warning, and the boot goes ahead: here Debian 6.12 with a config beside
/// its copy that has no SMP and no virtio-blk, which the guest then
/// contradicts (two CPUs online): the warning reads the config, not the
/// guest.
#[test]
fn flags_the_kernels_config_cannot_serve_are_warned_about() {
    let dir = temp("facts");
    let k = dir.path().join("bzImage");
    std::fs::copy(k612(), &k).unwrap();
    std::fs::write(dir.path().join("bzImage.config"), "CONFIG_ACPI=y\n# CONFIG_SMP is not set\n").unwrap();
    let r = run(&k, &probe(), &["--cpus", "2", "--disk", "new:16M"]);
    outcome(&r, "pass", 0);
    assert!(r.stderr.contains("has no CONFIG_SMP (its config says): the guest uses one of its 2 CPUs"), "{}", r.stderr);
    assert!(r.stderr.contains("has no CONFIG_VIRTIO_BLK (its config says)"), "{}", r.stderr);
    let quiet = run(&k612(), &probe(), &["--cpus", "2"]);
    outcome(&quiet, "pass", 0);
    assert!(!quiet.stderr.contains("has no CONFIG_"), "Debian's own config has both: {}", quiet.stderr);
}

#[test]
fn a_users_image_is_never_written_and_rw_holds_the_write() {
    let dir = temp("disks");
    let (ro, rw) = (image(dir.path(), "ro.img"), image(dir.path(), "rw.img"));
    let before = std::fs::read(&ro).unwrap();
    let ro_spec = ro.to_str().unwrap().to_owned();
    let rw_spec = format!("{}:rw", rw.display());
    let r = run(&k612(), &probe(), &["--disk", &ro_spec, "--disk", &rw_spec]);
    let j = outcome(&r, "pass", 0);
    let lines = probed(&r, &j);
    assert_eq!(lines[1..], ["/dev/vda starts 'ORIGINAL' ext4=0", "/dev/vdb starts 'ORIGINAL' ext4=0"], "{lines:?}");
    assert_eq!(std::fs::read(&ro).unwrap(), before, "the guest's writes reached {}", ro.display());
    assert_eq!(&std::fs::read(&rw).unwrap()[..8], b"GUESTWRO", "the :rw disk lacks the guest's write");
    assert_eq!(j["disks"], serde_json::json!([ro_spec, rw_spec]));
}

#[test]
fn a_new_ext4_disk_is_vda_on_pc_and_microvm() {
    for (k, machine) in [(k61(), "pc"), (k612(), "microvm")] {
        let r = run(&k, &probe(), &["--disk", "new:64M:ext4", "--machine", machine]);
        let j = outcome(&r, "pass", 0);
        let lines = probed(&r, &j);
        assert!(lines[1].starts_with("/dev/vda starts ") && lines[1].ends_with("ext4=1"), "{machine}: {lines:?}");
        assert_eq!(lines[2], "/dev/vdb missing");
    }
}

#[test]
fn bad_disks_are_one_line_errors_before_qemu() {
    for (spec, want) in [
        ("/nonexistent.img", "error: --disk /nonexistent.img: No such file or directory (os error 2)"),
        ("new:64M:nosuchfs", "error: --disk new:...:nosuchfs: mkfs.nosuchfs is not installed"),
        ("new:lots", "error: invalid value 'new:lots' for '--disk <SPEC>': lots: a size like 64M, 1G or 512K"),
    ] {
        let r = xtask(&["run", "--kernel", k612().to_str().unwrap(), "--disk", spec]);
        assert_eq!(r.code, 128, "{}", r.stderr);
        assert!(r.stderr.lines().any(|l| l.starts_with(want)), "{spec}: {}", r.stderr);
        assert!(std::fs::read_dir(r.logs.path()).unwrap().next().is_none(), "a boot happened for {spec}");
    }
}

#[test]
fn qemu_args_pass_through_and_mark_the_run_customised() {
    let r = run(&k612(), &probe(), &["--qemu-arg=-cpu", "--qemu-arg=max"]);
    let j = outcome(&r, "pass", 0);
    assert_eq!((j["customised"].as_bool(), &j["qemu_args"]), (Some(true), &serde_json::json!(["-cpu", "max"])));
    let r = run(&k612(), &probe(), &[]);
    assert_eq!(outcome(&r, "pass", 0)["customised"], false);
}

#[test]
fn shell_scripts_pass_fail_and_skip_by_exit_status() {
    let dir = temp("scripts");
    let script = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // What shell kselftests do: the kernel log, busybox applets, exit 4 to skip.
    let pass = script(
        "pass.sh",
        "#!/bin/sh\nset -e\ndmesg | grep -q 'Linux version'\n[ \"$(nproc)\" -ge 1 ]\necho script-ok\n",
    );
    let fail = script("fail.sh", "#!/bin/sh\necho not-ok\nexit 3\n");
    let skip = script("skip.sh", "#!/usr/bin/env bash\necho '# SKIP no such feature'\nexit 4\n");
    for k in [k612(), k61()] {
        let r = run(&k, &pass, &[]);
        let j = outcome(&r, "pass", 0);
        assert!(console_log(&r, &j).lines().any(|l| l.ends_with("script-ok")), "{}", console_log(&r, &j));
        let j = outcome(&run(&k, &fail, &[]), "fail", 1);
        assert_eq!(j["message"], "exit status 3", "{j}");
        let r = run(&k, &skip, &[]);
        outcome(&r, "skip", 125);
        assert!(r.stderr.contains("the guest has no bash; the script runs under busybox sh"), "{}", r.stderr);
    }
    let py = script("x.py", "#!/usr/bin/python3\nprint(1)\n");
    let r = run(&k612(), &py, &[]);
    assert_eq!(r.code, 128, "{}", r.stderr);
}

/// The repros that prove the SDK, booting with what they declare (2 CPUs,
/// an ext4 disk), on both Debian kernels.
#[test]
fn the_sdk_repros_pass_on_both_kernels() {
    require_qemu();
    for k in [k612(), k61()] {
        let ks = k.to_str().unwrap();
        for repro in ["race_two_cpus", "fs_ext4_roundtrip", "kcmp"] {
            let r = xtask(&["run", "--kernel", ks, "--repro", repro, "--accel", "tcg", "--json"]);
            let j = outcome(&r, "pass", 0);
            match repro {
                "race_two_cpus" => assert_eq!(j["cpus"], 2, "declared by the repro: {j}"),
                "fs_ext4_roundtrip" => assert_eq!(j["disks"], serde_json::json!(["new:64M:ext4"]), "{j}"),
                _ => {}
            }
        }
        // With one CPU forced, the race says it cannot test.
        let r = xtask(&["run", "--kernel", ks, "--repro", "race_two_cpus", "--cpus", "1", "--accel", "tcg", "--json"]);
        outcome(&r, "skip", 125);
        // A panic in a thread is the repro's error, naming the thread.
        let r = xtask(&["run", "--kernel", ks, "--repro", "selftest_thread_panic", "--accel", "tcg", "--json"]);
        let j = outcome(&r, "error", 128);
        let msg = j["message"].as_str().unwrap();
        assert!(msg.starts_with("panic in thread ") && msg.contains("thread panic on purpose"), "{j}");
    }
}
