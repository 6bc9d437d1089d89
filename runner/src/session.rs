//! A command's request checked once and made ready: the repro resolved
//! (its declaration read) and init built for it, the guest's resources
//! decided, the kernel found (or built) and checked, qemu found, the boot
//! [`Plan`] filled in. What the layers below get is checked already: the
//! [`Kernel`] they take was checked once here, not a path to check again.
//!
//! The order is cheapest first: a repro name or file that does not exist,
//! a contradiction between flags or a file that is not a kernel fails
//! before init is built, init (seconds, cached) before a kernel is built
//! (minutes), and all of it before qemu starts.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::boot::disk::{self, DiskSpec};
use crate::boot::log::LogDir;
use crate::boot::outcome::Exit;
use crate::boot::qemu::{self, Machine};
use crate::boot::run::{Bootable, Plan};
use crate::boot::{interrupt, BootError};
use crate::builder::{self, BuildError, BuildEvent, BuildOptions, Built, ReproConfig};
use crate::guest::{self, GuestError, Selected};
use crate::host::cache::Cache;
use crate::host::fetch::{self, FetchError};
use crate::image::arch::Arch;
use crate::image::kernel::{check_kernel, Kernel, KernelError};
use crate::initrd::extras::{ExecSpec, Extras, ExtrasError, ModuleSpec};
use crate::request::{self, Program};

/// Why a command could not run at all (as opposed to what a boot found).
/// Every variant is one line for the user (a compile error: rustc's
/// lines), and carries its exit status ([`RunError::exit`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Extras(#[from] ExtrasError),
    #[error("no kernel to boot: {0}; pass --kernel FILE or run `krepro kernel fetch`")]
    NoKernel(String),
    #[error("{0}")]
    BadFlag(String),
}

impl RunError {
    /// 130 when interrupted; 125 for a tree that does not build (or
    /// cannot give the repro its config), so that `git bisect run` skips
    /// that commit; else 128, "could not run", which stops a bisect.
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Boot(BootError::Interrupted) | RunError::Build(BuildError::Interrupted) => Exit::Interrupted,
            RunError::Build(e) if e.is_tree_failure() => Exit::Skip,
            _ => Exit::Error,
        }
    }
}

impl From<FetchError> for RunError {
    fn from(e: FetchError) -> RunError {
        RunError::NoKernel(e.to_string())
    }
}

/// What the guest gets: the flags, else what the repro declares, else
/// krepro's defaults (1 CPU, no disk, 256 MiB). Decided once per command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestSpec {
    pub cpus: u32,
    pub disks: Vec<DiskSpec>,
    pub memory_mib: u32,
}

/// Guest memory when neither the flag nor the repro says.
pub(crate) const DEFAULT_MEMORY_MIB: u32 = 256;

impl GuestSpec {
    /// The guest for `repro` (None: an `--exec` program): each flag given
    /// wins over what the repro declares.
    pub(crate) fn resolve(boot: &request::Boot, repro: Option<&guest::Repro>) -> Result<GuestSpec, RunError> {
        let decl = repro.map(|r| &r.decl);
        let disks = match (boot.disks.as_slice(), decl) {
            ([], Some(d)) => d
                .disks
                .iter()
                .map(|s| s.parse().map_err(|e| RunError::BadFlag(format!("repro {} declares disk {s}: {e}", d.name))))
                .collect::<Result<_, _>>()?,
            (given, _) => given.to_vec(),
        };
        let memory_mib =
            boot.memory_mib.or(decl.map(|d| d.memory_mib).filter(|m| *m > 0)).unwrap_or(DEFAULT_MEMORY_MIB);
        check_memory(memory_mib, crate::host::memory_available_mib())?;
        Ok(GuestSpec { cpus: boot.cpus.or(decl.map(|d| d.cpus)).unwrap_or(1).max(1), disks, memory_mib })
    }
}

/// Refuses guest memory the host does not have free: qemu would fail to
/// allocate it, or the host would swap through every boot.
fn check_memory(mib: u32, available_mib: Option<u64>) -> Result<(), RunError> {
    match available_mib {
        Some(free) if u64::from(mib) > free => Err(RunError::BadFlag(format!(
            "--memory {mib}: the guest would get {mib} MiB, but this host has {free} MiB available"
        ))),
        _ => Ok(()),
    }
}

