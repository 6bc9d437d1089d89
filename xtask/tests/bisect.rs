//! `cargo xtask bisect` end to end, fast: a git repo made here whose
//! --build-cmd picks one of two real Debian kernels per commit, and a repro
//! that tells them apart. Real git bisect, real worktree, real boots.
//! Each bisect runs with `XDG_CACHE_HOME` in a temp dir of the test's: its
//! state, worktree and logs never land in the user's cache (the kernels
//! are read from there, by path).

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{k61, k612, require_qemu, temp, xtask_env, Run};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The build command: the commit's `kernel` file names the bzImage to use,
/// or says `broken`.
const BUILD_CMD: &str = r#"k=$(cat kernel); [ "$k" != broken ] && cp "$k" "$KREPRO_BZIMAGE""#;

/// A repo whose commit i uses kernels[i] (a path, or "broken"), with the
/// user's own uncommitted work, untracked file and stash in it.
fn repo(kernels: &[String]) -> (tempfile::TempDir, Vec<String>) {
    let dir = temp("repo");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["config", "user.name", "Krepro Test"]);
    git(d, &["config", "user.email", "test@krepro.invalid"]);
    let mut commits = Vec::new();
    for (i, k) in kernels.iter().enumerate() {
        std::fs::write(d.join("kernel"), k).unwrap();
        // A file of each commit's own, so that reverting one (culprit
        // verification) touches only `kernel`, and only if it changed it.
        std::fs::write(d.join(format!("change-{i}.txt")), format!("change {i}\n")).unwrap();
        if i == 0 {
            std::fs::write(d.join("notes.txt"), "notes\n").unwrap();
        }
        git(d, &["add", "-A"]);
        git(d, &["commit", "-qm", &format!("change {i}")]);
        commits.push(git(d, &["rev-parse", "HEAD"]).trim().to_owned());
    }
    std::fs::write(d.join("notes.txt"), "stashed work\n").unwrap();
    git(d, &["stash", "-q"]);
    std::fs::write(d.join("notes.txt"), "uncommitted work\n").unwrap();
    std::fs::write(d.join("mine.txt"), "untracked\n").unwrap();
    (dir, commits)
}

/// Every byte of the user's checkout and git state that bisect must not touch.
fn snapshot(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in ["kernel", "notes.txt", "mine.txt", ".git/index", ".git/HEAD"] {
        out.push((name.to_owned(), std::fs::read(d.join(name)).unwrap()));
    }
    for args in [&["status", "--porcelain"][..], &["stash", "list"], &["log", "--format=%H", "-n1"]] {
        out.push((format!("git {args:?}"), git(d, args).into_bytes()));
    }
    out
}

