//! The one list of repros. A new repro is a module under `src/repros/` and
//! one line here; `cargo test` checks that every module is listed.

use crate::sdk::Repro;

#[path = "repros/boot_time.rs"]
mod boot_time;
#[path = "repros/dmesg_clean.rs"]
mod dmesg_clean;
#[path = "repros/listen_backlog.rs"]
mod listen_backlog;
#[path = "repros/selftest.rs"]
mod selftest;
#[path = "repros/smoke.rs"]
mod smoke;

/// Every repro compiled into PID 1, in the order `cargo xtask repros` lists them.
pub static REPROS: &[Repro] = &[
    smoke::REPRO,
    listen_backlog::REPRO,
    boot_time::REPRO,
    dmesg_clean::REPRO,
    selftest::FAIL,
    selftest::SKIP,
    selftest::PANIC,
    selftest::HANG,
    selftest::SILENT,
    selftest::RUST_PANIC,
    selftest::VERSION,
];

/// The repro called `name`.
pub fn find(name: &str) -> Option<&'static Repro> {
    REPROS.iter().find(|r| r.name == name)
}

/// The names of all repros, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    REPROS.iter().map(|r| r.name)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::BTreeSet;
    use std::prelude::rust_2021::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for r in REPROS {
            assert!(seen.insert(r.name), "duplicate repro name {}", r.name);
            assert!(
                !r.name.is_empty() && r.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "bad repro name {:?}",
                r.name
            );
            assert!(!r.description.is_empty() && !r.description.contains('\n'), "{}", r.name);
            for opt in r.config {
                assert!(!opt.starts_with("CONFIG_") && !opt.contains('='), "{}: config {opt:?}", r.name);
            }
        }
    }

    #[test]
    fn every_repro_module_is_registered() {
        // Tidy: each `pub const ...: Repro` in src/repros/ must appear in REPROS.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/repros");
        let registry = include_str!("registry.rs");
        let mut consts = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(registry.contains(&std::format!("mod {module};")), "{module} is not a module of the registry");
            for line in text.lines() {
                if let Some(rest) = line.strip_prefix("pub const ") {
                    if let Some((name, ty)) = rest.split_once(':') {
                        if ty.trim_start().starts_with("Repro") {
                            consts.push(std::format!("{module}::{name},"));
                        }
                    }
                }
            }
        }
        assert!(consts.len() >= REPROS.len());
        for c in consts {
            let listed: String = std::format!("    {c}");
            assert!(registry.contains(&listed), "{c} is not in REPROS");
        }
    }

    #[test]
    fn issue_names_exist() {
        for name in [
            "smoke",
            "listen_backlog",
            "boot_time",
            "dmesg_clean",
            "selftest_fail",
            "selftest_skip",
            "selftest_panic",
            "selftest_hang",
        ] {
            assert!(find(name).is_some(), "{name}");
        }
        assert!(find("no_such_repro").is_none());
        // `exec` runs the user's --exec FILE: no compiled-in repro may take it.
        assert!(find(crate::protocol::EXEC_REPRO).is_none());
    }
}
