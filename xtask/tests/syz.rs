//! `krepro syz` on real Debian kernels: a syzkaller-shaped C reproducer
//! run as syzbot runs it (2 CPUs, cgroup2, a writable /tmp cwd, a time
//! budget), its crash titled and told apart from the report's, and bad
//! input refused in one line. The builder and bisect side is in slow.rs.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;

use common::{arm64_612, k612, krepro_in, require_qemu, require_qemu_for, temp, Run};
use krepro_runner::image::arch::Arch;
use serde_json::Value;

/// A report directory: report.txt with `subject`, repro.c from the env
/// fixture (crashing on its 3rd iteration when `crash`).
fn report(dir: &Path, subject: &str, crash: bool) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syz-env/env.c");
    let mut repro = std::fs::read_to_string(fixture).unwrap();
    if crash {
        repro = format!("#define CRASH_AFTER 3\n{repro}");
    }
    std::fs::write(dir.join("repro.c"), repro).unwrap();
    let text = format!(
        "Subject: [syzbot] [kernel?] {subject}\n\nHEAD commit:    0123456789ab Linux 6.12\n\
         compiler:       gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40\n"
    );
    std::fs::write(dir.join("report.txt"), text).unwrap();
}

fn syz(dir: &Path, kernel: &Path, extra: &[&str]) -> Run {
    let d = dir.to_str().unwrap();
    let args = [&["syz", d, "--kernel", kernel.to_str().unwrap(), "--accel", "tcg"][..], extra].concat();
    krepro_in(Path::new("/"), &args, &[])
}

fn json(r: &Run) -> Value {
    r.json()
}

#[test]
fn a_reproducer_that_survives_its_time_is_no_crash() {
    require_qemu();
    let d = temp("syz");
    report(d.path(), "WARNING in kcmp_lock", false);
    let r = syz(d.path(), &k612(), &["--duration", "4", "--json"]);
    let j = json(&r);
    // Every check of the environment passed, or the kernel would have crashed.
    assert_eq!((r.code, j["outcome"].as_str()), (0, Some("no-crash")), "{j:#}\n{}", r.stderr);
    assert_eq!(j["message"], "no crash in 4 s");
    let run = &j["runs"][0];
    assert_eq!(run["cpus"], 2, "{run:#}");
    let cmdline = run["cmdline"].as_str().unwrap();
    for word in ["krepro.duration=4", "oops=panic", "panic_on_warn=1"] {
        assert!(cmdline.split(' ').any(|w| w == word), "{word} in {cmdline}");
    }
    assert!(run["wall_ms"].as_u64().unwrap() < 40_000, "{run:#}");
}

#[test]
fn the_reports_crash_and_another_are_told_apart() {
    require_qemu();
    let d = temp("syz");
    report(d.path(), "kernel panic: sysrq triggered crash", true);
    let r = syz(d.path(), &k612(), &["--duration", "60"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.lines().any(|l| l == "reproduced: kernel panic: sysrq triggered crash"), "{}", r.stderr);
    // The crash ends the run: not the 60 s.
    assert!(r.took.as_secs() < 40, "{:?}", r.took);

    report(d.path(), "WARNING in kcmp_lock", true);
    let r = syz(d.path(), &k612(), &["--duration", "60", "--json"]);
    let j = json(&r);
    assert_eq!((r.code, j["outcome"].as_str()), (2, Some("other-crash")), "{j:#}");
    assert_eq!(
        (j["crash_title"].as_str(), j["report_title"].as_str()),
        (Some("kernel panic: sysrq triggered crash"), Some("WARNING in kcmp_lock"))
    );
    assert_eq!(j["message"], "other crash: kernel panic: sysrq triggered crash (the report says WARNING in kcmp_lock)");
}

#[test]
fn an_arm64_reproducer_is_cross_compiled_and_titled() {
    require_qemu_for(Arch::Aarch64);
    let d = temp("syz");
    report(d.path(), "kernel panic: sysrq triggered crash", true);
    let r = syz(d.path(), &arm64_612(), &["--duration", "90", "--json"]);
    let j = json(&r);
    assert_eq!((r.code, j["outcome"].as_str()), (2, Some("reproduced")), "{j:#}\n{}", r.stderr);
}

#[test]
fn bad_input_is_one_line_and_exit_128() {
    let d = temp("syz");
    let k = k612();
    let check = |args: &[&str], want: &str| {
        let r = krepro_in(Path::new("/"), &[&["syz"][..], args].concat(), &[]);
        assert_eq!(r.code, 128, "{args:?}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {}", r.stderr);
        assert!(lines[0].starts_with("error: ") && lines[0].contains(want), "{args:?}: {}", r.stderr);
    };
    let dir = d.path().to_str().unwrap();
    check(&["/no/such/dir"], "not a directory of report files");
    check(&[dir, "--kernel", k.to_str().unwrap()], "report.txt");
    std::fs::write(d.path().join("report.txt"), "Subject: [syzbot] WARNING in f\n").unwrap();
    check(&[dir, "--kernel", k.to_str().unwrap()], "no repro.c");
    std::fs::write(d.path().join("repro.c"), "int main(void) { return 0; }\n").unwrap();
    // Not in a kernel tree, no --kernel: nothing to boot.
    check(&[dir], "--kernel FILE");
    check(&[dir, "--kernel", "/etc/hostname"], "is not a kernel image");
    check(&[dir, "--kernel", k.to_str().unwrap(), "--arch", "aarch64"], "is an x86_64 kernel");
}