/// The guest side of a command, checked and built.
#[derive(Clone, Debug)]
pub struct Guest {
    pub arch: Arch,
    /// The repro init is told to run: the repro's name, or `exec`.
    pub repro: String,
    /// The repro's declaration, when a repro runs (not a program).
    pub selected: Option<guest::Repro>,
    /// How reports name what ran: the repro, or the program's file.
    pub label: String,
    /// The initrd with init in it.
    pub initrd: PathBuf,
    /// `--exec`, `--file`, `--modules`.
    pub extras: Extras,
    pub spec: GuestSpec,
    pub guest_timeout: Option<u64>,
}

impl Guest {
    /// The builder's options for `req` at `source` (the tree, or a
    /// bisect's worktree): for this guest's architecture, resources and
    /// repro.
    /// `vmlinux`: build only what krepro boots (see [`boots_vmlinux`]).
    pub(crate) fn build_options(&self, req: &request::Build, source: PathBuf, vmlinux: bool) -> BuildOptions {
        BuildOptions { vmlinux, ..build_options(req, self.arch, &self.spec, self.selected.as_ref(), source) }
    }
}

/// The builder's options for `req` at `source`: krepro's fragment for
/// `arch`, what `spec` needs (SMP, virtio-blk, the disks' filesystems) and
/// what `repro` declares.
pub(crate) fn build_options(
    req: &request::Build,
    arch: Arch,
    spec: &GuestSpec,
    repro: Option<&guest::Repro>,
    source: PathBuf,
) -> BuildOptions {
    BuildOptions {
        arch,
        cpus: spec.cpus,
        disks: spec.disks.clone(),
        source,
        repro: repro.map(|r| ReproConfig { name: r.decl.name.clone(), options: r.decl.config.clone() }),
        base: req.base.clone(),
        fragments: req.fragments.clone(),
        settings: req.settings.clone(),
        commit: req.commit.clone(),
        step: None,
        make_args: req.make_args.clone(),
        cc: req.cc,
        jobs: req.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        vmlinux: false,
        distribute: req.distribute.clone(),
        ccache_remote: req.ccache_remote.clone(),
    }
}

/// Whether a kernel krepro builds to boot with `boot` can be only its
/// vmlinux: unless the user asked for the bzImage entry.
pub(crate) fn boots_vmlinux(boot: &request::Boot) -> bool {
    boot.entry != crate::boot::run::EntryChoice::Bzimage
}

/// What runs, resolved without building anything: a repro's declaration
/// read, a C source or program found. Cheap: the first check of every
/// command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    Repro(guest::Repro),
    CSource(PathBuf),
    Exec(PathBuf),
    Initrd { path: PathBuf, repro: String },
}

impl What {
    pub(crate) fn resolve(program: &Program) -> Result<What, RunError> {
        Ok(match program {
            Program::Repro { arg, name } => match guest::select(arg, name.as_deref())? {
                Selected::Repro(r) => What::Repro(r),
                Selected::CSource(p) => What::CSource(p),
            },
            Program::Exec(p) => What::Exec(p.clone()),
            Program::Initrd { path, repro } => {
                if !path.is_file() {
                    return Err(BootError::InitrdNotFound(path.clone()).into());
                }
                What::Initrd { path: path.clone(), repro: repro.clone() }
            }
        })
    }

    pub(crate) fn repro(&self) -> Option<&guest::Repro> {
        match self {
            What::Repro(r) => Some(r),
            _ => None,
        }
    }
}

