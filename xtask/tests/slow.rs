//! The slow tier (KREPRO_SLOW=1): real kernel builds from Debian's
//! linux-source-6.1. `KREPRO_SLOW=1 cargo xtask ci` installs what it needs.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::xtask;

// Every test here is #[ignore]d with its reason: a plain `cargo test` lists
// them as ignored, never as passed; `KREPRO_SLOW=1 cargo xtask ci` runs them
// (with --include-ignored), as does `cargo test -- --ignored`.

const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

/// Where the slow tier keeps its trees: under cargo's temp dir for this
/// target (extracted once, reused by later runs), never the user's cache.
fn test_src() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-src")
}

/// A linux-source-6.1 tree of the tests' own (extracted once).
fn linux_tree() -> PathBuf {
    let dir = test_src();
    let tree = dir.join("linux-source-6.1");
    if !tree.join("Makefile").is_file() {
        assert!(
            Path::new(TARBALL).is_file(),
            "{TARBALL} is missing: apt-get install -y linux-source-6.1 (or KREPRO_SLOW=1 cargo xtask ci)"
        );
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = tempfile::tempdir_in(&dir).unwrap();
        let ok = Command::new("tar").arg("xf").arg(TARBALL).current_dir(tmp.path()).status().unwrap().success();
        assert!(ok, "tar xf {TARBALL}");
        std::fs::rename(tmp.path().join("linux-source-6.1"), &tree).unwrap();
    }
    tree
}

