//! Links PID 1 as a static executable with no C runtime and no libc (it
//! brings its own `_start`, src/sys/start.rs, and mem* functions), and
//! generates its registry: the repros it runs.
//!
//! `KREPRO_REPROS` names the repro files, one absolute path a line; the
//! host sets it (empty for an init that runs `--exec` programs only).
//! Unset, as in `cargo clippy` of the checkout, every one of krepro's own
//! repros goes in. A file is read with repros/src/decl.rs, as the host
//! reads it.

extern crate alloc;

#[path = "../repros/src/decl.rs"]
mod decl;

use std::path::{Path, PathBuf};

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,--no-eh-frame-hdr",
        // Segments aligned to 4 KiB pages, not aarch64's 64 KiB default,
        // which padded the file to 131 KB.
        "-Wl,-z,max-page-size=4096",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // Drops the unwind tables (see link.ld).
    println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", manifest.join("link.ld").display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-changed=../repros/src/decl.rs");
    println!("cargo:rerun-if-env-changed=KREPRO_REPROS");

    let builtin = manifest.join("../repros/src/repros");
    let files: Vec<(PathBuf, bool)> = match std::env::var("KREPRO_REPROS") {
        Ok(list) => list
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| (PathBuf::from(l), !l.starts_with(builtin.to_str().unwrap_or("/"))))
            .collect(),
        Err(_) => {
            println!("cargo:rerun-if-changed={}", builtin.display());
            let mut names: Vec<String> = std::fs::read_dir(&builtin)
                .unwrap_or_else(|e| panic!("read {}: {e}", builtin.display()))
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".rs"))
                .collect();
            names.sort_by_key(|n| decl::file_order(n));
            names.into_iter().map(|n| (builtin.join(n), false)).collect()
        }
    };
    let mut registry = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (path, user) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let decls = decl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for d in &decls {
            if names.contains(&d.name) {
                panic!("{}: repro '{}' is declared twice", path.display(), d.name);
            }
            names.push(d.name.clone());
        }
        let path = path.to_str().unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
        registry.push((path, decls.into_iter().map(|d| d.item).collect::<Vec<_>>(), *user));
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("registry.rs");
    std::fs::write(&out, decl::render_registry(&registry, "repros::Repro"))
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
