//! What the integration tests share: the kernels, running the xtask binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use krepro_runner::{boot::qemu, host::cache};
use serde_json::Value;

/// The newest cached Debian cloud kernel of a series, or a failure that
/// says how to get one.
pub fn kernel_of(series: &str) -> PathBuf {
    krepro_runner::host::fetch::newest_cached(&cache::Cache::from_env().kernels(), Some(series)).unwrap_or_else(|| {
        panic!(
            "no Debian {series} cloud kernel in {}: run `cargo xtask kernel fetch {series}` (or `cargo xtask ci`)",
            cache::Cache::from_env().kernels().display()
        )
    })
}

pub fn k612() -> PathBuf {
    kernel_of("6.12")
}

pub fn k61() -> PathBuf {
    kernel_of("6.1")
}

pub fn require_qemu() {
    which::which(qemu::QEMU).unwrap_or_else(|_| {
        panic!("{} is needed for boot tests: apt-get install -y {}", qemu::QEMU, qemu::QEMU_PACKAGE)
    });
}

/// A finished xtask process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON object ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// The cache every xtask child uses unless a test gives its own: under
/// cargo's temp dir for this target, never the user's. Kernels come from
/// the user's cache (what `cargo xtask ci` fetched), passed with --kernel;
/// what the children write (console logs, the PVH vmlinux, the KVM
/// marker, builds) stays here.
pub fn test_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("krepro-cache")
}

/// Runs the xtask binary with `args` and extra environment.
pub fn xtask_env(args: &[&str], env: &[(&str, &Path)]) -> Run {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).stdin(Stdio::null()).env("XDG_CACHE_HOME", test_cache());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the xtask binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

pub fn xtask(args: &[&str]) -> Run {
    xtask_env(args, &[])
}

/// The qemu processes whose command line holds `marker`.
pub fn qemus_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(qemu::QEMU) && text.contains(marker) {
                found.push(text);
            }
        }
    }
    found
}

pub fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
