//! `cargo xtask`: krepro's commands run from the checkout (the same code
//! as the installed `krepro`), plus the project's own chores: `ci` and
//! `bench`.
//!
//! Everything external goes through `krepro_runner::host::spawn::Cmd`;
//! cargo is taken from `$CARGO`; outputs go under `target/`; the cache is
//! `Cache::from_env()`, made once here and handed down.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use krepro_runner::cli::{self, Failure};
use krepro_runner::guest::{self, Catalog};
use krepro_runner::host::cache::Cache;
use krepro_runner::host::spawn::Cmd;
use krepro_runner::host::{fetch, install};
use krepro_runner::image::arch::Arch;
use krepro_runner::Exit;

mod bench;

/// krepro from its checkout: every `krepro` command, plus `ci` and `bench`.
///
/// `cargo xtask run` builds init with the repro, boots the kernel in qemu
/// and exits with the verdict: 0 pass, 1 fail, 2 crash, 3 hang, 125 skip
/// or no verdict, 128 could not run.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: cli::Global,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Krepro(cli::Command),
    /// Measure krepro against a C init, busybox, virtme-ng and vmtest on
    /// the same kernels, alternating, as ratios to the C-init baseline
    Bench(Box<bench::BenchArgs>),
    /// Run exactly what CI runs: prerequisites, fmt, clippy, all tests
    Ci,
}

fn main() -> ExitCode {
    let xtask = cli::parse_or_exit::<Xtask>();
    let cache = xtask.global.cache();
    cli::until_the_reader_goes(|| {
        cli::finish(match xtask.command {
            Command::Krepro(command) => cli::execute_and_trim(command, &cache),
            Command::Bench(args) => bench::bench(&args, &cache).map(|()| Exit::Good).map_err(failure),
            Command::Ci => ci(&cache).map(|()| Exit::Good).map_err(failure),
        })
    })
}

/// A chore's error: one line (the chain of contexts), exit 128, or 130
/// when it was a run that was interrupted.
fn failure(e: anyhow::Error) -> Failure {
    match e.downcast_ref::<krepro_runner::RunError>() {
        Some(run) => Failure::new(run.exit(), format!("{e:#}")),
        None => Failure::error(format!("{e:#}")),
    }
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_owned()
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// Cargo's target directory: $CARGO_TARGET_DIR, else `<root>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()).map_or_else(|| root().join("target"), PathBuf::from)
}

/// What the kselftest tests build from: Debian's kernel source (its
/// tools/testing/selftests) and a C toolchain for `cc -static`.
const KSELFTEST_PACKAGES: &[&str] = &["linux-source-6.1", "xz-utils", "build-essential"];

/// What the slow tier (KREPRO_SLOW=1) adds to build kernels (its tests
/// check for each and assert that ccache wrapped the compiler).
const SLOW_PACKAGES: &[&str] = &[
    // The compiler test's second tree; its compilers krepro installs itself.
    "linux-source-6.12",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "git",
    "ccache",
    // arm64 kernels (the cross gcc; qemu-system-arm comes with every ci).
    "gcc-aarch64-linux-gnu",
];

fn slow_tier() -> bool {
    std::env::var("KREPRO_SLOW").as_deref() == Ok("1")
}

/// The kernels the boot tests use: one per Debian cloud series on x86_64,
/// and Debian's arm64 6.12.
const TEST_KERNELS: &[(Arch, &str)] = &[(Arch::X86_64, "6.12"), (Arch::X86_64, "6.1"), (Arch::Aarch64, "6.12")];

fn ci(cache: &Cache) -> Result<()> {
    let root = root();
    let say = &mut |m: &str| eprintln!("krepro: {m}");
    for arch in [Arch::X86_64, Arch::Aarch64] {
        install::find_or_install(arch.qemu(), arch.qemu_package(), say)?;
    }
    // The arm64 tests' init: the cross toolchain (Debian's rustc-web and
    // arm64 core where rustup has no aarch64 target), installed once here
    // rather than by the first of several tests at once.
    guest::init::toolchain(Arch::Aarch64, say).context("the toolchain for an aarch64 init")?;
    // The initrd tests read the archive back with GNU cpio too; the bench
    // test boots a busybox initramfs.
    install::find_or_install("cpio", "cpio", say)?;
    install::find_or_install("busybox", "busybox-static", say)?;
    // The initrd test reads init's program headers with readelf.
    install::find_or_install("readelf", "binutils", say)?;
    install::apt_packages(KSELFTEST_PACKAGES, say)?;
    // The distributed-build tests start a distccd and a redis-server.
    install::apt_packages(&["distcc", "redis-server"], say)?;
    for (arch, series) in TEST_KERNELS {
        if fetch::newest_cached(&cache.kernels(), *arch, Some(series)).is_none() {
            fetch::fetch(cache, Some(series), *arch, say)?;
        }
    }
    // The slow tests are #[ignore]d: a plain run lists them as ignored.
    let mut test_args = vec!["test", "--", "--test-threads", "2"];
    if slow_tier() {
        // Real kernel builds: Debian's kernel source and its build deps.
        install::apt_packages(SLOW_PACKAGES, say)?;
        test_args.push("--include-ignored");
    }
    let cargo = cargo();
    Cmd::new(&cargo, ["fmt", "--all", "--check"], &root).status().context("cargo fmt --check (run `cargo fmt`)")?;
    Cmd::new(&cargo, ["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"], &root).status()?;
    for arch in [Arch::host_or_default(), Arch::Aarch64] {
        clippy_init(arch)?;
    }
    Cmd::new(&cargo, test_args, &root).status()?;
    Ok(())
}

/// Debian's clippy for its rustc (rust-web-clippy).
const DEBIAN_CLIPPY: &str = "/usr/bin/clippy-driver";

/// clippy on init (with every one of krepro's repros in it) for `arch`,
/// warnings denied: cargo's own clippy where its rustc has the target;
/// else Debian's clippy-driver (rust-web-clippy) over Debian's rustc, the
/// way `cargo clippy` wraps rustc, in a target dir of its own.
fn clippy_init(arch: Arch) -> Result<()> {
    let say = &mut |m: &str| eprintln!("krepro: {m}");
    let tc = guest::init::toolchain(arch, say)?;
    let target = arch.rust_target();
    let package = ["--quiet", "--package", "krepro-init", "--profile", "init", "--target", target];
    let mut cmd = match &tc.rustc {
        None => Cmd::new(cargo(), ["clippy"].iter().chain(&package).chain(&["--", "-D", "warnings"]), &root()),
        Some(rustc) => {
            install::apt_packages(&["rust-web-clippy"], say)?;
            Cmd::new(cargo(), ["check"].iter().chain(&package), &root())
                .env("RUSTC", rustc)
                .env("RUSTC_WORKSPACE_WRAPPER", DEBIAN_CLIPPY)
                .env("RUSTFLAGS", "-D warnings")
                .env("CARGO_TARGET_DIR", target_dir().join("krepro/debian-clippy"))
        }
    };
    if let Some(linker) = &tc.linker {
        cmd = cmd.env(&guest::init::linker_var(target), linker);
    }
    cmd.status().with_context(|| format!("clippy on init for {arch}"))?;
    // Every built-in repro reads on the host, as the guest compiles it.
    let _ = Catalog::builtin();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Xtask::command().debug_assert();
    }
}
