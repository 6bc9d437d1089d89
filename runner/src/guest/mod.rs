//! The guest side, made on the host: which repro runs (one of krepro's
//! own, a user's `.rs` file or directory of them, a C source, a program),
//! init built with exactly the repros it runs (cached by content), and the
//! initrd that carries it.
//!
//! A repro is known on the host by its declaration, read from its source
//! ([`repros::decl`]) without compiling it: its name, description, kernel
//! config and guest. krepro's own repros are embedded in the binary
//! ([`source`]), so an installed `krepro` needs no checkout.

pub(crate) mod cc;
pub mod init;
pub(crate) mod source;
pub(crate) mod template;

use std::path::{Path, PathBuf};

use repros::decl::{self, Decl};

use crate::host::spawn::CmdError;

/// Why the guest side could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(transparent)]
    Lock(#[from] crate::host::lock::LockError),
    #[error("{0}")]
    NoSpace(String),
    #[error("unknown repro '{name}'; known repros: {known}")]
    UnknownRepro { name: String, known: String },
    #[error("{}: {error}", .path.display())]
    Decl { path: PathBuf, error: decl::DeclError },
    #[error("{}: {why}", .path.display())]
    NotARepro { path: PathBuf, why: String },
    #[error("{} declares {} repros ({}): name one with --repro NAME", .path.display(), .names.len(), .names.join(", "))]
    Several { path: PathBuf, names: Vec<String> },
    #[error("repro '{name}' is declared twice: in {} and in {}", .first.display(), .second.display())]
    Twice { name: String, first: PathBuf, second: PathBuf },
    #[error("{} does not compile:\n{output}", .path.display())]
    Compile { path: PathBuf, output: String },
    #[error("{0}")]
    Toolchain(String),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> GuestError {
    let context = context.into();
    move |source| GuestError::Io { context, source }
}

/// Where a repro's source is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReproFile {
    /// One of krepro's own: its file name in `repros/src/repros/`.
    Builtin(&'static str),
    /// A user's file, by absolute path.
    User(PathBuf),
}

impl ReproFile {
    /// How messages name it.
    pub(crate) fn display(&self) -> String {
        match self {
            ReproFile::Builtin(name) => format!("{}/{name}", source::BUILTIN_DIR),
            ReproFile::User(path) => path.display().to_string(),
        }
    }
}

/// A repro the host knows from its declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repro {
    pub decl: Decl,
    pub file: ReproFile,
}

impl Repro {
    pub(crate) fn name(&self) -> &str {
        &self.decl.name
    }
}

/// Repros by name, in order: krepro's own, or a user's file or directory.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub repros: Vec<Repro>,
}

impl Catalog {
    /// krepro's own repros, as embedded.
    pub fn builtin() -> Catalog {
        let mut repros = Vec::new();
        for (name, text) in source::builtin_repros() {
            let decls =
                decl::parse(text).unwrap_or_else(|e| panic!("krepro's own {}/{name}: {e}", source::BUILTIN_DIR));
            repros.extend(decls.into_iter().map(|decl| Repro { decl, file: ReproFile::Builtin(name) }));
        }
        Catalog { repros }
    }

