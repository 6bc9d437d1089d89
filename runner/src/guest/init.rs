//! Building init with exactly the repros it runs, and the initrd around it.
//!
//! cargo builds the guest workspace ([`super::source`], written out into
//! the cache) with the repro files named in `KREPRO_REPROS` (init/build.rs
//! makes its registry of them) for the guest's target. The result is
//! cached by content: the guest side's version, the repro files' paths and
//! text, the architecture and the compiler. A cache hit runs no cargo at
//! all; after a one-line edit of a repro only init is compiled again, in a
//! target dir every build shares.
//!
//! init is `no_std` and links no libc, so for the host's architecture the
//! host's own target does (no rustup target needed). For another
//! architecture (aarch64 on an x86_64 host) it needs that target's `core`
//! and `alloc` and a linker:
//! - a rustc that has the target (`rustup target add`) is used as it is;
//! - otherwise Debian's: `rustc-web` (a second rustc, /usr/bin/rustc) with
//!   `libstd-rust-web-dev:<arch>`, the precompiled core/alloc/std for the
//!   target, installed with apt (after `dpkg --add-architecture`). Rust's
//!   library must come from the same compiler that uses it, so the whole
//!   build runs on Debian's rustc, in a target dir of its own.
//! - the linker is the cross gcc (`gcc-<triple>`), which only links: init
//!   brings its own `_start` and mem* (init/build.rs passes -nostdlib).

use std::path::{Path, PathBuf};

use super::{io, source, GuestError, Repro, ReproFile};
use crate::host::cache::Cache;
use crate::host::install;
use crate::host::spawn::{Cmd, CmdError};
use crate::image::arch::Arch;
use crate::image::elf;

/// Debian's second Rust toolchain, and where it keeps the targets' libraries.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_RUSTLIB: &str = "/usr/lib/rustlib";

/// The environment init/build.rs reads: the repro files to compile in, one
/// absolute path a line (set but empty: none, for an `--exec` init).
pub(crate) const REPROS_VAR: &str = "KREPRO_REPROS";
/// The repro init runs when the command line names none.
const DEFAULT_VAR: &str = "KREPRO_DEFAULT_REPRO";

/// cargo, for building init: `$CARGO` (set when krepro runs under cargo),
/// else the one on PATH, else rustup's default place.
pub(crate) fn cargo() -> Result<PathBuf, GuestError> {
    if let Some(c) = std::env::var_os("CARGO").filter(|c| !c.is_empty()) {
        return Ok(c.into());
    }
    if let Ok(c) = which::which("cargo") {
        return Ok(c);
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    home.map(|h| h.join("bin/cargo")).filter(|c| c.is_file()).ok_or_else(|| {
        GuestError::Toolchain(
            "building init needs cargo, which is not on PATH: install Rust (https://rustup.rs, or apt-get install cargo)"
                .into(),
        )
    })
}

/// How init is compiled for one architecture.
#[derive(Debug, PartialEq, Eq)]
pub struct Toolchain {
    /// `RUSTC` for cargo; None: cargo's own.
    pub rustc: Option<PathBuf>,
    /// The linker (`CARGO_TARGET_<TRIPLE>_LINKER`); None: cargo's default.
    pub linker: Option<PathBuf>,
}

impl Toolchain {
    /// The name of the target dir for this toolchain: two compilers
    /// sharing one would rebuild each other's build scripts at every switch.
    fn target_dir_name(&self) -> &'static str {
        if self.rustc.is_some() {
            "target-debian-rustc"
        } else {
            "target"
        }
    }
}

/// Whether `rustc` (None: the one on PATH) has `core` for `target`.
fn rustc_has_target(rustc: Option<&Path>, target: &str) -> bool {
    let rustc = rustc.map_or_else(|| PathBuf::from("rustc"), Path::to_owned);
    let Ok(out) = Cmd::new(&rustc, ["--print", "target-libdir", "--target", target], Path::new("/")).quiet().output()
    else {
        return false;
    };
    has_core(Path::new(String::from_utf8_lossy(&out.stdout).trim()))
}

