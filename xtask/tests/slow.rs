//! The slow tier (KREPRO_SLOW=1): real kernel builds from Debian's
//! linux-source-6.1. `KREPRO_SLOW=1 cargo xtask ci` installs what it needs.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use krepro_runner::cache;

fn slow() -> bool {
    let on = std::env::var("KREPRO_SLOW").as_deref() == Ok("1");
    if !on {
        eprintln!("slow tier: set KREPRO_SLOW=1 to run real kernel builds");
    }
    on
}

const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

/// A linux-source-6.1 tree of the tests' own (extracted once into the cache).
fn linux_tree() -> PathBuf {
    let dir = cache::dir().join("test-src");
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

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn xtask(args: &[&str]) -> Out {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).stdin(Stdio::null()).output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
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
fn kernel_builder_on_linux_source_6_1() {
    if !slow() {
        return;
    }
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
    assert_eq!(manifest(&tree), before, "the build wrote into the source tree");
    eprintln!("first build: {:?}\n{}", b.took, b.stderr);

    // It boots to a pass.
    let r = xtask(&["run", "--kernel", bz_s, "--repro", "smoke", "--accel", "tcg", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
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
    assert!(f.stderr.contains("CONFIG_VIRTIO_BLK=y") && f.stderr.contains("not set: BLOCK"), "{}", f.stderr);

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
    assert_eq!(manifest(&tree), before, "the tree changed");
}

/// The build log a fresh build names: "krepro: built X in T (log PATH)".
fn find_log(stderr: &str) -> PathBuf {
    let line =
        stderr.lines().find(|l| l.starts_with("krepro: built ")).unwrap_or_else(|| panic!("no build line:\n{stderr}"));
    let log = line.rsplit_once("(log ").unwrap().1.trim_end_matches(')');
    PathBuf::from(log)
}