    /// The repros of a `.rs` file.
    pub(crate) fn file(path: &Path) -> Result<Catalog, GuestError> {
        let abs = std::path::absolute(path).map_err(io(format!("resolve {}", path.display())))?;
        let text = match std::fs::read_to_string(&abs) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(GuestError::NotARepro { path: path.to_owned(), why: "no such file".into() })
            }
            Err(e) => return Err(io(format!("read {}", path.display()))(e)),
        };
        let decls = decl::parse(&text).map_err(|error| GuestError::Decl { path: path.to_owned(), error })?;
        let repros = decls.into_iter().map(|decl| Repro { decl, file: ReproFile::User(abs.clone()) }).collect();
        let catalog = Catalog { repros };
        catalog.check_unique()?;
        Ok(catalog)
    }

    /// The repros of every `.rs` file in `dir` (not below it), by file
    /// name; the files that could not be read, each with why.
    pub(crate) fn dir(dir: &Path) -> Result<(Catalog, Vec<GuestError>), GuestError> {
        let entries = std::fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs") && p.is_file())
            .collect();
        files.sort_by_key(|p| decl::file_order(&p.file_name().unwrap_or_default().to_string_lossy()));
        let mut catalog = Catalog::default();
        let mut bad = Vec::new();
        for f in files {
            match Catalog::file(&f) {
                Ok(c) => catalog.repros.extend(c.repros),
                Err(e) => bad.push(e),
            }
        }
        catalog.check_unique()?;
        Ok((catalog, bad))
    }

    fn check_unique(&self) -> Result<(), GuestError> {
        for (i, r) in self.repros.iter().enumerate() {
            if let Some(first) = self.repros[..i].iter().find(|o| o.name() == r.name()) {
                return Err(GuestError::Twice {
                    name: r.name().to_owned(),
                    first: PathBuf::from(first.file.display()),
                    second: PathBuf::from(r.file.display()),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn find(&self, name: &str) -> Option<&Repro> {
        self.repros.iter().find(|r| r.name() == name)
    }

    /// The error for a name this catalog does not have.
    pub(crate) fn unknown(&self, name: &str) -> GuestError {
        let known: Vec<&str> = self.repros.iter().map(Repro::name).collect();
        GuestError::UnknownRepro { name: name.to_owned(), known: known.join(", ") }
    }
}

/// What the user named to run, before it is checked: a repro's name, or a
/// path (a `.rs` file, a directory of them, a C source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReproArg {
    Name(String),
    Path(PathBuf),
}

impl ReproArg {
    /// A word from the command line: a path when it ends in `.rs` or `.c`,
    /// holds a `/` or is `.`; else a name.
    pub fn parse(word: &str) -> ReproArg {
        let path = word.ends_with(".rs") || word.ends_with(".c") || word.contains('/') || word == "." || word == "..";
        if path {
            ReproArg::Path(word.into())
        } else {
            ReproArg::Name(word.to_owned())
        }
    }
}

/// What init runs, checked: a repro compiled into it, or a C source that
/// becomes the program it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    Repro(Repro),
    CSource(PathBuf),
}

/// Resolves what the user named: `arg` (None: krepro's `smoke`), and with
/// a file or directory of several repros, `name` picks one.
pub fn select(arg: &ReproArg, name: Option<&str>) -> Result<Selected, GuestError> {
    let path = match arg {
        ReproArg::Name(n) => {
            let builtin = Catalog::builtin();
            return builtin.find(n).cloned().map(Selected::Repro).ok_or_else(|| builtin.unknown(n));
        }
        ReproArg::Path(p) => p,
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| GuestError::NotARepro { path: path.clone(), why: format!("cannot read it: {e}") })?;
    if path.extension().is_some_and(|x| x == "c") && meta.is_file() {
        return Ok(Selected::CSource(std::path::absolute(path).map_err(io("resolve the C source"))?));
    }
    let catalog = if meta.is_dir() {
        let (catalog, bad) = Catalog::dir(path)?;
        if let Some(first) = bad.into_iter().next() {
            return Err(first);
        }
        if catalog.repros.is_empty() {
            return Err(GuestError::NotARepro {
                path: path.clone(),
                why: "a directory with no .rs repro in it".into(),
            });
        }
        catalog
    } else if path.extension().is_some_and(|x| x == "rs") {
        Catalog::file(path)?
    } else {
        return Err(GuestError::NotARepro {
            path: path.clone(),
            why: "not a repro: give a .rs repro, a directory of them, a .c source, or --exec FILE".into(),
        });
    };
    let repro = match (name, catalog.repros.as_slice()) {
        (Some(n), _) => catalog.find(n).ok_or_else(|| catalog.unknown(n))?,
        (None, [one]) => one,
        (None, many) => {
            return Err(GuestError::Several {
                path: path.clone(),
                names: many.iter().map(|r| r.name().to_owned()).collect(),
            })
        }
    };
    Ok(Selected::Repro(repro.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_declaration_reads() {
        let c = Catalog::builtin();
        let names: Vec<&str> = c.repros.iter().map(Repro::name).collect();
        assert_eq!(names[..4], ["smoke", "listen_backlog", "boot_time", "dmesg_clean"]);
        for n in ["selftest_fail", "selftest_skip", "selftest_panic", "selftest_hang", "kcmp", "race_two_cpus"] {
            assert!(c.find(n).is_some(), "{n}");
        }
        assert!(c.find(repros::protocol::EXEC_REPRO).is_none(), "`exec` is init's own");
        let smoke = c.find("smoke").unwrap();
        assert_eq!(smoke.decl.config, ["PROC_FS", "NET", "INET"]);
        assert_eq!(smoke.file, ReproFile::Builtin("01-smoke.rs"));
    }

    #[test]
    fn words_are_names_or_paths() {
        assert_eq!(ReproArg::parse("smoke"), ReproArg::Name("smoke".into()));
        for p in ["probe.rs", "bug.c", "./probe", "dir/", "."] {
            assert_eq!(ReproArg::parse(p), ReproArg::Path(p.into()), "{p}");
        }
    }

    #[test]
    fn names_files_and_directories_select_one_repro() {
        let d = tempfile::tempdir().unwrap();
        let one = |name: &str| format!("pub const R: Repro = Repro {{ name: \"{name}\", run }};\n");
        std::fs::write(d.path().join("a.rs"), one("alpha")).unwrap();
        std::fs::write(
            d.path().join("b.rs"),
            format!("{}pub const S: Repro = Repro {{ name: \"beta2\", run }};\n", one("beta")),
        )
        .unwrap();
        std::fs::write(d.path().join("bug.c"), "int main(void) { return 0; }\n").unwrap();
        std::fs::write(d.path().join("notes.txt"), "").unwrap();
        let sel = |arg: ReproArg, name: Option<&str>| select(&arg, name);
        let name_of = |s: Selected| match s {
            Selected::Repro(r) => r.decl.name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name_of(sel(ReproArg::Name("kcmp".into()), None).unwrap()), "kcmp");
        let e = sel(ReproArg::Name("nope".into()), None).unwrap_err();
        assert!(e.to_string().starts_with("unknown repro 'nope'; known repros: smoke, listen_backlog"), "{e}");
        assert_eq!(name_of(sel(ReproArg::Path(d.path().join("a.rs")), None).unwrap()), "alpha");
        let e = sel(ReproArg::Path(d.path().join("b.rs")), None).unwrap_err();
        assert!(e.to_string().ends_with("declares 2 repros (beta, beta2): name one with --repro NAME"), "{e}");
        assert_eq!(name_of(sel(ReproArg::Path(d.path().join("b.rs")), Some("beta2")).unwrap()), "beta2");
        assert_eq!(name_of(sel(ReproArg::Path(d.path().to_owned()), Some("alpha")).unwrap()), "alpha");
        let e = sel(ReproArg::Path(d.path().to_owned()), Some("smoke")).unwrap_err();
        assert_eq!(e.to_string(), "unknown repro 'smoke'; known repros: alpha, beta, beta2");
        assert_eq!(
            sel(ReproArg::Path(d.path().join("bug.c")), None).unwrap(),
            Selected::CSource(d.path().join("bug.c"))
        );
        let e = sel(ReproArg::Path(d.path().join("notes.txt")), None).unwrap_err();
        assert!(e.to_string().contains("not a repro: give a .rs repro"), "{e}");
        let e = sel(ReproArg::Path(d.path().join("missing.rs")), None).unwrap_err();
        assert!(e.to_string().contains("cannot read it"), "{e}");
    }

    #[test]
    fn a_file_the_host_cannot_read_names_the_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("bad.rs");
        std::fs::write(&f, "pub const R: Repro = Repro {\n    name: NAME,\n    run,\n};\n").unwrap();
        let e = select(&ReproArg::Path(f.clone()), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: line 2: R: `name` must be a string literal (the host reads it without compiling the file)",
                f.display()
            )
        );
        let (c, bad) = Catalog::dir(d.path()).unwrap();
        assert!(c.repros.is_empty() && bad.len() == 1);
        std::fs::write(d.path().join("twin.rs"), "pub const A: Repro = Repro { name: \"x\", run };\n").unwrap();
        std::fs::write(d.path().join("twin2.rs"), "pub const A: Repro = Repro { name: \"x\", run };\n").unwrap();
        let e = Catalog::dir(d.path()).unwrap_err();
        assert!(e.to_string().starts_with("repro 'x' is declared twice"), "{e}");
    }
}
