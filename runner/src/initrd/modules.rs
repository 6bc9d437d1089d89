//! Distro kernels keep drivers as modules (Debian 6.1 cloud: virtio_console
//! and virtio_pci are =m). `--modules` puts the named .ko files and their
//! dependencies into the initrd, in load order; PID 1 loads them with
//! finit_module before the repro.

use crate::image::decompress::{decompress, Format, OUTPUT_CAP};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::image::kernel::Kernel;
use crate::initrd::Member;

/// What `--modules` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modules {
    /// What the verdict channel needs on the machine (see
    /// `Machine::channel_modules`), where the kernel has it as a module.
    Auto,
    /// These modules (and their dependencies).
    List(Vec<String>),
    /// None, not even those the fast output channel needs.
    None,
}

impl std::str::FromStr for Modules {
    type Err = String;
    fn from_str(s: &str) -> Result<Modules, String> {
        match s {
            "auto" => return Ok(Modules::Auto),
            "none" => return Ok(Modules::None),
            _ => {}
        }
        let names: Vec<String> = s.split(',').map(str::trim).filter(|n| !n.is_empty()).map(normalize).collect();
        if names.is_empty() {
            return Err("expected auto, none or a comma-separated list of module names".into());
        }
        Ok(Modules::List(names))
    }
}

/// Where PID 1 finds the modules it loads, in file-name order.
pub(crate) const INITRD_DIR: &str = "krepro/modules";

/// Why modules could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("no modules directory for {0}: pass --modules-from DIR (an unpacked kernel package or `make modules_install` tree)")]
    NoDir(String),
    #[error("module {name} is not in {dir} (is it built in, or named differently?)")]
    NotFound { name: String, dir: PathBuf },
    #[error("{path}: {why}")]
    Read { path: PathBuf, why: String },
}

/// `virtio-console` and `virtio_console` are the same module.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The module directory of a kernel: `--modules-from DIR` (DIR itself, or
/// DIR/lib/modules/<release>), else beside a packaged kernel
/// (`<root>/boot/vmlinuz-<rel>` -> `<root>/lib/modules/<rel>`).
pub fn modules_dir(kernel: &Kernel, from: Option<&Path>) -> Option<PathBuf> {
    let release = kernel
        .release
        .clone()
        .or_else(|| kernel.path.file_name()?.to_str()?.strip_prefix("vmlinuz-").map(str::to_owned));
    let is_dir = |p: &Path| p.join("kernel").is_dir() || p.join("modules.dep").is_file();
    if let Some(from) = from {
        if is_dir(from) {
            return Some(from.to_owned());
        }
        let nested = from.join("lib/modules").join(release.as_deref()?);
        return is_dir(&nested).then_some(nested);
    }
    let root = kernel.path.parent()?.parent()?;
    let dir = root.join("lib/modules").join(release?);
    is_dir(&dir).then_some(dir)
}

