//! The small commands: `new`, `repros`, `initrd`, `kernel fetch` and
//! `kernel build`.

use std::path::{Path, PathBuf};

use super::args::{ConfigArgs, GuestArgs, TreeArgs};
use super::progress::{mmss, Progress};
use super::Failure;
use crate::boot::disk::DiskSpec;
use crate::boot::outcome::Exit;
use crate::guest::{self, Catalog};
use crate::host::cache::Cache;
use crate::host::fetch;
use crate::image::arch::Arch;
use crate::request;
use crate::session::{self, RunError, What};

/// `krepro new NAME`.
pub(crate) fn new(name: &str, dir: Option<PathBuf>) -> Result<Exit, Failure> {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let path = guest::template::write(&dir, name).map_err(Failure::error)?;
    println!("{}", path.display());
    eprintln!("krepro: wrote {}: run it with `krepro run {}`", path.display(), path.display());
    Ok(Exit::Good)
}

/// `krepro repros [DIR]`: one line each, what it checks and needs.
pub(crate) fn repros(dir: Option<&Path>) -> Result<Exit, Failure> {
    let (catalog, bad) = match dir {
        None => (Catalog::builtin(), Vec::new()),
        Some(d) if d.is_dir() => Catalog::dir(d).map_err(Failure::error)?,
        Some(f) => (Catalog::file(f).map_err(Failure::error)?, Vec::new()),
    };
    println!("{:<20} {:<40} CONFIG", "NAME", "CHECKS");
    for r in &catalog.repros {
        let d = &r.decl;
        let config = if d.config.is_empty() { "-".to_owned() } else { d.config.join(",") };
        let mut needs = Vec::new();
        if d.cpus > 1 {
            needs.push(format!("--cpus {}", d.cpus));
        }
        needs.extend(d.disks.iter().map(|x| format!("--disk {x}")));
        if d.memory_mib > 0 {
            needs.push(format!("--memory {}", d.memory_mib));
        }
        let needs = if needs.is_empty() { String::new() } else { format!(" (boots with {})", needs.join(" ")) };
        let from = match (&r.file, dir) {
            (guest::ReproFile::User(p), Some(_)) => {
                format!("  [{}]", p.file_name().unwrap_or_default().to_string_lossy())
            }
            _ => String::new(),
        };
        println!("{:<20} {} [{config}]{needs}{from}", d.name, d.description);
    }
    if bad.is_empty() {
        return Ok(Exit::Good);
    }
    for e in &bad {
        eprintln!("error: {e}");
    }
    Err(Failure::error(format!("{} file(s) could not be read", bad.len())))
}

/// Flags of `initrd`.
#[derive(clap::Args, Clone, Debug)]
pub struct InitrdArgs {
    /// The guest architecture init is built for [default: the host's]
    #[arg(long, value_enum, value_name = "ARCH")]
    pub(crate) arch: Option<Arch>,
    /// Also write it here [default: only the cache; its path is printed]
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) guest: GuestArgs,
}

/// `krepro initrd`: init built with the repro (or for the program), the
/// initrd additions on top; prints the path.
pub(crate) fn initrd(args: &InitrdArgs, cache: &Cache) -> Result<Exit, Failure> {
    let mut progress = Progress::new();
    let req = args.guest.request();
    let what = What::resolve(&req.program)?;
    let boot = request::Boot { arch: args.arch, ..request::Boot::default() };
    let arch = session::arch(&boot, None)?;
    let g = session::guest(&what, &req, &boot, arch, cache, &mut |m| progress.say(m))?;
    // No kernel here: modules come from --modules-from.
    let kernel = crate::image::kernel::Kernel { path: PathBuf::new(), release: None, arch };
    let machine = crate::boot::qemu::Machine::from_choice(crate::boot::qemu::MachineChoice::Auto, arch)
        .map_err(RunError::from)?;
    let extra = g.extras.pack_for(&kernel, arch, machine.channel_modules(), &[]).map_err(Failure::error)?;
    let mut bytes =
        std::fs::read(&g.initrd).map_err(|e| Failure::error(format!("read {}: {e}", g.initrd.display())))?;
    // The kernel unpacks concatenated archives in order.
    bytes.extend_from_slice(&extra);
    let path = match &args.output {
        Some(out) => out.clone(),
        None if extra.is_empty() => g.initrd.clone(),
        None => {
            let dir = cache.guest().join("initrd");
            std::fs::create_dir_all(&dir).map_err(|e| Failure::error(format!("create {}: {e}", dir.display())))?;
            dir.join(format!("{}.cpio.gz", &blake3::hash(&bytes).to_hex()[..24]))
        }
    };
    if path != g.initrd {
        std::fs::write(&path, &bytes).map_err(|e| Failure::error(format!("write {}: {e}", path.display())))?;
    }
    if let Some(secs) = g.guest_timeout {
        progress.say(&format!(
            "note: --guest-timeout is a kernel command line word; boot with --append {}{}={secs}",
            repros::protocol::CMDLINE_PREFIX,
            repros::protocol::CMDLINE_GUEST_TIMEOUT
        ));
    }
    println!("{}", path.display());
    Ok(Exit::Good)
}