fn bisect(d: &Path, good: &str, bad: &str, extra: &[&str], cache: &Path) -> Run {
    require_qemu();
    let mut args = vec![
        "bisect",
        "--linux",
        d.to_str().unwrap(),
        "--good",
        good,
        "--bad",
        bad,
        "--repro",
        "selftest_version",
        "--build-cmd",
        BUILD_CMD,
        "--append",
        "krepro.fail_from=6.12",
        "--accel",
        "tcg",
        "--timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    xtask_env(&args, &[("XDG_CACHE_HOME", cache)])
}

fn paths(spec: &str) -> Vec<String> {
    let (old, new): (PathBuf, PathBuf) = (k61(), k612());
    spec.chars()
        .map(|c| match c {
            'g' => old.display().to_string(),
            'b' => new.display().to_string(),
            // The same kernel, written another way: a change to the line
            // 'b' wrote, so reverting that commit conflicts.
            'B' => format!("/.{}", new.display()),
            'x' => "broken".to_owned(),
            'p' => "/etc/passwd".to_owned(),
            _ => unreachable!(),
        })
        .collect()
}

#[test]
fn finds_the_culprit_skips_what_does_not_build_and_leaves_the_user_alone() {
    // 0 good ... 4 is the first bad; 2 and 6 do not build.
    let (dir, c) = repo(&paths("ggxgbbxb"));
    let cache = temp("cache");
    let before = snapshot(dir.path());
    let json = cache.path().join("report.json");
    let run = bisect(dir.path(), &c[0], &c[7], &["--json", json.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(snapshot(dir.path()), before, "the user's checkout changed");
    // krepro's worktree of the repository stays (the next build or bisect
    // starts from it), in its cache, with no bisect left in it.
    let list = git(dir.path(), &["worktree", "list", "--porcelain"]);
    let ours: Vec<&str> = list.lines().filter_map(|l| l.strip_prefix("worktree ")).skip(1).collect();
    assert_eq!(ours.len(), 1, "{list}");
    assert!(Path::new(ours[0]).starts_with(cache.path().join("krepro/worktrees")), "{list}");
    assert!(Command::new("git").args(["bisect", "log"]).current_dir(ours[0]).output().unwrap().stdout.is_empty());
    // Its state is gone; the console logs are in its cache.
    let state = cache.path().join("krepro/bisect");
    let left: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "bisect state left: {left:?}");
    assert!(std::fs::read_dir(cache.path().join("krepro/logs")).unwrap().next().is_some(), "no console logs");

    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["commit"]["hash"], c[4].as_str(), "{report:#}");
    assert_eq!(report["commit"]["subject"], "change 4");
    assert_eq!(report["commit"]["author"], "Krepro Test <test@krepro.invalid>");
    let steps = report["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["verdict"] == "bad" && s["commit"] == c[4].as_str()), "{report:#}");
    assert!(report["bisect_log"].as_str().unwrap().contains(&format!("# first bad commit: [{}]", c[4])));

    // The Markdown report: the commit, the table, the console of the first bad run.
    assert!(run.stdout.starts_with(&format!("## first bad commit: {} (\"change 4\")", &c[4][..12])), "{}", run.stdout);
    assert!(run.stdout.contains("| commit | subject | verdict | runs | compiler | build | boot |"), "{}", run.stdout);
    assert!(run.stdout.contains("| bad | fail | --build-cmd |"), "{}", run.stdout);
    assert!(run.stdout.contains("krepro: verdict=fail repro=selftest_version kernel 6.12"), "{}", run.stdout);
    // Progress went to stderr.
    assert!(run.stderr.contains("krepro: step 1"), "{}", run.stderr);

    // Verified: 4 fails again, 3 passes again, 7 with 4 reverted (its kernel
    // back to 6.1) passes; with the build and boot time of each.
    let v = &report["verification"];
    assert_eq!(v["status"], "verified", "{v:#}");
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{v:#}");
    assert_eq!(checks[2]["what"], format!("--bad {} with {} reverted passes", &c[7][..12], &c[4][..12]));
    assert_eq!((checks[2]["got"].as_str(), checks[2]["outcomes"][0].as_str()), (Some("good"), Some("pass")), "{v:#}");
    assert!(checks[2]["boot_secs"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(run.stdout.contains("### Verification: verified"), "{}", run.stdout);
    assert!(run.stderr.contains("krepro: verifying (3 of 3)"), "{}", run.stderr);
    assert!(run.stderr.contains("krepro: verified in "), "{}", run.stderr);
}

#[test]
fn a_culprit_whose_revert_conflicts_exits_2_could_not_verify() {
    // 2 is the first bad commit; 3 rewrites the line 2 changed.
    let (dir, c) = repo(&paths("ggbB"));
    let cache = temp("cache");
    let before = snapshot(dir.path());
    let json = cache.path().join("r.json");
    let run = bisect(dir.path(), &c[0], &c[3], &["--json", json.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["commit"]["hash"], c[2].as_str(), "{report:#}");
    let v = &report["verification"];
    assert_eq!(v["status"], "could_not_verify", "{v:#}");
    assert_eq!(v["checks"][2]["message"], "the revert conflicts in kernel", "{v:#}");
    assert!(run.stderr.contains("krepro: could not verify: could not check: --bad"), "{}", run.stderr);
    assert_eq!(snapshot(dir.path()), before, "the user's checkout changed");
    // --no-verify: git's answer, exit 0, nothing tested again.
    let run = bisect(dir.path(), &c[0], &c[3], &["--no-verify", "--json", json.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["verification"].is_null(), "{report:#}");
    assert!(!run.stderr.contains("verifying"), "{}", run.stderr);
}

#[test]
fn skipped_builds_are_skips_not_bad() {
    // If "does not build" counted as bad, the answer would be commit 2.
    let (dir, c) = repo(&paths("ggxxgbb"));
    let cache = temp("cache");
    let json = cache.path().join("r.json");
    // (Verification is tested above: here it would only add boots.)
    let run = bisect(dir.path(), &c[0], &c[6], &["--no-verify", "--json", json.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["commit"]["hash"], c[5].as_str(), "{report:#}");
}

#[test]
fn an_infrastructure_failure_stops_the_bisect_and_the_same_command_resumes() {
    // Commit 3 "builds" a file that is not a bzImage: not a verdict on the
    // commit, a broken setup.
    let (dir, c) = repo(&paths("gggpgbbb"));
    let cache = temp("cache");
    let run = bisect(dir.path(), &c[0], &c[7], &[], cache.path());
    assert_eq!(run.code, 128, "{}", run.stderr);
    let last = run.stderr.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error: stopped at ") && last.contains("is not a kernel image"), "{}", run.stderr);
    // The same command resumes: the ends are not tested again, and with
    // the setup still broken it stops at the same commit.
    let again = bisect(dir.path(), &c[0], &c[7], &[], cache.path());
    assert_eq!(again.code, 128, "{}", again.stderr);
    assert!(again.stderr.contains("krepro: resuming the bisect"), "{}", again.stderr);
    assert!(!again.stderr.contains("checking an end"), "{}", again.stderr);
}

#[test]
fn runs_3_catches_a_repro_that_fails_one_run_in_three() {
    let (dir, c) = repo(&paths("gggbbbb"));
    let cache = temp("cache");
    let json = cache.path().join("r.json");
    // The bug shows on the 3rd boot of each bad kernel only.
    let run = bisect(
        dir.path(),
        &c[0],
        &c[6],
        &["--runs", "3", "--append", "krepro.fail_every=3", "--no-verify", "--json", json.to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["commit"]["hash"], c[3].as_str(), "{report:#}");
    assert_eq!(report["flaky"], true);
    assert!(run.stdout.contains("the repro is flaky"), "{}", run.stdout);
    // With one run the bad end looks good, and the ends check says so.
    let cache = temp("cache");
    let once = bisect(dir.path(), &c[0], &c[6], &["--append", "krepro.fail_every=3"], cache.path());
    assert_eq!(once.code, 128, "{}", once.stderr);
    assert!(
        once.stderr.contains(&format!("error: --bad {} tests good instead of bad", &c[6][..12])),
        "{}",
        once.stderr
    );
}

#[test]
fn find_fix_and_bad_refs() {
    let (dir, c) = repo(&paths("bbbggg"));
    let cache = temp("cache");
    let json = cache.path().join("r.json");
    let run = bisect(dir.path(), &c[5], &c[0], &["--find-fix", "--json", json.to_str().unwrap()], cache.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["found"], "first fixed commit");
    assert_eq!(report["commit"]["hash"], c[3].as_str());

    let bad_ref = bisect(dir.path(), "no-such-ref", &c[0], &[], cache.path());
    assert_eq!(bad_ref.code, 128);
    assert_eq!(bad_ref.stderr.trim_end().lines().count(), 1, "{}", bad_ref.stderr);
    assert!(bad_ref.stderr.starts_with("error: --good no-such-ref: not a commit in "), "{}", bad_ref.stderr);
}

#[test]
fn config_bisect_refuses_bad_configs_before_building() {
    // A tree (never built: every refusal comes first) and the configs.
    let tree = temp("tree");
    for f in ["Makefile", "Kconfig"] {
        std::fs::write(tree.path().join(f), "").unwrap();
    }
    std::fs::create_dir_all(tree.path().join("arch/x86")).unwrap();
    let w = |name: &str, text: &str| {
        let p = tree.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let x86 = w("x86.config", "CONFIG_X86_64=y\nCONFIG_NET=y\n");
    let x86_again = w("x86-again.config", "CONFIG_X86_64=y\nCONFIG_NET=y\n");
    let arm = w("arm64.config", "CONFIG_ARM64=y\nCONFIG_NET=y\n");
    let text = w("notes.txt", "not a config\n");
    let cache = temp("cache");
    let run = |good: &str, bad: &str| {
        let args = ["bisect", "--source", tree.path().to_str().unwrap(), "--config-good", good, "--config-bad", bad];
        xtask_env(&args, &[("XDG_CACHE_HOME", cache.path())])
    };
    for (good, bad, says) in [
        (&text, &x86, "not a kernel config (no CONFIG_X86_64=y or CONFIG_ARM64=y line)"),
        (&x86, &arm, "is an x86_64 config but --config-bad"),
        (&x86, &x86_again, "are the same config: nothing to bisect"),
    ] {
        let r = run(good, bad);
        assert_eq!(r.code, 128, "{}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("error: --config-") && r.stderr.contains(says), "{}", r.stderr);
    }
    // config minimize refuses the same way.
    let src = tree.path().to_str().unwrap();
    for (big, says) in [(&text, "not a kernel config"), (&arm, "is an aarch64 config, but the guest is x86_64")] {
        let args = ["config", "minimize", "--source", src, "--config", big.as_str(), "--arch", "x86_64"];
        let r = xtask_env(&args, &[("XDG_CACHE_HOME", cache.path())]);
        assert_eq!(r.code, 128, "{}", r.stderr);
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("error: --config ") && r.stderr.contains(says), "{}", r.stderr);
    }
    // Nothing was built or kept.
    assert!(!cache.path().join("krepro/build").exists() && !cache.path().join("krepro/built").exists());
    // Commit bisect flags do not mix in.
    let r = xtask_env(&["bisect", "--config-good", &x86, "--config-bad", &arm, "--good", "v1"], &[]);
    assert_eq!(r.code, 128, "a usage error: {}", r.stderr);
    assert!(r.stderr.contains("cannot be used with '--good"), "{}", r.stderr);
}
