//! `cargo xtask`: krepro's commands for users and developers.
//!
//! Everything external goes through `krepro_runner::cmd::Cmd`; cargo is
//! taken from `$CARGO`; outputs go under `target/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use krepro_runner::cli::{self, RunArgs};
use krepro_runner::cmd::Cmd;
use krepro_runner::{fetch, initrd, install, kernel, qemu};

mod elf;

/// krepro: turn a kernel bug into a boot test that runs in seconds.
///
/// `cargo xtask run` builds the init, packs the initrd, boots the kernel in
/// qemu and exits with the verdict: 0 pass, 1 fail, 2 crash, 3 hang, 125
/// skip or no verdict, 128 could not run.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the initrd, boot a kernel with it and exit with the verdict
    Run {
        #[command(flatten)]
        args: RunArgs,
    },
    /// Build init and pack the initrd (gzip'd newc cpio); prints its path
    Initrd {
        /// The repro init runs when the kernel command line names none
        #[arg(long, value_name = "NAME", default_value = DEFAULT_REPRO)]
        repro: String,
        /// Where to write it [default: target/krepro/initrd.cpio.gz]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List the repros: name, what it checks, the kernel config it needs
    Repros,
    /// Get kernels to boot
    Kernel {
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// Run exactly what CI runs: prerequisites, fmt, clippy, all tests
    Ci,
}

#[derive(Subcommand)]
enum KernelCommand {
    /// Download the newest Debian cloud kernel into the cache (apt-get
    /// download; no root needed); prints the bzImage path
    Fetch {
        /// Only this series, e.g. 6.1 or 6.12
        series: Option<String>,
    },
}

fn main() -> ExitCode {
    let xtask = cli::parse_or_exit::<Xtask>();
    match xtask.command {
        Command::Run { args } => {
            // Cheap checks first: a bad repro name should not wait for a build.
            if let Err(e) = cli::check_repro(&args.repro) {
                eprintln!("error: {e}");
                return e.exit_code().into();
            }
            // The runner names the repro on the kernel command line, so the
            // compiled-in default does not matter here.
            match build_initrd(DEFAULT_REPRO, &default_initrd()) {
                Ok(path) => cli::execute(&args, &path).into(),
                Err(e) => fail(e),
            }
        }
        Command::Initrd { repro, output } => {
            let out = output.unwrap_or_else(default_initrd);
            match cli::check_repro(&repro).map_err(anyhow::Error::from).and_then(|()| build_initrd(&repro, &out)) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Repros => {
            list_repros();
            ExitCode::SUCCESS
        }
        Command::Kernel { command: KernelCommand::Fetch { series } } => {
            match fetch::fetch(series.as_deref(), &mut |m| eprintln!("krepro: {m}")) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.into()),
            }
        }
        Command::Ci => match ci() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// One line, exit 128 (could not run).
fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    krepro_runner::ExitCode::Error.into()
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_owned()
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

fn default_initrd() -> PathBuf {
    root().join("target/krepro/initrd.cpio.gz")
}

/// The target init is built for: the host's triple, with no libc linked
/// (see init/build.rs), so no extra rustup target is needed.
const INIT_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Where the init binary lands.
fn init_binary() -> PathBuf {
    root().join("target").join(INIT_TARGET).join("init/init")
}

/// The repro an initrd runs when the kernel command line names none.
const DEFAULT_REPRO: &str = "smoke";

/// Builds init (size-optimised, static, no libc) with `default_repro`
/// compiled in as its default and checks that it is static.
fn build_init(default_repro: &str) -> Result<Vec<u8>> {
    let args = ["build", "--quiet", "--package", "krepro-init", "--profile", "init", "--target", INIT_TARGET];
    Cmd::new(cargo(), args, &root())
        .quiet()
        .env("KREPRO_DEFAULT_REPRO", default_repro)
        .status()
        .context("building init")?;
    let path = init_binary();
    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    elf::check_static(&bytes).with_context(|| format!("{} is not a static executable", path.display()))?;
    Ok(bytes)
}

/// Builds init and packs it into a gzip'd cpio at `out`.
fn build_initrd(default_repro: &str, out: &Path) -> Result<PathBuf> {
    let init = build_init(default_repro)?;
    initrd::write_file(&initrd::standard_entries(init), out).with_context(|| format!("write {}", out.display()))?;
    Ok(out.to_owned())
}

fn list_repros() {
    println!("{:<20} {:<40} CONFIG", "NAME", "CHECKS");
    for r in repros::REPROS {
        let config = if r.config.is_empty() { "-".to_owned() } else { r.config.join(",") };
        println!("{:<20} {} [{config}]", r.name, r.description);
    }
}

/// The kernels the boot tests use: one per Debian cloud series.
const TEST_SERIES: &[&str] = &["6.12", "6.1"];

fn ci() -> Result<()> {
    let root = root();
    let say = &mut |m: &str| eprintln!("krepro: {m}");
    qemu::find_or_install(say)?;
    // The initrd tests read the archive back with GNU cpio too.
    install::find_or_install("cpio", "cpio", say)?;
    for series in TEST_SERIES {
        if kernel::newest_cached(&krepro_runner::cache::kernels_dir(), Some(series)).is_none() {
            fetch::fetch(Some(series), say)?;
        }
    }
    let cargo = cargo();
    Cmd::new(&cargo, ["fmt", "--all", "--check"], &root).status().context("cargo fmt --check (run `cargo fmt`)")?;
    Cmd::new(&cargo, ["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"], &root).status()?;
    Cmd::new(
        &cargo,
        [
            "clippy",
            "--quiet",
            "--package",
            "krepro-init",
            "--profile",
            "init",
            "--target",
            INIT_TARGET,
            "--",
            "-D",
            "warnings",
        ],
        &root,
    )
    .status()?;
    Cmd::new(&cargo, ["test", "--", "--test-threads", "2"], &root).status()?;
    Ok(())
}
