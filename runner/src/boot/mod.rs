//! Booting: qemu's argument lists, one boot under a guard, reading the
//! console, deciding the outcome, and Ctrl-C.

pub(crate) mod classify;
pub(crate) mod disk;
pub(crate) mod interrupt;
pub(crate) mod log;
pub(crate) mod outcome;
pub mod parallel;
pub mod qemu;
pub mod run;
pub(crate) mod symbolize;
pub mod title;

use std::path::PathBuf;

use crate::host::spawn::CmdError;
use crate::image::kernel::KernelError;
use crate::initrd::extras::ExtrasError;

/// Why a boot could not happen at all (as opposed to what it found, an
/// [`outcome::Outcome`]). Every variant is one line for the user.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("{qemu} is not installed: install it with `{hint}`")]
    QemuMissing { qemu: String, hint: String },
    #[error("installing {package} failed: {reason}")]
    QemuInstall { package: String, reason: String },
    #[error("KVM is not usable: {0} (use --accel auto or --accel tcg)")]
    KvmUnavailable(String),
    #[error("KVM failed at run time: {0} (use --accel auto or --accel tcg)")]
    KvmFailed(String),
    #[error("qemu failed before the kernel printed anything ({status}): {stderr}")]
    QemuFailed { status: String, stderr: String },
    #[error("initrd {0} does not exist")]
    InitrdNotFound(PathBuf),
    #[error("{0}")]
    BadFlag(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Extras(#[from] ExtrasError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    NoSpace(String),
    #[error("the emulator faulted in {boots} boots in a row, the last: {why} (boot with --cpus 1, or under KVM)")]
    EmulatorFault { boots: u32, why: String },
}

impl BootError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> BootError {
        BootError::Io { context: context.into(), source }
    }
}
