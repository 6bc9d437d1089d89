//! The registry generator of build.rs (build/scan.rs), on made-up files.

#[path = "../build/scan.rs"]
mod scan;

use scan::{modules, render, Module};

fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
}

const ONE: &str = "use crate::prelude::*;\n\npub const REPRO: Repro = Repro {\n    name: \"x\",\n};\n";

#[test]
fn numbered_files_first_by_number_then_by_name() {
    let found = modules(&files(&[
        ("zeta.rs", ONE),
        ("10-ten.rs", ONE),
        ("2-two.rs", ONE),
        ("alpha.rs", ONE),
        ("README", "not rust"),
    ]))
    .unwrap();
    let names: Vec<&str> = found.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["two", "ten", "alpha", "zeta"]);
    assert_eq!(found[0], Module { file: "2-two.rs".into(), name: "two".into(), repros: vec!["REPRO".into()] });
}

#[test]
fn every_repro_const_of_a_file_in_order() {
    let text = "pub const A: Repro = Repro {};\nconst HIDDEN: Repro = x;\n    pub const INNER: Repro = y;\n\
                pub const LIMIT: u32 = 3;\npub const B: Repro=Repro {};\npub const REPROS: Repros = z;\n";
    let found = modules(&files(&[("many.rs", text)])).unwrap();
    assert_eq!(found[0].repros, ["A", "B"]);
}

#[test]
fn a_file_without_a_repro_or_with_a_bad_name_is_refused() {
    let e = modules(&files(&[("helper.rs", "pub fn f() {}\n")])).unwrap_err();
    assert_eq!(e, "helper.rs declares no repro: it needs a `pub const NAME: Repro = Repro { ... };`");
    for bad in ["Caps.rs", "01-.rs", "x-y.rs", ".rs"] {
        let e = modules(&files(&[(bad, ONE)])).unwrap_err();
        assert!(e.starts_with(&format!("{bad}: a repro file is named")), "{e}");
    }
}

#[test]
fn two_files_of_one_module_are_refused() {
    let e = modules(&files(&[("01-smoke.rs", ONE), ("smoke.rs", ONE)])).unwrap_err();
    assert_eq!(e, "01-smoke.rs and smoke.rs are both module smoke");
}

#[test]
fn render_declares_modules_by_path_and_lists_repros() {
    let found = modules(&files(&[
        ("01-a.rs", ONE),
        ("b.rs", "pub const X: Repro = Repro {};\npub const Y: Repro = Repro {};\n"),
    ]))
    .unwrap();
    let text = render("/src/repros", &found);
    assert!(
        text.contains("#[path = \"/src/repros/01-a.rs\"]\nmod a;\n#[path = \"/src/repros/b.rs\"]\nmod b;\n"),
        "{text}"
    );
    assert!(text.ends_with("pub static REPROS: &[Repro] = &[\n    a::REPRO,\n    b::X,\n    b::Y,\n];\n"), "{text}");
}
