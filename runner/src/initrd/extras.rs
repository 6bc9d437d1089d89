//! What `--exec`, `--file` and `--modules` add to the initrd: checked and
//! read once per command ([`Extras::new`]), then packed per kernel
//! ([`Extras::pack_for`]), since the modules come from the kernel's own
//! package.

use std::path::{Path, PathBuf};

use repros::protocol;

use super::modules::{self, ModuleError, Modules};
use super::Member;
use crate::host::spawn::Cmd;
use crate::host::usage::human;
use crate::image::arch::Arch;
use crate::image::elf::{self, ElfError};
use crate::image::kernel::Kernel;

/// Why an initrd addition cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ExtrasError {
    #[error("--exec {}: {why}", .path.display())]
    BadExec { path: PathBuf, why: String },
    #[error("{0}")]
    BadFlag(String),
    #[error(transparent)]
    Modules(#[from] ModuleError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(
        "{what} would put {} in the initrd, more than its {} cap (the guest unpacks it into its RAM); the biggest: {}",
        human(*.total),
        human(*.cap),
        .biggest.iter().map(|(p, n)| format!("/{p} ({})", human(*n))).collect::<Vec<_>>().join(", ")
    )]
    TooBig { what: &'static str, total: u64, cap: u64, biggest: Vec<(String, u64)> },
}

/// The most the additions (--exec, --file trees, modules) may bring to
/// the initrd, uncompressed: the guest unpacks them into its RAM, and a
/// --file tree of a whole disk image is a mistake better told before it
/// is read.
pub(crate) const INITRD_CAP: u64 = 1 << 30;

/// Fails when `sizes` (path, bytes) add up to more than `cap`, naming the
/// three biggest.
fn check_total(what: &'static str, sizes: impl Iterator<Item = (String, u64)>, cap: u64) -> Result<(), ExtrasError> {
    let mut all: Vec<(String, u64)> = sizes.collect();
    let total = all.iter().map(|(_, n)| n).sum::<u64>();
    if total <= cap {
        return Ok(());
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(3);
    Err(ExtrasError::TooBig { what, total, cap, biggest: all })
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> ExtrasError {
    move |source| ExtrasError::Io { context, source }
}

/// What a dynamically linked --exec FILE needs instead.
const STATIC_HINT: &str = "link it statically: `cc -static ...`, or for Rust \
     `RUSTFLAGS='-C target-feature=+crt-static' cargo build --target x86_64-unknown-linux-gnu`";

/// A program to run instead of a compiled-in repro.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExecSpec {
    pub path: PathBuf,
    pub args: Vec<String>,
    /// `K=V` words.
    pub env: Vec<String>,
    /// For a `#!` script: the static busybox whose `sh` runs it.
    pub busybox: Option<PathBuf>,
}

/// The guest's PATH for scripts, where busybox's applets are.
const SCRIPT_PATH: &str = "PATH=/bin:/sbin:/usr/bin:/usr/sbin";

/// Whether a file is a `#!` script (and so needs a shell in the guest).
pub(crate) fn is_script(path: &Path) -> bool {
    let mut head = [0u8; 2];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && head == *b"#!"
}

/// Kernel modules to load before the repro.
#[derive(Clone, Debug)]
pub(crate) struct ModuleSpec {
    pub want: Modules,
    /// Where they are [default: beside a packaged kernel].
    pub from: Option<PathBuf>,
}

/// The initrd additions of one command.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// --exec and --file members, the same for every kernel.
    fixed: Vec<Member>,
    modules: Option<ModuleSpec>,
    /// The --exec program's architecture, from its ELF header (or, for a
    /// script, busybox's): it must be the guest's.
    /// Whether it is a script is kept for the message.
    exec_arch: Option<(PathBuf, Option<Arch>, bool)>,
    /// What the user should know (a bash script runs under busybox sh).
    pub notes: Vec<String>,
}

