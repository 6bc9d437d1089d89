//! Building init for a guest architecture and packing it into an initrd.
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
//!   `-Zbuild-std` with rust-web-src would build core from source instead,
//!   but needs a nightly cargo or RUSTC_BOOTSTRAP and a minute more per
//!   clean build, for the same result.
//! - the linker is the cross gcc (`gcc-<triple>`), which only links: init
//!   brings its own `_start` and mem* (init/build.rs passes -nostdlib).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use krepro_runner::host::install;
use krepro_runner::host::spawn::Cmd;
use krepro_runner::image::arch::Arch;
use krepro_runner::initrd;

use crate::{cargo, root, target_dir};

/// The repro an initrd runs when the kernel command line names none.
pub const DEFAULT_REPRO: &str = "smoke";

/// Where `cargo xtask initrd` writes by default, per architecture.
pub fn default_initrd(arch: Arch) -> PathBuf {
    match arch {
        Arch::X86_64 => target_dir().join("krepro/initrd.cpio.gz"),
        other => target_dir().join(format!("krepro/initrd-{other}.cpio.gz")),
    }
}

/// Debian's second Rust toolchain, and where it keeps the targets' libraries.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_RUSTLIB: &str = "/usr/lib/rustlib";
/// Debian's clippy for that rustc (rust-web-clippy).
const DEBIAN_CLIPPY: &str = "/usr/bin/clippy-driver";

/// How init is compiled for one architecture.
#[derive(Debug, PartialEq, Eq)]
struct InitToolchain {
    /// `RUSTC` for cargo; None: cargo's own.
    rustc: Option<PathBuf>,
    /// cargo's target dir for this toolchain.
    target_dir: PathBuf,
    /// The linker (`CARGO_TARGET_<TRIPLE>_LINKER`); None: cargo's default.
    linker: Option<PathBuf>,
}

/// Whether `rustc` (None: the one on PATH) has `core` for `target`.
fn rustc_has_target(rustc: Option<&Path>, target: &str) -> bool {
    let rustc = rustc.map_or_else(|| PathBuf::from("rustc"), Path::to_owned);
    let Ok(out) = Cmd::new(&rustc, ["--print", "target-libdir", "--target", target], &root()).quiet().output() else {
        return false;
    };
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    has_core(&dir)
}

fn has_core(libdir: &Path) -> bool {
    std::fs::read_dir(libdir)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("libcore-")))
        .unwrap_or(false)
}

/// Finds (as root: installs) what compiling init for `arch` takes.
fn toolchain(arch: Arch, say: &mut dyn FnMut(&str)) -> Result<InitToolchain> {
    if Arch::host() == Some(arch) {
        return Ok(InitToolchain { rustc: None, target_dir: target_dir(), linker: None });
    }
    let triple = arch.gnu_triple();
    let linker = install::find_or_install(&format!("{triple}-gcc"), &format!("gcc-{triple}"), say)?;
    let target = arch.rust_target();
    if rustc_has_target(None, target) {
        return Ok(InitToolchain { rustc: None, target_dir: target_dir(), linker: Some(linker) });
    }
    let libdir = Path::new(DEBIAN_RUSTLIB).join(target).join("lib");
    if !has_core(&libdir) || !Path::new(DEBIAN_RUSTC).is_file() {
        say(&format!(
            "the Rust toolchain has no {target} target (rustup target add {target} where rustup can): using \
             Debian's rustc-web and libstd-rust-web-dev:{}",
            arch.debian()
        ));
        install::ensure_dpkg_arch(arch.debian(), say)?;
        install::apt_packages(&["rustc-web", &format!("libstd-rust-web-dev:{}", arch.debian())], say)?;
    }
    if !rustc_has_target(Some(Path::new(DEBIAN_RUSTC)), target) {
        bail!(
            "{DEBIAN_RUSTC} has no {target} library in {} after installing libstd-rust-web-dev:{}",
            libdir.display(),
            arch.debian()
        );
    }
    Ok(InitToolchain {
        rustc: Some(DEBIAN_RUSTC.into()),
        // Its own dir: two compilers sharing one would rebuild each other's
        // build scripts and dependencies at every switch.
        target_dir: target_dir().join("krepro/debian-rustc"),
        linker: Some(linker),
    })
}