#[derive(clap::Subcommand, Debug)]
pub enum KernelCommand {
    /// Build the smallest kernel that runs a repro: base config + krepro's
    /// fragment + the repro's options + your fragments, olddefconfig, every
    /// requested option checked; cached by source, config, compiler and
    /// make args. Prints the image's path. Exit: 0 built, 125 the tree does
    /// not build (or cannot give the repro its config), 128 error
    Build(Box<KernelBuildArgs>),
    /// Download the newest Debian cloud kernel into the cache (apt-get
    /// download; no root needed, but as root a foreign architecture is
    /// added to dpkg first); prints the image's path
    Fetch {
        /// Only this series, e.g. 6.1 or 6.12
        series: Option<String>,
        /// The kernel's architecture: x86_64 (amd64) or aarch64 (arm64)
        /// [default: the host's]
        #[arg(long, value_enum, value_name = "ARCH")]
        arch: Option<Arch>,
    },
}

/// Flags of `kernel build`.
#[derive(clap::Args, Clone, Debug)]
pub struct KernelBuildArgs {
    /// The repro whose config options go in: a name, or a .rs file
    #[arg(long, value_name = "NAME")]
    pub(crate) repro: Option<String>,
    /// Also copy the image here, its .config to FILE.config (the runner
    /// reads it, e.g. to know whether the kernel has ACPI) and its
    /// System.map to FILE.map (`bench --profile` names functions with it)
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The guest will have N CPUs: N > 1 adds SMP [default: what the
    /// repro declares, else 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) cpus: Option<u32>,
    /// The guest will have this disk (as for `run`): adds the block
    /// layer, virtio-blk and the disk's filesystem; repeatable
    #[arg(long = "disk", value_name = "SPEC")]
    pub(crate) disks: Vec<DiskSpec>,
    /// The kernel's architecture: x86_64 (a bzImage) or aarch64 (an
    /// arm64 Image, cross-built with the cross gcc or LLVM=1)
    /// [default: the host's]
    #[arg(long, value_enum, value_name = "ARCH")]
    pub(crate) arch: Option<Arch>,
    /// Print one JSON object on stdout instead of the image's path: the
    /// build's image, config, compiler, where its time went and, with
    /// --distcc or --ccache-remote, its ccache hits
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

pub(crate) fn kernel(command: KernelCommand, cache: &Cache) -> Result<Exit, Failure> {
    let mut progress = Progress::new();
    match command {
        KernelCommand::Fetch { series, arch } => {
            let arch = arch.unwrap_or_else(Arch::host_or_default);
            let path =
                fetch::fetch(cache, series.as_deref(), arch, &mut |m| progress.say(m)).map_err(Failure::error)?;
            println!("{}", path.display());
            Ok(Exit::Good)
        }
        KernelCommand::Build(args) => {
            let source = args.tree.tree().ok_or_else(|| {
                Failure::error("kernel build: the current directory is not a kernel tree (give --source DIR)")
            })?;
            let boot = request::Boot {
                arch: args.arch,
                cpus: args.cpus,
                disks: args.disks.clone(),
                ..request::Boot::default()
            };
            let arch = session::arch(&boot, None)?;
            // The repro's declared needs, unless given here (memory does
            // not change the config).
            let repro = match &args.repro {
                Some(r) => {
                    match What::resolve(&request::Program::Repro { arg: guest::ReproArg::parse(r), name: None })? {
                        What::Repro(r) => Some(r),
                        _ => return Err(Failure::error(format!("--repro {r}: a C source declares no kernel config"))),
                    }
                }
                None => None,
            };
            let spec = session::GuestSpec::resolve(&boot, repro.as_ref())?;
            let opts =
                session::build_options(&args.config.request(source.clone()), arch, &spec, repro.as_ref(), source);
            let built = crate::builder::build(&opts, cache, &mut |ev| progress.build_event(ev));
            progress.clear();
            let built = built.map_err(|e| Failure::from(RunError::from(e)))?;
            if built.cache_hit {
                progress.say(&format!(
                    "cache hit: {} (built in {:.0} s earlier)",
                    built.image.display(),
                    built.build_secs
                ));
                for line in &built.lost {
                    progress.say(&format!("warning: {line}"));
                }
            } else {
                progress.say(&format!(
                    "built {} in {} (log {})",
                    built.image.display(),
                    mmss(built.build_secs),
                    built.log.display()
                ));
            }
            let (built_hit, built_info) = (built.cache_hit, built.clone());
            let path = match &args.output {
                Some(out) => {
                    built
                        .copy_to(out)
                        .map_err(|e| Failure::error(format!("copy the image to {}: {e}", out.display())))?;
                    out.clone()
                }
                None => built.image,
            };
            if args.json {
                #[derive(serde::Serialize)]
                struct Report<'a> {
                    path: &'a std::path::Path,
                    cache_hit: bool,
                    #[serde(flatten)]
                    built: &'a crate::builder::Built,
                }
                let report = Report { path: &path, cache_hit: built_hit, built: &built_info };
                println!("{}", serde_json::to_string(&report).expect("plain data serialises"));
            } else {
                println!("{}", path.display());
            }
            Ok(Exit::Good)
        }
    }
}
