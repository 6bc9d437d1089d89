//! `cargo xtask bisect --debian` and `--kernels` end to end: real Debian
//! cloud kernels from apt, real boots, `selftest_version` giving a known
//! answer. Each bisect has a cache of its own (`XDG_CACHE_HOME` in a temp
//! dir: its state and logs never land in the user's cache), whose
//! `kernels/` is one download dir under cargo's temp dir for this target,
//! shared by the tests and kept between runs: a package is downloaded once.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{k61, k612, require_qemu, temp, test_cache, xtask_env, Run};
use krepro_runner::host::fetch::{self, Package};
use serde_json::Value;

/// A cache for one bisect whose kernels (and PVH vmlinux images) are the
/// shared ones.
fn cache(what: &str) -> tempfile::TempDir {
    let dir = temp(what);
    let root = dir.path().join("krepro");
    std::fs::create_dir_all(&root).unwrap();
    let shared = [
        (PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("debian-kernels"), "kernels"),
        (test_cache().join("krepro/vmlinux"), "vmlinux"),
    ];
    for (target, name) in shared {
        std::fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, root.join(name)).unwrap();
    }
    dir
}

fn bisect(args: &[&str], cache: &Path) -> Run {
    require_qemu();
    let mut all = vec!["bisect", "--repro", "selftest_version", "--accel", "tcg", "--timeout", "60"];
    all.extend_from_slice(args);
    xtask_env(&all, &[("XDG_CACHE_HOME", cache)])
}

/// The packages of these series, as the bisect lists them.
fn packages(series: &[&str]) -> Vec<Package> {
    let series: Vec<String> = series.iter().map(|s| (*s).to_owned()).collect();
    fetch::list(&series, krepro_runner::image::arch::Arch::X86_64, &mut |m| eprintln!("{m}"))
        .expect("apt lists the Debian cloud kernels")
}

/// The first package whose upstream version is at least `version`, and
/// the one before it.
fn boundary(list: &[Package], version: &str) -> (Package, Package) {
    let i = list
        .iter()
        .position(|p| numbers(&p.upstream().unwrap()) >= numbers(version))
        .unwrap_or_else(|| panic!("no package at or above {version}: {list:?}"));
    assert!(i > 0, "no package below {version}: {list:?}");
    (list[i].clone(), list[i - 1].clone())
}

/// "6.12.111" -> [6, 12, 111]
fn numbers(version: &str) -> Vec<u64> {
    version.split('.').map(|n| n.parse().unwrap()).collect()
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The kernels a run fetched (now or in the background while a step
/// booted) or found in the cache, in order.
fn fetched(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("krepro: ")?;
            let name = l
                .strip_prefix("fetching ")
                .or_else(|| l.strip_suffix(" is already in the cache"))
                .or_else(|| l.strip_suffix(" was fetched in the background"))?;
            Some(name.split(' ').next()?.to_owned())
        })
        .collect()
}

