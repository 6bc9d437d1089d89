//! krepro's host side: boots a kernel with krepro's initrd in qemu and
//! reads back a trustworthy verdict.
//!
//! The `krepro` binary, `cargo xtask` and the tests all go through the same
//! calls: [`host::fetch::resolve`] and [`boot::qemu::find_or_install`] to get
//! ready, [`boot::run::run`] to boot once, [`cli::execute`] for the whole command.

pub mod bisect;
pub mod boot;
pub mod build;
pub mod cli;
pub mod host;
pub mod image;
pub mod initrd;

use std::path::PathBuf;

pub use boot::outcome::{ExitCode, Outcome};
use initrd::modules;

/// Why a boot could not happen at all (as opposed to what it found, an
/// [`Outcome`]). Every variant is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("kernel {0} does not exist")]
    KernelNotFound(PathBuf),
    #[error("{path} is not a kernel image (an x86 bzImage or an arm64 Image): {why}")]
    NotABzImage { path: PathBuf, why: String },
    #[error("initrd {0} does not exist (build one with `cargo xtask initrd`)")]
    InitrdNotFound(PathBuf),
    #[error("unknown repro '{name}'; known repros: {known}")]
    UnknownRepro { name: String, known: String },
    #[error("{qemu} is not installed: install it with `{hint}`")]
    QemuMissing { qemu: String, hint: String },
    #[error("installing {package} failed: {reason}")]
    QemuInstall { package: String, reason: String },
    #[error("no kernel to boot: {0}; pass --kernel FILE or run `cargo xtask kernel fetch`")]
    NoKernel(String),
    #[error("KVM is not usable: {0} (use --accel auto or --accel tcg)")]
    KvmUnavailable(String),
    #[error("KVM failed at run time: {0} (use --accel auto or --accel tcg)")]
    KvmFailed(String),
    #[error("qemu failed before the kernel printed anything ({status}): {stderr}")]
    QemuFailed { status: String, stderr: String },
    #[error("--exec {path}: {why}")]
    BadExec { path: PathBuf, why: String },
    #[error("{0}")]
    BadFlag(String),
    #[error(transparent)]
    Modules(#[from] modules::ModuleError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Cmd(#[from] host::spawn::CmdError),
    #[error("interrupted")]
    Interrupted,
}

impl RunError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> RunError {
        RunError::Io { context: context.into(), source }
    }

    /// Interrupted runs exit 130 like any Ctrl-C'd command; everything else
    /// is "could not run", 128, which makes `git bisect run` stop.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Interrupted => ExitCode::Interrupted,
            _ => ExitCode::Error,
        }
    }

    /// The error for a repro name the registry does not have.
    pub fn unknown_repro(name: &str) -> RunError {
        RunError::UnknownRepro { name: name.to_owned(), known: repros::names().collect::<Vec<_>>().join(", ") }
    }
}