impl Extras {
    /// Reads and checks everything that does not depend on the kernel. A
    /// --exec FILE that is not a complete static executable is refused
    /// here, before qemu starts.
    pub(crate) fn new(
        exec: Option<&ExecSpec>,
        files: &[String],
        modules: Option<ModuleSpec>,
    ) -> Result<Extras, ExtrasError> {
        let mut fixed = Vec::new();
        let mut notes = Vec::new();
        let mut exec_arch = None;
        if let Some(spec) = exec {
            let (members, arch) = exec_members(spec, &mut notes)?;
            let script = members.iter().any(|e| e.path == "bin/busybox");
            fixed.extend(members);
            exec_arch = Some((spec.path.clone(), arch, script));
        }
        // Sizes first, from the file system: nothing is read past the cap.
        let planned: Vec<(String, Vec<Planned>)> =
            files.iter().map(|spec| Ok((spec.clone(), file_plan(spec)?))).collect::<Result<_, ExtrasError>>()?;
        let sizes = planned.iter().flat_map(|(_, plan)| plan).filter_map(|p| match p {
            Planned::File { dest, size, .. } => Some((dest.clone(), *size)),
            Planned::Dir(_) => None,
        });
        check_total("--file", sizes, INITRD_CAP)?;
        for (_, plan) in planned {
            fixed.extend(read_plan(plan)?);
        }
        Ok(Extras { fixed, modules, exec_arch, notes })
    }

    /// Whether the user named the modules (`--modules`), so that krepro
    /// need not say which it adds.
    pub(crate) fn names_modules(&self) -> bool {
        self.modules.is_some()
    }

    /// The members for `kernel` booted as a guest of `guest`: the fixed
    /// ones and the modules from the kernel's package, with their
    /// dependencies. `channel` are the modules the verdict and output
    /// channel need on the machine (what `--modules auto` loads); `needs`
    /// are modules the devices need (virtio_blk for disks), loaded where
    /// the kernel has them as modules, like `--modules auto`'s.
    pub(crate) fn members_for(
        &self,
        kernel: &Kernel,
        guest: Arch,
        channel: &[&str],
        needs: &[&str],
    ) -> Result<Vec<Member>, ExtrasError> {
        if let Some((path, arch, script)) = &self.exec_arch {
            if *arch != Some(guest) {
                let why = match (arch, script) {
                    (_, true) => format!(
                        "a script runs under the host's busybox, so only in guests of the host's architecture, not {guest}"
                    ),
                    (Some(a), false) => format!("an {a} executable, but the guest is {guest}"),
                    (None, false) => format!("not an executable for the {guest} guest"),
                };
                return Err(ExtrasError::BadExec { path: path.clone(), why });
            }
        }
        let mut out = self.fixed.clone();
        let from = self.modules.as_ref().and_then(|s| s.from.as_deref());
        // The channel's modules (the verdict and the fast output port),
        // where the kernel has them as modules: with --modules auto, and
        // by default for a program (--exec, a C repro), whose output can
        // be bulk: the emulated UART moves 0.5 MB/s, the port 50. Not by
        // default for a compiled-in repro: loading them costs a boot about
        // 0.5 s (Debian 6.12 on microvm). `--modules none` leaves out all.
        let mut auto: Vec<&str> = needs.to_vec();
        match &self.modules {
            None if self.exec_arch.is_some() => auto.extend(channel),
            None => {}
            Some(ModuleSpec { want: Modules::Auto, .. }) => auto.extend(channel),
            Some(ModuleSpec { want: Modules::None, .. }) => auto.clear(),
            Some(ModuleSpec { want: Modules::List(_), .. }) => {}
        }
        let explicit = match &self.modules {
            Some(ModuleSpec { want: list @ Modules::List(_), .. }) => Some(list),
            _ => None,
        };
        if explicit.is_some() || !auto.is_empty() {
            let no_dir =
                || ModuleError::NoDir(kernel.release.clone().unwrap_or_else(|| kernel.path.display().to_string()));
            match modules::modules_dir(kernel, from) {
                Some(dir) => {
                    let mut mods = match explicit {
                        Some(list) => modules::resolve(&dir, list, &[])?,
                        None => Vec::new(),
                    };
                    for m in modules::resolve(&dir, &Modules::Auto, &auto)? {
                        if !mods.iter().any(|(name, _)| *name == m.0) {
                            mods.push(m);
                        }
                    }
                    out.extend(modules::members(mods));
                }
                // A kernel without a module tree has its drivers built in
                // (krepro's builder) or cannot be helped: only an explicit
                // --modules is an error.
                None if self.modules.as_ref().is_some_and(|m| m.want != Modules::None) => return Err(no_dir().into()),
                None => {}
            }
        }
        let sizes = out.iter().filter_map(|m| match &m.node {
            super::Node::File(data) => Some((m.path.clone(), data.len() as u64)),
            _ => None,
        });
        check_total("--exec, --file and the modules", sizes, INITRD_CAP)?;
        // Each piece brings its parent directories; two --file DESTs may share one.
        Ok(super::dedup_dirs(out))
    }

