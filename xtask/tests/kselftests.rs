//! Real kselftests from Debian's linux-source-6.1, run as a user would:
//! C ones built with `cc -static` and a shell one, each with `--exec` on
//! both Debian cloud kernels. `cargo xtask ci` installs linux-source-6.1.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{console_log, extract_linux_source, k61, k612, run_exec as run};

const SELFTESTS: &str = "tools/testing/selftests";

/// The C kselftests: (source files under tools/testing/selftests, what
/// each exercises). Every one passes on a correct kernel.
const C_TESTS: &[(&[&str], &str)] = &[
    (&["sigaltstack/sas.c"], "signals on an alternate stack"),
    (&["membarrier/membarrier_test_single_thread.c"], "the membarrier syscall"),
    (&["clone3/clone3.c"], "clone3 and its flags"),
    (&["pidfd/pidfd_open_test.c"], "pidfd_open and fdinfo"),
    (&["openat2/resolve_test.c", "openat2/helpers.c"], "openat2's RESOLVE_ flags"),
    (&["ptrace/get_syscall_info.c"], "PTRACE_GET_SYSCALL_INFO, kselftest_harness.h"),
];

/// The shell kselftest: it hotplugs every CPU but the first, so it passes
/// with two CPUs and skips (exit 4) with one.
const SHELL_TEST: &str = "cpu-hotplug/cpu-on-off-test.sh";

/// The selftests tree, extracted once per target dir (only what these
/// tests use, not the whole kernel).
fn selftests() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| {
        let tree = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kselftests-6.1");
        if !tree.join(SELFTESTS).join(SHELL_TEST).is_file() {
            let _ = std::fs::remove_dir_all(&tree);
            let mut members = vec![
                format!("{SELFTESTS}/kselftest.h"),
                format!("{SELFTESTS}/kselftest_harness.h"),
                format!("{SELFTESTS}/{SHELL_TEST}"),
            ];
            for (sources, _) in C_TESTS {
                members.extend(
                    sources.iter().map(|s| format!("{SELFTESTS}/{}", Path::new(s).parent().unwrap().display())),
                );
            }
            members.sort();
            members.dedup();
            extract_linux_source("6.1", &tree, &members.iter().map(String::as_str).collect::<Vec<_>>());
        }
        tree.join(SELFTESTS)
    })
}

/// One C kselftest built static, as `make -C tools/testing/selftests`
/// would but without its Makefiles: `cc -static -O2 -I selftests`.
fn build(sources: &[&str]) -> PathBuf {
    let dir = selftests();
    let name = Path::new(sources[0]).file_stem().unwrap().to_str().unwrap();
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ksft-{name}"));
    let out = Command::new("cc")
        .args(["-static", "-O2", "-w", "-I."])
        .args(sources)
        .args(["-lpthread", "-o"])
        .arg(&exe)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run cc ({e}): apt-get install -y build-essential"));
    assert!(out.status.success(), "cc -static {sources:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

#[test]
fn c_kselftests_pass_on_both_kernels() {
    let built: Vec<_> = C_TESTS.iter().map(|(sources, what)| (sources[0], *what, build(sources))).collect();
    for k in [k612(), k61()] {
        for (source, what, exe) in &built {
            let r = run(&k, exe, &[]);
            let j = r.json();
            assert_eq!(
                (j["outcome"].as_str(), r.code),
                (Some("pass"), 0),
                "{source} ({what}) on {}: {j}\n{}\n{}",
                k.display(),
                r.stderr,
                console_log(&r, &j)
            );
            // Its TAP lines: at least one case passed (it ran, it did not
            // just exit 0) and none failed.
            let console = console_log(&r, &j);
            let passed = console.lines().any(|l| l.starts_with("ok ") && !l.contains("# SKIP"));
            let failed = console.lines().any(|l| l.starts_with("not ok "));
            assert!(passed && !failed, "{source}: no passing TAP line, or a failing one:\n{console}");
        }
    }
}

#[test]
fn the_cpu_hotplug_shell_kselftest_passes_on_two_cpus_and_skips_on_one() {
    let script = selftests().join(SHELL_TEST);
    for k in [k612(), k61()] {
        let r = run(&k, &script, &["--cpus", "2"]);
        let j = r.json();
        assert_eq!((j["outcome"].as_str(), r.code), (Some("pass"), 0), "{j}\n{}", r.stderr);
        // It really took CPU 1 down and up again.
        let console = console_log(&r, &j);
        assert!(console.contains("online to offline to online: cpu 1"), "{console}");
        assert!(r.stderr.contains("the guest has no bash; the script runs under busybox sh"), "{}", r.stderr);

        let r = run(&k, &script, &["--cpus", "1"]);
        let j = r.json();
        assert_eq!((j["outcome"].as_str(), r.code), (Some("skip"), 125), "{j}\n{}", r.stderr);
    }
}
