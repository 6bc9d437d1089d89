//! `--exec`, `--file` and `--modules` on real kernels: static C and std
//! Rust programs as repros, exit statuses to verdicts, the guest timeout,
//! and a module from a real Debian 6.1 package making virtio-serial work.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{assert_empty, console_log, k61, k612, require_qemu, xtask, Run};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// Where the test programs are built: cargo's scratch dir for integration
/// tests (under target/), reused by the next run (the std build is
/// incremental), never the user's cache.
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exec");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        dir
    })
}

/// Compiles `src` afresh (each test its own `out` name).
fn cc(src: &Path, out: &str, flags: &[&str]) -> PathBuf {
    let exe = out_dir().join(out);
    let st = Command::new("cc")
        .args(flags)
        .arg("-O2")
        .arg("-o")
        .arg(&exe)
        .arg(src)
        .status()
        .expect("cc (apt-get install -y build-essential)");
    assert!(st.success(), "cc {flags:?} {}", src.display());
    exe
}

fn exit_status_prog() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| cc(&root().join("xtask/tests/fixtures/exit_status.c"), "exit_status", &["-static"])).clone()
}

fn exec(kernel: &Path, prog: &Path, extra: &[&str]) -> Run {
    require_qemu();
    let mut args =
        vec!["run", "--kernel", kernel.to_str().unwrap(), "--exec", prog.to_str().unwrap(), "--accel", "tcg", "--json"];
    args.extend_from_slice(extra);
    xtask(&args)
}

fn outcome(run: &Run, want: &str, code: i32) -> Value {
    let j = run.json();
    assert_eq!((j["outcome"].as_str(), run.code), (Some(want), code), "{j}\n{}", run.stderr);
    assert_eq!(j["repro"], "exec");
    j
}

#[test]
fn exit_statuses_become_verdicts() {
    let p = exit_status_prog();
    let k = k612();
    outcome(&exec(&k, &p, &["--arg", "0"]), "pass", 0);
    let j = outcome(&exec(&k, &p, &["--arg", "4"]), "skip", 125);
    assert_eq!(j["message"], "exit status 4 (KSFT_SKIP)");
    let j = outcome(&exec(&k, &p, &["--arg", "3"]), "fail", 1);
    assert_eq!(j["message"], "exit status 3");
    let j = outcome(&exec(&k61(), &p, &["--arg", "segv"]), "fail", 1);
    assert_eq!(j["message"], "killed by signal 11 (SIGSEGV)");
}

#[test]
fn args_env_and_files_reach_the_program() {
    let p = exit_status_prog();
    let k = k61();
    outcome(&exec(&k, &p, &["--arg", "env", "--arg", "KREPRO_T", "--arg", "a b", "--env", "KREPRO_T=a b"]), "pass", 0);
    outcome(
        &exec(&k, &p, &["--arg", "env", "--arg", "KREPRO_T", "--arg", "a b", "--env", "KREPRO_T=other"]),
        "fail",
        1,
    );
    let data = out_dir().join("data.txt");
    std::fs::write(&data, "hello from the host\n").unwrap();
    let file = format!("{}:srv/data.txt", data.display());
    // Two files under one new directory: its entry comes once.
    let other = format!("{}:srv/other.txt", data.display());
    let args =
        ["--file", &file, "--file", &other, "--arg", "file", "--arg", "/srv/data.txt", "--arg", "hello from the host"];
    outcome(&exec(&k, &p, &args), "pass", 0);
}

#[test]
fn a_hanging_program_is_killed_by_the_guest_timeout() {
    let run = exec(&k61(), &exit_status_prog(), &["--arg", "hang", "--guest-timeout", "3", "--timeout", "40"]);
    let j = outcome(&run, "fail", 1);
    assert_eq!(j["message"], "/krepro/exec still running after krepro.guest_timeout=3 s: killed");
    assert!(run.took.as_secs() < 30, "{:?}", run.took);
    let log = console_log(&run, &j);
    assert!(log.contains("krepro: kmsg: "), "the kernel log tail is shown:\n{log}");
}

#[test]
fn the_c_listen_backlog_example_passes_and_its_output_shows_with_v() {
    let prog = cc(&root().join("examples/c/listen_backlog.c"), "listen_backlog", &["-static"]);
    let run =
        xtask(&["run", "--kernel", k612().to_str().unwrap(), "--exec", prog.to_str().unwrap(), "--accel", "tcg", "-v"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("listen_backlog: connected to port "), "{}", run.stderr);
}

#[test]
fn the_kselftest_example_skips() {
    let prog = cc(&root().join("examples/c/ksft_skip.c"), "ksft_skip", &["-static"]);
    outcome(&exec(&k61(), &prog, &[]), "skip", 125);
}

#[test]
fn the_std_rust_example_passes() {
    let target = out_dir().join("std-target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "std-repro",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--target-dir",
        ])
        .arg(&target)
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .current_dir(root())
        .status()
        .expect("run cargo");
    assert!(st.success(), "cargo build -p std-repro: {st}");
    let prog = target.join("x86_64-unknown-linux-gnu/release/std-repro");
    outcome(&exec(&k612(), &prog, &[]), "pass", 0);
}

