//! Boot tests: `cargo xtask run` on real Debian cloud kernels under real
//! qemu, one test per outcome and channel. Prerequisites are not optional:
//! a missing kernel or qemu fails the test and says what to run
//! (`cargo xtask ci` sets everything up).

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_empty, console_log, k61, k612, qemus_with, require_qemu, temp, xtask, xtask_env, Run};
use serde_json::Value;

fn xtask_in(args: &[&str], tmp: &Path) -> Run {
    xtask_env(args, &[("TMPDIR", tmp)])
}

/// `cargo xtask run --kernel K --repro R --accel tcg --json ...extra`.
fn boot(kernel: &Path, repro: &str, extra: &[&str]) -> Run {
    boot_in(kernel, repro, extra, &std::env::temp_dir())
}

fn boot_in(kernel: &Path, repro: &str, extra: &[&str], tmp: &Path) -> Run {
    require_qemu();
    let k = kernel.to_str().unwrap();
    let mut args = vec!["run", "--kernel", k, "--repro", repro, "--accel", "tcg", "--json"];
    args.extend_from_slice(extra);
    xtask_in(&args, tmp)
}

fn assert_outcome(run: &Run, outcome: &str, code: i32) -> Value {
    let j = run.json();
    assert_eq!(j["outcome"], outcome, "{j}\nstderr:\n{}", run.stderr);
    assert_eq!(run.code, code, "{j}");
    assert_eq!(j["exit_code"], code, "{j}");
    j
}

#[test]
fn smoke_passes_on_612_with_every_channel_and_the_contract_json() {
    // On pc, virtio-serial goes over PCI, which Debian 6.12 has built in.
    let run = boot(&k612(), "smoke", &["--machine", "pc"]);
    let j = assert_outcome(&run, "pass", 0);
    for field in [
        "outcome",
        "exit_code",
        "repro",
        "message",
        "kernel",
        "kernel_release",
        "accel",
        "wall_ms",
        "boot_to_init_ms",
        "console_log",
    ] {
        assert!(j.get(field).is_some(), "missing {field} in {j}");
    }
    assert_eq!(j["repro"], "smoke");
    assert_eq!(j["accel"], "tcg");
    assert_eq!((j["machine"].as_str(), j["entry"].as_str()), (Some("pc"), Some("pvh")));
    assert!(j["kernel_release"].as_str().unwrap().starts_with("6.12."), "{j}");
    assert!(j["boot_to_init_ms"].as_u64().unwrap() > 0, "{j}");
    assert!(j["wall_ms"].as_u64().unwrap() >= j["boot_to_init_ms"].as_u64().unwrap(), "{j}");
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": true, "debug_exit": true}));
    assert_eq!(j["qemu_status"], 33);
    let log = console_log(&run, &j);
    assert!(log.contains("krepro: verdict=pass repro=smoke"), "{log}");
    assert!(log.contains("Run /init as init process"), "{log}");
}

#[test]
fn the_default_path_is_microvm_and_pvh_and_each_choice_still_boots() {
    let run = boot(&k612(), "smoke", &[]);
    let j = assert_outcome(&run, "pass", 0);
    assert_eq!((j["machine"].as_str(), j["entry"].as_str()), (Some("microvm"), Some("pvh")), "{j}");
    // virtio-mmio is a module in Debian's kernels: that channel is dark here.
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": false, "debug_exit": true}));
    assert_split_is_measured(&run, &j);
    for (machine, entry) in [("q35", "bzimage"), ("microvm", "bzimage")] {
        let j = assert_outcome(&boot(&k61(), "smoke", &["--machine", machine, "--entry", entry]), "pass", 0);
        assert_eq!((j["machine"].as_str(), j["entry"].as_str()), (Some(machine), Some(entry)), "{j}");
    }
}