/// Builds init for `arch` (size-optimised, static, no libc) with
/// `default_repro` compiled in as its default and checks that it is a
/// static executable of that architecture.
pub fn build_init(arch: Arch, default_repro: &str) -> Result<Vec<u8>> {
    let tc = toolchain(arch, &mut |m| eprintln!("krepro: {m}"))?;
    let target = arch.rust_target();
    let args = ["build", "--quiet", "--package", "krepro-init", "--profile", "init", "--target", target];
    let mut cmd = Cmd::new(cargo(), args, &root()).quiet().env("KREPRO_DEFAULT_REPRO", default_repro);
    cmd = cmd.env("CARGO_TARGET_DIR", &tc.target_dir);
    if let Some(rustc) = &tc.rustc {
        cmd = cmd.env("RUSTC", rustc);
    }
    if let Some(linker) = &tc.linker {
        cmd = cmd.env(&linker_var(target), linker);
    }
    cmd.status().with_context(|| format!("building init for {arch}"))?;
    let path = tc.target_dir.join(target).join("init/init");
    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    krepro_runner::image::elf::check_static(&bytes, true)
        .with_context(|| format!("{} is not a static executable", path.display()))?;
    let machine = krepro_runner::image::elf::Elf::parse(&bytes)?.machine();
    if Arch::from_elf_machine(machine) != Some(arch) {
        bail!("{} is not an {arch} executable (ELF machine {machine})", path.display());
    }
    Ok(bytes)
}

/// clippy on init for `arch` with warnings denied, as CI runs it for the
/// host's: cargo's own clippy where its rustc has the target; else
/// Debian's clippy-driver (rust-web-clippy) over Debian's rustc, the
/// way `cargo clippy` wraps rustc, in a target dir of its own.
pub fn clippy_init(arch: Arch) -> Result<()> {
    let tc = toolchain(arch, &mut |m| eprintln!("krepro: {m}"))?;
    let target = arch.rust_target();
    let package = ["--quiet", "--package", "krepro-init", "--profile", "init", "--target", target];
    let mut cmd = match &tc.rustc {
        None => Cmd::new(cargo(), ["clippy"].iter().chain(&package).chain(&["--", "-D", "warnings"]), &root()),
        Some(rustc) => {
            install::apt_packages(&["rust-web-clippy"], &mut |m| eprintln!("krepro: {m}"))?;
            Cmd::new(cargo(), ["check"].iter().chain(&package), &root())
                .env("RUSTC", rustc)
                .env("RUSTC_WORKSPACE_WRAPPER", DEBIAN_CLIPPY)
                .env("RUSTFLAGS", "-D warnings")
                .env("CARGO_TARGET_DIR", target_dir().join("krepro/debian-clippy"))
        }
    };
    if let Some(linker) = &tc.linker {
        cmd = cmd.env(&linker_var(target), linker);
    }
    cmd.status().with_context(|| format!("clippy on init for {arch}"))?;
    Ok(())
}

/// cargo's variable for the linker of `target`.
fn linker_var(target: &str) -> String {
    format!("CARGO_TARGET_{}_LINKER", target.to_uppercase().replace('-', "_"))
}

/// Builds init for `arch` and packs it into a gzip'd cpio at `out`.
pub fn build_initrd(arch: Arch, default_repro: &str, out: &Path) -> Result<PathBuf> {
    let init = build_init(arch, default_repro)?;
    initrd::write_file(&initrd::standard_entries(init), out).with_context(|| format!("write {}", out.display()))?;
    Ok(out.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_initrd_of_each_arch_is_its_own_file() {
        assert!(default_initrd(Arch::X86_64).ends_with("krepro/initrd.cpio.gz"));
        assert!(default_initrd(Arch::Aarch64).ends_with("krepro/initrd-aarch64.cpio.gz"));
    }

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
}
