//! virtme-ng and vmtest, run for real by `bench --peers`: installed from
//! their registries (with what they need on this host) under
//! `<cache>/peers`, asked first whether they can boot a kernel at all (read
//! from the kernel's config), then run in the bench's rounds with the flags
//! that force TCG when the bench runs under TCG, each under a time limit.
//!
//! - virtme-ng: `vng --run K --qemu QEMU [--disable-kvm] [--force-9p]
//!   --exec true`. It shares the host's / with the guest over virtio-fs
//!   (virtiofsd, from crates.io) or 9p, loads what is a module from the
//!   `lib/modules/<release>` beside the kernel, and starts the host's udev in
//!   the guest. It picks virtio-fs whenever virtiofsd starts, whatever the
//!   kernel has, so a kernel with 9p and no virtio-fs gets --force-9p. It
//!   ends the run by powering the guest off: ACPI on x86.
//! - vmtest: `vmtest -k K -q QEMU true`. It mounts the host's / as the
//!   guest's root over 9p with no initramfs and no root= (the kernel does
//!   that through its block-device path: CONFIG_BLOCK) and runs the command
//!   through the host's qemu-guest-agent. It uses KVM whenever /dev/kvm
//!   exists and has no flag against that, so under TCG it runs where
//!   /dev/kvm is not: in a mount namespace with a fresh /dev
//!   (`bwrap --dev-bind / / --dev /dev`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use krepro_runner::boot::qemu::Accel;
use krepro_runner::host::cache::Cache;
use krepro_runner::host::install;
use krepro_runner::host::spawn::{Cmd, Line, Stream};
use krepro_runner::image::arch::Arch;
use krepro_runner::image::config::Value;
use krepro_runner::image::kernel::{self, Kernel};

/// The peers, in the order of their rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Vng,
    Vmtest,
}

/// The versions `--peers` installs: a benchmark names what it measured.
const VIRTME_NG: &str = "virtme-ng==1.42";
const VMTEST: &str = "0.18.0";
const VIRTIOFSD: &str = "1.14.0";

/// Debian packages the peers need: python3-venv for virtme-ng's venv;
/// busybox and kmod for vng's initramfs; udev, which vng starts in the guest
/// (whose root is the host's); qemu-guest-agent, through which vmtest runs
/// the command (also the host's); bwrap to hide /dev/kvm from vmtest; and
/// what virtiofsd links against to build.
const APT: &[&str] = &[
    "python3-venv",
    "busybox-static",
    "kmod",
    "udev",
    "qemu-guest-agent",
    "bubblewrap",
    "pkg-config",
    "libseccomp-dev",
    "libcap-ng-dev",
];

/// How long one peer run may take before it is killed (a boot takes about
/// 20 s here under TCG).
pub const TIMEOUT: Duration = Duration::from_secs(300);

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Vng, Peer::Vmtest];

    /// Its row in the table.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Vng => "virtme-ng (vng --exec true)",
            Peer::Vmtest => "vmtest (vmtest -k K true)",
        }
    }

    fn program(self) -> &'static str {
        match self {
            Peer::Vng => "vng",
            Peer::Vmtest => "vmtest",
        }
    }
}

/// Where `--peers` installs: `peers/venv` (virtme-ng) and `peers/bin`
/// (vmtest and virtiofsd, cargo's install root being `peers`).
fn dir(cache: &Cache) -> PathBuf {
    cache.root().join("peers")
}

/// A peer ready to run: its program and the PATH it runs with (vng looks
/// up virtme-run and virtiofsd on it).
#[derive(Clone, Debug)]
pub struct Tool {
    program: PathBuf,
    path: OsString,
}

/// The peers as the bench found them: a tool to run, or the row's note.
pub struct Peers([Result<Tool, String>; 2]);

