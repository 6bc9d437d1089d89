//! krepro as a user gets it: `cargo install --path runner` into a root of
//! its own, then run from a directory with no krepro checkout, with an
//! empty cache. It must fetch a kernel, build init from the source it
//! carries, and boot; and a repro written with `krepro new` must run.

// Tests drive cargo and the binary directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// The installed `krepro ARGS`, in `dir`, with `cache` as its whole cache,
/// and nothing of cargo's or the checkout's in its environment.
fn krepro(bin: &Path, dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let started = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(dir).stdin(Stdio::null()).env("XDG_CACHE_HOME", cache);
    for var in ["CARGO", "CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_TARGET_DIR", "KREPRO_KERNEL", "RUSTC"] {
        cmd.env_remove(var);
    }
    let out = cmd.output().expect("run the installed krepro");
    eprintln!("krepro {args:?}: {:?}, exit {:?}", started.elapsed(), out.status.code());
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn an_installed_krepro_runs_anywhere_from_an_empty_cache() {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::Builder::new().prefix("krepro-install-").tempdir().unwrap();
    // Compiled in a target dir of cargo's temp dir for this test: the
    // next run of the test rebuilds only what changed.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("install-target");
    let started = Instant::now();
    let st = Command::new(cargo())
        .args(["install", "--quiet", "--locked", "--path"])
        .arg(checkout)
        .arg("--root")
        .arg(root.path())
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .status()
        .expect("run cargo install");
    assert!(st.success(), "cargo install --path runner: {st}");
    eprintln!("cargo install: {:?}", started.elapsed());
    let bin = root.path().join("bin/krepro");
    assert!(bin.is_file(), "no {}", bin.display());

    // Elsewhere, with nothing in the cache.
    let work = tempfile::Builder::new().prefix("krepro-work-").tempdir().unwrap();
    let cache = tempfile::Builder::new().prefix("krepro-cache-").tempdir().unwrap();
    let out = krepro(&bin, work.path(), cache.path(), &["run", "--accel", "tcg", "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let j = json(&out);
    assert_eq!((out.status.code(), j["outcome"].as_str()), (Some(0), Some("pass")), "{stderr}");
    assert!(stderr.contains("fetching the newest distro kernel"), "{stderr}");
    assert!(j["kernel"].as_str().unwrap().starts_with(cache.path().to_str().unwrap()), "{j}");
    // init was built from the source the binary carries, in the cache.
    let guest = cache.path().join("krepro/guest");
    let src: Vec<_> = std::fs::read_dir(&guest)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("src-"))
        .collect();
    assert_eq!(src.len(), 1, "{}", guest.display());
    assert!(src[0].path().join("init/src/main.rs").is_file());

    let new = krepro(&bin, work.path(), cache.path(), &["new", "probe"]);
    assert_eq!(new.status.code(), Some(0), "{}", String::from_utf8_lossy(&new.stderr));
    let probe = krepro(&bin, work.path(), cache.path(), &["run", "probe.rs", "--accel", "tcg", "--json"]);
    let j = json(&probe);
    assert_eq!(
        (probe.status.code(), j["repro"].as_str()),
        (Some(0), Some("probe")),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    // Nothing was written where it ran but the repro it asked for.
    let left: Vec<_> = std::fs::read_dir(work.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, ["probe.rs"]);
}