/// Every module file under `dir`, by normalized name.
fn index(dir: &Path) -> BTreeMap<String, PathBuf> {
    fn walk(d: &Path, out: &mut BTreeMap<String, PathBuf>) {
        let Ok(members) = std::fs::read_dir(d) else { return };
        for e in members.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if let Some((stem, _)) = name.split_once(".ko") {
                    out.insert(normalize(stem), p);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

/// A module file's bytes, decompressed (.ko, .ko.xz, .ko.zst, .ko.gz).
fn read_module(path: &Path) -> Result<Vec<u8>, ModuleError> {
    let err = |why: String| ModuleError::Read { path: path.to_owned(), why };
    let raw = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let name = path.to_string_lossy();
    let format = match () {
        _ if name.ends_with(".ko") => return Ok(raw),
        _ if name.ends_with(".xz") => Format::Xz,
        _ if name.ends_with(".zst") => Format::Zstd,
        _ if name.ends_with(".gz") => Format::Gzip,
        _ => return Err(err("unknown module compression (known: .ko, .ko.xz, .ko.zst, .ko.gz)".into())),
    };
    let out = decompress(format, &raw, OUTPUT_CAP).map_err(|e| err(e.to_string()))?;
    Ok(out)
}

/// The dependencies of a module, from its `.modinfo` (`depends=a,b`).
fn depends(ko: &[u8], path: &Path) -> Result<Vec<String>, ModuleError> {
    let info =
        crate::image::elf::modinfo(ko).map_err(|e| ModuleError::Read { path: path.to_owned(), why: e.to_string() })?;
    Ok(info
        .iter()
        .filter_map(|kv| kv.strip_prefix("depends="))
        .flat_map(|d| d.split(','))
        .filter(|d| !d.is_empty())
        .map(normalize)
        .collect())
}

/// The modules to load for `want`, dependencies first, each once, as
/// (name, decompressed bytes). Names the kernel has built in are not in
/// `dir` and are skipped for `auto`; for a list, they are an error.
pub fn resolve(dir: &Path, want: &Modules, auto: &[&str]) -> Result<Vec<(String, Vec<u8>)>, ModuleError> {
    let idx = index(dir);
    let names: Vec<String> = match want {
        Modules::Auto => auto.iter().map(|n| n.to_string()).filter(|n| idx.contains_key(n)).collect(),
        Modules::List(names) => names.clone(),
        Modules::None => Vec::new(),
    };
    let mut order: Vec<(String, Vec<u8>)> = Vec::new();
    fn visit(
        name: &str,
        idx: &BTreeMap<String, PathBuf>,
        dir: &Path,
        order: &mut Vec<(String, Vec<u8>)>,
        stack: &mut Vec<String>,
    ) -> Result<(), ModuleError> {
        if order.iter().any(|(n, _)| n == name) || stack.iter().any(|n| n == name) {
            return Ok(());
        }
        let path = idx.get(name).ok_or_else(|| ModuleError::NotFound { name: name.to_owned(), dir: dir.to_owned() })?;
        let bytes = read_module(path)?;
        stack.push(name.to_owned());
        for dep in depends(&bytes, path)? {
            visit(&dep, idx, dir, order, stack)?;
        }
        stack.pop();
        order.push((name.to_owned(), bytes));
        Ok(())
    }
    for n in &names {
        visit(n, &idx, dir, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// Whether an initrd member's path is module `name`'s
/// (`krepro/modules/NN-name.ko`).
pub(crate) fn holds(path: &str, name: &str) -> bool {
    path.strip_prefix(INITRD_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|file| file.split_once('-'))
        .is_some_and(|(_, rest)| rest.strip_suffix(".ko") == Some(name))
}

/// The initrd members for modules in load order: `krepro/modules/NN-name.ko`.
pub(crate) fn members(mods: Vec<(String, Vec<u8>)>) -> Vec<Member> {
    let mut out = vec![Member::dir("krepro"), Member::dir(INITRD_DIR)];
    for (i, (name, bytes)) in mods.into_iter().enumerate() {
        out.push(Member::file(&format!("{INITRD_DIR}/{i:02}-{name}.ko"), 0o644, bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_a_choice_and_members_name_their_module() {
        assert_eq!("none".parse::<Modules>().unwrap(), Modules::None);
        assert_eq!("auto".parse::<Modules>().unwrap(), Modules::Auto);
        let m = members(vec![("virtio_mmio".into(), vec![1]), ("virtio_console".into(), vec![2])]);
        assert!(holds(&m[2].path, "virtio_mmio") && holds(&m[3].path, "virtio_console"));
        assert!(!holds(&m[2].path, "virtio") && !holds("krepro/other/00-virtio_mmio.ko", "virtio_mmio"));
    }
    use crate::image::elf::testing::{cached_kernel, cuts, extent, flips, header_ranges};

    /// The modules of a cached Debian cloud kernel: `.ko` files for 6.1,
    /// `.ko.xz` for 6.12.
    fn real_modules_dir(series: &str) -> PathBuf {
        let kernel = Kernel { path: cached_kernel(series), release: None, arch: crate::image::arch::Arch::X86_64 };
        modules_dir(&kernel, None).unwrap_or_else(|| panic!("no modules beside {}", kernel.path.display()))
    }

    #[test]
    fn parses_the_flag() {
        assert_eq!("auto".parse::<Modules>(), Ok(Modules::Auto));
        assert_eq!(
            "virtio-console, 9p".parse::<Modules>(),
            Ok(Modules::List(vec!["virtio_console".into(), "9p".into()]))
        );
        assert!(",".parse::<Modules>().is_err());
    }

    #[test]
    fn finds_the_dir_beside_a_packaged_kernel() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("boot")).unwrap();
        std::fs::create_dir_all(d.path().join("lib/modules/6.1.0-9-cloud-amd64/kernel")).unwrap();
        let k = Kernel {
            path: d.path().join("boot/vmlinuz-6.1.0-9-cloud-amd64"),
            release: None,
            arch: crate::image::arch::Arch::X86_64,
        };
        assert_eq!(modules_dir(&k, None), Some(d.path().join("lib/modules/6.1.0-9-cloud-amd64")));
        assert_eq!(modules_dir(&k, Some(d.path())), Some(d.path().join("lib/modules/6.1.0-9-cloud-amd64")));
        let other = Kernel {
            path: "/nonexistent/bzImage".into(),
            release: Some("6.1".into()),
            arch: crate::image::arch::Arch::X86_64,
        };
        assert_eq!(modules_dir(&other, None), None);
    }

    #[test]
    fn real_modules_come_after_their_dependencies() {
        for series in ["6.1", "6.12"] {
            let dir = real_modules_dir(series);
            let mods = resolve(&dir, &Modules::List(vec!["vsock_loopback".into()]), &[]).unwrap();
            let names: Vec<&str> = mods.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback"], "{series}");
        }
    }

    #[test]
    fn every_cut_of_a_real_module_is_refused_and_flipped_bits_never_panic() {
        let path = index(&real_modules_dir("6.12")).remove("vsock_loopback").expect("vsock_loopback.ko.xz");
        let mut ko = read_module(&path).unwrap();
        assert_eq!(depends(&ko, &path).unwrap(), ["vmw_vsock_virtio_transport_common", "vsock"]);
        for cut in cuts(extent(&ko)) {
            assert!(depends(&ko[..cut], &path).is_err(), "cut at {cut}");
        }
        let mut ranges = header_ranges(&ko);
        let elf = crate::image::elf::Elf::parse(&ko).unwrap();
        for name in [&b".shstrtab"[..], b".modinfo"] {
            let s = elf.section_by_name(name).unwrap().unwrap();
            ranges.push(usize::try_from(s.offset).unwrap()..usize::try_from(s.offset + s.size).unwrap());
        }
        flips(&mut ko, &ranges, 3000, |b| {
            let _ = depends(b, &path);
        });
        assert_eq!(depends(&ko, &path).unwrap().len(), 2, "restored");
    }
}
