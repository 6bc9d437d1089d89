//! krepro's own repros, for their host tests: build.rs makes this registry
//! of every file in `src/repros/` (the guest's, of the repros init runs,
//! is init/build.rs's).

extern crate std;

use crate::sdk::Repro;
use std::collections::BTreeSet;
use std::string::String;
use std::vec::Vec;

include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The repro called `name`.
pub fn find(name: &str) -> Option<&'static Repro> {
    REPROS.iter().find(|r| r.name == name)
}

#[test]
fn names_are_unique_and_well_formed() {
    let mut seen = BTreeSet::new();
    for r in REPROS {
        assert!(seen.insert(r.name), "duplicate repro name {}", r.name);
        assert!(crate::decl::valid_name(r.name), "bad repro name {:?}", r.name);
        assert!(!r.description.is_empty() && !r.description.contains('\n'), "{}", r.name);
        assert!(r.cpus >= 1, "{}: cpus", r.name);
        for disk in r.disks {
            assert!(!disk.is_empty() && !disk.contains(char::is_whitespace), "{}: disk {disk:?}", r.name);
        }
    }
}

#[test]
fn every_repro_const_is_registered_as_declared() {
    // Counted with a parse of its own, not build.rs's; the declarations
    // the host reads agree with what compiles.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/repros");
    let mut consts = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        consts += text.matches(": Repro = Repro {").count();
        for d in crate::decl::parse(&text).unwrap() {
            let r = find(&d.name).unwrap_or_else(|| panic!("{} is not registered", d.name));
            assert_eq!(r.description, d.description, "{}", d.name);
            assert_eq!(r.config.to_vec(), d.config.iter().map(String::as_str).collect::<Vec<_>>(), "{}", d.name);
            assert_eq!((r.cpus, r.memory_mib), (d.cpus, d.memory_mib), "{}", d.name);
            assert_eq!(r.disks.to_vec(), d.disks.iter().map(String::as_str).collect::<Vec<_>>(), "{}", d.name);
        }
    }
    assert_eq!(consts, REPROS.len());
}

#[test]
fn the_issue_names_exist_and_exec_is_inits_own() {
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
    // `exec` runs the user's --exec FILE: no repro may take it.
    assert!(find(crate::protocol::EXEC_REPRO).is_none());
}