/// Finds the peers (installed by `--peers`, else on PATH), installing them
/// first when `install`. Only x86_64 guests on an x86_64 host get peers.
pub fn prepare(install: bool, arch: Arch, cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<Peers> {
    if arch != Arch::X86_64 || Arch::host() != Some(Arch::X86_64) {
        let note = format!("not measured: the peers are run for x86_64 guests only, this is {arch}");
        return Ok(Peers([Err(note.clone()), Err(note)]));
    }
    let mut installed = [Ok(()), Ok(())];
    if install {
        let started = Instant::now();
        // Every step that installs something says so.
        let mut did = false;
        let mut tell = |m: &str| {
            did = true;
            say(m)
        };
        install::apt_packages(APT, &mut tell).context("the peers' Debian packages")?;
        installed = [install_vng(cache, &mut tell), install_vmtest(cache, &mut tell)];
        let secs = started.elapsed().as_secs_f64();
        say(&if did {
            format!("peers installed in {secs:.0} s")
        } else {
            format!("peers: nothing to install ({secs:.1} s)")
        });
    }
    let mut tools = Peer::ALL.map(|p| find(p, cache).ok_or_else(|| "not installed (--peers installs it)".to_owned()));
    for (tool, done) in tools.iter_mut().zip(installed) {
        if let Err(e) = done {
            *tool = Err(format!("--peers could not install it: {e:#}"));
        }
    }
    Ok(Peers(tools))
}

/// virtme-ng into a venv of Debian's python3, and virtiofsd, through
/// which vng shares the host's / (cloud kernels have no 9p), each unless
/// it is there.
fn install_vng(cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<()> {
    let venv = dir(cache).join("venv");
    if !venv.join("bin/vng").is_file() {
        say(&format!("installing {VIRTME_NG} into {} (python3 -m venv, pip)", venv.display()));
        let python = if Path::new("/usr/bin/python3").is_file() { "/usr/bin/python3" } else { "python3" };
        Cmd::new(python, ["-m".as_ref(), "venv".as_ref(), venv.as_os_str()], Path::new("/")).quiet().output()?;
        Cmd::new(venv.join("bin/pip"), ["install", "--quiet", VIRTME_NG], Path::new("/")).quiet().output()?;
    }
    cargo_install(cache, "virtiofsd", VIRTIOFSD, say)
}

/// vmtest, unless it is there.
fn install_vmtest(cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<()> {
    cargo_install(cache, "vmtest", VMTEST, say)
}

/// `cargo install` of a crate's binary into `<cache>/peers/bin`, with the
/// crate's own lock file, unless it is there.
fn cargo_install(cache: &Cache, krate: &str, version: &str, say: &mut dyn FnMut(&str)) -> Result<()> {
    let root = dir(cache);
    if root.join("bin").join(krate).is_file() {
        return Ok(());
    }
    say(&format!("installing {krate} {version} into {} (cargo install: minutes)", root.join("bin").display()));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = ["install", "--locked", "--quiet", "--version", version, krate, "--root"];
    // Built in a temp dir of its own, as cargo install does unless
    // CARGO_TARGET_DIR (which `cargo xtask` may run under) says otherwise.
    std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    let build = tempfile::Builder::new().prefix(".build-").tempdir_in(&root)?;
    Cmd::new(&cargo, args, Path::new("/")).args([&root]).env("CARGO_TARGET_DIR", build.path()).quiet().output()?;
    Ok(())
}

/// `peer`'s program: where `--peers` puts it, else on PATH.
fn find(peer: Peer, cache: &Cache) -> Option<Tool> {
    let dir = dir(cache);
    let (bin, venv_bin) = (dir.join("bin"), dir.join("venv/bin"));
    let own = match peer {
        Peer::Vng => venv_bin.join("vng"),
        Peer::Vmtest => bin.join("vmtest"),
    };
    let program = if own.is_file() { own } else { which::which(peer.program()).ok()? };
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths([bin, venv_bin].into_iter().chain(std::env::split_paths(&rest))).ok()?;
    Some(Tool { program, path })
}

/// The kernel's modules where vng looks for them: `lib/modules/<release>`
/// under the nearest directory above the image that has `lib/modules`.
fn modules_beside(kernel: &Kernel) -> bool {
    let Some(release) = &kernel.release else { return false };
    let root = kernel.path.ancestors().skip(1).find(|d| d.join("lib/modules").is_dir());
    root.is_some_and(|r| r.join("lib/modules").join(release).is_dir())
}

type Config = std::collections::BTreeMap<String, Value>;

/// What the kernel lacks of `opts`: "no CONFIG_X", or "CONFIG_X=m" where
/// a module will not do (or would, but none is there). `modules`: whether
/// the kernel's modules are beside it, where vng loads them from.
fn lack(config: &Config, opts: &[&str], module_ok: bool, modules: bool) -> Vec<String> {
    opts.iter()
        .filter_map(|o| match config.get(*o).filter(|v| **v != Value::N) {
            Some(Value::Y) => None,
            Some(Value::M) if module_ok && modules => None,
            Some(Value::M) if module_ok => Some(format!("CONFIG_{o}=m but no lib/modules/<release> beside it")),
            Some(Value::M) => Some(format!("CONFIG_{o}=m")),
            _ => Some(format!("no CONFIG_{o}")),
        })
        .collect()
}

/// What vng needs to share the host's / over virtio-fs.
const VNG_VIRTIOFS: &[&str] = &["VIRTIO_PCI", "VIRTIO_FS", "FUSE_FS"];

/// Whether vng must be told to use 9p: the kernel has no virtio-fs (vng
/// would use it anyway, virtiofsd being there, and the guest would panic
/// with no root). An unknown config: vng chooses.
fn vng_force_9p(config: Option<&Config>, modules: bool) -> bool {
    config.is_some_and(|c| !lack(c, VNG_VIRTIOFS, true, modules).is_empty())
}

/// Why `peer` cannot boot a kernel with this config, or None when it may
/// (an unknown config included: then it runs and its own error tells).
/// `modules`: whether the kernel's modules are beside it.
fn cannot_run(peer: Peer, config: Option<&Config>, modules: bool) -> Option<String> {
    let config = config?;
    let lacks = |opts: &[&str], module_ok: bool| lack(config, opts, module_ok, modules);
    match peer {
        Peer::Vmtest => {
            let missing = lacks(&["NET_9P", "NET_9P_VIRTIO", "9P_FS", "BLOCK", "VIRTIO_PCI", "VIRTIO_CONSOLE"], false);
            (!missing.is_empty()).then(|| {
                format!(
                    "the kernel has {}: vmtest mounts the host's / over 9p with no initramfs and no root= (which \
                     the kernel does only with the block layer) and talks to qemu-guest-agent over virtio-serial, \
                     so it needs them built in (=y)",
                    missing.join(", ")
                )
            })
        }
        Peer::Vng => {
            // With no modules to load vng has no initramfs, and the kernel
            // mounts a 9p root given no root= through its block-device path
            // (init/do_mounts.c: mount_block_root, empty without BLOCK).
            let virtiofs = lacks(VNG_VIRTIOFS, true);
            let ninep = lacks(&["VIRTIO_PCI", "NET_9P", "NET_9P_VIRTIO", "9P_FS", "BLOCK"], true);
            if let (Some(a), Some(b)) = (virtiofs.first(), ninep.first()) {
                let both = if a == b { a.clone() } else { format!("{a} and {b}") };
                return Some(format!(
                    "the kernel has {both}: vng shares the host's / with the guest over virtio-fs or 9p"
                ));
            }
            if let Some(console) = lacks(&["VIRTIO_CONSOLE"], true).first() {
                return Some(format!(
                    "the kernel has {console}: vng returns the command's output and status over virtio-serial"
                ));
            }
            lacks(&["ACPI"], false).first().map(|acpi| {
                format!(
                    "the kernel has {acpi}: vng ends the run by powering the guest off, which an x86 guest does \
                     through ACPI only (without it the guest halts and vng waits until it is killed)"
                )
            })
        }
    }
}

/// How the peers run on one kernel, besides the kernel and qemu.
#[derive(Clone, Copy, Debug)]
struct Flags {
    accel: Accel,
    /// /dev/kvm exists (vmtest would use it).
    kvm_exists: bool,
    /// vng shares / over 9p: see [`vng_force_9p`].
    force_9p: bool,
}

/// The command line that runs `peer` once on `kernel`: program, arguments.
/// Under TCG vng gets --disable-kvm, and vmtest runs under bwrap with a
/// fresh /dev when /dev/kvm exists (it would use it otherwise).
fn command_line(peer: Peer, program: &Path, kernel: &Path, qemu: &Path, flags: Flags) -> (PathBuf, Vec<OsString>) {
    let Flags { accel, kvm_exists, force_9p } = flags;
    let tcg = accel == Accel::Tcg;
    let mut args: Vec<OsString> = Vec::new();
    match peer {
        Peer::Vng => {
            args.extend(["--run".into(), kernel.into(), "--qemu".into(), qemu.into()]);
            if tcg {
                args.push("--disable-kvm".into());
            }
            if force_9p {
                args.push("--force-9p".into());
            }
            args.extend(["--exec".into(), "true".into()]);
            (program.to_owned(), args)
        }
        Peer::Vmtest => {
            args.extend(["-k".into(), kernel.into(), "-q".into(), qemu.into(), "true".into()]);
            if !(tcg && kvm_exists) {
                return (program.to_owned(), args);
            }
            let bwrap: [OsString; 6] =
                ["--dev-bind".into(), "/".into(), "/".into(), "--dev".into(), "/dev".into(), program.into()];
            (PathBuf::from("bwrap"), bwrap.into_iter().chain(args).collect())
        }
    }
}

/// Why a run that exited with `status` failed: its last line (stderr's,
/// else stdout's), and the guest's panic when the console shows one.
fn why_failed(status: &str, lines: &[(Stream, String)]) -> String {
    let last = |s: Stream| lines.iter().rev().filter(|(st, _)| *st == s).map(|(_, l)| l.trim()).find(|l| !l.is_empty());
    let last = last(Stream::Stderr).or_else(|| last(Stream::Stdout)).unwrap_or("no output");
    let panic = lines.iter().find_map(|(_, l)| l.find("Kernel panic - not syncing: ").map(|i| l[i..].trim()));
    match panic {
        Some(p) if !last.contains(p) => format!("{status}: {last} (guest: {p})"),
        _ => format!("{status}: {last}"),
    }
}

/// What one run of a peer came to.
#[derive(Debug, PartialEq)]
enum Ran {
    Secs(f64),
    Failed(String),
}

/// Runs `cmd` to its end or `timeout`, killing it and what it started on
/// timeout; writes everything it printed to `log`.
fn timed(cmd: Cmd, timeout: Duration, interrupt: &AtomicBool, log: &Path) -> Result<Ran> {
    let started = Instant::now();
    let mut child = match cmd.quiet().contained().spawn_lines() {
        Ok(c) => c,
        Err(e) => return Ok(Ran::Failed(e.to_string())),
    };
    let mut lines = Vec::new();
    let mut ended = 0;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    // Until it has exited and its output ended, or a second after its exit
    // (something it started may hold the pipes).
    while ended < 2 && exited.is_none_or(|(_, at)| at.elapsed() < Duration::from_secs(1)) {
        if interrupt.load(Ordering::SeqCst) {
            child.stop_group();
            bail!("interrupted");
        }
        if exited.is_none() && started.elapsed() > timeout {
            child.stop_group();
            std::fs::write(log, join(&lines))?;
            return Ok(Ran::Failed(format!("still running after {} s: killed", timeout.as_secs())));
        }
        match child.recv_timeout(Duration::from_millis(20)) {
            Ok(Line::Text(s, l)) => lines.push((s, l)),
            Ok(Line::End(_)) => ended += 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if exited.is_none() {
            exited = child.try_wait()?.map(|s| (s, Instant::now()));
        }
    }
    let (status, at) = match exited {
        Some(s) => s,
        None => (child.wait()?, Instant::now()),
    };
    child.stop_group();
    std::fs::write(log, join(&lines)).with_context(|| format!("write {}", log.display()))?;
    Ok(if status.success() {
        Ran::Secs(at.duration_since(started).as_secs_f64())
    } else {
        Ran::Failed(why_failed(&status.to_string(), &lines))
    })
}

fn join(lines: &[(Stream, String)]) -> String {
    lines.iter().map(|(_, l)| format!("{l}\n")).collect()
}

/// Where a peer stands on one kernel.
enum Slot {
    Ready(Tool),
    /// Not installed, not for this kernel, or failed: the row's note.
    Out(String),
}

/// The peers' part in one kernel's rounds.
pub struct OnKernel<'a> {
    slots: [Slot; 2],
    kernel: &'a Kernel,
    qemu: &'a Path,
    flags: Flags,
    work: &'a Path,
    logs: PathBuf,
}

impl Peers {
    /// Decides, for each peer, whether it runs on `kernel` (booted with
    /// `qemu` under `accel`; `work` is its working directory).
    pub fn on<'a>(
        &self,
        kernel: &'a Kernel,
        qemu: &'a Path,
        accel: Accel,
        work: &'a Path,
        cache: &Cache,
    ) -> OnKernel<'a> {
        let config = kernel::config_of(kernel);
        let modules = modules_beside(kernel);
        let slots = [0, 1].map(|i| match &self.0[i] {
            Err(note) => Slot::Out(note.clone()),
            Ok(tool) => match cannot_run(Peer::ALL[i], config.as_ref(), modules) {
                Some(why) => Slot::Out(format!("cannot run: {why}")),
                None => Slot::Ready(tool.clone()),
            },
        });
        let flags = Flags {
            accel,
            kvm_exists: Path::new("/dev/kvm").exists(),
            force_9p: vng_force_9p(config.as_ref(), modules),
        };
        OnKernel { slots, kernel, qemu, flags, work, logs: dir(cache).join("logs") }
    }
}

impl OnKernel<'_> {
    /// Runs peer `i` once: its wall time, or None when it does not run (on
    /// a failure, for the rest of the rounds too: its note says why).
    pub fn run(&mut self, i: usize, interrupt: &AtomicBool) -> Result<Option<f64>> {
        let Slot::Ready(tool) = &self.slots[i] else { return Ok(None) };
        let peer = Peer::ALL[i];
        let (program, args) = command_line(peer, &tool.program, &self.kernel.path, self.qemu, self.flags);
        let cmd = Cmd::new(program, args, self.work).env("PATH", &tool.path).env("RUST_BACKTRACE", "0");
        std::fs::create_dir_all(&self.logs).with_context(|| format!("create {}", self.logs.display()))?;
        let release = self.kernel.release.as_deref().unwrap_or("kernel");
        let log = self.logs.join(format!("{}-{release}.log", peer.program()));
        match timed(cmd, TIMEOUT, interrupt, &log)? {
            Ran::Secs(s) => Ok(Some(s)),
            Ran::Failed(why) => {
                self.slots[i] = Slot::Out(format!("failed: {why} (log: {})", log.display()));
                Ok(None)
            }
        }
    }

    /// Peer `i`'s note for its row, if it has one.
    pub fn note(&self, i: usize) -> Option<String> {
        match &self.slots[i] {
            Slot::Out(note) => Some(note.clone()),
            Slot::Ready(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krepro_runner::image::config::parse_config;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_command_lines_force_tcg_each_its_own_way() {
        let (k, q) = (Path::new("/k/vmlinuz"), Path::new("/usr/bin/qemu-system-x86_64"));
        let vng = Path::new("/c/peers/venv/bin/vng");
        let line = |peer, program, accel, kvm_exists, force_9p| {
            command_line(peer, program, k, q, Flags { accel, kvm_exists, force_9p })
        };
        let vng_args = ["--run", "/k/vmlinuz", "--qemu", "/usr/bin/qemu-system-x86_64"];
        assert_eq!(
            line(Peer::Vng, vng, Accel::Tcg, true, false),
            (vng.to_owned(), os(&[&vng_args[..], &["--disable-kvm", "--exec", "true"]].concat()))
        );
        assert_eq!(
            line(Peer::Vng, vng, Accel::Kvm, true, false),
            (vng.to_owned(), os(&[&vng_args[..], &["--exec", "true"]].concat()))
        );
        assert_eq!(
            line(Peer::Vng, vng, Accel::Tcg, true, true),
            (vng.to_owned(), os(&[&vng_args[..], &["--disable-kvm", "--force-9p", "--exec", "true"]].concat()))
        );
        let vmtest = Path::new("/c/peers/bin/vmtest");
        let vmtest_args = ["-k", "/k/vmlinuz", "-q", "/usr/bin/qemu-system-x86_64", "true"];
        assert_eq!(
            line(Peer::Vmtest, vmtest, Accel::Tcg, true, true),
            (
                PathBuf::from("bwrap"),
                os(&[&["--dev-bind", "/", "/", "--dev", "/dev", "/c/peers/bin/vmtest"][..], &vmtest_args].concat())
            )
        );
        // No /dev/kvm to hide, or KVM wanted: vmtest as it is.
        for (accel, kvm) in [(Accel::Tcg, false), (Accel::Kvm, true)] {
            assert_eq!(line(Peer::Vmtest, vmtest, accel, kvm, false), (vmtest.to_owned(), os(&vmtest_args)));
        }
    }

    /// The options that decide, as the kernels here have them.
    const CLOUD_6_12: &str = "# CONFIG_NET_9P is not set\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_VIRTIO_PCI=y\n\
                              CONFIG_FUSE_FS=y\nCONFIG_VIRTIO_FS=y\nCONFIG_BLOCK=y\nCONFIG_ACPI=y\n";
    const CLOUD_6_1: &str = "# CONFIG_NET_9P is not set\nCONFIG_VIRTIO_CONSOLE=m\nCONFIG_VIRTIO_PCI=m\n\
                             CONFIG_FUSE_FS=m\nCONFIG_VIRTIO_FS=m\nCONFIG_BLOCK=y\nCONFIG_ACPI=y\n";
    /// A tinyconfig kernel from the builder.
    const TINY: &str = "CONFIG_VIRTIO_CONSOLE=y\nCONFIG_VIRTIO_PCI=y\n# CONFIG_FUSE_FS is not set\n\
                        # CONFIG_NET_9P is not set\n# CONFIG_BLOCK is not set\n# CONFIG_ACPI is not set\n";
    /// examples/peers-kernel.config over it.
    const PEERS: &str = "CONFIG_NET_9P=y\nCONFIG_NET_9P_VIRTIO=y\nCONFIG_9P_FS=y\nCONFIG_VIRTIO_PCI=y\n\
                         CONFIG_VIRTIO_CONSOLE=y\nCONFIG_BLOCK=y\nCONFIG_ACPI=y\n# CONFIG_FUSE_FS is not set\n";

    fn why(peer: Peer, config: &str, modules: bool) -> Option<String> {
        cannot_run(peer, Some(&parse_config(config)), modules)
    }

    #[test]
    fn vmtest_needs_9p_the_block_layer_and_virtio_serial_built_in() {
        let reason = "vmtest mounts the host's / over 9p with no initramfs and no root= (which the kernel does only \
                      with the block layer) and talks to qemu-guest-agent over virtio-serial, so it needs them built \
                      in (=y)";
        assert_eq!(
            why(Peer::Vmtest, CLOUD_6_12, true).unwrap(),
            format!("the kernel has no CONFIG_NET_9P, no CONFIG_NET_9P_VIRTIO, no CONFIG_9P_FS: {reason}")
        );
        assert_eq!(
            why(Peer::Vmtest, CLOUD_6_1, true).unwrap(),
            format!(
                "the kernel has no CONFIG_NET_9P, no CONFIG_NET_9P_VIRTIO, no CONFIG_9P_FS, CONFIG_VIRTIO_PCI=m, \
                 CONFIG_VIRTIO_CONSOLE=m: {reason}"
            )
        );
        assert_eq!(
            why(Peer::Vmtest, TINY, false).unwrap(),
            format!(
                "the kernel has no CONFIG_NET_9P, no CONFIG_NET_9P_VIRTIO, no CONFIG_9P_FS, no CONFIG_BLOCK: {reason}"
            )
        );
        assert_eq!(why(Peer::Vmtest, PEERS, false), None);
    }

    #[test]
    fn vng_needs_virtio_fs_or_9p_and_acpi_and_loads_modules_from_beside_the_kernel() {
        assert_eq!(why(Peer::Vng, CLOUD_6_12, false), None);
        assert_eq!(why(Peer::Vng, CLOUD_6_1, true), None);
        assert_eq!(why(Peer::Vng, PEERS, false), None);
        assert_eq!(
            why(Peer::Vng, CLOUD_6_1, false).unwrap(),
            "the kernel has CONFIG_VIRTIO_PCI=m but no lib/modules/<release> beside it: vng shares the host's / \
             with the guest over virtio-fs or 9p"
        );
        assert_eq!(
            why(Peer::Vng, TINY, false).unwrap(),
            "the kernel has no CONFIG_VIRTIO_FS and no CONFIG_NET_9P: vng shares the host's / with the guest over \
             virtio-fs or 9p"
        );
        assert_eq!(
            why(Peer::Vng, &PEERS.replace("CONFIG_BLOCK=y", ""), false).unwrap(),
            "the kernel has no CONFIG_VIRTIO_FS and no CONFIG_BLOCK: vng shares the host's / with the guest over \
             virtio-fs or 9p"
        );
        let no_console = CLOUD_6_12.replace("CONFIG_VIRTIO_CONSOLE=y", "# CONFIG_VIRTIO_CONSOLE is not set");
        assert_eq!(
            why(Peer::Vng, &no_console, true).unwrap(),
            "the kernel has no CONFIG_VIRTIO_CONSOLE: vng returns the command's output and status over virtio-serial"
        );
        assert_eq!(
            why(Peer::Vng, &PEERS.replace("CONFIG_ACPI=y", ""), false).unwrap(),
            "the kernel has no CONFIG_ACPI: vng ends the run by powering the guest off, which an x86 guest does \
             through ACPI only (without it the guest halts and vng waits until it is killed)"
        );
        // No config beside the kernel: it runs, and its own error tells.
        assert_eq!(cannot_run(Peer::Vmtest, None, false), None);
    }

    #[test]
    fn vng_is_told_9p_only_where_the_kernel_has_no_virtio_fs() {
        let force = |config: &str, modules| vng_force_9p(Some(&parse_config(config)), modules);
        assert!(force(PEERS, false));
        assert!(!force(CLOUD_6_12, false));
        assert!(!force(CLOUD_6_1, true));
        // Unknown config: vng picks.
        assert!(!vng_force_9p(None, false));
    }

    #[test]
    fn a_failure_names_the_last_line_and_the_guests_panic() {
        // vmtest on Debian's 6.12 cloud kernel (no 9p), as captured here.
        let lines = [
            (
                Stream::Stdout,
                "[    9.334904] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
            ),
            (
                Stream::Stdout,
                "[    9.337197] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 6.12.117+deb12-cloud-amd64 #1",
            ),
            (Stream::Stderr, "Failed to connect QGA"),
            (Stream::Stderr, ""),
            (Stream::Stderr, "Caused by:"),
            (Stream::Stderr, "    Qemu exited while trying to connect to QGA. Did the guest panic?"),
            (Stream::Stdout, ""),
        ]
        .map(|(s, l)| (s, l.to_owned()));
        assert_eq!(
            why_failed("exit status: 69", &lines),
            "exit status: 69: Qemu exited while trying to connect to QGA. Did the guest panic? (guest: Kernel panic - \
             not syncing: VFS: Unable to mount root fs on unknown-block(0,0))"
        );
        assert_eq!(
            why_failed("exit status: 1", &[(Stream::Stdout, "mount: no such device".into())]),
            "exit status: 1: mount: no such device"
        );
        assert_eq!(why_failed("exit status: 255", &[]), "exit status: 255: no output");
    }

    #[test]
    fn a_run_is_timed_failed_with_its_last_line_or_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let quiet = AtomicBool::new(false);
        let ran = timed(Cmd::shell("echo booting; exit 0", dir.path()), TIMEOUT, &quiet, &log).unwrap();
        assert!(matches!(ran, Ran::Secs(s) if s < 5.0), "{ran:?}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "booting\n");
        let ran = timed(Cmd::shell("echo oops >&2; exit 3", dir.path()), TIMEOUT, &quiet, &log).unwrap();
        assert_eq!(ran, Ran::Failed("exit status: 3: oops".into()));
        // A grandchild holding the output open (as vng's qemu would) dies too.
        let pid = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pid.display());
        let ran = timed(Cmd::shell(&script, dir.path()), Duration::from_millis(300), &quiet, &log).unwrap();
        assert_eq!(ran, Ran::Failed("still running after 0 s: killed".into()));
        let sleep = std::fs::read_to_string(&pid).unwrap();
        let gone = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{}/stat", sleep.trim())).map_or(true, |s| s.contains(") Z "))
        });
        assert!(gone, "sleep {sleep} still runs");
    }
}