/// (size, mtime) of every file: what a build must not change.
fn manifest(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, i64)> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (u64, i64, i64)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else {
                out.insert(e.path(), (m.size(), m.mtime(), m.mtime_nsec()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// Fails naming the paths that differ (but `except`): what a build wrote.
fn assert_same_tree(
    before: &BTreeMap<PathBuf, (u64, i64, i64)>,
    after: &BTreeMap<PathBuf, (u64, i64, i64)>,
    except: Option<&Path>,
) {
    let changed: Vec<&PathBuf> = before
        .keys()
        .chain(after.keys())
        .filter(|p| Some(p.as_path()) != except && before.get(*p) != after.get(*p))
        .take(20)
        .collect();
    assert!(changed.is_empty(), "the build wrote into the source tree: {changed:?}");
}

/// The file the test edits, restored to its original text on drop.
struct Edit {
    path: PathBuf,
    original: String,
}

impl Edit {
    fn new(path: PathBuf) -> Edit {
        let text = std::fs::read_to_string(&path).unwrap();
        // A run that died mid-way left its marker: strip it.
        let original = text.split("\n/* krepro-test").next().unwrap().to_owned();
        std::fs::write(&path, &original).unwrap();
        Edit { path, original }
    }
    fn set(&self, suffix: &str) {
        std::fs::write(&self.path, format!("{}\n/* krepro-test */{suffix}\n", self.original)).unwrap();
    }
}

impl Drop for Edit {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.original);
    }
}

#[test]
#[ignore = "needs KREPRO_SLOW=1: real kernel builds from linux-source-6.1, tens of minutes"]
fn kernel_builder_on_linux_source_6_1() {
    let tree = linux_tree();
    let src = tree.to_str().unwrap();
    let edit = Edit::new(tree.join("kernel/sys.c"));
    let out_dir = tempfile::tempdir().unwrap();
    let bz = out_dir.path().join("bzImage");
    let bz_s = bz.to_str().unwrap();

    // A full (or cached) build; the tree is not written to.
    let before = manifest(&tree);
    let b = xtask(&["kernel", "build", "--source", src, "--repro", "smoke", "-o", bz_s]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(b.stdout.trim(), bz_s);
    assert_same_tree(&before, &manifest(&tree), None);
    eprintln!("first build: {:?}\n{}", b.took, b.stderr);

    // It boots to a pass.
    let r = xtask(&["run", "--kernel", bz_s, "--repro", "smoke", "--accel", "tcg", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // tinyconfig kernels are xz with the x86 filter: the PVH path still works.
    let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(j["entry"], "pvh", "{j}\n{}", r.stderr);
    // krepro's fragment gives its own kernels every channel on microvm.
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": true, "debug_exit": true}), "{j}");
    eprintln!("boot: {}", r.stdout.trim());

    // The same build again: a cache hit, well under a second.
    let again = xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("krepro: cache hit: "), "{}", again.stderr);
    assert!(again.took < Duration::from_secs(1), "cache hit took {:?}", again.took);

    // Options the tree cannot provide are named, with kconfig's reason.
    let frag = out_dir.path().join("extra.config");
    std::fs::write(&frag, "CONFIG_KREPRO_NO_SUCH_OPTION=y\nCONFIG_VIRTIO_BLK=y\n").unwrap();
    let f = xtask(&["kernel", "build", "--source", src, "--repro", "smoke", "--fragment", frag.to_str().unwrap()]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        f.stderr.contains("CONFIG_KREPRO_NO_SUCH_OPTION=y (asked for in ")
            && f.stderr.contains("this tree has no such option"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("CONFIG_VIRTIO_BLK=y (asked for in ")
            && f.stderr.contains("depends on BLK_DEV && VIRTIO (not set: BLK_DEV)"),
        "{}",
        f.stderr
    );

    // A one-file change rebuilds incrementally: a handful of objects.
    edit.set(&format!("int krepro_test_{};", std::process::id()));
    let inc = xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(inc.code, 0, "{}", inc.stderr);
    let log = std::fs::read_to_string(find_log(&inc.stderr)).unwrap();
    let compiled = log.lines().filter(|l| l.trim_start().starts_with("CC ")).count();
    assert!((1..20).contains(&compiled), "incremental build compiled {compiled} objects");
    eprintln!("incremental build: {:?}, {compiled} objects compiled", inc.took);

    // A tree that does not build: a short error, the log path, exit 125.
    edit.set("this is not C;");
    let broken = xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(broken.code, 125, "{}", broken.stderr);
    assert!(broken.stderr.contains("error: the kernel did not build:"), "{}", broken.stderr);
    assert!(broken.stderr.contains("kernel/sys.c") && broken.stderr.contains("full log: "), "{}", broken.stderr);
    assert!(broken.stderr.lines().count() < 25, "{}", broken.stderr);
    drop(edit);

    // Build and boot in one command.
    let lb = xtask(&["run", "--source", src, "--repro", "listen_backlog", "--accel", "tcg", "--json"]);
    assert_eq!(lb.code, 0, "{}\n{}", lb.stdout, lb.stderr);
    // Only the file the test edited (and restored) differs, in its mtime.
    assert_same_tree(&before, &manifest(&tree), Some(&tree.join("kernel/sys.c")));
}

/// The build log a fresh build names: "krepro: built X in T (log PATH)".
fn find_log(stderr: &str) -> PathBuf {
    let line =
        stderr.lines().find(|l| l.starts_with("krepro: built ")).unwrap_or_else(|| panic!("no build line:\n{stderr}"));
    let log = line.rsplit_once("(log ").unwrap().1.trim_end_matches(')');
    PathBuf::from(log)
}

/// The regression planted in the throw-away history: a listener with
/// backlog 0 drops every SYN (Linux before 4.4 behaved like this).
const PLANT_FILE: &str = "net/ipv4/tcp_input.c";
const PLANT_FROM: &str = "\tif (sk_acceptq_is_full(sk)) {\n\t\tNET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);";
const PLANT_TO: &str =
    "\tif (sk_acceptq_is_full(sk) || !READ_ONCE(sk->sk_max_ack_backlog)) {\n\t\tNET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);";
const PLANT_SUBJECT: &str = "tcp: drop SYNs to listeners with backlog 0 (planted regression)";

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git history on top of linux-source-6.1 (made once, in the cache):
/// eight small commits, the fifth of which plants the regression. Tags
/// krepro-test-good (the base) and krepro-test-bad (the last commit).
fn linux_history() -> PathBuf {
    let repo = test_src().join("linux-git");
    if repo.join(".git").is_dir() && git_in(&repo, &["tag", "-l", "krepro-test-bad-v2"]).trim() == "krepro-test-bad-v2"
    {
        return repo;
    }
    let tree = linux_tree();
    let _ = std::fs::remove_dir_all(&repo);
    let ok = Command::new("cp").arg("-a").arg(&tree).arg(&repo).status().unwrap().success();
    assert!(ok, "cp -a {}", tree.display());
    // Debian's tarball ignores everything at the top level ("/*" then
    // "!/debian/"): drop that, or git adds nothing.
    let gi = repo.join(".gitignore");
    let text = std::fs::read_to_string(&gi).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| *l != "/*" && *l != "!/debian/").collect();
    std::fs::write(&gi, kept.join("\n") + "\n").unwrap();
    let g = |args: &[&str]| git_in(&repo, args);
    g(&["init", "-q", "-b", "main"]);
    g(&["config", "user.name", "Krepro Test"]);
    g(&["config", "user.email", "test@krepro.invalid"]);
    g(&["add", "-A"]);
    g(&["commit", "-qm", "linux-source-6.1 (base)"]);
    g(&["tag", "krepro-test-good"]);
    let changes = [
        ("kernel/sys.c", "sys: note"),
        ("fs/read_write.c", "fs: note"),
        ("lib/string.c", "lib: note"),
        ("init/main.c", "init: note"),
        (PLANT_FILE, PLANT_SUBJECT),
        ("kernel/fork.c", "fork: note"),
        ("mm/mmap.c", "mm: note"),
        ("drivers/tty/tty_io.c", "tty: note"),
    ];
    for (i, (file, subject)) in changes.iter().enumerate() {
        let path = repo.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let text = if *subject == PLANT_SUBJECT {
            assert!(text.contains(PLANT_FROM), "{file} changed upstream: plant site not found");
            // Both backlog checks: the syncookie path's and tcp_conn_request's.
            text.replace(PLANT_FROM, PLANT_TO)
        } else {
            format!("{text}/* krepro test history: change {i} */\n")
        };
        std::fs::write(&path, text).unwrap();
        g(&["commit", "-qam", subject]);
    }
    g(&["tag", "krepro-test-bad"]);
    // Marks a history made by this version of the test.
    g(&["tag", "krepro-test-bad-v2"]);
    repo
}

#[test]
#[ignore = "needs KREPRO_SLOW=1: real kernel builds from linux-source-6.1, tens of minutes"]
fn bisect_finds_a_planted_regression_with_real_builds() {
    let repo = linux_history();
    // The user's uncommitted work stays as it is.
    std::fs::write(repo.join("README"), "my uncommitted edit\n").unwrap();
    let status_before = git_in(&repo, &["status", "--porcelain"]);
    let head_before = git_in(&repo, &["rev-parse", "HEAD"]);

    let out_dir = tempfile::tempdir().unwrap();
    let json = out_dir.path().join("bisect.json");
    let r = xtask(&[
        "bisect",
        "--linux",
        repo.to_str().unwrap(),
        "--good",
        "krepro-test-good",
        "--bad",
        "krepro-test-bad",
        "--repro",
        "listen_backlog",
        "--accel",
        "tcg",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["commit"]["subject"], PLANT_SUBJECT, "{report:#}");
    assert_eq!(git_in(&repo, &["status", "--porcelain"]), status_before);
    assert_eq!(git_in(&repo, &["rev-parse", "HEAD"]), head_before);
    assert_eq!(git_in(&repo, &["worktree", "list"]).lines().count(), 1);
    std::fs::write(repo.join("README"), git_in(&repo, &["show", "HEAD:README"])).unwrap();

    eprintln!(
        "bisect: {:.0} s wall, {} commits tested",
        report["wall_secs"].as_f64().unwrap(),
        report["steps"].as_array().unwrap().len()
    );
    for s in report["steps"].as_array().unwrap() {
        eprintln!(
            "  {} {:<60} {:<5} build {:>6.1} s  boot {:>5.1} s",
            &s["commit"].as_str().unwrap()[..12],
            s["subject"].as_str().unwrap(),
            s["verdict"].as_str().unwrap(),
            s["build_secs"].as_f64().unwrap(),
            s["boot_secs"].as_f64().unwrap()
        );
    }
}
