//! Tools krepro needs on the host: found on PATH, or installed with apt-get
//! when we are root on a Debian-family system (saying so); otherwise an
//! error that gives the exact command.

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;

/// Why a tool is not there.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{tool} is not installed: install it with `{hint}`")]
    Missing { tool: String, hint: String },
    #[error("installing {package} failed: {reason}")]
    Failed { package: String, reason: String },
}

/// Finds `tool` on PATH, or installs `package` to get it.
pub fn find_or_install(tool: &str, package: &str, say: &mut dyn FnMut(&str)) -> Result<PathBuf, InstallError> {
    if let Ok(path) = which::which(tool) {
        return Ok(path);
    }
    let hint = format!("apt-get install -y {package}");
    let root = rustix::process::geteuid().is_root();
    let missing = |hint: String| InstallError::Missing { tool: tool.to_owned(), hint };
    if !root || which::which("apt-get").is_err() {
        return Err(missing(if root { hint } else { format!("sudo {hint}") }));
    }
    say(&format!("{tool} is not installed: installing {package} with apt-get"));
    let failed = |e: crate::cmd::CmdError| InstallError::Failed { package: package.to_owned(), reason: e.to_string() };
    let install = || Cmd::new("apt-get", ["install", "-y", "-qq", package], Path::new("/")).output();
    if install().is_err() {
        // A fresh machine has empty package lists.
        Cmd::new("apt-get", ["update", "-qq"], Path::new("/")).output().map_err(failed)?;
        install().map_err(failed)?;
    }
    which::which(tool).map_err(|_| missing(hint))
}
