//! krepro's cache: $XDG_CACHE_HOME/krepro (default ~/.cache/krepro). Never
//! inside a kernel tree.

use std::path::PathBuf;

/// The cache root.
pub fn dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("krepro");
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty()).unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache/krepro")
}

/// Unpacked distro kernel packages: `kernels/<package>/boot/vmlinuz-*`.
pub fn kernels_dir() -> PathBuf {
    dir().join("kernels")
}

/// Console logs of past runs.
pub fn logs_dir() -> PathBuf {
    dir().join("logs")
}