/// The boot's split (qemu start to kernel, kernel to /init, /init to
/// verdict, verdict to qemu exit) against clocks it does not derive from.
/// The four parts add up to qemu's lifetime by construction, so that sum
/// proves nothing; what can fail: the guest's own clock (boot_to_init_ms)
/// must fit in the host's qemu-start-to-/init interval, or qemu_to_kernel_ms
/// is absent; qemu's lifetime must fit in krepro's wall time and that in the
/// process lifetime this test measured itself; a debug-exit verdict ends
/// qemu within the verdict grace.
fn assert_split_is_measured(run: &Run, j: &Value) {
    let ms = |field: &str| j[field].as_u64().unwrap_or_else(|| panic!("{field} missing in {j}"));
    let (to_kernel, to_init, to_verdict, to_exit) =
        (ms("qemu_to_kernel_ms"), ms("boot_to_init_ms"), ms("init_to_verdict_ms"), ms("verdict_to_exit_ms"));
    let (qemu, wall) = (ms("qemu_ms"), ms("wall_ms"));
    // qemu maps a 50 MB vmlinux before the kernel runs, the kernel takes
    // time to reach /init on its own clock, and smoke's mounts under TCG
    // take tens of milliseconds between init's two lines.
    assert!(to_kernel > 0 && to_init > 0 && to_verdict > 0, "{j}");
    assert!(to_kernel + to_init + to_verdict + to_exit <= qemu, "{j}");
    assert!(qemu <= wall, "qemu outlived krepro's wall time: {j}");
    let took = run.took.as_millis() as u64;
    assert!(wall <= took, "wall_ms {wall} > {took} ms measured around the process: {j}");
    // Host overhead, from this test's clock: the process lifetime outside
    // qemu (process start, the initrd, reading the kernel, writing the log).
    let overhead = took - qemu;
    assert!(overhead > 0 && overhead >= wall - qemu, "host overhead {overhead} ms: {j}");
    // isa-debug-exit (status 33) ends qemu right after the verdict line:
    // well inside the 5 s the runner waits for a power-off.
    assert_eq!(j["qemu_status"], 33, "{j}");
    assert!(to_exit < 5000, "verdict to qemu exit {to_exit} ms: {j}");
}

#[test]
fn smoke_passes_on_61_over_debug_exit_and_console_only() {
    // 6.1's virtio_console is a module: the virtio channel cannot work.
    let run = boot(&k61(), "smoke", &[]);
    let j = assert_outcome(&run, "pass", 0);
    assert!(j["kernel_release"].as_str().unwrap().starts_with("6.1."), "{j}");
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": false, "debug_exit": true}));
}

#[test]
fn selftest_fail_exits_1() {
    let j = assert_outcome(&boot(&k612(), "selftest_fail", &[]), "fail", 1);
    assert_eq!(j["message"], "selftest: failing on purpose");
}

#[test]
fn selftest_skip_exits_125() {
    let j = assert_outcome(&boot(&k612(), "selftest_skip", &[]), "skip", 125);
    assert_eq!(j["message"], "selftest: skipping on purpose");
}

#[test]
fn selftest_panic_is_a_crash_exit_2() {
    let j = assert_outcome(&boot(&k612(), "selftest_panic", &[]), "crash", 2);
    assert_eq!(j["message"], "Kernel panic - not syncing: sysrq triggered crash");
    assert_eq!(j["crash"]["kind"], "panic");
    assert_eq!(
        (j["crash_title"].as_str(), j["crash"]["fatal"].as_bool()),
        (Some("kernel panic: sysrq triggered crash"), Some(true))
    );
}

#[test]
fn crash_can_be_remapped_for_bisect() {
    let run = boot(&k61(), "selftest_panic", &["--on-crash", "skip"]);
    assert_outcome(&run, "crash", 125);
}

#[test]
fn selftest_hang_is_a_hang_exit_3_and_leaves_no_qemu() {
    let marker = format!("krepro.test_marker=hang{}", std::process::id());
    let tmp = temp("tmpdir");
    let run = boot_in(&k612(), "selftest_hang", &["--timeout", "20", "--append", &marker], tmp.path());
    let j = assert_outcome(&run, "hang", 3);
    assert_eq!(j["message"], "no verdict within 20 s");
    assert!(run.took < Duration::from_secs(40), "took {:?}", run.took);
    assert!(qemus_with(&marker).is_empty(), "qemu left running: {:?}", qemus_with(&marker));
    assert_empty(tmp.path());
}

#[test]
fn powering_off_without_a_verdict_is_no_verdict() {
    let j = assert_outcome(&boot(&k61(), "selftest_silent", &[]), "no-verdict", 125);
    assert_eq!(j["channels"], serde_json::json!({"console": false, "virtio": false, "debug_exit": false}));
    assert_outcome(&boot(&k61(), "selftest_silent", &["--on-no-verdict", "bad"]), "no-verdict", 1);
}