    /// [`Extras::members_for`] as a gzip'd cpio to append to the initrd
    /// (the kernel unpacks concatenated archives in order); empty for none.
    pub(crate) fn pack_for(
        &self,
        kernel: &Kernel,
        guest: Arch,
        channel: &[&str],
        needs: &[&str],
    ) -> Result<Vec<u8>, ExtrasError> {
        let members = self.members_for(kernel, guest, channel, needs)?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        super::pack(&members).map_err(io("pack the extra initrd".into()))
    }
}

/// The architecture of an ELF file's bytes, if it is one krepro boots.
fn elf_arch(bytes: &[u8]) -> Option<Arch> {
    elf::Elf::parse(bytes).ok().and_then(|e| Arch::from_elf_machine(e.machine()))
}

fn exec_members(spec: &ExecSpec, notes: &mut Vec<String>) -> Result<(Vec<Member>, Option<Arch>), ExtrasError> {
    let bad = |why: String| ExtrasError::BadExec { path: spec.path.clone(), why };
    let bytes = std::fs::read(&spec.path).map_err(|e| bad(e.to_string()))?;
    let mut shell = Vec::new();
    let mut env = spec.env.clone();
    let arch;
    if bytes.starts_with(b"#!") {
        shell = script_members(&bytes, spec.busybox.as_deref(), notes).map_err(bad)?;
        arch = spec.busybox.as_deref().and_then(|b| std::fs::read(b).ok()).and_then(|b| elf_arch(&b));
        if !env.iter().any(|kv| kv.starts_with("PATH=")) {
            env.insert(0, SCRIPT_PATH.to_owned());
        }
    } else {
        elf::check_static(&bytes, false).map_err(|e| match e {
            ElfError::Dynamic(_) => bad(format!("{e}; {STATIC_HINT}")),
            e => bad(e.to_string()),
        })?;
        arch = elf_arch(&bytes);
    }
    for kv in &spec.env {
        if !kv.contains('=') || kv.contains('\0') {
            return Err(ExtrasError::BadFlag(format!("--env {kv}: expected K=V")));
        }
    }
    if spec.args.iter().any(|a| a.contains('\0')) {
        return Err(ExtrasError::BadFlag("--arg: an argument cannot hold a NUL byte".into()));
    }
    let nul_list = |items: &[String]| items.iter().flat_map(|a| a.bytes().chain([0])).collect::<Vec<u8>>();
    let at = |p: &str| p.trim_start_matches('/').to_owned();
    shell.extend([
        Member::dir("krepro"),
        Member::file(&at(protocol::EXEC_PATH), 0o755, bytes),
        Member::file(&at(protocol::EXEC_ARGS), 0o644, nul_list(&spec.args)),
        Member::file(&at(protocol::EXEC_ENV), 0o644, nul_list(&env)),
    ]);
    Ok((shell, arch))
}

