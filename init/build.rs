//! Links PID 1 as a static executable with no C runtime and no libc: it
//! brings its own `_start` (src/sys/start.rs) and mem* functions.

fn main() {
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie", "-Wl,--gc-sections", "-Wl,--build-id=none"] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
