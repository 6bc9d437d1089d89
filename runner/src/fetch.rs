//! `kernel fetch`: the newest distro kernel package into the cache, with
//! `apt-get download` (no root needed) and `dpkg-deb -x`.

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;
use crate::{cache, kernel};

/// The packages searched: Debian's cloud kernels (small, boot fine in qemu,
/// built with what krepro needs: X86_IOPL_IOPERM, PVH, virtio).
const PACKAGE_PATTERN: &str = "^linux-image-.*-cloud-amd64-unsigned$";

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("kernel fetch needs {0} (a Debian-family system); otherwise pass --kernel")]
    NoTool(&'static str),
    #[error("apt knows no package matching {PACKAGE_PATTERN}{0}: run `apt-get update` as root first")]
    NoPackage(String),
    #[error(transparent)]
    Cmd(#[from] crate::cmd::CmdError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0} did not contain boot/vmlinuz-*")]
    NoImage(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FetchError {
    let context = context.into();
    move |source| FetchError::Io { context, source }
}

/// Fetches the newest cloud kernel whose release starts with `series`
/// ("6.1", "6.12"; None: any) into the cache, unless it is there already,
/// and returns the path of its bzImage.
pub fn fetch(series: Option<&str>, say: &mut dyn FnMut(&str)) -> Result<PathBuf, FetchError> {
    for tool in ["apt-cache", "apt-get", "dpkg-deb"] {
        which::which(tool).map_err(|_| FetchError::NoTool(tool))?;
    }
    let mut packages = search()?;
    if packages.is_empty() && rustix::process::geteuid().is_root() {
        say("apt's package lists are empty: running apt-get update");
        Cmd::new("apt-get", ["update", "-qq"], Path::new("/")).output()?;
        packages = search()?;
    }
    let (package, release) = newest_package(&packages, series)
        .ok_or_else(|| FetchError::NoPackage(series.map(|s| format!(" for {s}")).unwrap_or_default()))?;

    let dest = cache::kernels_dir().join(&package);
    let image = dest.join(format!("boot/vmlinuz-{release}"));
    if image.is_file() {
        say(&format!("{package} is already in the cache"));
        return Ok(image);
    }
    say(&format!("fetching {package} into {}", dest.display()));
    let kernels = cache::kernels_dir();
    std::fs::create_dir_all(&kernels).map_err(io(format!("create {}", kernels.display())))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&kernels)
        .map_err(io(format!("create a temp dir in {}", kernels.display())))?;
    Cmd::new("apt-get", ["download", "-q", &package], work.path()).output()?;
    let deb = std::fs::read_dir(work.path())
        .map_err(io("list the download"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| FetchError::NoImage(format!("apt-get download {package}")))?;
    let unpacked = work.path().join("root");
    Cmd::new("dpkg-deb", ["-x".as_ref(), deb.as_os_str(), unpacked.as_os_str()], work.path()).output()?;
    if !unpacked.join(format!("boot/vmlinuz-{release}")).is_file() {
        return Err(FetchError::NoImage(package));
    }
    // Move into place atomically: a concurrent fetch of the same package
    // may have won the race, which is fine.
    if let Err(e) = std::fs::rename(&unpacked, &dest) {
        if !image.is_file() {
            return Err(io(format!("move the kernel into {}", dest.display()))(e));
        }
    }
    Ok(image)
}

fn search() -> Result<Vec<String>, FetchError> {
    let out = Cmd::new("apt-cache", ["search", "--names-only", PACKAGE_PATTERN], Path::new("/")).quiet().output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The package with the highest release among `names` (apt-cache output),
/// optionally of one series: (package, release).
fn newest_package(names: &[String], series: Option<&str>) -> Option<(String, String)> {
    names
        .iter()
        .filter_map(|n| {
            let release = n.strip_prefix("linux-image-")?.strip_suffix("-unsigned")?;
            // Skip meta packages (linux-image-cloud-amd64-unsigned): no version.
            if !release.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            series.is_none_or(|s| kernel::release_matches(release, s)).then(|| (n.clone(), release.to_owned()))
        })
        .max_by(|a, b| kernel::version_cmp(&a.1, &b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_package_of_a_series() {
        let names: Vec<String> = [
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.12.9+deb12-cloud-amd64-unsigned",
            "linux-image-6.12.117+deb12-cloud-amd64-unsigned",
            "linux-image-cloud-amd64-unsigned",
        ]
        .map(String::from)
        .to_vec();
        let (pkg, rel) = newest_package(&names, None).unwrap();
        assert_eq!(pkg, "linux-image-6.12.117+deb12-cloud-amd64-unsigned");
        assert_eq!(rel, "6.12.117+deb12-cloud-amd64");
        assert_eq!(newest_package(&names, Some("6.1")).unwrap().1, "6.1.0-56-cloud-amd64");
        assert_eq!(newest_package(&names, Some("5.10")), None);
    }
}