fn has_core(libdir: &Path) -> bool {
    std::fs::read_dir(libdir)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        .unwrap_or(false)
}

/// Finds (as root: installs) what compiling init for `arch` takes.
pub fn toolchain(arch: Arch, say: &mut dyn FnMut(&str)) -> Result<Toolchain, GuestError> {
    let failed = |e: install::InstallError| GuestError::Toolchain(format!("building init for {arch}: {e}"));
    if Arch::host() == Some(arch) {
        // rustc links through the host's `cc` (init/build.rs passes it
        // -nostdlib -static): a machine with Rust but no C compiler gets one.
        install::find_or_install("cc", "gcc", say).map_err(failed)?;
        return Ok(Toolchain { rustc: None, linker: None });
    }
    let triple = arch.gnu_triple();
    let linker = install::find_or_install(&format!("{triple}-gcc"), &format!("gcc-{triple}"), say).map_err(failed)?;
    let target = arch.rust_target();
    if rustc_has_target(None, target) {
        return Ok(Toolchain { rustc: None, linker: Some(linker) });
    }
    let libdir = Path::new(DEBIAN_RUSTLIB).join(target).join("lib");
    if !has_core(&libdir) || !Path::new(DEBIAN_RUSTC).is_file() {
        say(&format!(
            "the Rust toolchain has no {target} target (rustup target add {target} where rustup can): using \
             Debian's rustc-web and libstd-rust-web-dev:{}",
            arch.debian()
        ));
        install::ensure_dpkg_arch(arch.debian(), say).map_err(failed)?;
        install::apt_packages(&["rustc-web", &format!("libstd-rust-web-dev:{}", arch.debian())], say)
            .map_err(failed)?;
    }
    if !rustc_has_target(Some(Path::new(DEBIAN_RUSTC)), target) {
        return Err(GuestError::Toolchain(format!(
            "{DEBIAN_RUSTC} has no {target} library in {} after installing libstd-rust-web-dev:{}",
            libdir.display(),
            arch.debian()
        )));
    }
    Ok(Toolchain { rustc: Some(DEBIAN_RUSTC.into()), linker: Some(linker) })
}

/// cargo's variable for the linker of `target`.
pub fn linker_var(target: &str) -> String {
    format!("CARGO_TARGET_{}_LINKER", target.to_uppercase().replace('-', "_"))
}

/// A built init, and the initrd that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Init {
    /// The static executable.
    pub path: PathBuf,
    /// A gzip'd newc cpio of it as /init (and the directories init needs).
    pub initrd: PathBuf,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Where a repro file is for cargo: a built-in's inside the written-out
/// guest workspace, a user's where it is.
fn file_path(file: &ReproFile, workspace: &Path) -> PathBuf {
    match file {
        ReproFile::Builtin(name) => workspace.join(source::BUILTIN_DIR).join(name),
        ReproFile::User(path) => path.clone(),
    }
}

/// The cache key of an init: everything that goes into it.
fn key(arch: Arch, files: &[(PathBuf, Vec<u8>)], default: &str, tc: &Toolchain) -> String {
    let mut h = blake3::Hasher::new();
    let mut part = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(source::hash().as_bytes());
    part(arch.name().as_bytes());
    part(default.as_bytes());
    part(tc.rustc.as_deref().unwrap_or(Path::new("")).as_os_str().as_encoded_bytes());
    part(tc.linker.as_deref().unwrap_or(Path::new("")).as_os_str().as_encoded_bytes());
    for (path, text) in files {
        part(path.as_os_str().as_encoded_bytes());
        part(text);
    }
    h.finalize().to_hex()[..24].to_owned()
}