#[test]
fn debian_across_the_6_1_to_6_12_boundary_fetches_only_what_it_tests() {
    let list = packages(&["6.1", "6.12"]);
    let (first, before) = boundary(&list, "6.12");
    let cache = cache("cache");
    let json = cache.path().join("r.json");
    // One kernel at a time: a bisection (two at once is the next test).
    let run = bisect(
        &[
            "--debian",
            "6.1,6.12",
            "--append",
            "krepro.fail_from=6.12",
            "--modules",
            "auto",
            "--parallel",
            "1",
            "--json",
            json.to_str().unwrap(),
        ],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = report(&json);
    assert_eq!(r["found"], "first bad kernel");
    assert_eq!(r["kernels"]["first"]["name"], first.name.as_str(), "{r:#}");
    assert_eq!(r["kernels"]["before"]["name"], before.name.as_str(), "{r:#}");
    assert_eq!(r["kernels"]["before"]["package_version"], before.version.as_str());
    assert_eq!(r["good"], list[0].name.as_str());
    assert_eq!(r["bad"], list[list.len() - 1].name.as_str());
    // Stable branches are not ancestors of each other: the mainline range.
    let next = &r["kernels"]["next"];
    assert_eq!(
        next["command"],
        "krepro bisect --source <linux> --good v6.1 --bad v6.12 --repro selftest_version --append krepro.fail_from=6.12",
        "{r:#}"
    );
    assert!(next["why"].as_str().unwrap().contains("neither an ancestor of the other"), "{r:#}");
    assert_eq!(r["verification"]["status"], "verified", "{r:#}");
    // A binary search: ends, about log2(N) steps; only those were fetched
    // (the re-tests find theirs in the cache).
    let steps: Vec<&str> = r["steps"].as_array().unwrap().iter().map(|s| s["commit"].as_str().unwrap()).collect();
    assert!(steps.len() <= 2 + 4 && steps.len() < list.len(), "{steps:?}");
    let got = fetched(&run.stderr);
    assert_eq!(got[..steps.len()], steps[..], "{}", run.stderr);
    assert_eq!(got[steps.len()..], [first.name.clone(), before.name.clone()], "{}", run.stderr);
    // --modules auto on the 6.1 kernels (virtio_console is a module there).
    for s in r["steps"].as_array().unwrap() {
        let log = std::fs::read_to_string(s["console_log"].as_str().unwrap()).unwrap();
        assert!(!log.contains("krepro: warning: load module"), "{log}");
    }
    assert!(
        run.stdout.starts_with(&format!("## first bad kernel: {} ({})", first.name, first.upstream().unwrap())),
        "{}",
        run.stdout
    );
}

#[test]
fn debian_two_at_once_tests_both_ends_together_and_names_the_same_package_in_fewer_rounds() {
    let list = packages(&["6.1", "6.12"]);
    let (first, before) = boundary(&list, "6.12");
    let cache = cache("cache");
    let json = cache.path().join("r.json");
    let args = ["--debian", "6.1,6.12", "--append", "krepro.fail_from=6.12", "--modules", "auto", "--parallel", "2"];
    let started = std::time::Instant::now();
    let run = bisect(&[&args[..], &["--json", json.to_str().unwrap()]].concat(), cache.path());
    eprintln!("--parallel 2 over {} kernels: {:?}", list.len(), started.elapsed());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = report(&json);
    assert_eq!(r["kernels"]["first"]["name"], first.name.as_str(), "{r:#}");
    assert_eq!(r["kernels"]["before"]["name"], before.name.as_str(), "{r:#}");
    assert_eq!(r["verification"]["status"], "verified", "{r:#}");
    let steps = r["steps"].as_array().unwrap();
    // Both ends in the first round, booted side by side.
    assert_eq!((steps[0]["kind"].as_str(), steps[0]["round"].as_u64()), (Some("endpoint"), Some(1)), "{r:#}");
    assert_eq!((steps[1]["kind"].as_str(), steps[1]["round"].as_u64()), (Some("endpoint"), Some(1)), "{r:#}");
    // Then rounds of at most two: fewer rounds than a bisection's steps
    // (log2 of the open kernels, rounded up).
    let mut rounds: Vec<u64> = steps[2..].iter().map(|s| s["round"].as_u64().unwrap_or(0)).collect();
    let searched = rounds.len();
    rounds.dedup();
    let open = list.len() - 2;
    let bisection = (usize::BITS - open.leading_zeros()) as usize;
    assert!(rounds.len() < bisection && searched <= 2 * rounds.len(), "{rounds:?} of {open}: {r:#}");
    eprintln!("{searched} kernels in {} rounds after the ends (a bisection: up to {bisection} steps)", rounds.len());
}

#[test]
fn debian_within_6_12_names_the_first_bad_package() {
    let list = packages(&["6.12"]);
    let (first, before) = boundary(&list, "6.12.111");
    assert!(first.name.starts_with("linux-image-6.12.111+"), "the archive changed: {list:?}");
    let cache = cache("cache");
    let json = cache.path().join("r.json");
    let run = bisect(
        &["--debian", "6.12", "--append", "krepro.fail_from=6.12.111", "--json", json.to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = report(&json);
    assert_eq!(r["kernels"]["first"]["name"], first.name.as_str(), "{r:#}");
    assert_eq!(r["kernels"]["first"]["upstream"], "6.12.111");
    let command = format!(
        "krepro bisect --source <linux-stable> --good v{} --bad v6.12.111 --repro selftest_version --append krepro.fail_from=6.12.111",
        before.upstream().unwrap()
    );
    assert_eq!(r["kernels"]["next"]["command"], command.as_str(), "{r:#}");
    assert!(run.stdout.contains(&format!("\n    {command}\n")), "{}", run.stdout);
    let checks = r["verification"]["checks"].as_array().unwrap();
    assert_eq!(checks[0]["tested"], first.name.as_str());
    assert_eq!(checks[1]["tested"], before.name.as_str());
    assert!(run.stderr.contains("krepro: verifying (1 of 2): "), "{}", run.stderr);
    let last = run.stderr.trim_end().lines().last().unwrap();
    assert!(last.starts_with("krepro: verified in "), "{}", run.stderr);
}

#[test]
fn debian_find_fix_finds_the_first_fixed_package() {
    let list = packages(&["6.12"]);
    let (first, before) = boundary(&list, "6.12.113");
    let cache = cache("cache");
    let json = cache.path().join("r.json");
    // Kernels below 6.12.113 have the bug.
    let run = bisect(
        &["--debian", "6.12", "--find-fix", "--append", "krepro.pass_from=6.12.113", "--json", json.to_str().unwrap()],
        cache.path(),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = report(&json);
    assert_eq!(r["found"], "first fixed kernel");
    assert_eq!(r["kernels"]["first"]["name"], first.name.as_str(), "{r:#}");
    assert_eq!(
        (&r["bad"], &r["good"]),
        (&Value::from(list[0].name.as_str()), &Value::from(list[list.len() - 1].name.as_str()))
    );
    let command = r["kernels"]["next"]["command"].as_str().unwrap();
    let range = format!("--find-fix --bad v{} --good v{}", before.upstream().unwrap(), first.upstream().unwrap());
    assert!(command.contains(&range), "{command}");
    assert_eq!(
        r["verification"]["summary"], "the first fixed kernel passes again, the last broken kernel fails again",
        "{r:#}"
    );
}

#[test]
fn kernel_files_resume_after_ctrl_c() {
    require_qemu();
    // Three files: the 6.1 kernel, then the 6.12 one under two names.
    let files = temp("files");
    let paths = [("a-6.1", k61()), ("b-6.12", k612()), ("c-6.12", k612())].map(|(name, target)| {
        let p = files.path().join(name);
        std::os::unix::fs::symlink(target, &p).unwrap();
        p.display().to_string()
    });
    let cache = cache("cache");
    let json = cache.path().join("r.json");
    let mut args = vec!["bisect", "--kernels"];
    args.extend(paths.iter().map(String::as_str));
    args.extend([
        "--repro",
        "selftest_version",
        "--append",
        "krepro.fail_from=6.12",
        "--accel",
        "tcg",
        "--parallel",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);

    // Ctrl-C once the first end is tested: exit 130, its verdict kept.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .env("XDG_CACHE_HOME", cache.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("krepro:   -> bad") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ended early: {seen}");
        seen.push_str(&line);
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::INT).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("error: interrupted; run the same command to go on"), "{seen}{rest}");

    // The same command goes on: the bad end is not booted again.
    let run = xtask_env(&args, &[("XDG_CACHE_HOME", cache.path())]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("krepro: resuming the bisect in "), "{}", run.stderr);
    assert!(run.stderr.contains("(1 kernels tested so far)"), "{}", run.stderr);
    assert_eq!(run.stderr.matches("krepro: checking an end: ").count(), 1, "{}", run.stderr);
    let r = report(&json);
    assert_eq!(r["kernels"]["first"]["name"], paths[1].as_str(), "{r:#}");
    assert_eq!(r["kernels"]["before"]["name"], paths[0].as_str(), "{r:#}");
    // The files' upstream versions come from their images: Debian's 6.1.0-N
    // is 6.1.y, so the next bisect is mainline's.
    assert_eq!(r["kernels"]["before"]["upstream"].as_str().unwrap().split('.').take(2).collect::<Vec<_>>(), ["6", "1"]);
    assert!(r["kernels"]["next"]["command"].as_str().unwrap().contains("--good v6.1 --bad v6.12"), "{r:#}");
    assert_eq!(r["verification"]["status"], "verified");
    // Done: its state is gone.
    assert!(std::fs::read_dir(cache.path().join("krepro/bisect")).unwrap().next().is_none());
}

#[test]
fn bad_input_is_one_line_and_boots_nothing() {
    let cache = cache("cache");
    let k = k612().display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--kernels", &k], "error: --kernels needs at least two kernels, oldest first"),
        (
            &["--kernels", &k, "/etc/passwd"],
            "error: --kernels: /etc/passwd is not a kernel image (an x86 bzImage or an arm64 Image): ",
        ),
        (&["--debian", "6.12", "--good", "6.12.9999"], "error: --good 6.12.9999: not one of the kernels (6.12."),
        (
            &["--debian", "6.12", "--good", "6.12.117+deb12", "--bad", "6.12"],
            "error: --bad 6.12: not one of the kernels",
        ),
        (&["--debian", "6.12,latest"], "error: --debian 6.12,latest: latest: not a series (like 6.1 or 6.12)"),
    ];
    for (args, want) in cases {
        let run = bisect(args, cache.path());
        assert_eq!(run.code, 128, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.trim_end().lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with(want), "{args:?}: {}", run.stderr);
    }
    let order = bisect(&["--debian", "6.12", "--good", "6.12.117", "--bad", "6.12.111+deb12"], cache.path());
    assert_eq!(order.code, 128);
    assert_eq!(order.stderr.trim_end(), "error: --good 6.12.117 is not older than --bad 6.12.111 in the list");
    // Git's flags are only needed for git bisects; building flags are refused.
    let both = bisect(&["--debian", "6.12", "--build-cmd", "true"], cache.path());
    assert_eq!(both.code, 128);
    assert!(both.stderr.contains("'--debian <SERIES>' cannot be used with '--build-cmd <CMD>'"), "{}", both.stderr);
    let git = bisect(&["--good", "v6.1"], cache.path());
    assert_eq!(git.code, 128);
    assert!(git.stderr.contains("--bad <REV>"), "{}", git.stderr);
    // Nothing booted, nothing logged.
    assert!(!cache.path().join("krepro/logs").exists());
}
