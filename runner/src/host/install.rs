//! Tools krepro needs on the host: found on PATH, or installed with apt-get
//! when we are root on a Debian-family system (saying so); otherwise an
//! error that gives the exact command.

use std::path::{Path, PathBuf};

use crate::host::spawn::Cmd;

/// Why a tool is not there.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{tool} is not installed: install it with `{hint}`")]
    Missing { tool: String, hint: String },
    #[error("installing {package} failed: {reason}")]
    Failed { package: String, reason: String },
}

/// Refreshes apt's package lists (root only): a fresh machine has empty or
/// months-old ones.
pub fn apt_update() -> Result<(), crate::host::spawn::CmdError> {
    Cmd::new("apt-get", ["update", "-qq"], Path::new("/")).output().map(drop)
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
    let failed =
        |e: crate::host::spawn::CmdError| InstallError::Failed { package: package.to_owned(), reason: e.to_string() };
    let install = || Cmd::new("apt-get", ["install", "-y", "-qq", package], Path::new("/")).output();
    if install().is_err() {
        // A fresh machine has empty package lists.
        apt_update().map_err(failed)?;
        install().map_err(failed)?;
    }
    which::which(tool).map_err(|_| missing(hint))
}

/// Installs the Debian packages of `packages` that are not installed yet
/// (root only; otherwise an error naming the command).
pub fn apt_packages(packages: &[&str], say: &mut dyn FnMut(&str)) -> Result<(), InstallError> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            let out = Cmd::new("dpkg-query", ["-W", "-f=${Status}", p], Path::new("/")).quiet().output();
            !out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).ends_with(" installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let hint = format!("apt-get install -y {}", missing.join(" "));
    if !rustix::process::geteuid().is_root() || which::which("apt-get").is_err() {
        return Err(InstallError::Missing { tool: missing.join(", "), hint: format!("sudo {hint}") });
    }
    say(&format!("installing {}", missing.join(" ")));
    let failed =
        |e: crate::host::spawn::CmdError| InstallError::Failed { package: missing.join(" "), reason: e.to_string() };
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(&missing);
    if Cmd::new("apt-get", &args, Path::new("/")).output().is_err() {
        apt_update().map_err(failed)?;
        Cmd::new("apt-get", &args, Path::new("/")).output().map_err(failed)?;
    }
    Ok(())
}
