//! `kernel fetch`: the newest distro kernel package into the cache, with
//! `apt-get download` (no root needed) and `dpkg-deb -x`; the packages of
//! a series, in order, for a bisect over them; and finding the kernel to
//! boot when the user names none.

use std::path::{Path, PathBuf};

use crate::host::cache::Cache;
use crate::host::install::{apt_update, ensure_dpkg_arch};
use crate::host::spawn::{Cmd, CmdError};
use crate::image::arch::Arch;

use crate::image::version::{release_matches, version_cmp};

/// The packages searched: Debian's cloud kernels for `arch` (small, boot
/// fine in qemu, built with what krepro needs: X86_IOPL_IOPERM, PVH and
/// virtio on amd64; PL011, PCI_HOST_GENERIC and virtio-pci on arm64).
fn package_pattern(arch: Arch) -> String {
    format!("^linux-image-.*-cloud-{}-unsigned$", arch.debian())
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
    #[error("kernel fetch needs {0} (a Debian-family system); otherwise pass --kernel")]
    NoTool(&'static str),
    #[error("apt knows no package matching {pattern}{series} (as root, krepro runs `apt-get update` itself)")]
    NoPackage { pattern: String, series: String },
    #[error(transparent)]
    Install(#[from] crate::host::install::InstallError),
    #[error(transparent)]
    Cmd(#[from] crate::host::spawn::CmdError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("{0} did not contain boot/vmlinuz-*")]
    NoImage(String),
    #[error("{0}")]
    NoSpace(String),
    #[error("{0}: not a series (like 6.1 or 6.12)")]
    NotASeries(String),
    #[error("apt-cache show {0} gave no Version")]
    NoVersion(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FetchError {
    let context = context.into();
    move |source| FetchError::Io { context, source }
}

/// Package lists older than this are refreshed (as root) before a kernel
/// is chosen: a machine whose lists are months old knows neither the newest
/// kernels nor whole series.
const LISTS_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// Where apt keeps its package lists.
const APT_LISTS: &str = "/var/lib/apt/lists";

/// A cloud kernel package the archive offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// linux-image-6.1.0-56-cloud-amd64-unsigned
    pub name: String,
    /// Its kernel's release (`uname -r`): 6.1.0-56-cloud-amd64
    pub release: String,
    /// The package's version, from `apt-cache show`: 6.1.192-2
    pub version: String,
}

impl Package {
    /// The upstream version the package is built from: 6.1.192 for
    /// 6.1.0-56 (Version: 6.1.192-2), 6.12.111 for 6.12.111-1~deb12u1.
    pub fn upstream(&self) -> Option<String> {
        upstream_of(&self.version)
    }
}

/// The upstream part of a Debian package version: no epoch, no Debian
/// revision, only the leading digits and dots ("1:6.12.111-1~deb12u1" ->
/// "6.12.111"); None when it does not start with a number.
pub(crate) fn upstream_of(version: &str) -> Option<String> {
    let no_epoch = version.split_once(':').map_or(version, |(_, v)| v);
    let end = no_epoch.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(no_epoch.len());
    let upstream = no_epoch[..end].trim_end_matches('.');
    upstream.starts_with(|c: char| c.is_ascii_digit()).then(|| upstream.to_owned())
}

/// Fetches the newest `arch` cloud kernel whose release starts with
/// `series` ("6.1", "6.12"; None: any) the archive offers into the cache,
/// unless it is there already, and returns the path of its image. As root,
/// apt's package lists are refreshed first when they are older than a day,
/// and when they know no matching kernel; a foreign architecture (arm64 on
/// an amd64 host) is added to dpkg first.
pub fn fetch(
    cache: &Cache,
    series: Option<&str>,
    arch: Arch,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, FetchError> {
    let what = series.map_or_else(|| format!("{arch} cloud kernel"), |s| format!("{s} {arch} cloud kernel"));
    let names = search_fresh(arch, &|names| newest_package(names, series).is_some(), &what, say)?;
    let (package, release) = newest_package(&names, series).ok_or_else(|| FetchError::NoPackage {
        pattern: package_pattern(arch),
        series: series.map(|s| format!(" for {s}")).unwrap_or_default(),
    })?;
    fetch_package(cache, &package, &release, say)
}

/// Every `arch` cloud kernel package of these series ("6.1", "6.12") the
/// archive offers, oldest first, with its version; lists refreshed as for
/// [`fetch`]. A series apt knows no kernel of is an error.
pub fn list(series: &[String], arch: Arch, say: &mut dyn FnMut(&str)) -> Result<Vec<Package>, FetchError> {
    // A typo is not worth an apt-get update.
    let is_series = |s: &str| s.split('.').count() == 2 && s.split('.').all(|n| n.parse::<u32>().is_ok());
    if let Some(bad) = series.iter().find(|s| !is_series(s)) {
        return Err(FetchError::NotASeries(bad.clone()));
    }
    let has_all = |names: &[String]| series.iter().all(|s| newest_package(names, Some(s)).is_some());
    let names = search_fresh(arch, &has_all, &format!("{} {arch} cloud kernel", series.join(", ")), say)?;
    if let Some(missing) = series.iter().find(|s| newest_package(&names, Some(s.as_str())).is_none()) {
        return Err(FetchError::NoPackage { pattern: package_pattern(arch), series: format!(" for {missing}") });
    }
    let found = of_series(&names, series);
    let mut args = vec!["show", "--no-all-versions"];
    args.extend(found.iter().map(|(name, _)| name.as_str()));
    let out = Cmd::new("apt-cache", args, Path::new("/")).quiet().output()?;
    let versions = versions_in(&String::from_utf8_lossy(&out.stdout));
    found
        .into_iter()
        .map(|(name, release)| {
            let version = versions
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .ok_or_else(|| FetchError::NoVersion(name.clone()))?;
            Ok(Package { name, release, version })
        })
        .collect()
}

/// The (package, release) pairs of these series among `names`, oldest first.
fn of_series(names: &[String], series: &[String]) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| release_of(n))
        .filter(|(_, release)| series.iter().any(|s| release_matches(release, s)))
        .collect();
    found.sort_by(|a, b| version_cmp(&a.1, &b.1));
    found
}

/// (package, version) pairs from `apt-cache show` records.
fn versions_in(show: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut package = None;
    for line in show.lines() {
        if let Some(p) = line.strip_prefix("Package: ") {
            package = Some(p.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version: ") {
            if let Some(p) = package.take() {
                out.push((p, v.trim().to_owned()));
            }
        }
    }
    out
}

/// apt's `arch` kernel packages (`apt-cache search`), refreshed first as
/// root when the lists are older than a day, or when `enough` says they
/// lack `what`.
fn search_fresh(
    arch: Arch,
    enough: &dyn Fn(&[String]) -> bool,
    what: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<String>, FetchError> {
    for tool in ["apt-cache", "apt-get", "dpkg-deb"] {
        which::which(tool).map_err(|_| FetchError::NoTool(tool))?;
    }
    let root = rustix::process::geteuid().is_root();
    // Adding an architecture refreshes the lists.
    let mut updated = ensure_dpkg_arch(arch.debian(), say)?;
    if root {
        if let Some(age) = lists_age(Path::new(APT_LISTS)).filter(|a| *a > LISTS_MAX_AGE) {
            let days = age.as_secs() / 86400;
            let age = if days > 10_000 { "missing".to_owned() } else { format!("{days} days old") };
            say(&format!("apt's package lists are {age}: running apt-get update"));
            match apt_update() {
                Ok(()) => updated = true,
                Err(e) => say(&format!("{e}; going on with the lists as they are")),
            }
        }
    }
    let mut names = search(arch)?;
    if !enough(&names) && root && !updated {
        say(&format!("apt knows no {what}: running apt-get update"));
        apt_update()?;
        names = search(arch)?;
    }
    Ok(names)
}

/// Downloads one package (`apt-get download`, no root needed) and unpacks
/// it (`dpkg-deb -x`) into the cache, unless it is there already; returns
/// the path of its bzImage, `boot/vmlinuz-<release>`.
pub(crate) fn fetch_package(
    cache: &Cache,
    package: &str,
    release: &str,
    say: &mut dyn FnMut(&str),
) -> Result<PathBuf, FetchError> {
    let kernels = cache.kernels();
    let dest = kernels.join(package);
    let image = dest.join(format!("boot/vmlinuz-{release}"));
    // One fetch of a package at a time. A second always waits, saying for
    // whom, as cargo waits on its package cache: a fetch takes seconds and
    // its result is the waiter's too (two bisects over the same series).
    let _lock =
        super::lock::acquire(&kernels.join(format!(".{package}.lock")), &format!("the fetch of {package}"), true, say)?;
    if image.is_file() {
        say(&format!("{package} is already in the cache"));
        return Ok(image);
    }
    for tool in ["apt-get", "dpkg-deb"] {
        which::which(tool).map_err(|_| FetchError::NoTool(tool))?;
    }
    say(&format!("fetching {package} into {}", dest.display()));
    std::fs::create_dir_all(&kernels).map_err(io(format!("create {}", kernels.display())))?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&kernels)
        .map_err(io(format!("create a temp dir in {}", kernels.display())))?;
    // A full disk is said as such, with what the package needs.
    let full = |e: CmdError| match &e {
        CmdError::Failed { stderr, .. } if super::usage::says_disk_full(stderr) => {
            FetchError::NoSpace(super::usage::disk_full(&kernels, package_size(package)))
        }
        _ => FetchError::from(e),
    };
    Cmd::new("apt-get", ["download", "-q", package], work.path()).output().map_err(full)?;
    let deb = std::fs::read_dir(work.path())
        .map_err(io("list the download"))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| FetchError::NoImage(format!("apt-get download {package}")))?;
    let unpacked = work.path().join("root");
    Cmd::new("dpkg-deb", ["-x".as_ref(), deb.as_os_str(), unpacked.as_os_str()], work.path()).output().map_err(full)?;
    if !unpacked.join(format!("boot/vmlinuz-{release}")).is_file() {
        return Err(FetchError::NoImage(package.to_owned()));
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

/// What fetching `package` takes on disk: the .deb and what it unpacks
/// to (apt-cache's Size and Installed-Size); None if apt does not say.
fn package_size(package: &str) -> Option<u64> {
    let out = Cmd::new("apt-cache", ["show", "--no-all-versions", package], Path::new("/")).quiet().output().ok()?;
    let show = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<u64> {
        show.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok())
    };
    Some(field("Size:")? + field("Installed-Size:")? * 1024)
}

/// How long ago apt last updated its lists in `dir`: the newest mtime of
/// what an update writes there (`*_Packages*`, often compressed, and
/// `*Release` files; an unchanged list keeps its old mtime, but the release
/// files and `partial/` are written every time). `Duration::MAX` when there
/// are no lists (never updated), None when `dir` cannot be read.
fn lists_age(dir: &Path) -> Option<std::time::Duration> {
    let newest = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains("_Packages") || name.ends_with("Release") || name == "partial"
        })
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    match newest {
        Some(t) => Some(t.elapsed().unwrap_or_default()),
        None => Some(std::time::Duration::MAX),
    }
}

fn search(arch: Arch) -> Result<Vec<String>, FetchError> {
    let pattern = package_pattern(arch);
    let out = Cmd::new("apt-cache", ["search", "--names-only", pattern.as_str()], Path::new("/")).quiet().output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// (package, release) of a versioned kernel package name (not a meta
/// package like linux-image-cloud-amd64-unsigned).
fn release_of(name: &str) -> Option<(String, String)> {
    let release = name.strip_prefix("linux-image-")?.strip_suffix("-unsigned")?;
    release.starts_with(|c: char| c.is_ascii_digit()).then(|| (name.to_owned(), release.to_owned()))
}

/// The package with the highest release among `names` (apt-cache output),
/// optionally of one series: (package, release).
fn newest_package(names: &[String], series: Option<&str>) -> Option<(String, String)> {
    names
        .iter()
        .filter_map(|n| release_of(n))
        .filter(|(_, release)| series.is_none_or(|s| release_matches(release, s)))
        .max_by(|a, b| version_cmp(&a.1, &b.1))
}

/// The newest `arch` kernel under the kernel cache whose release starts
/// with `prefix` (all when None), by version order of the release. Debian
/// names the architecture at the end of the release (6.1.0-56-cloud-amd64).
pub fn newest_cached(dir: &Path, arch: Arch, prefix: Option<&str>) -> Option<PathBuf> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for pkg in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(boot) = std::fs::read_dir(pkg.path().join("boot")) else { continue };
        for f in boot.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if let Some(release) = name.strip_prefix("vmlinuz-") {
                if release.ends_with(&format!("-{}", arch.debian()))
                    && prefix.is_none_or(|p| release_matches(release, p))
                {
                    found.push((release.to_owned(), f.path()));
                }
            }
        }
    }
    found.into_iter().max_by(|a, b| version_cmp(&a.0, &b.0)).map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_another_krepro_holds_is_waited_for_not_refused() {
        // Two bisects over the same series (or two tests sharing one
        // kernels dir) fetch the same package: the second waits and
        // takes the first one's result.
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path());
        let package = "linux-image-6.12.9+deb12-cloud-amd64-unsigned";
        let lock_path = cache.kernels().join(format!(".{package}.lock"));
        let held = super::super::lock::acquire(&lock_path, "the fetch", false, &mut |_| {}).unwrap();
        // Another process's owner line, as a second krepro would find it.
        std::fs::write(&lock_path, "1 1700000000 krepro bisect --debian 6.12").unwrap();
        let image = cache.kernels().join(package).join("boot/vmlinuz-6.12.9+deb12-cloud-amd64");
        let put = image.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            std::fs::create_dir_all(put.parent().unwrap()).unwrap();
            std::fs::write(&put, "bzImage").unwrap();
            drop(held);
        });
        let mut said = Vec::new();
        let got = fetch_package(&cache, package, "6.12.9+deb12-cloud-amd64", &mut |m| said.push(m.to_owned())).unwrap();
        t.join().unwrap();
        assert_eq!(got, image);
        assert!(said[0].starts_with("waiting for krepro pid 1 "), "{said:?}");
        assert!(said[0].ends_with(&format!("to finish with the fetch of {package}")), "{said:?}");
        assert_eq!(said[1], format!("{package} is already in the cache"));
    }

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

    #[test]
    fn series_lists_are_in_release_order_with_upstream_versions() {
        let names: Vec<String> = [
            "linux-image-6.12.111+deb12-cloud-amd64-unsigned",
            "linux-image-6.1.0-56-cloud-amd64-unsigned",
            "linux-image-6.1.0-9-cloud-amd64-unsigned",
            "linux-image-6.12.107+deb12-cloud-amd64-unsigned",
            "linux-image-cloud-amd64-unsigned",
        ]
        .map(String::from)
        .to_vec();
        let both: Vec<String> = of_series(&names, &["6.12".into(), "6.1".into()]).into_iter().map(|p| p.1).collect();
        assert_eq!(
            both,
            ["6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.12.107+deb12-cloud-amd64", "6.12.111+deb12-cloud-amd64"]
        );
        assert_eq!(of_series(&names, &["6.12".into()]).len(), 2);
        assert_eq!(upstream_of("6.1.192-2").as_deref(), Some("6.1.192"));
        assert_eq!(upstream_of("6.12.111-1~deb12u1").as_deref(), Some("6.12.111"));
        assert_eq!(upstream_of("1:6.12~rc3-1~exp1").as_deref(), Some("6.12"));
        assert_eq!(upstream_of("abc"), None);
        let show =
            "Package: a\nVersion: 6.1.192-2\nSize: 1\n\nPackage: b\nSource: linux\nVersion: 6.12.111-1~deb12u1\n";
        assert_eq!(versions_in(show), [("a".into(), "6.1.192-2".into()), ("b".into(), "6.12.111-1~deb12u1".into())]);
    }

    #[test]
    fn list_age_comes_from_the_newest_packages_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(lists_age(d.path()), Some(std::time::Duration::MAX), "no lists: never updated");
        std::fs::write(d.path().join("lock"), "").unwrap();
        assert_eq!(lists_age(d.path()), Some(std::time::Duration::MAX), "a lock is no list");
        let list = d.path().join("deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4");
        std::fs::write(&list, "").unwrap();
        assert!(lists_age(d.path()).unwrap() < std::time::Duration::from_secs(60));
        let three_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86400);
        std::fs::File::options().write(true).open(&list).unwrap().set_modified(three_days_ago).unwrap();
        let age = lists_age(d.path()).unwrap();
        assert!(age > LISTS_MAX_AGE && age < std::time::Duration::from_secs(4 * 86400), "{age:?}");
        assert_eq!(lists_age(Path::new("/nonexistent")), None);
    }

    #[test]
    fn newest_cached_picks_by_version_and_prefix() {
        let dir = tempfile::tempdir().unwrap();
        for rel in
            ["6.1.0-9-cloud-amd64", "6.1.0-56-cloud-amd64", "6.12.117+deb12-cloud-amd64", "6.12.118+deb12-cloud-arm64"]
        {
            let boot = dir.path().join(format!("pkg-{rel}/boot"));
            std::fs::create_dir_all(&boot).unwrap();
            std::fs::write(boot.join(format!("vmlinuz-{rel}")), b"x").unwrap();
            std::fs::write(boot.join(format!("config-{rel}")), b"x").unwrap();
        }
        let newest = newest_cached(dir.path(), Arch::X86_64, None).unwrap();
        assert!(newest.ends_with("vmlinuz-6.12.117+deb12-cloud-amd64"), "{newest:?}");
        let newest_61 = newest_cached(dir.path(), Arch::X86_64, Some("6.1")).unwrap();
        assert!(newest_61.ends_with("vmlinuz-6.1.0-56-cloud-amd64"), "{newest_61:?}");
        let arm = newest_cached(dir.path(), Arch::Aarch64, Some("6.12")).unwrap();
        assert!(arm.ends_with("vmlinuz-6.12.118+deb12-cloud-arm64"), "{arm:?}");
        assert_eq!(newest_cached(dir.path(), Arch::Aarch64, Some("6.1")), None);
        assert_eq!(newest_cached(dir.path(), Arch::X86_64, Some("5.10")), None);
        assert_eq!(newest_cached(&dir.path().join("missing"), Arch::X86_64, None), None);
    }
}
