//! Generates the registry of repros: every `src/repros/*.rs` is a module,
//! every `pub const NAME: Repro` in it an entry of `REPROS` (see
//! build/scan.rs for the order). Adding a repro is adding its file.

#[path = "build/scan.rs"]
mod scan;

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo");
    let dir = Path::new(&manifest).join("src/repros");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/scan.rs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if !name.ends_with(".rs") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        files.push((name.to_owned(), text));
    }
    let modules = scan::modules(&files).unwrap_or_else(|e| panic!("src/repros/{e}"));
    let dir = dir.to_str().expect("the source path is UTF-8");
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("registry.rs");
    std::fs::write(&out, scan::render(dir, &modules)).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
    // Panic locations in the repros carry this absolute path; PID 1 prints
    // them relative to the workspace, as rustc names every other file.
    let root = Path::new(&manifest).parent().expect("repros/ is inside the workspace");
    println!("cargo:rustc-env=KREPRO_SOURCE_ROOT={}/", root.display());
}