/// Builds (or finds in the cache) init for `arch` with `repros` compiled
/// in (none: an init for `--exec` only), the first the default, and its
/// initrd. A repro that does not compile is [`GuestError::Compile`] with
/// rustc's messages, which name the user's file.
pub(crate) fn build(
    cache: &Cache,
    arch: Arch,
    repros: &[&Repro],
    say: &mut dyn FnMut(&str),
) -> Result<Init, GuestError> {
    let dir = cache.guest();
    let workspace = source::extract(&dir).map_err(io(format!("write krepro's guest source into {}", dir.display())))?;
    let tc = toolchain(arch, say)?;
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for r in repros {
        let path = file_path(&r.file, &workspace);
        if !files.iter().any(|(p, _)| *p == path) {
            let text = std::fs::read(&path).map_err(io(format!("read {}", path.display())))?;
            files.push((path, text));
        }
    }
    let default = repros.first().map_or(repros::protocol::EXEC_REPRO, |r| r.name());
    let out = dir.join("init").join(key(arch, &files, default, &tc));
    let init = Init { path: out.join("init"), initrd: out.join("initrd.cpio.gz"), cached: true };
    if init.path.is_file() && init.initrd.is_file() {
        return Ok(init);
    }

    let target = arch.rust_target();
    let target_dir = dir.join(tc.target_dir_name());
    let names: Vec<&str> = repros.iter().map(|r| r.name()).collect();
    let with = if names.is_empty() { String::new() } else { format!(" with {}", names.join(", ")) };
    let first = if target_dir.join(target).is_dir() { "" } else { " (the first build compiles the SDK: a minute)" };
    say(&format!("compiling init for {arch}{with}{first}"));
    std::fs::create_dir_all(&target_dir).map_err(io(format!("create {}", target_dir.display())))?;
    // One build at a time in the shared target dir, until its init is
    // copied out (cargo's own lock ends with cargo).
    // A short wait, whoever holds it: an init build takes seconds.
    let what = format!("the init build dir {}", target_dir.display());
    let _lock = crate::host::lock::acquire(&target_dir.join(".krepro-lock"), &what, true, say)?;
    let list: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    let manifest = workspace.join("Cargo.toml");
    let mut cmd = Cmd::new(
        cargo()?,
        ["build", "--quiet", "--package", "krepro-init", "--profile", "init", "--target", target, "--manifest-path"],
        &workspace,
    )
    .args([&manifest])
    .quiet()
    .env("CARGO_TARGET_DIR", &target_dir)
    .env(REPROS_VAR, list.join("\n"))
    .env(DEFAULT_VAR, default)
    // init is built exactly as krepro means it: the user's flags for their
    // own crates (crt-static, a target CPU) are not for PID 1.
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .env_remove("CARGO_BUILD_TARGET")
    .env_remove("CARGO_BUILD_RUSTFLAGS");
    if let Some(rustc) = &tc.rustc {
        cmd = cmd.env("RUSTC", rustc);
    } else {
        cmd = cmd.env_remove("RUSTC");
    }
    if let Some(linker) = &tc.linker {
        cmd = cmd.env(&linker_var(target), linker);
    }
    if let Err(e) = cmd.output() {
        return Err(match e {
            CmdError::Failed { stderr, .. } => compile_error(&files, &stderr),
            other => other.into(),
        });
    }
    let built = target_dir.join(target).join("init/init");
    let bytes = std::fs::read(&built).map_err(io(format!("read {}", built.display())))?;
    check(&bytes, arch).map_err(|why| GuestError::Toolchain(format!("{}: {why}", built.display())))?;
    std::fs::create_dir_all(&out).map_err(io(format!("create {}", out.display())))?;
    let entries = crate::initrd::standard_members(bytes.clone());
    write_atomically(&init.initrd, &crate::initrd::pack(&entries).map_err(io("pack the initrd"))?)?;
    write_atomically(&init.path, &bytes)?;
    Ok(Init { cached: false, ..init })
}

