//! Generates the registry of krepro's own repros for this crate's host
//! tests: every `src/repros/*.rs` is a module, every repro it declares an
//! entry of `REPROS` (the order of `decl::file_order`). The guest's
//! registry, of the repros init runs, is init/build.rs's; both read the
//! files with src/decl.rs.

extern crate alloc;

#[path = "src/decl.rs"]
mod decl;

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let dir = Path::new(&manifest).join("src/repros");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/decl.rs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .collect();
    names.sort_by_key(|n| decl::file_order(n));
    let mut files = Vec::new();
    for name in names {
        let path = dir.join(&name);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let decls = decl::parse(&text).unwrap_or_else(|e| panic!("src/repros/{name}: {e}"));
        let path = path.to_str().expect("the source path is UTF-8").to_owned();
        files.push((path, decls.into_iter().map(|d| d.item).collect::<Vec<_>>(), false));
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("registry.rs");
    let refs: Vec<(&str, Vec<String>, bool)> = files.iter().map(|(p, i, u)| (p.as_str(), i.clone(), *u)).collect();
    std::fs::write(&out, decl::render_registry(&refs, "crate::Repro"))
        .unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
    // Panic locations in the repros carry this absolute path; PID 1 prints
    // them relative to the workspace, as rustc names every other file.
    let root = Path::new(&manifest).parent().expect("repros/ is inside the workspace");
    println!("cargo:rustc-env=KREPRO_SOURCE_ROOT={}/", root.display());
}