#[test]
fn rust_panic_in_a_repro_is_an_error_with_the_message() {
    let j = assert_outcome(&boot(&k612(), "selftest_rust_panic", &[]), "error", 128);
    let msg = j["message"].as_str().unwrap();
    assert!(msg.starts_with("panic: selftest: Rust panic on purpose at repros/src/repros/selftest.rs:"), "{msg}");
    assert_eq!(j["qemu_status"], 39);
}

#[test]
fn unknown_repro_in_the_guest_is_an_error_naming_the_known_ones() {
    // The host checks --repro; the user's krepro.repro= comes last on the
    // command line and wins in the guest, whose init holds only smoke.
    let j = assert_outcome(&boot(&k61(), "smoke", &["--append", "krepro.repro=no_such_repro"]), "error", 128);
    let msg = j["message"].as_str().unwrap();
    assert_eq!(msg, "unknown repro 'no_such_repro'; known repros: smoke, exec");
    assert_eq!(j["repro"], "no_such_repro");
}

#[test]
fn listen_backlog_passes_on_612() {
    assert_outcome(&boot(&k612(), "listen_backlog", &[]), "pass", 0);
}

#[test]
fn boot_time_follows_its_limit() {
    assert_outcome(&boot(&k61(), "boot_time", &["--append", "krepro.max_uptime_ms=600000"]), "pass", 0);
    let j = assert_outcome(&boot(&k61(), "boot_time", &["--append", "krepro.max_uptime_ms=1"]), "fail", 1);
    assert!(j["message"].as_str().unwrap().ends_with("exceeds krepro.max_uptime_ms=1"), "{j}");
}

#[test]
fn dmesg_clean_passes_on_a_clean_boot() {
    assert_outcome(&boot(&k61(), "dmesg_clean", &[]), "pass", 0);
}

#[test]
fn runs_n_reports_every_run() {
    let j = assert_outcome(&boot(&k61(), "smoke", &["--runs", "2"]), "pass", 0);
    assert_eq!(j["runs"].as_array().unwrap().len(), 2, "{j}");
    assert_eq!(j["flaky"], false);
}