/// What a `#!` script needs: busybox at /bin/busybox with a link for each
/// of its applets (sh, grep, dmesg, ip, ...) and for the script's own
/// interpreter path. The kernel's binfmt_script then runs it as a shell
/// would. Only shells run: busybox sh is ash, so a bash script gets a note.
fn script_members(bytes: &[u8], busybox: Option<&Path>, notes: &mut Vec<String>) -> Result<Vec<Member>, String> {
    let line = bytes[2..].split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim().to_owned();
    let mut words = line.split_whitespace();
    let interpreter = words.next().ok_or("an empty #! line")?.to_owned();
    let name = interpreter.rsplit('/').next().unwrap_or_default();
    let shell = if name == "env" { words.next().unwrap_or_default() } else { name };
    match shell {
        "sh" | "ash" | "dash" | "busybox" => {}
        "bash" => notes.push(format!("#!{line}: the guest has no bash; the script runs under busybox sh (ash)")),
        other => {
            return Err(format!(
            "#!{line}: the guest has no {other}; scripts run under busybox sh (#!/bin/sh), else build a static program"
        ))
        }
    }
    if !interpreter.starts_with('/') {
        return Err(format!("#!{line}: the interpreter needs an absolute path"));
    }
    let busybox = busybox.ok_or("a script needs busybox in the guest (apt-get install -y busybox-static)")?;
    let bb = std::fs::read(busybox).map_err(|e| format!("{}: {e}", busybox.display()))?;
    elf::check_static(&bb, false).map_err(|e| {
        format!("{} cannot run in the guest ({e}): apt-get install -y busybox-static", busybox.display())
    })?;
    let out = Cmd::new(busybox, ["--list-full"], Path::new("/")).quiet().output().map_err(|e| e.to_string())?;
    let mut links: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    // busybox picks the applet by its name; it has no `bash`, so bash is a
    // script that hands over to sh (the kernel runs nested #! lines). It
    // sets what bash sets and kselftests test (`[ $UID != 0 ]`).
    let mut members = vec![
        Member::file("bin/busybox", 0o755, bb),
        Member::file("bin/bash", 0o755, b"#!/bin/sh\nUID=$(id -u) EUID=$(id -u) exec /bin/sh \"$@\"\n".to_vec()),
    ];
    if !matches!(interpreter.as_str(), "/bin/bash" | "/usr/bin/env") {
        links.push(interpreter.trim_start_matches('/').to_owned());
    }
    for link in links {
        members.extend(parent_dirs(&link).iter().map(|d| Member::dir(d)));
        if !members.iter().any(|e| e.path == link) {
            members.push(Member::symlink(&link, "/bin/busybox"));
        }
    }
    Ok(super::dedup_dirs(members))
}

/// One member of a --file tree, before its file is read.
enum Planned {
    Dir(String),
    File { src: PathBuf, dest: String, mode: u32, size: u64 },
}

/// `--file SRC[:DEST]`: a file, or a directory and everything below it,
/// with its parent directories; sizes from the file system, nothing read.
fn file_plan(spec: &str) -> Result<Vec<Planned>, ExtrasError> {
    let (src, dest) = match spec.split_once(':') {
        Some((s, d)) => (PathBuf::from(s), d.trim_start_matches('/').to_owned()),
        None => {
            let p = PathBuf::from(spec);
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            (p, name)
        }
    };
    if dest.is_empty() || dest.split('/').any(|c| c == "..") {
        return Err(ExtrasError::BadFlag(format!("--file {spec}: DEST must be a path inside the initrd")));
    }
    let mut out: Vec<Planned> = parent_dirs(&dest).into_iter().map(Planned::Dir).collect();
    plan_tree(&src, &dest, &mut out)?;
    Ok(out)
}

/// The members `plan` describes, files read.
fn read_plan(plan: Vec<Planned>) -> Result<Vec<Member>, ExtrasError> {
    plan.into_iter()
        .map(|p| match p {
            Planned::Dir(dest) => Ok(Member::dir(&dest)),
            Planned::File { src, dest, mode, .. } => {
                let data = std::fs::read(&src).map_err(io(format!("read {}", src.display())))?;
                Ok(Member::file(&dest, mode, data))
            }
        })
        .collect()
}