/// The guest side of a command for guests of `arch`: init built with the
/// repro (or for the program), the initrd additions read and checked.
pub fn guest(
    what: &What,
    req: &request::Guest,
    boot: &request::Boot,
    arch: Arch,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<Guest, RunError> {
    let spec = GuestSpec::resolve(boot, what.repro())?;
    for d in &spec.disks {
        disk::check(d)?;
    }
    let exec_path = match what {
        What::CSource(src) => Some(guest::cc::compile(cache, src, arch, say)?),
        What::Exec(p) => Some(p.clone()),
        _ => None,
    };
    let mut exec = exec_path.as_ref().map(|path| ExecSpec {
        path: path.clone(),
        args: req.args.clone(),
        env: req.env.clone(),
        busybox: None,
    });
    if let Some(spec) = exec.as_mut().filter(|s| crate::initrd::extras::is_script(&s.path)) {
        let bb = crate::host::install::find_or_install("busybox", "busybox-static", say)
            .map_err(|e| ExtrasError::BadExec { path: spec.path.clone(), why: format!("a script needs {e}") })?;
        spec.busybox = Some(bb);
    }
    let modules = req.modules.clone().map(|want| ModuleSpec { want, from: req.modules_from.clone() });
    let extras = Extras::new(exec.as_ref(), &req.files, modules)?;
    for note in &extras.notes {
        say(note);
    }
    let (repro, label, initrd) = match what {
        What::Repro(r) => {
            let init = guest::init::build(cache, arch, &[r], say)?;
            (r.name().to_owned(), r.name().to_owned(), init.initrd)
        }
        What::CSource(src) | What::Exec(src) => {
            let init = guest::init::build(cache, arch, &[], say)?;
            (repros::protocol::EXEC_REPRO.to_owned(), src.display().to_string(), init.initrd)
        }
        What::Initrd { path, repro } => {
            if let Some(init) = crate::initrd::init_arch(path).filter(|a| *a != arch) {
                return Err(RunError::BadFlag(format!(
                    "initrd {} holds an {init} init, but the guest is {arch} (build one with `krepro initrd --arch {arch}`)",
                    path.display()
                )));
            }
            (repro.clone(), repro.clone(), path.clone())
        }
    };
    Ok(Guest {
        arch,
        repro,
        selected: what.repro().cloned(),
        label,
        initrd,
        extras,
        spec,
        guest_timeout: req.guest_timeout,
    })
}

/// The boot plan every boot of a command shares: the flags checked once,
/// qemu for the guest's architecture found (or installed).
pub fn plan(boot: &request::Boot, guest: &Guest, cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<Plan, RunError> {
    if boot.quiet && boot.warn_is_crash {
        // quiet hides KERN_WARNING lines from the console.
        return Err(RunError::BadFlag("--warn-is-crash needs --console full: quiet hides WARNINGs".into()));
    }
    let machine = Machine::from_choice(boot.machine, guest.arch)?;
    let qemu = qemu::find_or_install(guest.arch, say)?;
    Ok(Plan {
        append: boot.append.clone(),
        quiet: boot.quiet,
        guest_timeout: guest.guest_timeout,
        timeout: Duration::from_secs(boot.timeout_secs),
        accel: boot.accel,
        machine,
        entry: boot.entry,
        memory_mib: guest.spec.memory_mib,
        cpus: guest.spec.cpus,
        disks: guest.spec.disks.clone(),
        qemu_args: boot.qemu_args.clone(),
        warn_is_crash: boot.warn_is_crash,
        speedups: boot.speedups,
        extras: guest.extras.clone(),
        logs: LogDir::new(boot.log_dir.clone().unwrap_or_else(|| cache.logs())),
        interrupt: interrupt::install(),
        ..Plan::new(qemu, guest.initrd.clone(), &guest.repro, cache.clone())
    })
}

/// How many of `runs` boots run at once: `--parallel J` (refused when J
/// guests need more memory than the host has free), else as many as the
/// host's CPUs and free memory hold (one with `--verbose`, whose console
/// is one boot's).
pub(crate) fn boots_at_once(explicit: Option<u32>, verbose: bool, runs: u32, plan: &Plan) -> Result<u32, RunError> {
    let free = crate::host::memory_available_mib();
    let j = match explicit {
        Some(j) => {
            let need = u64::from(j) * u64::from(plan.memory_mib);
            if let Some(free) = free.filter(|f| j > 1 && need > *f) {
                return Err(RunError::BadFlag(format!(
                    "--parallel {j}: {j} guests of {} MiB need {need} MiB, but this host has {free} MiB available",
                    plan.memory_mib
                )));
            }
            j
        }
        None if verbose => 1,
        None => crate::boot::parallel::default_parallel(plan.cpus, plan.memory_mib, free),
    };
    Ok(j.clamp(1, runs.max(1)))
}

/// The guest architecture, known before anything is built: the kernel's
/// (which `--arch` must agree with), else `--arch`, else the host's.
pub fn arch(boot: &request::Boot, kernel: Option<&Kernel>) -> Result<Arch, RunError> {
    match (kernel, boot.arch) {
        (Some(k), Some(a)) if k.arch != a => {
            Err(RunError::BadFlag(format!("--arch {a}, but {} is an {} kernel", k.path.display(), k.arch)))
        }
        (Some(k), _) => Ok(k.arch),
        (None, a) => Ok(a.unwrap_or_else(Arch::host_or_default)),
    }
}

/// `$KREPRO_KERNEL`, checked, when it is set.
pub(crate) fn env_kernel() -> Result<Option<Kernel>, RunError> {
    match std::env::var_os("KREPRO_KERNEL").filter(|v| !v.is_empty()) {
        Some(path) => Ok(Some(check_kernel(Path::new(&path))?)),
        None => Ok(None),
    }
}

/// The images a kernel tree's build leaves, per architecture.
const TREE_IMAGES: &[(Arch, &str)] = &[
    (Arch::X86_64, "arch/x86/boot/bzImage"),
    (Arch::Aarch64, "arch/arm64/boot/Image"),
    (Arch::Aarch64, "arch/arm64/boot/Image.gz"),
];

/// A kernel tree's own image (in `build_dir`, its `O=`, when given): of
/// `arch` when given, else the newest. Said with its age.
pub(crate) fn tree_kernel(
    dir: &Path,
    build_dir: Option<&Path>,
    arch: Option<Arch>,
    say: &mut dyn FnMut(&str),
) -> Result<Kernel, RunError> {
    let out = build_dir.unwrap_or(dir);
    let newest = TREE_IMAGES
        .iter()
        .filter(|(a, _)| arch.is_none_or(|want| want == *a))
        .filter_map(|(_, rel)| {
            let path = out.join(rel);
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            Some((modified, path))
        })
        .max_by_key(|(t, _)| *t);
    let Some((modified, path)) = newest else {
        let which = arch.map_or_else(|| "kernel image".to_owned(), |a| format!("{a} kernel image"));
        return Err(RunError::NoKernel(format!(
            "{} has no built {which} (arch/*/boot/{{bzImage,Image}}): build it with make (O=DIR: --build-dir DIR), \
             or let krepro build it with `krepro run --build`",
            out.display()
        )));
    };
    let kernel = check_kernel(&path)?;
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    let release = kernel.release.as_deref().map(|r| format!(", {r}")).unwrap_or_default();
    say(&format!("booting the tree's {} (built {} ago{release})", path.display(), age_words(age)));
    Ok(kernel)
}

/// An age as people say it: 40 s, 12 min, 3 h, 2 days.
fn age_words(d: Duration) -> String {
    match d.as_secs() {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", s / 60),
        s if s < 36 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

/// The kernel when none is named: `$KREPRO_KERNEL`, else for `arch` the
/// newest kernel in the cache, else /boot/vmlinuz-$(uname -r) if readable
/// and of `arch`, else the newest distro kernel, fetched into the cache.
pub fn default_kernel(arch: Arch, cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<Kernel, RunError> {
    if let Some(k) = env_kernel()? {
        return Ok(k);
    }
    if let Some(path) = fetch::newest_cached(&cache.kernels(), arch, None) {
        return Ok(check_kernel(&path)?);
    }
    let release = rustix::system::uname().release().to_string_lossy().into_owned();
    let boot = PathBuf::from(format!("/boot/vmlinuz-{release}"));
    if let Ok(k) = check_kernel(&boot) {
        if k.arch == arch {
            return Ok(k);
        }
    }
    say(&format!(
        "no kernel given (--kernel), no {arch} kernel in the cache and no readable /boot kernel: fetching the newest distro kernel"
    ));
    let path = fetch::fetch(cache, None, arch, say)?;
    Ok(check_kernel(&path)?)
}

/// Builds (or finds in the build cache) the kernel `req` describes for
/// `guest`: krepro's fragment, the repro's options, the guest's needs.
pub(crate) fn build_kernel(
    req: &request::Build,
    guest: &Guest,
    boot: &request::Boot,
    cache: &Cache,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<Built, RunError> {
    Ok(builder::build(&guest.build_options(req, req.source.clone(), boots_vmlinux(boot)), cache, on)?)
}

/// `krepro run`, ready: one plan and one kernel to boot `verdicts.runs` times.
pub(crate) struct RunSession {
    pub guest: Guest,
    pub plan: Plan,
    pub target: Bootable,
    pub verdicts: request::Verdicts,
}

/// What `prepare` reports as it goes.
#[derive(Debug)]
pub(crate) enum Progress<'a> {
    Say(&'a str),
    Build(BuildEvent<'a>),
}

/// Checks a `run` request once and makes it ready to boot.
pub(crate) fn prepare(
    req: &request::Run,
    cache: &Cache,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<RunSession, RunError> {
    let what = What::resolve(&req.guest.program)?;
    if req.boot.quiet && req.boot.warn_is_crash {
        return Err(RunError::BadFlag("--warn-is-crash needs --console full: quiet hides WARNINGs".into()));
    }
    // A kernel named by file (or in a tree) is checked first: it says the
    // architecture init is built for.
    let named = match &req.kernel {
        request::Kernel::File(p) => Some(check_kernel(p)?),
        request::Kernel::Tree { dir, build_dir } => {
            Some(tree_kernel(dir, build_dir.as_deref(), req.boot.arch, &mut |m| on(Progress::Say(m)))?)
        }
        request::Kernel::Default => env_kernel()?,
        request::Kernel::Build(_) => None,
    };
    let arch = arch(&req.boot, named.as_ref())?;
    if let Some(k) = &named {
        // A fetched kernel booted is a kernel used: the cache's trim goes
        // least recently used first.
        if let Ok(rel) = k.path.strip_prefix(cache.kernels()) {
            if let Some(package) = rel.components().next() {
                crate::host::usage::touch(&cache.kernels().join(package));
            }
        }
        // Its entry too (a bzImage's payload is decompressed here), before
        // a minute of compiling init for a kernel that cannot boot.
        crate::boot::run::choose_entry(k, req.boot.entry, cache, &mut |_| {})?;
    }
    let guest = guest(&what, &req.guest, &req.boot, arch, cache, &mut |m| on(Progress::Say(m)))?;
    let plan = plan(&req.boot, &guest, cache, &mut |m| on(Progress::Say(m)))?;
    let kernel = match (named, &req.kernel) {
        (Some(k), _) => k,
        (None, request::Kernel::Build(b)) => {
            let built = build_kernel(b, &guest, &req.boot, cache, &mut |ev| on(Progress::Build(ev)))?;
            if !built.cache_hit {
                on(Progress::Say(&format!("built {} in {:.0} s", built.image.display(), built.build_secs)));
            }
            check_kernel(&built.image)?
        }
        (None, _) => default_kernel(arch, cache, &mut |m| on(Progress::Say(m)))?,
    };
    let target = plan.target(&kernel, &mut |m| on(Progress::Say(m)))?;
    Ok(RunSession { guest, plan, target, verdicts: req.verdicts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{ReproArg, ReproFile};

    fn repro(name: &str) -> guest::Repro {
        guest::Catalog::builtin().find(name).cloned().unwrap()
    }

    #[test]
    fn guest_memory_beyond_what_the_host_has_free_is_refused() {
        assert!(check_memory(256, Some(20_000)).is_ok() && check_memory(256, None).is_ok());
        let e = check_memory(100_000, Some(20_000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--memory 100000: the guest would get 100000 MiB, but this host has 20000 MiB available"
        );
    }

    #[test]
    fn a_repros_declared_needs_are_defaults_that_flags_override() {
        let mut needy = repro("smoke");
        needy.decl.cpus = 2;
        needy.decl.disks = vec!["new:64M:ext4".into()];
        needy.decl.memory_mib = 512;
        let boot = request::Boot::default();
        let declared = GuestSpec::resolve(&boot, Some(&needy)).unwrap();
        assert_eq!(declared, GuestSpec { cpus: 2, disks: vec!["new:64M:ext4".parse().unwrap()], memory_mib: 512 });
        let flags = request::Boot {
            cpus: Some(4),
            disks: vec!["/x.img".parse().unwrap()],
            memory_mib: Some(1024),
            ..request::Boot::default()
        };
        let given = GuestSpec::resolve(&flags, Some(&needy)).unwrap();
        assert_eq!(given, GuestSpec { cpus: 4, disks: vec!["/x.img".parse().unwrap()], memory_mib: 1024 });
        assert_eq!(
            GuestSpec::resolve(&boot, None).unwrap(),
            GuestSpec { cpus: 1, disks: vec![], memory_mib: DEFAULT_MEMORY_MIB }
        );
        let mut broken = repro("smoke");
        broken.decl.disks = vec!["new:lots".into()];
        let e = GuestSpec::resolve(&boot, Some(&broken)).unwrap_err();
        assert_eq!(e.to_string(), "repro smoke declares disk new:lots: lots: a size like 64M, 1G or 512K");
        // Every built-in repro's disks parse.
        for r in guest::Catalog::builtin().repros {
            GuestSpec::resolve(&boot, Some(&r)).unwrap_or_else(|e| panic!("{}: {e}", r.name()));
        }
    }

    #[test]
    fn bad_requests_fail_before_anything_is_built() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path().join("cache"));
        let run = |req: request::Run| prepare(&req, &cache, &mut |_| {}).err().map(|e| e.to_string());
        let quiet = request::Boot { quiet: true, warn_is_crash: true, ..request::Boot::default() };
        assert_eq!(
            run(request::Run { boot: quiet, ..request::Run::default() }).unwrap(),
            "--warn-is-crash needs --console full: quiet hides WARNINGs"
        );
        let unknown = request::Guest {
            program: Program::Repro { arg: ReproArg::Name("no_such_repro".into()), name: None },
            ..request::Guest::default()
        };
        assert!(run(request::Run { guest: unknown, ..request::Run::default() })
            .unwrap()
            .starts_with("unknown repro 'no_such_repro'; known repros: smoke, "));
        let missing = request::Run { kernel: request::Kernel::File(d.path().join("nope")), ..request::Run::default() };
        assert_eq!(run(missing).unwrap(), format!("kernel {} does not exist", d.path().join("nope").display()));
        let empty_tree = request::Run {
            kernel: request::Kernel::Tree { dir: d.path().to_owned(), build_dir: None },
            ..request::Run::default()
        };
        assert!(run(empty_tree).unwrap().contains("has no built kernel image"), "tree without an image");
        // Nothing was built for any of them.
        assert!(!cache.guest().exists());
    }

    #[test]
    fn a_trees_newest_image_is_picked_and_its_age_said() {
        let d = tempfile::tempdir().unwrap();
        let real = crate::image::elf::testing::cached_kernel("6.1");
        let bz = d.path().join("out/arch/x86/boot/bzImage");
        std::fs::create_dir_all(bz.parent().unwrap()).unwrap();
        std::fs::copy(&real, &bz).unwrap();
        let mut said = Vec::new();
        let k = tree_kernel(d.path(), Some(&d.path().join("out")), None, &mut |m| said.push(m.to_owned())).unwrap();
        assert_eq!(k.path, bz);
        assert!(said[0].starts_with(&format!("booting the tree's {} (built ", bz.display())), "{said:?}");
        let e = tree_kernel(d.path(), Some(&d.path().join("out")), Some(Arch::Aarch64), &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("has no built aarch64 kernel image"), "{e}");
        assert_eq!(age_words(Duration::from_secs(30)), "30 s");
        assert_eq!(age_words(Duration::from_secs(12 * 60)), "12 min");
        assert_eq!(age_words(Duration::from_secs(3 * 86400)), "3 days");
    }

    #[test]
    fn arch_follows_the_kernel_and_refuses_a_contradiction() {
        let k = Kernel { path: "/k".into(), release: None, arch: Arch::Aarch64 };
        let boot = request::Boot::default();
        assert_eq!(arch(&boot, Some(&k)).unwrap(), Arch::Aarch64);
        assert_eq!(arch(&boot, None).unwrap(), Arch::host_or_default());
        let x86 = request::Boot { arch: Some(Arch::X86_64), ..request::Boot::default() };
        assert_eq!(arch(&x86, Some(&k)).unwrap_err().to_string(), "--arch x86_64, but /k is an aarch64 kernel");
        assert_eq!(repro("smoke").file, ReproFile::Builtin("01-smoke.rs"));
    }
}