/// Whether /dev/kvm opens for reading and writing (it may still fail at run time).
fn kvm_opens() -> bool {
    std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

#[test]
fn accel_auto_never_hangs_on_a_broken_kvm() {
    require_qemu();
    // Here /dev/kvm opens but fails at run time; elsewhere it may work or be
    // absent. In every case auto must end in a pass, quickly, and say why it
    // is on TCG. A cache of its own, so that no earlier run's "KVM is broken"
    // marker skips the attempt (and none is left in the user's cache).
    let k = k61();
    let cache = temp("cache");
    let run = xtask_env(&["run", "--kernel", k.to_str().unwrap(), "--json"], &[("XDG_CACHE_HOME", cache.path())]);
    let j = assert_outcome(&run, "pass", 0);
    assert!(run.took < Duration::from_secs(45), "took {:?}", run.took);
    match (kvm_opens(), j["accel"].as_str()) {
        (false, Some("tcg")) => {
            assert!(run.stderr.contains("krepro: /dev/kvm: "), "the fallback must be said: {}", run.stderr);
        }
        (true, Some("kvm")) => {}
        (true, Some("tcg")) => {
            assert!(
                run.stderr.contains("krepro: KVM failed at run time ("),
                "the fallback must be said: {}",
                run.stderr
            );
            // Remembered for this host boot: the next run goes straight to TCG.
            let again = xtask_env(&["run", "--kernel", k.to_str().unwrap()], &[("XDG_CACHE_HOME", cache.path())]);
            assert_eq!(again.code, 0, "{}", again.stderr);
            assert!(again.stderr.contains("KVM failed at run time earlier since this host booted"), "{}", again.stderr);
        }
        (opens, accel) => panic!("accel {accel:?} with /dev/kvm opening: {opens}: {j}"),
    }
}

#[test]
fn accel_kvm_passes_or_fails_fast_with_a_message() {
    require_qemu();
    let k = k61();
    let run = xtask(&["run", "--kernel", k.to_str().unwrap(), "--accel", "kvm"]);
    assert!(run.took < Duration::from_secs(45), "took {:?}", run.took);
    let stderr = run.stderr.trim_end();
    match (kvm_opens(), run.code) {
        (false, 128) => assert!(stderr.starts_with("error: KVM is not usable: /dev/kvm: "), "{stderr}"),
        (true, 0) => {}
        // This machine: KVM opens, then fails; no fallback under --accel kvm.
        (true, 128) => assert!(stderr.starts_with("error: KVM failed at run time: "), "{stderr}"),
        (opens, code) => panic!("exit {code} with /dev/kvm opening: {opens}: {stderr}"),
    }
    if run.code == 128 {
        assert!(stderr.ends_with("(use --accel auto or --accel tcg)") && stderr.lines().count() == 1, "{stderr}");
    }
}

#[test]
fn bad_input_is_one_line_and_exit_128_before_qemu() {
    let k = k612();
    let cases: [(&[&str], &str); 4] = [
        (
            &["run", "--kernel", "/etc/passwd"],
            "error: /etc/passwd is not a kernel image (an x86 bzImage or an arm64 Image): no \"HdrS\" boot header magic at 0x202 (x86) nor \"ARM\\x64\" at 0x38 (arm64)",
        ),
        (&["run", "--kernel", "/nonexistent/bzImage"], "error: kernel /nonexistent/bzImage does not exist"),
        (
            &["run", "--kernel", k.to_str().unwrap(), "--repro", "no_such_repro"],
            "error: unknown repro 'no_such_repro'; known repros: smoke, listen_backlog, boot_time, dmesg_clean,",
        ),
        (&["run", "--timeout", "0"], "error: invalid value '0' for '--timeout <SECS>'"),
    ];
    for (args, want) in cases {
        let run = xtask(args);
        assert_eq!(run.code, 128, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with(want), "{args:?}: {}", run.stderr);
        if !args.contains(&"--timeout") {
            assert_eq!(run.stderr.trim_end().lines().count(), 1, "{args:?}: {}", run.stderr);
        }
        assert!(run.took < Duration::from_secs(20), "{args:?} took {:?}", run.took);
        // No boot, so no console log.
        assert_empty(run.logs.path());
    }
}

#[test]
fn ctrl_c_stops_qemu_and_cleans_up() {
    require_qemu();
    let marker = format!("krepro.test_marker=sigint{}", std::process::id());
    let k = k61();
    let (tmp, logs) = (temp("tmpdir"), temp("logs"));
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "run",
            "--kernel",
            k.to_str().unwrap(),
            "--repro",
            "selftest_hang",
            "--accel",
            "tcg",
            "--append",
            &marker,
            "--log-dir",
            logs.path().to_str().unwrap(),
        ])
        .env("TMPDIR", tmp.path())
        .env("XDG_CACHE_HOME", common::test_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while qemus_with(&marker).is_empty() {
        assert!(Instant::now() < deadline, "qemu never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error: interrupted"));
    assert!(stopped.elapsed() < Duration::from_secs(5), "took {:?} to stop", stopped.elapsed());
    assert!(qemus_with(&marker).is_empty(), "qemu left running");
    assert_empty(tmp.path());
    // The console log of the interrupted run is kept, in --log-dir.
    let logs: Vec<_> = std::fs::read_dir(logs.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
}

/// `run --runs 4 --parallel 2 --json` of `repro`, started with the test's
/// marker on the guests' command line.
fn parallel_run(repro: &str, marker: &str, tmp: &Path, logs: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--kernel", k61().to_str().unwrap(), "--repro", repro, "--accel", "tcg"])
        .args(["--runs", "4", "--parallel", "2", "--json", "--append", marker])
        .args(["--log-dir", logs.to_str().unwrap()])
        .env("TMPDIR", tmp)
        .env("XDG_CACHE_HOME", common::test_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn runs_at_once_boot_side_by_side_in_order_and_ctrl_c_leaves_none() {
    require_qemu();
    let marker = format!("krepro.test_marker=parallel{}", std::process::id());
    let (tmp, logs) = (temp("tmpdir"), temp("logs"));
    let mut child = parallel_run("smoke", &marker, tmp.path(), logs.path());
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        most = most.max(qemus_with(&marker).len());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(most, 2, "qemus at once");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = j["runs"].as_array().unwrap();
    // Four outcomes, reported in order of run, each with its own log.
    let order: Vec<bool> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| r["cmdline"].as_str().unwrap().contains(&format!("krepro.run={}", i + 1)))
        .collect();
    assert_eq!(order, [true; 4], "{j:#}");
    assert!(runs.iter().all(|r| r["outcome"] == "pass"), "{j:#}");
    let consoles: std::collections::BTreeSet<&str> = runs.iter().map(|r| r["console_log"].as_str().unwrap()).collect();
    assert_eq!(consoles.len(), 4);
    assert_empty(tmp.path());

    // Ctrl-C while two boots hang: both qemus go, and their temp dirs.
    let (tmp, logs) = (temp("tmpdir"), temp("logs"));
    let child = parallel_run("selftest_hang", &marker, tmp.path(), logs.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    while qemus_with(&marker).len() < 2 {
        assert!(Instant::now() < deadline, "two qemus never ran at once");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(1));
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::INT).unwrap();
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stopped.elapsed() < Duration::from_secs(5), "took {:?} to stop", stopped.elapsed());
    assert!(qemus_with(&marker).is_empty(), "qemu left running");
    assert_empty(tmp.path());
}

#[test]
fn relative_paths_name_the_users_files_though_qemu_runs_elsewhere() {
    require_qemu();
    // qemu runs in a temp dir of krepro's: a relative --kernel, --disk or
    // --initrd must still be the one in the user's directory.
    let dir = temp("relative");
    std::os::unix::fs::symlink(k61(), dir.path().join("vmlinuz")).unwrap();
    std::fs::write(dir.path().join("disk.img"), vec![0u8; 1 << 20]).unwrap();
    let initrd = xtask(&["initrd", "-o", dir.path().join("initrd.cpio.gz").to_str().unwrap()]);
    assert_eq!(initrd.code, 0, "{}", initrd.stderr);
    let args = ["run", "--kernel", "vmlinuz", "--disk", "disk.img", "--initrd", "initrd.cpio.gz", "--accel", "tcg"];
    let r = common::krepro_in(dir.path(), &args, &[("XDG_CACHE_HOME", &common::test_cache())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn initrd_is_byte_identical_and_init_is_small_and_static() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.cpio.gz"), dir.path().join("b.cpio.gz"));
    for out in [&a, &b] {
        let run = xtask(&["initrd", "-o", out.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout.trim(), out.to_str().unwrap());
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a, b, "two initrd builds differ");

    // /init inside: a static ELF, no interpreter, no libc, under 48 KiB.
    // It holds the repro it runs (smoke) and no other: with every repro
    // compiled in it was 68 KiB and grew 1 to 4 KiB per repro.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a[..]), &mut raw).unwrap();
    let init = extract(&raw, "init").expect("init in the initrd");
    assert!(init.len() < 48 * 1024, "init is {} bytes", init.len());
    assert_eq!(&init[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([init[16], init[17]]), 2, "ET_EXEC");
    for needle in [&b"GLIBC"[..], b"ld-linux", b"libc.so", b"__libc_start_main"] {
        assert!(
            !init.windows(needle.len()).any(|w| w == needle),
            "init contains {:?}",
            String::from_utf8_lossy(needle)
        );
    }
    let init_file = dir.path().join("init");
    std::fs::write(&init_file, &init).unwrap();
    let out = Command::new("readelf")
        .args(["-l", "-d"])
        .arg(&init_file)
        .output()
        .unwrap_or_else(|e| panic!("readelf: {e}: apt-get install -y binutils (or run `cargo xtask ci`)"));
    assert!(out.status.success(), "readelf -l -d: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Elf file type is EXEC"), "{text}");
    assert!(!text.contains("INTERP") && text.contains("There is no dynamic section"), "{text}");
}

/// A file's data from a newc archive, read with cpio-archive.
fn extract(raw: &[u8], name: &str) -> Option<Vec<u8>> {
    use cpio_archive::CpioReader as _;
    use std::io::Read;
    let mut reader = cpio_archive::NewcReader::new(std::io::Cursor::new(raw));
    while let Some(header) = reader.read_next().unwrap() {
        let mut data = Vec::new();
        reader.read_to_end(&mut data).unwrap();
        if header.name() == name {
            return Some(data);
        }
    }
    None
}

#[test]
fn the_vmlinux_comes_out_of_real_bzimages_with_its_pvh_note() {
    use krepro_runner::image::vmlinux::{extract, has_pvh_note};
    // 6.1 compresses with LZ4, 6.12 with zstd (Debian's choices).
    for k in [k61(), k612()] {
        let bz = std::fs::read(&k).unwrap();
        let elf = extract(&bz).unwrap_or_else(|e| panic!("{}: {e}", k.display()));
        assert_eq!(&elf[..4], b"\x7fELF");
        assert!(elf.len() > 3 * bz.len(), "{}: {} from {}", k.display(), elf.len(), bz.len());
        assert!(has_pvh_note(&elf), "{}", k.display());
    }
}

#[test]
fn bench_reports_ratios_against_the_baselines() {
    require_qemu();
    let dir = temp("bench");
    let (json, plot) = (dir.path().join("bench.json"), dir.path().join("bench.svg"));
    let k = k61();
    // bench has no --log-dir: its krepro runs log into a cache of the test's.
    let cache = temp("cache");
    let args = [
        "bench",
        "--kernel",
        k.to_str().unwrap(),
        "--runs",
        "1",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ];
    let run = xtask_env(&args, &[("XDG_CACHE_HOME", cache.path())]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tools = j[0]["tools"].as_array().unwrap();
    let tool = |name: &str| tools.iter().find(|t| t["tool"] == name).unwrap_or_else(|| panic!("{name} in {j}"));
    assert_eq!(tool("c-init (plain qemu)")["ratio_to_baseline"], 1.0);
    assert!(tool("krepro")["ratio_to_baseline"].as_f64().unwrap() > 0.0);
    // What a second CPU and a scratch disk cost: rows of their own.
    for row in ["krepro --cpus 2", "krepro --disk new:64M:ext4"] {
        assert_eq!(tool(row)["wall_s"].as_array().unwrap().len(), 1, "{row} in {j}");
    }
    assert_eq!(
        tool("busybox (plain qemu)")["wall_s"].as_array().unwrap().len(),
        1,
        "busybox-static is installed by cargo xtask ci"
    );
    // Without --peers, in a cache of its own: the peers are not installed,
    // and where one is (on PATH), the rows hold a time or the reason.
    for peer in ["virtme-ng (vng --exec true)", "vmtest (vmtest -k K true)"] {
        let (note, walls) = (tool(peer)["note"].as_str(), tool(peer)["wall_s"].as_array().unwrap().len());
        let why = note.is_some_and(|n| n.starts_with("cannot run: the kernel has ") || n.starts_with("failed: "));
        assert!(note == Some("not installed (--peers installs it)") || why || walls == 1, "{peer} in {j}");
    }
    // The split of the one krepro round: each part measured (see
    // assert_split_is_measured), and together within that round's wall time.
    let split = &j[0]["krepro_split"];
    let part = |p: &str| split[p].as_f64().unwrap_or_else(|| panic!("{p} missing in {split}"));
    for p in ["qemu_to_kernel_ms", "kernel_to_init_ms", "init_to_verdict_ms"] {
        assert!(part(p) > 0.0, "{p} in {split}");
    }
    let qemu_parts: f64 =
        ["qemu_to_kernel_ms", "kernel_to_init_ms", "init_to_verdict_ms", "verdict_to_exit_ms"].map(part).iter().sum();
    // (wall_s is wall_ms / 1000: allow the float's rounding.)
    let wall_ms = tool("krepro")["wall_s"][0].as_f64().unwrap() * 1000.0;
    assert!(part("host_overhead_ms") >= 0.0 && qemu_parts <= wall_ms + 0.5, "{split} vs wall {wall_ms} ms");
    assert!(run.stdout.contains("krepro split (median ms): qemu start->kernel "), "{}", run.stdout);
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg "));
}

#[test]
fn a_quiet_console_still_logs_everything_when_it_matters() {
    let k = k61();
    // Each Run keeps its --log-dir: read the log while it lives.
    let run = boot(&k, "smoke", &["--console", "quiet"]);
    let log = console_log(&run, &assert_outcome(&run, "pass", 0));
    // Not empty: the verdict is there, the boot chatter is not.
    assert!(log.contains("krepro: verdict=pass repro=smoke"), "{log}");
    assert!(!log.contains("Run /init as init process"), "quiet boots print errors only:\n{log}");
    let run = boot(&k, "selftest_fail", &["--console", "quiet"]);
    let log = console_log(&run, &assert_outcome(&run, "fail", 1));
    assert!(log.contains("krepro: kmsg: Run /init as init process"), "the kernel log comes before a fail:\n{log}");
    let refused = xtask(&["run", "--kernel", k.to_str().unwrap(), "--console", "quiet", "--warn-is-crash"]);
    assert_eq!(refused.code, 128, "{}", refused.stderr);
    assert!(refused.stderr.starts_with("error: --warn-is-crash needs --console full"), "{}", refused.stderr);
}
