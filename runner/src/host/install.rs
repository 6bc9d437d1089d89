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
pub(crate) fn apt_update() -> Result<(), crate::host::spawn::CmdError> {
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

/// Makes dpkg (and so apt) know packages of `debian_arch` (arm64 on an
/// amd64 host): `dpkg --add-architecture` then `apt-get update`, as root.
/// Whether the lists were refreshed.
pub(crate) fn ensure_dpkg_arch(debian_arch: &str, say: &mut dyn FnMut(&str)) -> Result<bool, InstallError> {
    let known = |args: &[&str]| {
        Cmd::new("dpkg", args, Path::new("/"))
            .quiet()
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().any(|a| a == debian_arch))
    };
    if known(&["--print-architecture"]) || known(&["--print-foreign-architectures"]) {
        return Ok(false);
    }
    let hint = format!("dpkg --add-architecture {debian_arch} && apt-get update");
    if !rustix::process::geteuid().is_root() {
        return Err(InstallError::Missing {
            tool: format!("dpkg architecture {debian_arch}"),
            hint: format!("sudo sh -c '{hint}'"),
        });
    }
    say(&format!("adding {debian_arch} to dpkg's architectures and refreshing apt's lists"));
    let failed = |e: crate::host::spawn::CmdError| InstallError::Failed {
        package: format!("architecture {debian_arch}"),
        reason: e.to_string(),
    };
    Cmd::new("dpkg", ["--add-architecture", debian_arch], Path::new("/")).output().map_err(failed)?;
    apt_update().map_err(failed)?;
    Ok(true)
}

/// A static busybox for guests of `arch`: the host's `busybox` (installing
/// busybox-static) when it is the host's architecture; else Debian's
/// busybox-static package of that architecture, downloaded once (apt-get
/// download, no root needed once dpkg knows the architecture) into
/// `<cache>/tools/busybox-<arch>`.
pub fn busybox(
    arch: crate::image::arch::Arch,
    cache: &crate::host::cache::Cache,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, InstallError> {
    if crate::image::arch::Arch::host() == Some(arch) {
        return find_or_install("busybox", "busybox-static", say);
    }
    let dest = cache.root().join("tools").join(format!("busybox-{arch}"));
    if dest.is_file() {
        return Ok(dest);
    }
    let package = format!("busybox-static:{}", arch.debian());
    let failed = |reason: String| InstallError::Failed { package: package.clone(), reason };
    ensure_dpkg_arch(arch.debian(), say)?;
    say(&format!("fetching {package} for {arch} guests into {}", dest.display()));
    let tools = dest.parent().expect("a file in tools/");
    std::fs::create_dir_all(tools).map_err(|e| failed(format!("create {}: {e}", tools.display())))?;
    let work = tempfile::Builder::new()
        .prefix(".busybox-")
        .tempdir_in(tools)
        .map_err(|e| failed(format!("a temp dir in {}: {e}", tools.display())))?;
    let download = || Cmd::new("apt-get", ["download", "-q", package.as_str()], work.path()).output();
    if download().is_err() {
        apt_update().map_err(|e| failed(e.to_string()))?;
        download().map_err(|e| failed(e.to_string()))?;
    }
    let deb = std::fs::read_dir(work.path())
        .map_err(|e| failed(e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| failed("apt-get download left no .deb".into()))?;
    let root = work.path().join("root");
    Cmd::new("dpkg-deb", ["-x".as_ref(), deb.as_os_str(), root.as_os_str()], work.path())
        .output()
        .map_err(|e| failed(e.to_string()))?;
    // Renamed into place: a concurrent fetch may win, which is fine.
    let _ = std::fs::rename(root.join("bin/busybox"), &dest);
    if dest.is_file() {
        Ok(dest)
    } else {
        Err(failed("the package has no bin/busybox".into()))
    }
}