#[test]
fn a_dynamic_program_is_refused_before_qemu_with_a_hint() {
    let prog = cc(&root().join("xtask/tests/fixtures/exit_status.c"), "exit_status_dynamic", &[]);
    let run = xtask(&["run", "--kernel", k61().to_str().unwrap(), "--exec", prog.to_str().unwrap()]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{}", run.stderr);
    let want = format!("error: --exec {}: dynamically linked (it needs the loader ", prog.display());
    assert!(run.stderr.starts_with(&want), "{}", run.stderr);
    assert!(run.stderr.contains("link it statically: `cc -static ...`"), "{}", run.stderr);
    assert!(run.took.as_secs() < 10, "took {:?}", run.took);
    // No boot, so no console log.
    assert_empty(run.logs.path());
}

#[test]
fn modules_auto_makes_virtio_serial_work_on_debian_61() {
    require_qemu();
    let k = k61();
    // Without: 6.1 has virtio_console as a module, so that channel is dark
    // (the boot tests assert it); with --modules auto it reports.
    let run = xtask(&[
        "run",
        "--kernel",
        k.to_str().unwrap(),
        "--repro",
        "smoke",
        "--accel",
        "tcg",
        "--json",
        "--modules",
        "auto",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": true, "debug_exit": true}), "{j}");
    let log = console_log(&run, &j);
    assert!(log.contains("krepro: verdict=pass repro=smoke"), "{log}");
    assert!(!log.contains("krepro: warning: load module"), "{log}");
}

#[test]
fn modules_resolve_with_dependencies_from_real_packages() {
    use krepro_runner::image::kernel::check_kernel;
    use krepro_runner::initrd::modules::{modules_dir, resolve, Modules};
    let k = check_kernel(&k61()).unwrap();
    let dir = modules_dir(&k, None).expect("the 6.1 package has lib/modules");
    let pc = krepro_runner::boot::qemu::Machine::Pc.channel_modules();
    let names: Vec<String> = resolve(&dir, &Modules::Auto, pc).unwrap().into_iter().map(|(n, _)| n).collect();
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap_or_else(|| panic!("{n} not in {names:?}"));
    assert!(pos("virtio") < pos("virtio_pci") && pos("virtio_ring") < pos("virtio_console"), "{names:?}");
    // 6.12 has virtio_console built in: auto needs nothing there; its
    // modules are .ko.xz and read fine.
    let k = check_kernel(&k612()).unwrap();
    let dir = modules_dir(&k, None).expect("the 6.12 package has lib/modules");
    assert!(resolve(&dir, &Modules::Auto, pc).unwrap().iter().all(|(n, _)| n != "virtio_console"));
    let mods = resolve(&dir, &Modules::List(vec!["hangcheck_timer".into()]), pc).unwrap();
    assert_eq!(&mods.last().unwrap().1[..4], b"\x7fELF");
    let err = resolve(&dir, &Modules::List(vec!["no_such_module".into()]), pc).unwrap_err();
    assert!(err.to_string().starts_with("module no_such_module is not in "), "{err}");
}

/// The peak resident memory (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix(" kB")?.parse().ok())
}

#[test]
fn a_hundred_mib_of_output_travels_over_virtio_and_the_runner_stays_small() {
    let bulk = common::static_fixture("bulk_output.c");
    let logs = common::temp("bulk-logs");
    // With default flags: on microvm the output port rides virtio-mmio,
    // a module of Debian 6.12's, which krepro loads for a program.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--kernel", k612().to_str().unwrap(), "--accel", "tcg", "--json"])
        .args(["--exec", bulk.to_str().unwrap(), "--arg", "100", "--log-dir"])
        .arg(logs.path())
        .env("XDG_CACHE_HOME", common::test_cache())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("krepro: loading virtio_mmio (modules of this kernel) for the fast virtio-serial channel"),
        "{stderr}"
    );
    let j: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // Not through the UART: the console carries the kernel's lines and
    // krepro's, the output port the program's 100 MiB.
    let log = std::fs::read_to_string(j["console_log"].as_str().unwrap()).unwrap();
    assert!(log.contains("bulk line 000000000000 "), "the head of the output is kept");
    assert!(log.contains("bulk: done, 1310720 lines"), "the tail of the output is kept");
    assert!(log.contains(" cut here; the log keeps the first and last MiB]"), "the middle is cut");
    assert!(log.len() < 3 << 20, "the log is capped: {} bytes", log.len());
    // The runner's own memory, qemu's not counted: bounded however much
    // the guest prints (lines in flight and the log's 1 MiB tail).
    assert!(peak > 0 && peak < 64 * 1024, "the runner peaked at {peak} KiB");
    eprintln!("100 MiB of output: {} ms in qemu, runner peak {peak} KiB", j["qemu_ms"]);
}