/// Whether `bytes` is a static executable of `arch`.
fn check(bytes: &[u8], arch: Arch) -> Result<(), String> {
    elf::check_static(bytes, true).map_err(|e| format!("not a static executable: {e}"))?;
    let machine = elf::Elf::parse(bytes).map_err(|e| e.to_string())?.machine();
    match Arch::from_elf_machine(machine) == Some(arch) {
        true => Ok(()),
        false => Err(format!("not an {arch} executable (ELF machine {machine})")),
    }
}

/// What a failed build shows: rustc's messages (they name the repro file
/// by its path), without cargo's summary lines.
fn compile_error(files: &[(PathBuf, Vec<u8>)], stderr: &str) -> GuestError {
    let output: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("error: could not compile") && !l.starts_with("warning: build failed"))
        .collect();
    // The user's file when there is one in the messages, else the first file.
    let path = files
        .iter()
        .map(|(p, _)| p)
        .find(|p| stderr.contains(&*p.to_string_lossy()))
        .or(files.first().map(|(p, _)| p))
        .cloned()
        .unwrap_or_else(|| PathBuf::from("init"));
    GuestError::Compile { path, output: output.join("\n").trim_end().to_owned() }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), GuestError> {
    crate::host::atomic::write(path, bytes).map_err(|e| match crate::host::usage::is_disk_full(&e) {
        true => {
            GuestError::NoSpace(crate::host::usage::disk_full(path.parent().unwrap_or(path), Some(bytes.len() as u64)))
        }
        false => io(format!("write {}", path.display()))(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_dir_has_core_only_with_libcore() {
        let d = tempfile::tempdir().unwrap();
        assert!(!has_core(d.path()));
        std::fs::write(d.path().join("liballoc-1234.rlib"), "").unwrap();
        assert!(!has_core(d.path()));
        std::fs::write(d.path().join("libcore-1234.rlib"), "").unwrap();
        assert!(has_core(d.path()));
        assert!(!has_core(&d.path().join("missing")));
    }

    #[test]
    fn keys_change_with_what_goes_into_init() {
        let tc = Toolchain { rustc: None, linker: None };
        let files = vec![(PathBuf::from("/r/a.rs"), b"one".to_vec())];
        let k = key(Arch::X86_64, &files, "a", &tc);
        assert_eq!(k, key(Arch::X86_64, &files, "a", &tc));
        assert_ne!(k, key(Arch::Aarch64, &files, "a", &tc));
        assert_ne!(k, key(Arch::X86_64, &[(PathBuf::from("/r/a.rs"), b"two".to_vec())], "a", &tc));
        assert_ne!(k, key(Arch::X86_64, &files, "b", &tc));
        let debian = Toolchain { rustc: Some(DEBIAN_RUSTC.into()), linker: None };
        assert_ne!(k, key(Arch::X86_64, &files, "a", &debian));
        assert_ne!(tc.target_dir_name(), debian.target_dir_name());
    }

    #[test]
    fn a_compile_error_keeps_rustcs_messages_and_names_the_users_file() {
        let files = vec![(PathBuf::from("/home/u/probe.rs"), Vec::new())];
        let stderr = "error[E0308]: mismatched types\n --> /home/u/probe.rs:9:5\n  |\n9 |     1u32\n  |     ^^^^ expected `Result<Verdict, Error>`, found `u32`\n\nerror: could not compile `krepro-init` (bin \"init\") due to 1 previous error\n";
        let e = compile_error(&files, stderr);
        let GuestError::Compile { path, output } = &e else { panic!("{e:?}") };
        assert_eq!(path, Path::new("/home/u/probe.rs"));
        assert!(output.starts_with("error[E0308]: mismatched types\n --> /home/u/probe.rs:9:5"), "{output}");
        assert!(!output.contains("could not compile"), "{output}");
        assert!(e.to_string().starts_with("/home/u/probe.rs does not compile:\nerror[E0308]"), "{e}");
    }
}
