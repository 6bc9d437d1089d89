//! The slow tier: real kernel builds from Debian's linux-source-6.1 and a
//! real bisect over them. Ignored unless asked for: `KREPRO_SLOW=1 cargo
//! xtask ci` installs what they need and runs them (`--include-ignored`);
//! `cargo test -p xtask --test slow -- --ignored` runs just them. Once
//! running they do their whole job: a missing prerequisite fails the test
//! and names the package to install.
//!
//! Inputs made from the tarball (the extracted tree, a git history on top
//! of it) and ccache's cache stay in cargo's scratch dir for tests
//! (target/tmp/slow) and are reused; what krepro writes (its build cache,
//! bisect state, logs) goes to a temp `XDG_CACHE_HOME` per test, never to
//! the user's cache.

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    console_log, extract_linux_source, krepro_in, static_fixture, temp, xtask_env, Run, LINUX_SOURCE as TARBALL,
};

/// What a kernel build needs on the host: (program or header, Debian
/// package). `cargo xtask ci` installs them under KREPRO_SLOW=1 (its
/// SLOW_PACKAGES).
const PREREQUISITES: &[(&str, &str)] = &[
    (TARBALL, "linux-source-6.1"),
    ("tar", "tar"),
    ("xz", "xz-utils"),
    ("make", "make"),
    ("gcc", "gcc"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("bc", "bc"),
    ("git", "git"),
    ("ccache", "ccache"),
    ("/usr/include/gelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
    // arm64 kernels: the cross gcc and qemu's arm64 emulator.
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("qemu-system-aarch64", "qemu-system-arm"),
];

/// Fails naming every missing prerequisite and the command that installs them.
fn require_prerequisites() {
    let missing: Vec<&str> = PREREQUISITES
        .iter()
        .filter(
            |(what, _)| if what.starts_with('/') { !Path::new(what).is_file() } else { which::which(what).is_err() },
        )
        .map(|&(_, package)| package)
        .collect();
    assert!(
        missing.is_empty(),
        "the slow tier needs: apt-get install -y {} (or run KREPRO_SLOW=1 cargo xtask ci, which installs them)",
        missing.join(" ")
    );
}

/// cargo's scratch dir for integration tests, under target/: the inputs
/// the slow tests make once and reuse.
fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("slow");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// A linux-source-6.1 tree of the builder tests' own (extracted once),
/// held by one test at a time: the kernel-build test edits a file in it,
/// and two kernel builds on two cores only slow each other down.
fn linux_tree() -> (std::sync::MutexGuard<'static, ()>, PathBuf) {
    static TREE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = TREE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tree = scratch().join("linux-source-6.1");
    if !tree.join("Makefile").is_file() {
        extract_linux_source("6.1", &tree, &[]);
    }
    (guard, tree)
}

/// What a test's xtask runs see: krepro's cache in the test's temp dir,
/// ccache's in the scratch dir (its own per test, so its counters are the
/// test's).
struct Env {
    name: String,
    cache: tempfile::TempDir,
    ccache: PathBuf,
}

/// A failed test keeps its runs' consoles (the temp cache goes with it):
/// an hour of builds that ends in a wrong answer has to be explainable.
impl Drop for Env {
    fn drop(&mut self) {
        let logs = self.cache.path().join("krepro/logs");
        if !std::thread::panicking() || !logs.is_dir() {
            return;
        }
        let kept = scratch().join(format!("failed-{}-logs", self.name));
        let _ = std::fs::remove_dir_all(&kept);
        let copied = Command::new("cp").arg("-a").arg(&logs).arg(&kept).status();
        if copied.is_ok_and(|s| s.success()) {
            eprintln!("the consoles of this test's runs are kept in {}", kept.display());
        }
    }
}

impl Env {
    fn new(name: &str) -> Env {
        let ccache = scratch().join(format!("ccache-{name}"));
        std::fs::create_dir_all(&ccache).unwrap();
        Env { name: name.to_owned(), cache: temp("cache"), ccache }
    }

    fn xtask(&self, args: &[&str]) -> Run {
        xtask_env(args, &[("XDG_CACHE_HOME", self.cache.path()), ("CCACHE_DIR", &self.ccache)])
    }

    /// The `krepro` binary, run in `dir`.
    fn krepro(&self, dir: &Path, args: &[&str]) -> Run {
        krepro_in(dir, args, &[("XDG_CACHE_HOME", self.cache.path()), ("CCACHE_DIR", &self.ccache)])
    }

    fn ccache(&self, args: &[&str]) -> String {
        let out = Command::new("ccache").args(args).env("CCACHE_DIR", &self.ccache).output().expect("run ccache");
        assert!(out.status.success(), "ccache {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Compiler calls ccache looked up since its counters were zeroed.
    fn ccache_calls(&self) -> u64 {
        let stats = self.ccache(&["--print-stats"]);
        stats
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(key, _)| ["direct_cache_hit", "preprocessed_cache_hit", "cache_miss"].contains(key))
            .map(|(_, n)| n.trim().parse::<u64>().unwrap_or_else(|e| panic!("{n}: {e} in\n{stats}")))
            .sum()
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
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds, tens of minutes)"]
fn kernel_builder_on_linux_source_6_1() {
    require_prerequisites();
    let env = Env::new("build");
    let (_tree_lock, tree) = linux_tree();
    let src = tree.to_str().unwrap();
    let edit = Edit::new(tree.join("kernel/sys.c"));
    let out_dir = temp("out");
    let bz = out_dir.path().join("bzImage");
    let bz_s = bz.to_str().unwrap();

    // A full build (krepro's cache is new), through ccache; the tree is not
    // written to.
    env.ccache(&["--zero-stats"]);
    let before = manifest(&tree);
    let b = env.xtask(&["kernel", "build", "--source", src, "--repro", "smoke", "-o", bz_s]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(b.stdout.trim(), bz_s);
    assert!(b.stderr.contains("krepro: ccache found ("), "{}", b.stderr);
    let log = std::fs::read_to_string(find_log(&b.stderr)).unwrap();
    let compiled = log.lines().filter(|l| l.trim_start().starts_with("CC ")).count();
    let calls = env.ccache_calls();
    assert!(compiled > 100 && calls >= compiled as u64 / 2, "{compiled} objects, {calls} ccache lookups");
    assert_same_tree(&before, &manifest(&tree), None);
    eprintln!("first build: {:?}, {compiled} objects, {calls} ccache lookups\n{}", b.took, b.stderr);

    // It boots to a pass.
    let r = env.xtask(&["run", "--kernel", bz_s, "--repro", "smoke", "--accel", "tcg", "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // tinyconfig kernels are xz with the x86 filter: the PVH path still works.
    let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(j["entry"], "pvh", "{j}\n{}", r.stderr);
    // krepro's fragment gives its own kernels every channel on microvm.
    assert_eq!(j["channels"], serde_json::json!({"console": true, "virtio": true, "debug_exit": true}), "{j}");
    eprintln!("boot: {}", r.stdout.trim());

    // The same build again: a cache hit that runs no make (how fast it is
    // belongs in a benchmark, not in a test that shares two cores).
    let again = env.xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("krepro: cache hit: "), "{}", again.stderr);
    assert!(!again.stderr.contains("krepro: built "), "a cache hit built again: {}", again.stderr);
    let first = b.stderr.lines().find_map(|l| l.strip_prefix("krepro: built ")).and_then(|l| l.split(" in ").next());
    assert_eq!(Some(again.stdout.trim()), first, "the cache hit names another kernel");
    eprintln!("cache hit: {:?}", again.took);

    // Options the tree cannot provide are named, with kconfig's reason.
    let frag = out_dir.path().join("extra.config");
    std::fs::write(&frag, "CONFIG_KREPRO_NO_SUCH_OPTION=y\nCONFIG_VIRTIO_BLK=y\n").unwrap();
    let f = env.xtask(&["kernel", "build", "--source", src, "--repro", "smoke", "--fragment", frag.to_str().unwrap()]);
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
    let inc = env.xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(inc.code, 0, "{}", inc.stderr);
    let log = std::fs::read_to_string(find_log(&inc.stderr)).unwrap();
    let compiled = log.lines().filter(|l| l.trim_start().starts_with("CC ")).count();
    assert!((1..20).contains(&compiled), "incremental build compiled {compiled} objects");
    eprintln!("incremental build: {:?}, {compiled} objects compiled", inc.took);

    // A tree that does not build: a short error, the log path, exit 125.
    edit.set("this is not C;");
    let broken = env.xtask(&["kernel", "build", "--source", src, "--repro", "smoke"]);
    assert_eq!(broken.code, 125, "{}", broken.stderr);
    assert!(broken.stderr.contains("error: the kernel did not build (with gcc-"), "{}", broken.stderr);
    assert!(broken.stderr.contains("kernel/sys.c") && broken.stderr.contains("full log: "), "{}", broken.stderr);
    assert!(broken.stderr.lines().count() < 25, "{}", broken.stderr);
    drop(edit);

    // Build and boot in one command.
    let lb = env.xtask(&["run", "-b", "--source", src, "--repro", "listen_backlog", "--accel", "tcg", "--json"]);
    assert_eq!(lb.code, 0, "{}\n{}", lb.stdout, lb.stderr);
    assert_eq!(lb.json()["outcome"], "pass", "{}", lb.stdout);
    // Only the file the test edited (and restored) differs, in its mtime.
    assert_same_tree(&before, &manifest(&tree), Some(&tree.join("kernel/sys.c")));
}

/// The SDK's repros on a kernel from the builder: one tinyconfig-based
/// kernel with what they declare (SMP for two CPUs, virtio-blk and ext4
/// for a scratch disk, kcmp's options), each repro passing on it, and a
/// static probe run with `--cpus 2` seeing two online CPUs.
#[test]
#[ignore = "needs KREPRO_SLOW=1 (a real kernel build, minutes)"]
fn the_sdk_repros_pass_on_a_builder_kernel() {
    require_prerequisites();
    let env = Env::new("sdk");
    let (_tree_lock, tree) = linux_tree();
    let out_dir = temp("sdk");
    let bz = out_dir.path().join("bzImage");
    let frag = repro_fragment(out_dir.path(), "kcmp");
    let b = env.xtask(&[
        "kernel",
        "build",
        "--source",
        tree.to_str().unwrap(),
        "--repro",
        "race_two_cpus",
        "--disk",
        "new:64M:ext4",
        "--fragment",
        frag.to_str().unwrap(),
        "-o",
        bz.to_str().unwrap(),
    ]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    eprintln!("sdk kernel: {:?}\n{}", b.took, b.stderr);
    let config = std::fs::read_to_string(out_dir.path().join("bzImage.config")).unwrap();
    for want in ["CONFIG_SMP=y", "CONFIG_VIRTIO_BLK=y", "CONFIG_EXT4_FS=y", "CONFIG_KCMP=y"] {
        assert!(config.lines().any(|l| l == want), "{want} is not in the built .config");
    }
    let bz_s = bz.to_str().unwrap();
    for repro in ["race_two_cpus", "fs_ext4_roundtrip", "kcmp"] {
        let r = env.xtask(&["run", "--kernel", bz_s, "--repro", repro, "--accel", "tcg", "--json"]);
        assert_eq!((r.code, r.json()["outcome"].as_str()), (0, Some("pass")), "{repro}: {}\n{}", r.stdout, r.stderr);
        eprintln!("{repro}: {}", r.stdout.trim());
    }
    let probe = static_fixture("devices.c");
    let r = env.xtask(&[
        "run",
        "--kernel",
        bz_s,
        "--exec",
        probe.to_str().unwrap(),
        "--cpus",
        "2",
        "--disk",
        "new:64M:ext4",
        "--accel",
        "tcg",
        "--json",
    ]);
    let j = r.json();
    assert_eq!((r.code, j["outcome"].as_str()), (0, Some("pass")), "{j}\n{}", r.stderr);
    let console = console_log(&r, &j);
    assert!(console.contains("devices: nproc=2"), "{console}");
    assert!(console.contains("devices: /dev/vda starts") && console.contains("ext4=1"), "{console}");
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (a real arm64 kernel build, minutes)"]
fn an_arm64_builder_kernel_runs_the_sdk_repros() {
    require_prerequisites();
    let env = Env::new("arm64");
    let (_tree_lock, tree) = linux_tree();
    let out_dir = temp("arm64");
    let image = out_dir.path().join("Image");
    // smoke's options (the network stack) beside race_two_cpus's.
    let frag = repro_fragment(out_dir.path(), "smoke");
    let build = |extra: &[&str]| {
        let mut args = vec!["kernel", "build", "--source", tree.to_str().unwrap(), "--arch", "aarch64"];
        args.extend(["--repro", "race_two_cpus", "--disk", "new:64M:ext4", "--fragment", frag.to_str().unwrap()]);
        args.extend(["-o", image.to_str().unwrap()]);
        args.extend(extra);
        env.xtask(&args)
    };
    let b = build(&[]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    eprintln!("arm64 kernel: {:?}\n{}", b.took, b.stderr);
    assert!(b.stderr.contains("compiler: gcc-12"), "{}", b.stderr);
    let bytes = std::fs::read(&image).unwrap();
    assert_eq!(&bytes[56..60], b"ARM\x64", "an arm64 Image header");
    let config = std::fs::read_to_string(out_dir.path().join("Image.config")).unwrap();
    assert!(config.contains("# Linux/arm64 6.1"), "an arm64 config");
    for want in [
        "CONFIG_SERIAL_AMBA_PL011_CONSOLE=y",
        "CONFIG_ARM_PSCI_FW=y",
        "CONFIG_PCI_HOST_GENERIC=y",
        "CONFIG_VIRTIO_PCI=y",
        "CONFIG_VIRTIO_CONSOLE=y",
        "CONFIG_SMP=y",
        "CONFIG_VIRTIO_BLK=y",
        "CONFIG_EXT4_FS=y",
    ] {
        assert!(config.lines().any(|l| l == want), "{want} is not in the built .config");
    }
    assert!(!config.lines().any(|l| l == "CONFIG_SERIAL_8250=y"), "no x86 UART");
    let again = build(&[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("cache hit"), "{}", again.stderr);

    let k = image.to_str().unwrap();
    for (repro, code, outcome) in [
        ("smoke", 0, "pass"),
        ("race_two_cpus", 0, "pass"),
        ("fs_ext4_roundtrip", 0, "pass"),
        ("selftest_fail", 1, "fail"),
        // tinyconfig has no MAGIC_SYSRQ: the repro says it cannot test this
        // kernel (the crash path on arm64 is tests/arm64.rs's, on Debian's).
        ("selftest_panic", 125, "skip"),
    ] {
        let r = env.xtask(&["run", "--kernel", k, "--repro", repro, "--accel", "tcg", "--json"]);
        let j = r.json();
        assert_eq!((r.code, j["outcome"].as_str()), (code, Some(outcome)), "{repro}: {j}\n{}", r.stderr);
        assert_eq!(j["machine"], "virt", "{j}");
        eprintln!("arm64 {repro}: qemu {} ms, kernel to /init {} ms", j["qemu_ms"], j["boot_to_init_ms"]);
    }
}

/// Debian's linux-source-6.12, extracted once beside the 6.1 tree (its
/// package is installed by `KREPRO_SLOW=1 cargo xtask ci`).
fn linux_6_12_tree() -> PathBuf {
    let tree = scratch().join("linux-source-6.12");
    if !tree.join("Makefile").is_file() {
        extract_linux_source("6.12", &tree, &[]);
    }
    tree
}

/// `--cc`: each tree builds with the compilers of its era that Debian
/// offers (installed by krepro as root when missing, saying so) and boots
/// `smoke`; `--cc auto` names its choice and why.
#[test]
#[ignore = "needs KREPRO_SLOW=1 (five real kernel builds with four compilers, tens of minutes)"]
fn compilers_across_eras() {
    require_prerequisites();
    let env = Env::new("cc");
    let (_tree_lock, tree61) = linux_tree();
    let tree612 = linux_6_12_tree();
    for (tree, cc, version) in [
        (&tree61, "gcc-12", "6.1."),
        (&tree61, "gcc-11", "6.1."),
        (&tree61, "clang-15", "6.1."),
        (&tree612, "gcc-12", "6.12."),
        (&tree612, "clang-19", "6.12."),
    ] {
        let out = temp("cc");
        let bz = out.path().join("bzImage");
        let b = env.xtask(&[
            "kernel",
            "build",
            "--source",
            tree.to_str().unwrap(),
            "--repro",
            "smoke",
            "--cc",
            cc,
            "-o",
            bz.to_str().unwrap(),
        ]);
        assert_eq!(b.code, 0, "{cc} on {}: {}", tree.display(), b.stderr);
        assert!(b.stderr.contains(&format!("krepro: compiler: {cc} (--cc {cc})")), "{}", b.stderr);
        let config = std::fs::read_to_string(out.path().join("bzImage.config")).unwrap();
        let family = if cc.starts_with("clang") { "CONFIG_CC_IS_CLANG=y" } else { "CONFIG_CC_IS_GCC=y" };
        assert!(config.lines().any(|l| l == family), "{cc}: {family} not in the .config");
        let r = env.xtask(&["run", "--kernel", bz.to_str().unwrap(), "--repro", "smoke", "--accel", "tcg", "--json"]);
        let j = r.json();
        assert_eq!((r.code, j["outcome"].as_str()), (0, Some("pass")), "{cc}: {j}\n{}", r.stderr);
        assert!(j["kernel_release"].as_str().unwrap().starts_with(version), "{j}");
        eprintln!("{cc} on {}: built in {:?}", tree.display(), b.took);
    }
    // auto: the newest gcc the era allows that is installed, and why.
    for (tree, v) in [(&tree61, "v6.1"), (&tree612, "v6.12")] {
        let b = env.xtask(&["kernel", "build", "--source", tree.to_str().unwrap(), "--repro", "smoke"]);
        assert_eq!(b.code, 0, "{}", b.stderr);
        assert!(b.stderr.contains(&format!("krepro: compiler: gcc-12 ({v} takes gcc 5 or newer (")), "{}", b.stderr);
        // The same compiler as --cc gcc-12: the same kernel, from the cache.
        assert!(b.stderr.contains("krepro: cache hit: "), "{}", b.stderr);
    }
}

/// The config options a compiled-in repro declares, as `xtask repros`
/// lists them.
fn krepro_repros_config(name: &str) -> Vec<String> {
    let r = xtask_env(&["repros"], &[]);
    let line = r
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} in\n{}", r.stdout));
    let list = line.rsplit_once('[').unwrap().1.split_once(']').unwrap().0;
    list.split(',').map(str::to_owned).collect()
}

/// A config fragment in `dir` with the options repro `name` declares.
fn repro_fragment(dir: &Path, name: &str) -> PathBuf {
    let frag = dir.join(format!("{name}.config"));
    let options = krepro_repros_config(name);
    std::fs::write(&frag, options.iter().map(|o| format!("CONFIG_{o}=y\n")).collect::<String>()).unwrap();
    frag
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
#[allow(dead_code)]
#[path = "../src/bench/planted.rs"]
mod planted;

use planted::PLANT_SUBJECT;

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git history on top of linux-source-6.1 (made once, in the scratch
/// dir, from a tree of its own): eight small commits, the fifth of which
/// plants the regression. Tags krepro-test-good (the base) and
/// krepro-test-bad (the last commit). Held by one test at a time: the
/// tests edit its work tree and compare its status.
fn linux_history() -> (std::sync::MutexGuard<'static, ()>, PathBuf) {
    static HISTORY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = HISTORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (guard, make_linux_history())
}

fn make_linux_history() -> PathBuf {
    planted::history(&scratch().join("linux-git")).unwrap_or_else(|e| panic!("the planted history: {e:#}"))
}

/// `krepro bisect` of the planted history for listen_backlog under TCG,
/// run inside the tree (no --source: the tree it is in), with `extra`
/// flags; it must exit 0. The run and its JSON report.
fn planted_bisect(env: &Env, repo: &Path, extra: &[&str]) -> (Run, serde_json::Value) {
    let out_dir = temp("out");
    let json = out_dir.path().join("bisect.json");
    let mut args = vec!["bisect", "--good", "krepro-test-good"];
    args.extend(["--bad", "krepro-test-bad", "--repro", "listen_backlog", "--accel", "tcg"]);
    args.extend(["--json", json.to_str().unwrap()]);
    args.extend(extra);
    let r = env.krepro(repo, &args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (r, report)
}

/// A bisect report's steps, one line each, for the test's output.
fn print_steps(report: &serde_json::Value) {
    for s in report["steps"].as_array().unwrap() {
        eprintln!(
            "  {} {:<60} {:<5} build {:>6.1} s  boot {:>5.1} s",
            s["commit"].as_str().unwrap().get(..12).unwrap_or(s["commit"].as_str().unwrap()),
            s["subject"].as_str().unwrap(),
            s["verdict"].as_str().unwrap(),
            s["build_secs"].as_f64().unwrap(),
            s["boot_secs"].as_f64().unwrap()
        );
    }
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds and a real bisect, tens of minutes)"]
fn bisect_finds_a_planted_regression_with_real_builds() {
    require_prerequisites();
    let env = Env::new("bisect");
    let (_held, repo) = linux_history();
    // The user's uncommitted work stays as it is.
    std::fs::write(repo.join("README"), "my uncommitted edit\n").unwrap();
    let status_before = git_in(&repo, &["status", "--porcelain"]);
    let head_before = git_in(&repo, &["rev-parse", "HEAD"]);

    // The user builds their tree first (as they would before bisecting):
    // a snapshot of it, in krepro's worktree of the repository.
    let user = env.xtask(&["kernel", "build", "--source", repo.to_str().unwrap(), "--repro", "listen_backlog"]);
    assert_eq!(user.code, 0, "{}", user.stderr);
    let line =
        user.stderr.lines().find(|l| l.contains("in krepro's worktree ")).unwrap_or_else(|| panic!("{}", user.stderr));
    let worktree = line.rsplit_once("in krepro's worktree ").unwrap().1.to_owned();
    assert_eq!(git_in(&repo, &["status", "--porcelain"]), status_before);
    eprintln!("the user's build: {:?}", user.took);

    let (r, report) = planted_bisect(&env, &repo, &[]);
    assert_eq!(report["commit"]["subject"], PLANT_SUBJECT, "{report:#}");
    // Verified: the plant fails again, its parent passes, and the bad end
    // with the plant reverted (a real revert, a real build) passes.
    let v = &report["verification"];
    assert_eq!(v["status"], "verified", "{v:#}");
    let revert = &v["checks"][2];
    assert_eq!((revert["expected"].as_str(), revert["got"].as_str()), (Some("good"), Some("good")), "{v:#}");
    assert!(revert["build_secs"].as_f64().unwrap() > 0.0 && revert["boot_secs"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(r.stdout.contains("### Verification: verified"), "{}", r.stdout);
    assert_eq!(git_in(&repo, &["status", "--porcelain"]), status_before);
    assert_eq!(git_in(&repo, &["rev-parse", "HEAD"]), head_before);
    // The bisect ran in the worktree the user's build used, and left it
    // there with no bisect in it.
    let list = git_in(&repo, &["worktree", "list", "--porcelain"]);
    let ours: Vec<&str> = list.lines().filter_map(|l| l.strip_prefix("worktree ")).skip(1).collect();
    assert_eq!(ours, [worktree.as_str()], "{list}");
    assert!(r.stderr.contains("build") && !r.stderr.contains("checking out a worktree"), "{}", r.stderr);
    std::fs::write(repo.join("README"), git_in(&repo, &["show", "HEAD:README"])).unwrap();
    // The bisect's worktree and state went with it (the builds stay cached).
    let bisect_dir = env.cache.path().join("krepro/bisect");
    assert!(!bisect_dir.exists() || std::fs::read_dir(&bisect_dir).unwrap().next().is_none(), "left: {bisect_dir:?}");

    eprintln!(
        "bisect: {:.0} s wall, {} commits tested",
        report["wall_secs"].as_f64().unwrap(),
        report["steps"].as_array().unwrap().len()
    );
    eprintln!("verification: {:.0} s", v["secs"].as_f64().unwrap());
    for c in v["checks"].as_array().unwrap() {
        eprintln!(
            "  {:<70} {:<5} build {:>6.1} s  boot {:>5.1} s",
            c["what"].as_str().unwrap(),
            c["got"].as_str().unwrap_or("-"),
            c["build_secs"].as_f64().unwrap(),
            c["boot_secs"].as_f64().unwrap()
        );
    }
    print_steps(&report);
}

/// A kernel developer's loop in their tree: `krepro run -b` builds it (out
/// of tree, in krepro's worktree of the repository) and boots it; after
/// an edit to one .c file the next `krepro run -b` rebuilds only that;
/// the tree's status, index and .config are as they were.
#[test]
#[ignore = "needs KREPRO_SLOW=1 (a real kernel build, minutes)"]
fn run_b_in_a_kernel_tree_builds_it_incrementally_and_leaves_it_alone() {
    require_prerequisites();
    let env = Env::new("tree");
    let (_held, repo) = linux_history();
    // The user's own .config (not krepro's minimal one): read, never written.
    let config = repo.join(".config");
    std::fs::write(&config, "# the user's own config\n").unwrap();
    let config_before = std::fs::metadata(&config).unwrap().modified().unwrap();
    let edit = Edit::new(repo.join("kernel/sys.c"));
    edit.set("int krepro_tree_test_first;");
    let status_before = git_in(&repo, &["status", "--porcelain"]);
    let index_before = std::fs::read(repo.join(".git/index")).unwrap();

    let first = env.krepro(&repo, &["run", "-b", "--accel", "tcg", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["outcome"], "pass", "{}", first.stderr);
    let built = |r: &Run| -> f64 {
        let line = r.stderr.lines().find(|l| l.starts_with("krepro: built ")).unwrap_or_else(|| panic!("{}", r.stderr));
        line.rsplit_once(" in ").unwrap().1.trim_end_matches(" s").parse().unwrap()
    };
    let full = built(&first);

    // One .c file changed: an incremental build.
    edit.set("int krepro_tree_test_second;");
    let status_edited = git_in(&repo, &["status", "--porcelain"]);
    let second = env.krepro(&repo, &["run", "-b", "--accel", "tcg", "--json"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let incremental = built(&second);
    eprintln!(
        "run -b: full build {full:.0} s ({:?} in all), after a one-file edit {incremental:.0} s ({:?})",
        first.took, second.took
    );
    assert!(incremental < full / 3.0, "not incremental: {incremental} s after {full} s");

    assert_eq!(git_in(&repo, &["status", "--porcelain"]), status_edited);
    assert_eq!(status_edited, status_before);
    assert_eq!(std::fs::read(repo.join(".git/index")).unwrap(), index_before, "the user's index changed");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# the user's own config\n");
    assert_eq!(std::fs::metadata(&config).unwrap().modified().unwrap(), config_before);
    assert!(!repo.join("arch/x86/boot/bzImage").exists() && !repo.join("vmlinux").exists(), "built in the tree");
    drop(edit);
    std::fs::remove_file(&config).unwrap();
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real arm64 kernel builds and a real bisect, tens of minutes)"]
fn bisect_finds_the_planted_regression_on_arm64() {
    require_prerequisites();
    let env = Env::new("bisect-arm64");
    let (_held, repo) = linux_history();
    let head_before = git_in(&repo, &["rev-parse", "HEAD"]);
    let (_, report) = planted_bisect(&env, &repo, &["--arch", "aarch64"]);
    assert_eq!(report["commit"]["subject"], PLANT_SUBJECT, "{report:#}");
    assert_eq!(report["verification"]["status"], "verified", "{report:#}");
    assert_eq!(git_in(&repo, &["rev-parse", "HEAD"]), head_before);
    eprintln!(
        "arm64 bisect: {:.0} s wall, {} commits tested, verification {:.0} s",
        report["wall_secs"].as_f64().unwrap(),
        report["steps"].as_array().unwrap().len(),
        report["verification"]["secs"].as_f64().unwrap()
    );
    print_steps(&report);
}

/// `bench --peers` installs virtme-ng and vmtest with what they need (once:
/// a second run installs nothing) and runs them for real, under TCG, on
/// Debian's 6.12 cloud kernel: vng boots it; vmtest cannot (a cloud kernel
/// has no 9p) and its row says exactly why instead of a number.
#[test]
#[ignore = "needs KREPRO_SLOW=1 (installs virtme-ng, vmtest and virtiofsd: minutes; boots under TCG)"]
fn bench_installs_and_runs_the_peers() {
    common::require_qemu();
    // What --peers installs outlives the test, as the other slow inputs
    // do: the second run of the test installs nothing either.
    let xdg = scratch().join("peers-cache");
    let out = temp("peers");
    let json = out.path().join("bench.json");
    let k = common::k612();
    let args = ["bench", "--kernel", k.to_str().unwrap(), "--peers", "--runs", "1", "--accel", "tcg", "--json"];
    let bench = || xtask_env(&[&args[..], &[json.to_str().unwrap()]].concat(), &[("XDG_CACHE_HOME", &xdg)]);
    let first = bench();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    eprintln!("first run ({:?}):\n{}", first.took, first.stderr);
    let again = bench();
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
    assert!(!again.stderr.contains("krepro: installing "), "the second run installed again:\n{}", again.stderr);

    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tools = j[0]["tools"].as_array().unwrap();
    let tool = |name: &str| tools.iter().find(|t| t["tool"] == name).unwrap_or_else(|| panic!("{name} in {j:#}"));
    let vng = tool("virtme-ng (vng --exec true)");
    assert_eq!(vng["note"], serde_json::Value::Null, "{vng:#}");
    assert_eq!(vng["wall_s"].as_array().unwrap().len(), 1, "{vng:#}");
    // A full userspace boot over virtio-fs: slower than a C init.
    assert!(vng["ratio_to_baseline"].as_f64().unwrap() > 1.0, "{vng:#}");
    assert_eq!(
        tool("vmtest (vmtest -k K true)")["note"],
        "cannot run: the kernel has no CONFIG_NET_9P, no CONFIG_NET_9P_VIRTIO, no CONFIG_9P_FS: vmtest mounts the \
         host's / over 9p with no initramfs and no root= (which the kernel does only with the block layer) and \
         talks to qemu-guest-agent over virtio-serial, so it needs them built in (=y)"
    );
    println!("{}", again.stdout);
}

/// The planted history `krepro syz` is tested on: on top of
/// linux-source-6.1, prctl(0x4b52, 0x1337) first crashes with a NULL
/// pointer dereference (commits 3 to 5, "the other crash"), then with a
/// WARN_ON (commit 7, the culprit); prctl(0x4b52, 0x1338) warns in 30% of
/// boots from commit 7 on. The other commits change a comment at the end
/// of a file: their kernels are those of their parents. Tags: v6.1 (the
/// base), v6.2-rc1 (commit 1), v6.2-rc2 (commit 5), krepro-syz-bad (8).
mod syz_history {
    use std::path::{Path, PathBuf};

    use super::git_in;

    pub const FILE: &str = "kernel/sys.c";
    const SITE: &str = "\tcase PR_SET_VMA:\n\t\terror = prctl_set_vma(arg2, arg3, arg4, arg5);\n\t\tbreak;\n";
    const OTHER: &str = "\tcase 0x4b52: /* PR_KREPRO_TEST: krepro's planted test history */\n\
                         \t\tif (arg2 == 0x1337)\n\t\t\t*(volatile unsigned long *)arg3 = 0;\n\t\tbreak;\n";
    const FIXED: &str = "\tcase 0x4b52: /* PR_KREPRO_TEST: krepro's planted test history */\n\t\tbreak;\n";
    const WARN: &str = "\tcase 0x4b52: /* PR_KREPRO_TEST: krepro's planted test history */\n\
                        \t\tWARN_ON(arg2 == 0x1337);\n\
                        \t\tif (arg2 == 0x1338) {\n\
                        \t\t\tstatic int flaky = -1;\n\n\
                        \t\t\tif (flaky < 0)\n\t\t\t\tflaky = get_random_u32() % 100 < 30;\n\
                        \t\t\tWARN_ON(flaky);\n\t\t}\n\t\tbreak;\n";
    pub const OTHER_SUBJECT: &str = "prctl: add PR_KREPRO_TEST (planted NULL dereference)";
    pub const CULPRIT_SUBJECT: &str = "prctl: warn on PR_KREPRO_TEST 0x1337 (planted WARN_ON)";

    /// (subject, what the commit does to kernel/sys.c or another file, tag)
    enum Change {
        Comment(&'static str),
        Plant(&'static str, &'static str),
    }

    const COMMITS: [(&str, Change, Option<&str>); 8] = [
        ("sys: note", Change::Comment("kernel/sys.c"), Some("v6.2-rc1")),
        ("fs: note", Change::Comment("fs/read_write.c"), None),
        (OTHER_SUBJECT, Change::Plant(SITE, OTHER), None),
        ("mm: note", Change::Comment("mm/mmap.c"), None),
        ("lib: note", Change::Comment("lib/string.c"), Some("v6.2-rc2")),
        ("prctl: fix the NULL dereference in PR_KREPRO_TEST", Change::Plant(OTHER, FIXED), None),
        (CULPRIT_SUBJECT, Change::Plant(FIXED, WARN), None),
        ("tty: note", Change::Comment("drivers/tty/tty_io.c"), None),
    ];

    /// The history at `repo` (made once; a stale or half-made one again),
    /// from the tree `tree` (a linux-source-6.1 extracted before).
    pub fn make(repo: &Path, tarball: &str) -> PathBuf {
        let g = |args: &[&str]| git_in(repo, args);
        if repo.join(".git").is_dir() && g(&["tag", "-l", "krepro-syz-v1"]).trim() == "krepro-syz-v1" {
            return repo.to_owned();
        }
        if repo.exists() {
            std::fs::remove_dir_all(repo).unwrap();
        }
        let parent = repo.parent().unwrap();
        std::fs::create_dir_all(parent).unwrap();
        let tmp = tempfile::tempdir_in(parent).unwrap();
        let out = std::process::Command::new("tar").args(["xf", tarball]).current_dir(tmp.path()).output().unwrap();
        assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::rename(tmp.path().join("linux-source-6.1"), repo).unwrap();
        // Debian's tarball ignores everything at the top level.
        let gi = repo.join(".gitignore");
        let text = std::fs::read_to_string(&gi).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| *l != "/*" && *l != "!/debian/").collect();
        std::fs::write(&gi, kept.join("\n") + "\n").unwrap();
        g(&["init", "-q", "-b", "main"]);
        g(&["config", "user.name", "Krepro Test"]);
        g(&["config", "user.email", "test@krepro.invalid"]);
        g(&["add", "-A"]);
        g(&["commit", "-qm", "linux-source-6.1 (base)"]);
        g(&["tag", "v6.1"]);
        for (i, (subject, change, tag)) in COMMITS.iter().enumerate() {
            let (file, from, to) = match change {
                Change::Comment(file) => (*file, None, format!("/* krepro syz history: change {} */\n", i + 1)),
                Change::Plant(from, to) => (FILE, Some(*from), (*to).to_owned()),
            };
            let path = repo.join(file);
            let text = std::fs::read_to_string(&path).unwrap();
            let text = match from {
                // Appended at the end: no line number before it moves.
                None => text + &to,
                Some(from) => {
                    assert!(text.contains(from), "{file}: the plant site is not found");
                    // The planted case goes before SITE's case, which stays.
                    let replacement = if from == SITE { format!("{to}{SITE}") } else { to };
                    text.replacen(from, &replacement, 1)
                }
            };
            std::fs::write(&path, text).unwrap();
            g(&["commit", "-qam", subject]);
            if let Some(t) = tag {
                g(&["tag", t]);
            }
        }
        g(&["tag", "krepro-syz-bad"]);
        g(&["tag", "krepro-syz-v1"]);
        repo.to_owned()
    }

    /// A report directory for the history's bad end, as a user saves
    /// syzbot's files: report.txt naming the commit, repro.c (with
    /// `#define ARG` first when given), .config, repro.syz.
    pub fn report_dir(dir: &Path, repo: &Path, arg: Option<&str>) {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syz");
        let bad = git_in(repo, &["rev-parse", "krepro-syz-bad"]);
        let subject = git_in(repo, &["show", "-s", "--format=%s", "krepro-syz-bad"]);
        let report = std::fs::read_to_string(fixtures.join("report.txt.in"))
            .unwrap()
            .replace("@COMMIT@", &bad.trim()[..12])
            .replace("@SUBJECT@", subject.trim());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("report.txt"), report).unwrap();
        let repro = std::fs::read_to_string(fixtures.join("repro.c")).unwrap();
        let repro = match arg {
            Some(a) => format!("#define ARG {a}\n{repro}"),
            None => repro,
        };
        std::fs::write(dir.join("repro.c"), repro).unwrap();
        std::fs::copy(fixtures.join("config"), dir.join(".config")).unwrap();
        std::fs::copy(fixtures.join("repro.syz"), dir.join("repro.syz")).unwrap();
    }
}

/// The syz history (made once, held by one test at a time).
fn syz_history() -> (std::sync::MutexGuard<'static, ()>, PathBuf) {
    static HISTORY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = HISTORY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (guard, syz_history::make(&scratch().join("linux-syz"), TARBALL))
}

/// What a syz test starts from: krepro's env, the history (held), and a
/// report directory for its bad end (`arg`: see [`syz_history::report_dir`]).
struct SyzCase {
    env: Env,
    repo: PathBuf,
    report: tempfile::TempDir,
    _held: std::sync::MutexGuard<'static, ()>,
}

impl SyzCase {
    fn new(arg: Option<&str>) -> SyzCase {
        require_prerequisites();
        let env = Env::new("syz");
        let (held, repo) = syz_history();
        let report = temp("report");
        syz_history::report_dir(report.path(), &repo, arg);
        SyzCase { env, repo, report, _held: held }
    }

    fn dir(&self) -> &str {
        self.report.path().to_str().unwrap()
    }
}

/// `krepro syz` with `args`, in `repo`, as JSON.
fn syz_json(env: &Env, repo: &Path, args: &[&str]) -> (Run, serde_json::Value) {
    let mut all = vec!["syz"];
    all.extend(args);
    all.extend(["--accel", "tcg", "--json"]);
    let r = env.krepro(repo, &all);
    let j = serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr));
    (r, j)
}

/// The commit of the syz history with `subject`.
fn syz_commit(repo: &Path, subject: &str) -> String {
    let log = git_in(repo, &["log", "--format=%H %s", "krepro-syz-bad"]);
    let line = log.lines().find(|l| l.ends_with(subject)).unwrap_or_else(|| panic!("{subject} in\n{log}"));
    line.split(' ').next().unwrap().to_owned()
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds, minutes)"]
fn syz_reproduces_the_planted_warning_at_the_bad_end_only() {
    let case = SyzCase::new(None);
    let (env, repo, dir) = (&case.env, &case.repo, case.dir());
    let status = git_in(repo, &["status", "--porcelain"]);

    // The report's commit (the bad end), the report's config (its
    // built-in command line has root=/dev/sda and panic_on_warn=1) and
    // compiler.
    let (r, j) = syz_json(env, repo, &[dir, "--duration", "30"]);
    eprintln!("bad end: {:?}", r.took);
    assert_eq!(j["outcome"], "reproduced", "{j:#}\n{}", r.stderr);
    // A debug build's report says __do_sys_prctl; this build's WARN is in
    // another of the syscall's wrappers: one frame.
    assert_eq!(
        (j["crash_title"].as_str(), j["report_title"].as_str()),
        (Some("WARNING in prctl"), Some("WARNING in __do_sys_prctl"))
    );
    // panic_on_warn=1: the kernel died of it.
    assert_eq!((r.code, j["exit_code"].as_u64()), (2, Some(2)), "{}", r.stderr);
    assert!(r.stderr.contains("gcc-12"), "the report's compiler: {}", r.stderr);

    // A release before the bug: no crash in the time given.
    let (r, j) = syz_json(env, repo, &[dir, "--commit", "v6.2-rc1", "--duration", "8"]);
    assert_eq!((r.code, j["outcome"].as_str()), (0, Some("no-crash")), "{j:#}\n{}", r.stderr);
    assert_eq!(j["message"], "no crash in 8 s");

    // The commit with the other bug: another crash, told apart.
    let other = syz_commit(repo, syz_history::OTHER_SUBJECT);
    let (r, j) = syz_json(env, repo, &[dir, "--commit", &other, "--duration", "30"]);
    assert_eq!((r.code, j["outcome"].as_str()), (2, Some("other-crash")), "{j:#}\n{}", r.stderr);
    assert_eq!(j["crash_title"], "BUG: unable to handle kernel NULL pointer dereference in prctl", "{j:#}");
    assert_eq!(
        j["message"],
        "other crash: BUG: unable to handle kernel NULL pointer dereference in prctl (the report says WARNING in __do_sys_prctl)"
    );
    assert_eq!(git_in(repo, &["status", "--porcelain"]), status, "the tree is the user's");
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds and bisects, tens of minutes)"]
fn syz_bisect_finds_the_planted_culprit_past_the_other_crash() {
    let case = SyzCase::new(None);
    let (env, repo, dir) = (&case.env, &case.repo, case.dir());
    let culprit = syz_commit(repo, syz_history::CULPRIT_SUBJECT);
    let other = syz_commit(repo, syz_history::OTHER_SUBJECT);

    // From the report's commit back through releases, then bisect,
    // chasing the report's crash.
    let (r, j) = syz_json(env, repo, &[dir, "--bisect", "--duration", "20"]);
    eprintln!("syz --bisect: {:?}\n{}", r.took, r.stderr);
    print_steps(&j);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(j["first"]["id"], culprit.as_str(), "{j:#}");
    assert_eq!(j["crash_title"], "WARNING in __do_sys_prctl");
    let steps = j["steps"].as_array().unwrap();
    let release = |tag: &str| steps.iter().any(|s| s["kind"] == "release" && s["subject"] == tag);
    assert!(release("v6.2-rc2") && release("v6.2-rc1"), "{j:#}");
    // v6.2-rc2 has the other bug: not good, not the bug.
    let rc2 = steps.iter().find(|s| s["subject"] == "v6.2-rc2").unwrap();
    assert_eq!((rc2["verdict"].as_str(), rc2["counts"]["other"].as_u64()), (Some("skip"), Some(1)), "{rc2:#}");
    assert!(steps.iter().all(|s| s["commit"] != other.as_str() || s["verdict"] == "skip"), "{j:#}");
    assert!(j["boots_saved"].as_u64().unwrap() > 0, "identical kernels reused: {j:#}");
    assert_eq!(j["changes_kernel"], true);
    assert_eq!(j["verification"]["status"], "verified", "{j:#}");

    // Any crash as the bug (the plain rule) on the same history.
    let (r, j) = syz_json(env, repo, &[dir, "--bisect", "--any-crash", "--good", "v6.2-rc1", "--duration", "20"]);
    eprintln!("syz --bisect --any-crash: {:?}", r.took);
    print_steps(&j);
    let named = j["first"]["id"].as_str().unwrap_or_default().to_owned();
    eprintln!("--any-crash names {} ({})", &named[..12.min(named.len())], j["first"]["label"]);
    assert_eq!(named, other, "misled to the other crash's commit: {j:#}");
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds and a bisect with ten boots a commit, tens of minutes)"]
fn syz_bisect_of_a_flaky_bug_with_runs_has_a_confidence() {
    let case = SyzCase::new(Some("0x1338"));
    let (env, repo, dir) = (&case.env, &case.repo, case.dir());
    let culprit = syz_commit(repo, syz_history::CULPRIT_SUBJECT);
    let (r, j) = syz_json(env, repo, &[dir, "--bisect", "--good", "v6.2-rc1", "--runs", "10", "--duration", "4"]);
    eprintln!("flaky: {:?}\n{}", r.took, r.stderr);
    print_steps(&j);
    assert_eq!(j["first"]["id"], culprit.as_str(), "{j:#}");
    let t = &j["trust"];
    let rate = t["rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 1.0 && t["bad_end_runs"] == 10, "{t:#}");
    assert!(t["confidence"].as_f64().unwrap() > 0.0, "{t:#}");
    eprintln!("rate {rate:.2}, confidence {:.2}", t["confidence"].as_f64().unwrap());
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds, minutes)"]
fn a_no_op_culprit_is_flagged() {
    require_prerequisites();
    let env = Env::new("syz");
    let (_held, repo) = syz_history();
    let culprit = syz_commit(&repo, syz_history::CULPRIT_SUBJECT);
    // A wrong --good (the real culprit), ends unchecked: the answer is
    // the commit after it, which only changes a comment.
    let out = temp("out");
    let json = out.path().join("bisect.json");
    let args = ["bisect", "--good", &culprit, "--bad", "krepro-syz-bad", "--no-check-ends", "--no-verify"];
    let r = env.krepro(&repo, &[&args[..], &["--accel", "tcg", "--json", json.to_str().unwrap()]].concat());
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["first"]["label"], "tty: note", "{j:#}");
    assert_eq!(j["changes_kernel"], false, "{j:#}");
    assert!(r.stdout.contains("**no-op culprit**"), "{}", r.stdout);
    assert!(r.stderr.contains("not trusted: its kernel is identical in code to its parent's"), "{}", r.stderr);
}

/// Config bisect's planted option: a tree (v6.1 of the syz history,
/// cloned) whose one commit adds `CONFIG_KREPRO_PLANTED` (depending on
/// MULTIUSER), under which prctl(0x4b53) succeeds; the repro fails then.
mod config_history {
    use std::path::{Path, PathBuf};

    use super::git_in;

    pub const KCONFIG: &str = "\nconfig KREPRO_PLANTED\n\tbool \"krepro's planted config bug\"\n\tdepends on MULTIUSER\n\thelp\n\t  prctl(0x4b53) succeeds: a test option of krepro's config bisect.\n";
    const SITE: &str = "\tcase PR_SET_VMA:\n";
    const PLANT: &str = "#ifdef CONFIG_KREPRO_PLANTED\n\tcase 0x4b53:\n\t\tbreak;\n#endif\n";
    /// The repro: fails (exit 1) when prctl(0x4b53) succeeds.
    pub const REPRO: &str = "#include <sys/prctl.h>\nint main(void)\n{\n\treturn prctl(0x4b53, 0, 0, 0, 0) == 0;\n}\n";
    /// What the bad config adds to the good one, beside the planted
    /// option and MULTIUSER: network, filesystems, debug, syscalls.
    pub const OTHERS: &[&str] = &[
        "NET",
        "UNIX",
        "PACKET",
        "INET",
        "BLOCK",
        "EXT2_FS",
        "CONFIGFS_FS",
        "MSDOS_PARTITION",
        "DEBUG_KERNEL",
        "DEBUG_FS",
        "MAGIC_SYSRQ",
        "DEBUG_MISC",
        "DEBUG_BUGVERBOSE",
        "DEBUG_LIST",
        "DEBUG_SG",
        "DEBUG_NOTIFIERS",
        "SCHED_DEBUG",
        "FUTEX",
        "EPOLL",
        "SIGNALFD",
        "EVENTFD",
        "AIO",
        "SYSVIPC",
        "POSIX_MQUEUE",
        "FHANDLE",
        "ADVISE_SYSCALLS",
        "MEMBARRIER",
        "KCMP",
        "CROSS_MEMORY_ATTACH",
        "POSIX_TIMERS",
        "PROC_SYSCTL",
        "RSEQ",
        "INOTIFY_USER",
        "DNOTIFY",
        "FILE_LOCKING",
        "CGROUPS",
        "UID16",
        "SGETMASK_SYSCALL",
        "SYSFS_SYSCALL",
        "IKCONFIG",
        "USERFAULTFD",
    ];

    /// A clone of `from` (sharing its objects) at `repo`, with the
    /// planted commit on v6.1 checked out (made once, and again when the
    /// objects it shares are no longer `from`'s: a scratch dir moved).
    pub fn make(repo: &Path, from: &Path) -> PathBuf {
        let g = |args: &[&str]| git_in(repo, args);
        let alternates = std::fs::read_to_string(repo.join(".git/objects/info/alternates")).unwrap_or_default();
        let shares = Path::new(alternates.trim()).canonicalize().ok() == from.join(".git/objects").canonicalize().ok();
        if shares && g(&["tag", "-l", "krepro-config-v1"]).trim() == "krepro-config-v1" {
            return repo.to_owned();
        }
        if repo.exists() {
            std::fs::remove_dir_all(repo).unwrap();
        }
        git_in(from, &["clone", "-q", "--shared", "--branch", "v6.1", ".", repo.to_str().unwrap()]);
        g(&["checkout", "-q", "-b", "main"]);
        g(&["config", "user.name", "Krepro Test"]);
        g(&["config", "user.email", "test@krepro.invalid"]);
        let kconfig = repo.join("init/Kconfig");
        let text = std::fs::read_to_string(&kconfig).unwrap();
        std::fs::write(&kconfig, text + KCONFIG).unwrap();
        let sys = repo.join("kernel/sys.c");
        let text = std::fs::read_to_string(&sys).unwrap();
        assert!(text.contains(SITE));
        std::fs::write(&sys, text.replacen(SITE, &format!("{PLANT}{SITE}"), 1)).unwrap();
        g(&["commit", "-qam", "config: add KREPRO_PLANTED (planted config bug)"]);
        g(&["tag", "krepro-config-v1"]);
        repo.to_owned()
    }
}

/// What the config tests start from: the planted tree (held), the repro,
/// krepro's minimal config for it (built once, as a user would) and the
/// bad config: that plus the planted option, MULTIUSER and 32 others.
struct ConfigCase {
    env: Env,
    repo: PathBuf,
    work: tempfile::TempDir,
    _held: std::sync::MutexGuard<'static, ()>,
}

impl ConfigCase {
    fn new() -> ConfigCase {
        require_prerequisites();
        let env = Env::new("config-bisect");
        let (held, syz) = syz_history();
        let repo = config_history::make(&scratch().join("linux-config"), &syz);
        let work = temp("config-bisect");
        std::fs::write(work.path().join("planted.c"), config_history::REPRO).unwrap();
        let kernel = work.path().join("bzImage");
        let r = env.krepro(&repo, &["kernel", "build", "-o", kernel.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let good = std::fs::read_to_string(work.path().join("bzImage.config")).unwrap();
        std::fs::write(work.path().join("good.config"), &good).unwrap();
        let mut bad = good;
        for o in config_history::OTHERS.iter().chain(&["MULTIUSER", "KREPRO_PLANTED"]) {
            bad.push_str(&format!("CONFIG_{o}=y\n"));
        }
        std::fs::write(work.path().join("bad.config"), bad).unwrap();
        ConfigCase { env, repo, work, _held: held }
    }

    fn path(&self, name: &str) -> String {
        self.work.path().join(name).to_str().unwrap().to_owned()
    }
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds, tens of minutes)"]
fn config_bisect_names_the_planted_option_among_thirty() {
    let case = ConfigCase::new();
    let (env, repo, work) = (&case.env, &case.repo, &case.work);
    let (repro, good, bad_path) = (case.path("planted.c"), case.path("good.config"), case.path("bad.config"));
    let (repro, good, bad_path) = (repro.as_str(), Path::new(&good), Path::new(&bad_path));
    let status = git_in(repo, &["status", "--porcelain"]);

    let json = work.path().join("config-bisect.json");
    let args = ["bisect", repro, "--config-good", good.to_str().unwrap(), "--config-bad", bad_path.to_str().unwrap()];
    let started = std::time::Instant::now();
    let r = env.krepro(repo, &[&args[..], &["--accel", "tcg", "--json", json.to_str().unwrap()]].concat());
    eprintln!("config bisect: {:?}\n{}", started.elapsed(), r.stderr);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    print_steps(&j);
    assert_eq!(j["found"], "first bad config change", "{j:#}");
    let c = &j["config"];
    assert_eq!(c["option"]["name"], "KREPRO_PLANTED", "{j:#}");
    assert_eq!((c["option"]["good"].as_str(), c["option"]["bad"].as_str()), (Some("n"), Some("y")));
    assert_eq!(c["option"]["kconfig"].as_str().map(|k| k.starts_with("init/Kconfig:")), Some(true), "{c:#}");
    assert_eq!(c["option"]["help"], "prctl(0x4b53) succeeds: a test option of krepro's config bisect.");
    // The planted option and at least 30 others.
    assert!(c["changes"].as_array().unwrap().len() > 30, "{c:#}");
    let related: Vec<&str> = c["related"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(related, ["MULTIUSER"], "{c:#}");
    assert_eq!(j["verification"]["status"], "verified", "{j:#}");
    assert!(r
        .stdout
        .starts_with("## first bad config change: CONFIG_KREPRO_PLANTED (n in --config-good, y in --config-bad)"));
    assert_eq!(git_in(repo, &["status", "--porcelain"]), status, "the tree is the user's");
    let builds = j["steps"].as_array().unwrap().len();
    eprintln!("{builds} builds and boots, {} options differed", c["changes"].as_array().unwrap().len());
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds, tens of minutes)"]
fn config_minimize_keeps_the_planted_option_and_what_it_needs() {
    let case = ConfigCase::new();
    let out = case.path("small.config");
    let args = ["config", "minimize", "--config", &case.path("bad.config"), "-o", &out, "--accel", "tcg", "--json"];
    let started = std::time::Instant::now();
    let r = case.env.krepro(&case.repo, &[&args[..], &[case.path("planted.c").as_str()]].concat());
    eprintln!("config minimize: {:?}\n{}", started.elapsed(), r.stderr);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let kept: Vec<&str> = j["kept"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert!(kept.contains(&"CONFIG_KREPRO_PLANTED=y") && kept.contains(&"CONFIG_MULTIUSER=y"), "{j:#}");
    assert!(kept.len() < 10 && j["builds"].as_u64().unwrap() <= 8, "{j:#}");
    assert!(j["of"].as_u64().unwrap() >= 30, "{j:#}");
    // The fragment builds a kernel that still fails.
    let fragment = std::fs::read_to_string(&out).unwrap();
    assert!(fragment.contains("CONFIG_KREPRO_PLANTED=y\n"), "{fragment}");
    let r2 =
        case.env.krepro(&case.repo, &["run", "-b", "--config-add", &out, &case.path("planted.c"), "--accel", "tcg"]);
    assert_eq!(r2.code, 1, "{}", r2.stderr);
    eprintln!("kept {} of {} in {} builds: {kept:?}", kept.len(), j["of"], j["builds"]);
}

/// A repro that needs ext4 on its virtio-blk disk: it mounts /dev/vda as
/// ext4 and fails when the file on it says "bug"; without ext4 it cannot
/// test (skip).
const EXT4_REPRO: &str = r#"#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

int main(void) {
    char buf[16] = {0};
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", MS_RDONLY, NULL) != 0) {
        perror("mount /dev/vda as ext4");
        return 4;
    }
    FILE *f = fopen("/mnt/state", "r");
    if (!f || !fgets(buf, sizeof buf, f)) {
        perror("read /mnt/state");
        return 4;
    }
    if (strncmp(buf, "bug", 3) == 0) {
        printf("the disk's state says: %s", buf);
        return 1;
    }
    return 0;
}
"#;

#[test]
#[ignore = "needs KREPRO_SLOW=1 (eight real kernel builds from x86_64_defconfig down, about an hour)"]
fn config_minimize_cuts_x86_64_defconfig_to_what_ext4_on_virtio_blk_needs() {
    require_prerequisites();
    let (_held, tree) = linux_tree();
    let env = Env::new("config-minimize-defconfig");
    let work = temp("config-minimize-defconfig");
    let path = |name: &str| work.path().join(name).to_str().unwrap().to_owned();

    // The big config: the tree's x86_64_defconfig plus virtio-blk and
    // ext4 (which it has already), made out of tree.
    let make = |args: &[&str]| {
        let mut make = Command::new("make");
        let out = make.arg("-s").arg(format!("O={}", path("big"))).args(args).current_dir(&tree).output().unwrap();
        assert!(out.status.success(), "make {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    make(&["x86_64_defconfig"]);
    let config = work.path().join("big/.config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for o in ["VIRTIO_MENU", "VIRTIO", "VIRTIO_PCI", "VIRTIO_BLK", "EXT4_FS"] {
        text.push_str(&format!("CONFIG_{o}=y\n"));
    }
    std::fs::write(&config, text).unwrap();
    make(&["olddefconfig"]);
    let big = std::fs::read_to_string(&config).unwrap();
    assert!(big.contains("CONFIG_VIRTIO_BLK=y\n") && big.contains("CONFIG_EXT4_FS=y\n"));
    std::fs::write(path("big.config"), &big).unwrap();

    // The disk: an ext4 image whose state file says "bug".
    std::fs::create_dir_all(work.path().join("root")).unwrap();
    std::fs::write(work.path().join("root/state"), "bug\n").unwrap();
    let mkfs = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d", &path("root"), &path("disk.img"), "16M"])
        .output()
        .expect("run mkfs.ext4 (e2fsprogs)");
    assert!(mkfs.status.success(), "{}", String::from_utf8_lossy(&mkfs.stderr));
    std::fs::write(path("ext4.c"), EXT4_REPRO).unwrap();

    let before = manifest(&tree);
    let started = std::time::Instant::now();
    let args = ["config", "minimize", "--config", &path("big.config"), "--disk", &path("disk.img")];
    let out = path("small.config");
    let rest = ["-o", &out, "--accel", "tcg", "--json", &path("ext4.c")];
    let r = env.krepro(&tree, &[&args[..], &rest[..]].concat());
    let took = started.elapsed();
    eprintln!("config minimize: {took:?}\n{}", r.stderr);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    let kept: Vec<&str> = j["kept"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert!(kept.contains(&"CONFIG_EXT4_FS=y"), "{j:#}");
    assert!(kept.len() < 60, "{} kept: {j:#}", kept.len());
    assert!(j["builds"].as_u64().unwrap() <= 8, "{j:#}");
    assert!(j["of"].as_u64().unwrap() >= 500, "{j:#}");
    assert_same_tree(&before, &manifest(&tree), None);

    // The fragment on krepro's minimal config builds a kernel that fails.
    let r2 = env.krepro(&tree, &["run", "-b", "--config-add", &out, "--disk", &path("disk.img"), &path("ext4.c")]);
    assert_eq!(r2.code, 1, "{}", r2.stderr);
    assert!(r2.stderr.lines().any(|l| l.starts_with("fail: ")), "{}", r2.stderr);
    // The verdict is the repro's: it read the disk's state through ext4.
    let log =
        r2.stderr.lines().find_map(|l| l.trim().strip_prefix("console log: ")).expect("a failed run names its log");
    let console = std::fs::read_to_string(log).unwrap();
    assert!(console.contains("the disk's state says: bug"), "{console}");
    eprintln!(
        "kept {} of {} ({} beyond the minimal config in all) in {} builds, {took:?}: {kept:?}",
        kept.len(),
        j["of"],
        j["beyond_minimal"],
        j["builds"]
    );
    for s in j["steps"].as_array().unwrap() {
        eprintln!("  {} ({} options): {}", s["what"], s["options"], s["trial"]);
    }
}

/// Stands in for a bug in AF_UNIX descriptor passing: it fails whenever
/// a descriptor crosses a unix socket. A kernel without AF_UNIX (or
/// without sockets at all) cannot have the bug: it passes.
const UNIX_REPRO: &str = r#"#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

int main(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) {
        if (errno == EAFNOSUPPORT || errno == ENOSYS) {
            printf("no AF_UNIX here (%s): this kernel cannot have the bug\n", strerror(errno));
            return 0;
        }
        perror("socketpair");
        return 4;
    }
    char byte = 'x';
    struct iovec iov = { &byte, 1 };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &sv[0], sizeof(int));
    if (sendmsg(sv[1], &msg, 0) != 1) {
        perror("sendmsg");
        return 4;
    }
    memset(&u, 0, sizeof u);
    msg.msg_controllen = sizeof u.buf;
    if (recvmsg(sv[0], &msg, 0) != 1) {
        perror("recvmsg");
        return 4;
    }
    c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_type == SCM_RIGHTS) {
        printf("a descriptor crossed a unix socket: the bug\n");
        return 1;
    }
    printf("no descriptor arrived\n");
    return 4;
}
"#;

#[test]
#[ignore = "needs KREPRO_SLOW=1 (real kernel builds of Debian's own 6.1 config, one to two hours)"]
fn config_bisect_names_config_unix_between_debians_config_and_the_minimal_one() {
    require_prerequisites();
    common::require_qemu();
    let (_held, tree) = linux_tree();
    let env = Env::new("config-bisect-debian");
    let work = temp("config-bisect-debian");
    let path = |name: &str| work.path().join(name).to_str().unwrap().to_owned();

    // The bad config: Debian's own, from the 6.1 cloud kernel package the
    // boot tests use (its config sits beside its vmlinuz).
    let vmlinuz = common::k61();
    let release = vmlinuz.file_name().unwrap().to_str().unwrap().strip_prefix("vmlinuz-").unwrap().to_owned();
    let debian = std::fs::read_to_string(vmlinuz.with_file_name(format!("config-{release}"))).unwrap();
    assert!(debian.contains("\nCONFIG_UNIX=y\n") && debian.contains("\nCONFIG_DEBUG_INFO_BTF=y\n"));
    std::fs::write(path("debian.config"), &debian).unwrap();
    // The good one: krepro's minimal config, as `kernel build` leaves it.
    let r = env.krepro(&tree, &["kernel", "build", "-o", &path("bzImage")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let minimal = std::fs::read_to_string(path("bzImage.config")).unwrap();
    assert!(!minimal.contains("\nCONFIG_UNIX=y\n"), "the minimal config has AF_UNIX already");
    std::fs::write(path("unix.c"), UNIX_REPRO).unwrap();

    let before = manifest(&tree);
    let json = path("config-bisect.json");
    let args = ["bisect", &path("unix.c"), "--config-good", &path("bzImage.config"), "--config-bad"];
    let rest = [path("debian.config"), "--accel".into(), "tcg".into(), "--json".into(), json.clone()];
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let r = env.krepro(&tree, &[&args[..], &rest[..]].concat());
    let took = started.elapsed();
    eprintln!("config bisect: {took:?}\n{}", r.stderr);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    print_steps(&j);
    assert_eq!(j["found"], "first bad config change", "{j:#}");
    let c = &j["config"];
    assert_eq!(c["option"]["name"], "UNIX", "{c:#}");
    assert_eq!((c["option"]["good"].as_str(), c["option"]["bad"].as_str()), (Some("n"), Some("y")));
    assert_eq!(c["option"]["kconfig"].as_str().map(|k| k.starts_with("net/unix/Kconfig:")), Some(true), "{c:#}");
    let help = c["option"]["help"].as_str().unwrap_or_default();
    assert!(help.starts_with("If you say Y here, you will include support for Unix domain sockets"), "{c:#}");
    let related: Vec<&str> = c["related"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert!(related.contains(&"NET"), "{c:#}");
    let changes = c["changes"].as_array().unwrap().len();
    assert!(changes > 1000, "{changes} changes: {c:#}");
    assert_eq!(j["verification"]["status"], "verified", "{j:#}");
    assert!(r.stdout.starts_with("## first bad config change: CONFIG_UNIX (n in --config-good, y in --config-bad)"));
    assert_same_tree(&before, &manifest(&tree), None);
    let steps = j["steps"].as_array().unwrap().len();
    eprintln!("CONFIG_UNIX among {changes} changed options: {steps} steps (builds and boots), {took:?}");
}

/// A build of the tree with caches of its own (krepro's and ccache's,
/// both empty: every compile misses), `extra` flags on top; its caches
/// live as long as the result (the image is in one of them).
struct FreshBuild {
    run: Run,
    json: serde_json::Value,
    _caches: (tempfile::TempDir, tempfile::TempDir),
}

fn fresh_build(tree: &Path, extra: &[&str]) -> FreshBuild {
    let (cache, ccache) = (temp("cache"), temp("ccache"));
    let args = [&["kernel", "build", "--json"][..], extra].concat();
    let run = krepro_in(tree, &args, &[("XDG_CACHE_HOME", cache.path()), ("CCACHE_DIR", ccache.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    FreshBuild { run, json, _caches: (cache, ccache) }
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (two tinyconfig builds, here and through a distccd: minutes)"]
fn a_build_through_distccd_compiles_there_and_boots() {
    require_prerequisites();
    let (_held, tree) = linux_tree();
    let distccd = common::distccd(false);
    // For smoke, which the boots below run (it needs TCP).
    let here_build = fresh_build(&tree, &["--repro", "smoke"]);
    let hosts = format!("127.0.0.1:{}/4", distccd.port);
    let there_build = fresh_build(&tree, &["--repro", "smoke", "--distcc", &hosts]);
    let (here, there) = (&here_build.json, &there_build.json);
    assert!(there_build.run.stderr.contains("distcc: 1 host(s) with the same gcc"), "{}", there_build.run.stderr);
    // The compiles went to distccd: its log has them (all but those
    // distcc keeps local: assembler sources, a few with flags it does not
    // send; 673 of 739 in one run).
    let jobs = distccd.log().matches("COMPILE_OK").count() as u64;
    let compiled = there["phases"]["ccache"]["compiled"].as_u64().unwrap();
    assert!(compiled > 100 && jobs * 10 >= compiled * 8, "distccd compiled {jobs}, ccache missed {compiled}");
    // Both kernels boot and pass. (They are not byte-identical: the two
    // builds ran in two krepro caches, so at other build-dir paths; which
    // of that and distcc makes the difference is not known yet.)
    for built in [here, there] {
        let boot = krepro_in(&tree, &["run", "--kernel", built["path"].as_str().unwrap(), "--accel", "tcg"], &[]);
        assert_eq!(boot.code, 0, "{}", boot.stderr);
    }
    eprintln!(
        "tinyconfig: {:.0} s here, {:.0} s through distccd on loopback ({jobs} jobs there)",
        here["build_secs"].as_f64().unwrap(),
        there["build_secs"].as_f64().unwrap()
    );
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (two tinyconfig builds with a shared ccache: minutes)"]
fn a_second_machines_build_gets_remote_hits_from_the_shared_ccache() {
    require_prerequisites();
    let (_held, tree) = linux_tree();
    let redis = common::redis_server();
    let url = format!("redis://127.0.0.1:{}", redis.port);
    // Two "machines": each its own krepro cache (so its build dir is at
    // another path) and its own empty local ccache; the remote is shared.
    let cold = fresh_build(&tree, &["--ccache-remote", &url]).json;
    let warm = fresh_build(&tree, &["--ccache-remote", &url]).json;
    let stats = |j: &serde_json::Value, k: &str| j["phases"]["ccache"][k].as_u64().unwrap();
    assert!(stats(&cold, "compiled") > 100 && stats(&cold, "remote_hits") == 0, "{cold:#}");
    // The second machine compiles (almost) nothing: its objects come from
    // the remote (and a few from its own local cache, filled by the remote
    // hits earlier in the same build: 40 of 812 in one run).
    let found = stats(&warm, "remote_hits") + stats(&warm, "local_hits");
    assert!(stats(&warm, "remote_hits") > stats(&warm, "local_hits"), "{warm:#}");
    assert!(found * 100 >= stats(&cold, "compiled") * 95, "cold {cold:#}\nwarm {warm:#}");
    let secs = |j: &serde_json::Value| j["phases"]["compile"].as_f64().unwrap();
    assert!(secs(&warm) < secs(&cold), "cold {:.0} s, warm {:.0} s", secs(&cold), secs(&warm));
    eprintln!(
        "tinyconfig: cold {:.0} s ({} compiled), warm remote {:.0} s ({} remote hits, {} local, {} compiled)",
        cold["build_secs"].as_f64().unwrap(),
        stats(&cold, "compiled"),
        warm["build_secs"].as_f64().unwrap(),
        stats(&warm, "remote_hits"),
        stats(&warm, "local_hits"),
        stats(&warm, "compiled")
    );
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (a real kernel build on a small tmpfs, then a full one: minutes)"]
fn a_build_that_fills_the_disk_is_a_full_disk_not_a_tree_that_does_not_build() {
    require_prerequisites();
    let (_held, tree) = linux_tree();
    let disk = common::SmallDisk::new("48M");
    let ccache = scratch().join("ccache-build");
    let env = [("XDG_CACHE_HOME", disk.path()), ("CCACHE_DIR", ccache.as_path())];
    let r = krepro_in(&tree, &["kernel", "build"], &env);
    // 128 (stop), not 125 (the tree does not build: a bisect would skip it).
    assert_eq!(r.code, 128, "{}", r.stderr);
    let last = r.stderr.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(&format!("error: the disk is full: the build in {}/krepro/build/", disk.path().display()))
            && last.contains("free at least 1.0 GiB")
            && last.ends_with("then run the same command (`krepro cache gc` trims krepro's cache)"),
        "{last}"
    );
    // Space freed, the same command builds.
    disk.grow("3G");
    let r = krepro_in(&tree, &["kernel", "build"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
#[ignore = "needs KREPRO_SLOW=1 (the start of a real kernel build)"]
fn sigterm_in_the_middle_of_a_build_stops_make_and_exits_130() {
    require_prerequisites();
    let (_held, tree) = linux_tree();
    let cache = temp("sigterm-build");
    let ccache = temp("sigterm-ccache");
    let child = Command::new(common::krepro_bin())
        .args(["kernel", "build"])
        .current_dir(&tree)
        .env("XDG_CACHE_HOME", cache.path())
        .env("CCACHE_DIR", ccache.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once make compiles (a cold ccache: for minutes), SIGTERM krepro alone.
    let build_dirs = cache.path().join("krepro/build");
    let makes = || {
        let needle = build_dirs.to_str().unwrap().to_owned();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                    String::from_utf8_lossy(&c).starts_with("make\0") && String::from_utf8_lossy(&c).contains(&needle)
                })
            })
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while makes() == 0 {
        assert!(std::time::Instant::now() < deadline, "make never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    let signalled = std::time::Instant::now();
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.trim_end().ends_with("error: interrupted"), "{stderr}");
    assert!(signalled.elapsed() < std::time::Duration::from_secs(10), "{:?}", signalled.elapsed());
    assert_eq!(makes(), 0, "make outlived krepro");
}