/// The directories above `path` (relative), outermost first:
/// "usr/bin/env" -> usr, usr/bin.
fn parent_dirs(path: &str) -> Vec<String> {
    path.match_indices('/').map(|(at, _)| path[..at].to_owned()).collect()
}

fn plan_tree(src: &Path, dest: &str, out: &mut Vec<Planned>) -> Result<(), ExtrasError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(src).map_err(|e| ExtrasError::BadFlag(format!("--file {}: {e}", src.display())))?;
    if meta.is_dir() {
        out.push(Planned::Dir(dest.to_owned()));
        let mut names: Vec<_> = std::fs::read_dir(src)
            .map_err(io(format!("list {}", src.display())))?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            plan_tree(&src.join(&n), &format!("{dest}/{}", n.to_string_lossy()), out)?;
        }
    } else if meta.is_file() {
        let mode = meta.permissions().mode() & 0o777;
        out.push(Planned::File { src: src.to_owned(), dest: dest.to_owned(), mode, size: meta.len() });
    } else {
        return Err(ExtrasError::BadFlag(format!(
            "--file {}: not a regular file or a directory (a device, a socket or a pipe)",
            src.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(e: &[Member]) -> Vec<&str> {
        e.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn files_land_at_their_dest_with_parents_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("data")).unwrap();
        std::fs::write(d.path().join("data/a"), b"A").unwrap();
        std::fs::write(d.path().join("b"), b"B").unwrap();
        let specs = [
            format!("{}:srv/data", d.path().join("data").display()),
            format!("{}:srv/b", d.path().join("b").display()),
        ];
        let x = Extras::new(None, &specs, None).unwrap();
        let k = Kernel { path: "/k".into(), release: None, arch: crate::image::arch::Arch::X86_64 };
        assert_eq!(
            paths(&x.members_for(&k, Arch::X86_64, &["virtio_mmio", "virtio_console"], &[]).unwrap()),
            ["srv", "srv/data", "srv/data/a", "srv/b"]
        );
        // A kernel without a module tree: device needs are left to it.
        assert_eq!(
            x.members_for(&k, Arch::X86_64, &["virtio_mmio", "virtio_console"], &["virtio_blk"]).unwrap().len(),
            4
        );
    }

    fn script(dir: &Path, text: &str) -> ExecSpec {
        let path = dir.join("t.sh");
        std::fs::write(&path, text).unwrap();
        let busybox = which::which("busybox").expect("busybox-static is needed: apt-get install -y busybox-static");
        ExecSpec { path, busybox: Some(busybox), ..ExecSpec::default() }
    }

    #[test]
    fn a_script_brings_busybox_its_applets_and_a_path() {
        let d = tempfile::tempdir().unwrap();
        let x = Extras::new(Some(&script(d.path(), "#!/bin/sh\nexit 4\n")), &[], None).unwrap();
        assert!(x.notes.is_empty(), "{:?}", x.notes);
        let k = Kernel { path: "/k".into(), release: None, arch: crate::image::arch::Arch::X86_64 };
        let e = x.members_for(&k, Arch::X86_64, &["virtio_mmio", "virtio_console"], &[]).unwrap();
        let find = |p: &str| e.iter().find(|e| e.path == p).unwrap_or_else(|| panic!("no {p} in {:?}", paths(&e)));
        assert!(matches!(&find("bin/busybox").node, crate::initrd::Node::File(b) if b.starts_with(b"\x7fELF")));
        assert!(matches!(&find("bin/bash").node, crate::initrd::Node::File(b) if b.starts_with(b"#!/bin/sh\n")));
        for link in ["bin/sh", "usr/bin/env", "bin/grep", "bin/dmesg"] {
            assert_eq!(find(link).node, crate::initrd::Node::Symlink("/bin/busybox".into()), "{link}");
        }
        let env = find("krepro/exec.env");
        assert_eq!(env.node, crate::initrd::Node::File(b"PATH=/bin:/sbin:/usr/bin:/usr/sbin\0".to_vec()));
        // The whole set packs: no duplicate paths.
        x.pack_for(&k, Arch::X86_64, &["virtio_mmio", "virtio_console"], &[]).unwrap();
    }

    #[test]
    fn bash_scripts_get_a_note_and_other_interpreters_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let x = Extras::new(Some(&script(d.path(), "#!/usr/bin/env bash\n")), &[], None).unwrap();
        assert_eq!(x.notes, ["#!/usr/bin/env bash: the guest has no bash; the script runs under busybox sh (ash)"]);
        let e = Extras::new(Some(&script(d.path(), "#!/usr/bin/python3\n")), &[], None).unwrap_err();
        assert!(e.to_string().ends_with("#!/usr/bin/python3: the guest has no python3; scripts run under busybox sh (#!/bin/sh), else build a static program"), "{e}");
        let mut no_bb = script(d.path(), "#!/bin/sh\n");
        no_bb.busybox = None;
        assert!(Extras::new(Some(&no_bb), &[], None).unwrap_err().to_string().contains("busybox-static"));
        let mut dynamic = script(d.path(), "#!/bin/sh\n");
        dynamic.busybox = Some("/bin/ls".into());
        let e = Extras::new(Some(&dynamic), &[], None).unwrap_err();
        assert!(e.to_string().contains("/bin/ls cannot run in the guest"), "{e}");
    }

    #[test]
    fn a_file_tree_over_the_cap_is_refused_by_its_sizes_naming_the_biggest() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        // Sparse: 3 GiB that take no disk and are never read.
        for (name, size) in [("disk.img", 3u64 << 30), ("small", 10), ("mid.bin", 5 << 20)] {
            std::fs::File::create(tree.join(name)).unwrap().set_len(size).unwrap();
        }
        let e = Extras::new(None, &[format!("{}:data", tree.display())], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--file would put 3.0 GiB in the initrd, more than its 1.0 GiB cap (the guest unpacks it into its RAM); \
             the biggest: /data/disk.img (3.0 GiB), /data/mid.bin (5.0 MiB), /data/small (10 B)"
        );
        // The whole set is checked again with the modules, from the bytes.
        let big = [Member::file("a", 0o644, vec![0; 300]), Member::file("b", 0o644, vec![0; 800])];
        let sizes = big.iter().map(|m| (m.path.clone(), 1u64 << 29)).collect::<Vec<_>>();
        assert!(check_total("x", sizes.into_iter(), INITRD_CAP).is_ok());
        let e = check_total("x", [("a".into(), INITRD_CAP), ("b".into(), 1)].into_iter(), INITRD_CAP).unwrap_err();
        assert!(matches!(e, ExtrasError::TooBig { total, .. } if total == INITRD_CAP + 1));
    }

    #[test]
    fn a_device_node_is_not_a_file_to_pack() {
        let e = Extras::new(None, &["/dev/null:x".into()], None).unwrap_err();
        assert_eq!(e.to_string(), "--file /dev/null: not a regular file or a directory (a device, a socket or a pipe)");
    }

    #[test]
    fn parents_come_outermost_first() {
        assert_eq!(parent_dirs("usr/bin/env"), ["usr", "usr/bin"]);
        assert!(parent_dirs("init").is_empty());
    }

    #[test]
    fn bad_specs_are_one_line_errors() {
        let e = Extras::new(None, &["/etc/passwd:../x".into()], None).unwrap_err();
        assert_eq!(e.to_string(), "--file /etc/passwd:../x: DEST must be a path inside the initrd");
        let e = Extras::new(None, &["/nonexistent".into()], None).unwrap_err();
        assert!(e.to_string().starts_with("--file /nonexistent: "), "{e}");
        let script = ExecSpec { path: "/bin/sh".into(), ..ExecSpec::default() };
        let e = Extras::new(Some(&script), &[], None).unwrap_err();
        assert!(matches!(&e, ExtrasError::BadExec { why, .. } if why.contains("cc -static")), "{e}");
        let missing = ExecSpec { path: "/nonexistent/x".into(), ..ExecSpec::default() };
        assert!(matches!(Extras::new(Some(&missing), &[], None).unwrap_err(), ExtrasError::BadExec { .. }));
    }
}
