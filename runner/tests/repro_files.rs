//! Repros kept beside a bug, not in krepro's tree: a `.rs` file, a
//! directory of them, a C source, each run by the `krepro` binary on a
//! real Debian kernel under real qemu. A file that does not compile is
//! rustc's (or cc's) message and exit 128, before qemu starts.

// Tests drive the binary directly; the rule that every child goes
// through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use krepro_runner::host::cache::Cache;
use krepro_runner::host::fetch;
use krepro_runner::image::arch::Arch;

/// Debian's 6.12 cloud kernel from the user's cache (`cargo xtask ci`
/// fetches it), or a failure that says how to get it.
fn kernel() -> PathBuf {
    let kernels = Cache::from_env().kernels();
    fetch::newest_cached(&kernels, Arch::X86_64, Some("6.12")).unwrap_or_else(|| {
        panic!("no Debian 6.12 cloud kernel in {}: run `cargo xtask kernel fetch 6.12`", kernels.display())
    })
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// `krepro ARGS` in `dir`, with the tests' own cache (never the user's).
fn krepro(dir: &Path, args: &[&str]) -> Run {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("krepro-cache");
    let logs = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_krepro"));
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).env("XDG_CACHE_HOME", &cache);
    if args.first() == Some(&"run") {
        cmd.arg("--log-dir").arg(logs.path());
    }
    let out = cmd.output().expect("run krepro");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn boot(dir: &Path, what: &[&str]) -> Run {
    let k = kernel();
    let mut args = vec!["run", "--kernel", k.to_str().unwrap(), "--accel", "tcg", "--json"];
    args.extend_from_slice(what);
    krepro(dir, &args)
}

const FAILS: &str = r#"//! Sees its bug.
use repros::prelude::*;

pub const REPRO: Repro = Repro {
    name: "sees_bug",
    description: "fails on purpose",
    config: &["PROC_FS"],
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    let up = cx.read_to_string("/proc/uptime").step("read /proc/uptime")?;
    Ok(Verdict::Fail(format!("the bug is here (uptime {})", up.trim())))
}
"#;

#[test]
fn a_repro_file_that_sees_its_bug_fails() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("sees_bug.rs"), FAILS).unwrap();
    let run = boot(d.path(), &["sees_bug.rs"]);
    let j = run.json();
    assert_eq!((run.code, j["outcome"].as_str()), (1, Some("fail")), "{}", run.stderr);
    assert_eq!(j["repro"], "sees_bug");
    assert!(j["message"].as_str().unwrap().starts_with("the bug is here (uptime "), "{j}");
}

#[test]
fn a_repro_file_that_does_not_compile_is_rustcs_message_and_exit_128() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("typo.rs");
    std::fs::write(&file, FAILS.replace("sees_bug", "typo").replace("Ok(Verdict::Fail(", "Ok(Verdict::Fial(")).unwrap();
    let run = boot(d.path(), &["typo.rs"]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["outcome"], "error");
    let msg = j["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("{} does not compile:\nerror[E0599]", file.display())), "{msg}");
    assert!(msg.contains(&format!("--> {}:14:", file.display())), "rustc names the user's file: {msg}");
    assert!(!run.stderr.contains("booting"), "no qemu: {}", run.stderr);
}

#[test]
fn a_c_source_is_compiled_static_and_run() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("probe.c"),
        "#include <pthread.h>\n#include <stdio.h>\nstatic void *t(void *a) { return a; }\n\
         int main(void) { pthread_t x; pthread_create(&x, 0, t, 0); pthread_join(x, 0); puts(\"c ok\"); return 0; }\n",
    )
    .unwrap();
    let run = boot(d.path(), &["probe.c"]);
    assert_eq!((run.code, run.json()["outcome"].as_str()), (0, Some("pass")), "{}", run.stderr);
    // Without --json, the summary names the file.
    let k = kernel();
    let human = krepro(d.path(), &["run", "--kernel", k.to_str().unwrap(), "--accel", "tcg", "probe.c"]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stderr.contains(&format!("pass: {} on 6.12.", d.path().join("probe.c").display())),
        "{}",
        human.stderr
    );
    // A C file that does not compile: cc's message, exit 128, before qemu.
    std::fs::write(d.path().join("bad.c"), "int main(void) { return undefined_thing; }\n").unwrap();
    let bad = boot(d.path(), &["bad.c"]);
    assert_eq!(bad.code, 128, "{}", bad.stderr);
    assert!(bad.stderr.contains("bad.c:1:") && bad.stderr.contains("undefined_thing"), "{}", bad.stderr);
}

#[test]
fn a_directory_of_repros_is_listed_and_one_is_picked_by_name() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("sees_bug.rs"), FAILS).unwrap();
    let passes = FAILS.replace("sees_bug", "all_good").replace(
        "Ok(Verdict::Fail(format!(\"the bug is here (uptime {})\", up.trim())))",
        "let _ = up;\n    Ok(Verdict::Pass)",
    );
    std::fs::write(d.path().join("all_good.rs"), passes).unwrap();
    let list = krepro(d.path(), &["repros", "."]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    let names: Vec<&str> = list.stdout.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(names, ["all_good", "sees_bug"], "{}", list.stdout);
    assert!(list.stdout.contains("[PROC_FS]"), "{}", list.stdout);
    let several = boot(d.path(), &["."]);
    assert_eq!(several.code, 128, "{}", several.stderr);
    assert!(
        several.stderr.contains("declares 2 repros (all_good, sees_bug): name one with --repro NAME"),
        "{}",
        several.stderr
    );
    let run = boot(d.path(), &[".", "--repro", "all_good"]);
    assert_eq!((run.code, run.json()["repro"].as_str()), (0, Some("all_good")), "{}", run.stderr);
}

#[test]
fn new_writes_a_repro_that_passes() {
    let d = tempfile::tempdir().unwrap();
    let new = krepro(d.path(), &["new", "probe"]);
    assert_eq!(new.code, 0, "{}", new.stderr);
    assert_eq!(new.stdout.trim(), "./probe.rs");
    let run = boot(d.path(), &["probe.rs"]);
    assert_eq!((run.code, run.json()["outcome"].as_str()), (0, Some("pass")), "{}", run.stderr);
    let again = krepro(d.path(), &["new", "probe"]);
    assert_eq!(again.code, 128);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}
