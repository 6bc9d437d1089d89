//! The kernel builder: the smallest kernel that runs a repro, built out of
//! tree in krepro's cache, never writing into the source tree, and cached
//! by what went into it.

pub mod distribute;
pub(crate) mod hosttools;
pub(crate) mod kconfig;
pub(crate) mod kindex;
pub(crate) mod toolchain;
pub(crate) mod treehash;
pub(crate) mod worktree;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::cache::Cache;
use crate::host::spawn::{Cmd, CmdError, Line};
use crate::host::usage::{self, human};
use crate::image::arch::Arch;
use kconfig::Request;

/// The base config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Base {
    Tinyconfig,
    Defconfig,
    File(PathBuf),
}

impl std::str::FromStr for Base {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Base, Self::Err> {
        Ok(match s {
            "tinyconfig" => Base::Tinyconfig,
            "defconfig" => Base::Defconfig,
            file => Base::File(file.into()),
        })
    }
}

impl Base {
    /// How a report names it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Base::Tinyconfig => "tinyconfig".to_owned(),
            Base::Defconfig => "defconfig".to_owned(),
            Base::File(f) => f.display().to_string(),
        }
    }
}

/// Whether `dir` is the top of a kernel source tree: a Makefile, Kconfig
/// and arch/.
pub(crate) fn is_kernel_tree(dir: &Path) -> bool {
    dir.join("Makefile").is_file() && dir.join("Kconfig").is_file() && dir.join("arch").is_dir()
}

/// What to build.
#[derive(Clone, Debug)]
pub(crate) struct BuildOptions {
    pub source: PathBuf,
    /// The repro the kernel is for: its name and the options it declares.
    pub repro: Option<ReproConfig>,
    pub base: Base,
    pub fragments: Vec<PathBuf>,
    /// Single options on top (`--config-add CONFIG_X=y`), after the fragments.
    pub settings: Vec<String>,
    pub make_args: Vec<String>,
    pub jobs: usize,
    /// The guest's CPUs and disks: what the boot flags need goes in too.
    pub cpus: u32,
    pub disks: Vec<crate::boot::disk::DiskSpec>,
    /// The compiler (`--cc`); a CC= or LLVM= in `make_args` overrides it.
    pub cc: toolchain::CcChoice,
    /// The guest's architecture: `ARCH=`, krepro's fragment, the image;
    /// a cross gcc where the host is another.
    pub arch: Arch,
    /// Build only what krepro boots: on x86 the vmlinux, entered through
    /// PVH, when the config has PVH (no bzImage, no compression, nothing
    /// to take out of it again); else the boot image.
    pub vmlinux: bool,
    /// Of a git tree, build this commit (in krepro's worktree) instead of
    /// the tree as it is.
    pub commit: Option<String>,
    /// A config bisect's step: its options on the base.
    pub step: Option<ConfigStep>,
    /// `--distcc`: compiles sent to other machines.
    pub distribute: Option<distribute::Distribute>,
    /// `--ccache-remote`: ccache's shared remote storage.
    pub ccache_remote: Option<String>,
}

/// A config bisect's step: the options it changes from the good config,
/// set after krepro's own (which the bisect leaves out of its changes)
/// and before the user's fragments. Every step of one bisect builds in
/// one build dir (`tag`), so that kbuild rebuilds only what a step's
/// options change; one that `olddefconfig` undoes is expected there, not
/// a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConfigStep {
    pub tag: String,
    pub options: Vec<(String, kconfig::Value)>,
}

/// What a repro asks of the kernel: its declared options (each `=y`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ReproConfig {
    pub name: String,
    pub options: Vec<String>,
}

/// What the builder is doing, for progress output.
#[derive(Debug)]
pub(crate) enum BuildEvent<'a> {
    /// A phase began: "identify source", "config", "build".
    Phase(&'a str),
    /// Something the user should know (ccache used, an option lost).
    Note(&'a str),
    /// During `make`: objects compiled so far.
    Progress { compiled: usize, elapsed: Duration },
}

impl Built {
    /// Copies the image to `out`, its config to `out.config` (the runner
    /// reads it beside a kernel) and, where the build kept one, its
    /// System.map to `out.map`.
    pub(crate) fn copy_to(&self, out: &Path) -> std::io::Result<()> {
        let beside = |suffix: &str| {
            let mut p = out.to_owned().into_os_string();
            p.push(suffix);
            PathBuf::from(p)
        };
        std::fs::copy(&self.image, out)?;
        std::fs::copy(&self.config, beside(".config"))?;
        // Builds cached before System.map was kept have none.
        let map = self.image.with_file_name("System.map");
        if map.is_file() {
            std::fs::copy(&map, beside(".map"))?;
        }
        Ok(())
    }
}

/// A finished kernel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Built {
    /// The kernel to boot: the bzImage (x86) or Image (arm64), or with
    /// `BuildOptions::vmlinux` the x86 vmlinux itself.
    #[serde(alias = "bzimage")]
    pub image: PathBuf,
    pub config: PathBuf,
    pub key: String,
    pub source_identity: String,
    pub build_dir: PathBuf,
    pub log: PathBuf,
    /// Requested options that did not survive, explained (warnings).
    pub lost: Vec<String>,
    pub build_secs: f64,
    /// The compiler, as `--cc` names it ("gcc-12", "clang-19"), and its
    /// `--version` line.
    #[serde(default)]
    pub compiler: String,
    #[serde(default)]
    pub compiler_version: String,
    #[serde(skip)]
    pub cache_hit: bool,
    /// Where the time went (a cache hit: finding it only).
    #[serde(default)]
    pub phases: BuildPhases,
}

/// Where a build's time went, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildPhases {
    /// The source's identity (the cache key's part from the tree).
    pub identify: f64,
    /// Choosing the compiler (and installing it).
    pub toolchain: f64,
    /// The base config, the merge, olddefconfig and the option check.
    pub config: f64,
    /// make, until the link of vmlinux begins: compiling what changed
    /// (and kbuild walking the tree to find it).
    pub compile: f64,
    /// Linking vmlinux (with kallsyms' passes, the System.map).
    pub link: f64,
    /// The boot image from vmlinux: bzImage (compression) or Image.
    pub image: f64,
    /// How the compiles went in ccache (local hits, remote hits,
    /// compiled), where they could come from elsewhere (`--distcc`,
    /// `--ccache-remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ccache: Option<distribute::CacheStats>,
}

impl BuildPhases {
    /// make's own time: compile, link and image.
    pub fn make(&self) -> f64 {
        self.compile + self.link + self.image
    }
}

/// Why a build did not produce a kernel.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{} is not a kernel source tree for {arch} (no Makefile, Kconfig and arch/{})", .path.display(), .arch.kernel_arch())]
    NotAKernelTree { path: PathBuf, arch: Arch },
    #[error("{0}")]
    BadInput(String),
    #[error("the config cannot run the repro: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error("the kernel did not build (with {compiler}{}):\n{excerpt}\nfull log: {}", known.map(|k| format!("; {}", k.describe())).unwrap_or_default(), log.display())]
    Make { excerpt: String, log: PathBuf, compiler: String, known: Option<&'static toolchain::Signature> },
    #[error("{0}")]
    Toolchain(String),
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Tree(#[from] treehash::TreeError),
    #[error(transparent)]
    Worktree(#[from] worktree::WorktreeError),
    #[error(transparent)]
    Lock(#[from] crate::host::lock::LockError),
    #[error("interrupted")]
    Interrupted,
    #[error("the disk is full: the build in {} stopped with {} free there; free at least {} (it already holds {}), then run the same command (`krepro cache gc` trims krepro's cache)", .dir.display(), human(*.free), human(*.need), human(*.holds))]
    NoSpace { dir: PathBuf, free: u64, need: u64, holds: u64 },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl BuildError {
    /// Whether the tree itself is at fault (does not build, cannot give the
    /// repro its config): a bisect skips such a commit. Anything else stops.
    pub(crate) fn is_tree_failure(&self) -> bool {
        matches!(self, BuildError::Make { .. } | BuildError::Config(_))
    }

    /// One line for a report: a failed build's first compiler error (with
    /// what a known signature means), else the message's first line.
    pub(crate) fn first_error(&self) -> String {
        match self {
            BuildError::Make { excerpt, compiler, known, .. } => {
                let first = excerpt.lines().find(|l| l.contains("error")).or_else(|| excerpt.lines().next());
                let known = known.map(|k| format!(" ({})", k.describe())).unwrap_or_default();
                format!("does not build with {compiler}: {}{known}", first.unwrap_or("").trim())
            }
            other => other.to_string().lines().next().unwrap_or("").to_owned(),
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// The disk under `dir` (a build dir) is full: what is free there, what
/// the build dir holds, and what to free: as much again as it holds, at
/// least 1 GiB (a kernel build dir grows to several times its first
/// minutes' worth).
fn no_space(dir: &Path) -> BuildError {
    let holds = usage::disk_usage(dir);
    BuildError::NoSpace {
        dir: dir.to_owned(),
        free: usage::free_space(dir).unwrap_or(0),
        need: holds.max(1 << 30),
        holds,
    }
}

fn short_hash(parts: &[&[u8]]) -> String {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().to_hex()[..24].to_owned()
}

/// Every request of a build: krepro's fragment, the repro's options, then
/// the user's fragments (later ones win).
pub(crate) fn requests(opts: &BuildOptions) -> Result<Vec<Request>, BuildError> {
    let mut reqs = kconfig::krepro_fragment(opts.arch);
    if let Some(repro) = &opts.repro {
        reqs.extend(kconfig::repro_fragment(&repro.name, &repro.options));
    }
    reqs.extend(kconfig::boot_fragment(opts.arch, opts.cpus, &opts.disks));
    if let Some(step) = &opts.step {
        reqs.extend(step.options.iter().map(|(name, value)| Request {
            name: name.clone(),
            value: value.clone(),
            origin: kconfig::Origin::ConfigStep,
        }));
    }
    for f in &opts.fragments {
        let text = std::fs::read_to_string(f).map_err(io(format!("read fragment {}", f.display())))?;
        reqs.extend(kconfig::parse_fragment(&text, &f.display().to_string()).map_err(BuildError::BadInput)?);
    }
    for line in &opts.settings {
        reqs.extend(kconfig::parse_fragment(line, "--config-add").map_err(BuildError::BadInput)?);
    }
    Ok(reqs)
}

/// The compiler a build uses, resolved for one tree.
#[derive(Clone, Debug)]
struct Toolchain {
    /// As `--cc` names it, or what the user's make args say.
    name: String,
    /// The compiler `--cc` chose (None: the user's CC=/LLVM= make args).
    compiler: Option<toolchain::Compiler>,
    /// Make args: CC (wrapped in ccache where installed), HOSTCC, LLVM=1.
    args: Vec<String>,
    /// A directory to put first on make's PATH (a versioned clang's bin).
    path: Option<PathBuf>,
    /// The compiler's `--version` line: part of the cache key.
    version: String,
    /// The compiler program CC runs ("gcc-12", "clang", a cross gcc).
    program: String,
    /// What `auto` would try next, best first (a retry takes from here).
    next: Vec<toolchain::Choice>,
}

/// kbuild's build facts that go into the kernel (`uname -v`), fixed so
/// that the same source and config give the same kernel, byte for byte,
/// and an unchanged step rebuilds nothing for them. A user's own value
/// (in the environment) wins.
const REPRODUCIBLE: &[(&str, &str)] = &[
    ("KBUILD_BUILD_USER", "krepro"),
    ("KBUILD_BUILD_HOST", "krepro"),
    ("KBUILD_BUILD_VERSION", "1"),
    ("KBUILD_BUILD_TIMESTAMP", "built by krepro"),
];

impl Toolchain {
    fn make(&self, args: Vec<String>, source: &Path) -> Cmd {
        let mut cmd = Cmd::new("make", args, source).quiet();
        for (var, value) in REPRODUCIBLE {
            if std::env::var_os(var).is_none() {
                cmd = cmd.env(var, value);
            }
        }
        if let Some(dir) = &self.path {
            let mut path = std::ffi::OsString::from(dir);
            path.push(":");
            path.push(std::env::var_os("PATH").unwrap_or_default());
            cmd = cmd.env("PATH", path);
        }
        cmd
    }
}

/// The first line of `program --version`, run with `path` first on PATH.
fn version_line(program: &str, path: Option<&Path>) -> Option<String> {
    let exe = match path {
        Some(dir) => dir.join(program),
        None => which::which(program).ok()?,
    };
    let out = Cmd::new(&exe, ["--version"], Path::new("/")).quiet().output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned)
}

/// Whether a compiler for `target` can be run here (a clang with its lld).
fn is_installed(c: toolchain::Compiler, target: toolchain::Target) -> bool {
    use toolchain::Family;
    match (c.family, c.major) {
        (Family::Gcc, _) => which::which(toolchain::program(c, target)).is_ok(),
        (Family::Clang, Some(n)) => {
            let dir = PathBuf::from(format!("/usr/lib/llvm-{n}/bin"));
            ["clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy"].iter().all(|t| dir.join(t).is_file())
        }
        (Family::Clang, None) => ["clang", "ld.lld", "llvm-ar"].iter().all(|t| which::which(t).is_ok()),
    }
}

/// Makes `choice` usable: installs its packages with apt when we are root
/// and it is missing (saying so), else a one-line error with the command.
fn provide(
    choice: &toolchain::Choice,
    target: toolchain::Target,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<(), BuildError> {
    if is_installed(choice.compiler, target) {
        return Ok(());
    }
    let program = toolchain::program(choice.compiler, target);
    let for_arch = if target.cross { format!(" for {}", target.arch) } else { String::new() };
    let pkgs = toolchain::packages(choice.compiler, target);
    let pkgs: Vec<&str> = pkgs.iter().map(String::as_str).collect();
    on(BuildEvent::Note(&format!("{program} is not installed: installing {} with apt-get", pkgs.join(" "))));
    crate::host::install::apt_packages(&pkgs, &mut |m| on(BuildEvent::Note(m)))
        .map_err(|e| BuildError::Toolchain(format!("--cc {}{for_arch}: {e}", choice.compiler)))?;
    if !is_installed(choice.compiler, target) {
        return Err(BuildError::Toolchain(format!(
            "--cc {}{for_arch}: installed {} but {program} is still not there",
            choice.compiler,
            pkgs.join(" ")
        )));
    }
    Ok(())
}

/// The compiler for `source`: what the user's make args name (CC=, LLVM=),
/// else `--cc`, with `auto` reading the tree's version and minimum against
/// the era table. `forced` is a retry's choice.
fn resolve_toolchain(
    opts: &BuildOptions,
    source: &Path,
    ccache: Option<&Path>,
    forced: Option<toolchain::Choice>,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<Toolchain, BuildError> {
    // The same question gets the same answer for as long as krepro runs:
    // a bisect asks at every step, and the answer costs apt-cache queries
    // and `--version` runs (the tree's version and minimums are part of
    // the question, so an old commit still gets its own era's compiler).
    static CHOSEN: std::sync::Mutex<Vec<(String, Toolchain)>> = std::sync::Mutex::new(Vec::new());
    let question = format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        opts.arch,
        opts.cc,
        opts.make_args,
        forced.as_ref().map(|c| c.compiler),
        ccache,
        toolchain::tree_version(source),
        toolchain::tree_minimum(source, toolchain::Family::Gcc, opts.arch),
        toolchain::tree_minimum(source, toolchain::Family::Clang, opts.arch),
    );
    let known =
        CHOSEN.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(q, _)| *q == question).map(|(_, t)| t.clone());
    if let Some(tc) = known {
        return Ok(tc);
    }
    let tc = choose_toolchain(opts, source, ccache, forced, on)?;
    CHOSEN.lock().unwrap_or_else(|p| p.into_inner()).push((question, tc.clone()));
    Ok(tc)
}

/// [`resolve_toolchain`]'s answer, worked out.
fn choose_toolchain(
    opts: &BuildOptions,
    source: &Path,
    ccache: Option<&Path>,
    forced: Option<toolchain::Choice>,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<Toolchain, BuildError> {
    use toolchain::{CcChoice, Choice, Compiler, Family};
    let target = toolchain::Target::here(opts.arch);
    let user_cc = opts.make_args.iter().rev().find_map(|a| a.strip_prefix("CC=")).map(str::to_owned);
    let llvm = opts.make_args.iter().any(|a| a.starts_with("LLVM=") && a != "LLVM=0" && a != "LLVM=");
    if user_cc.is_some() || llvm {
        // The user's own make args: left as they are, ccache added only
        // where they did not name CC.
        let cc = user_cc.clone().unwrap_or_else(|| "clang".into());
        let program = cc.split_whitespace().last().unwrap_or("gcc").to_owned();
        let mut args = Vec::new();
        if user_cc.is_none() && ccache.is_some() {
            args.push(format!("CC=ccache {cc}"));
        }
        // A user's gcc for another architecture still needs its binutils.
        if target.cross && !llvm && !opts.make_args.iter().any(|a| a.starts_with("CROSS_COMPILE=")) {
            args.push(format!("CROSS_COMPILE={}", target.prefix()));
        }
        let version = version_line(&program, None).unwrap_or_else(|| program.clone());
        return Ok(Toolchain { name: cc, compiler: None, args, path: None, version, program, next: Vec::new() });
    }
    let version = toolchain::tree_version(source);
    let (choice, next) = match (forced, opts.cc) {
        (Some(choice), _) => (choice, Vec::new()),
        (None, CcChoice::Fixed(c)) => {
            (Choice { compiler: c, why: format!("--cc {c}"), install: !is_installed(c, target) }, Vec::new())
        }
        (None, CcChoice::Auto) => {
            let v = version.unwrap_or((0, 0));
            let mins = (
                toolchain::tree_minimum(source, Family::Gcc, opts.arch),
                toolchain::tree_minimum(source, Family::Clang, opts.arch),
            );
            let root = rustix::process::geteuid().is_root();
            let installed = |f| toolchain::installed(f, target);
            let mut cands = toolchain::candidates(v, mins, &installed, &|f| {
                if root {
                    toolchain::available(f, target)
                } else {
                    Vec::new()
                }
            });
            if cands.is_empty() {
                // Nothing the table allows is here: the plain gcc, said so.
                let row = toolchain::era(v);
                let gcc = Compiler { family: Family::Gcc, major: None };
                let allowed = row.gcc_max.map_or_else(|| "any gcc".to_owned(), |m| format!("gcc {m} or older"));
                cands.push(Choice {
                    compiler: gcc,
                    why: format!(
                        "no compiler known to build v{}.{} ({allowed}; {}) is installed or in the package archive; \
                         trying the default gcc",
                        v.0, v.1, row.source
                    ),
                    install: false,
                });
            }
            let first = cands.remove(0);
            (first, cands)
        }
    };
    provide(&choice, target, on)?;
    let (mut args, path) = toolchain::make_args(choice.compiler, ccache, target);
    if target.cross && choice.compiler.family == Family::Clang && !source.join("scripts/Makefile.clang").is_file() {
        // Before v5.15 clang took its --target from CROSS_COMPILE only.
        args.push(format!("CROSS_COMPILE={}", target.prefix()));
    }
    // A versioned clang is plain `clang` in its own bin dir (`path`).
    let program = match choice.compiler.family {
        Family::Gcc => toolchain::program(choice.compiler, target),
        Family::Clang => "clang".to_owned(),
    };
    let version = version_line(&program, path.as_deref()).unwrap_or_else(|| program.clone());
    on(BuildEvent::Note(&format!("compiler: {} ({})", choice.compiler, choice.why)));
    Ok(Toolchain {
        name: choice.compiler.to_string(),
        compiler: Some(choice.compiler),
        args,
        path,
        version,
        program,
        next,
    })
}

/// Builds (or finds in the cache) the kernel `opts` describes.
///
/// The compiler is `--cc`'s (see [`toolchain`]). When `auto` chose it and
/// the build fails with a known "compiler too new/old for this tree"
/// signature, it is retried once with the next compiler the era table
/// allows in the other direction, saying so.
pub(crate) fn build(
    opts: &BuildOptions,
    cache: &Cache,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<Built, BuildError> {
    // From here a SIGINT, SIGTERM or SIGHUP stops the build cleanly (the
    // make loop polls it) instead of killing krepro halfway.
    let interrupt = crate::boot::interrupt::install();
    let source = opts.source.canonicalize().map_err(io(format!("source tree {}", opts.source.display())))?;
    let arch_dir = Path::new("arch").join(opts.arch.kernel_arch());
    if !(source.join("Makefile").is_file() && source.join("Kconfig").is_file() && source.join(arch_dir).is_dir()) {
        return Err(BuildError::NotAKernelTree { path: opts.source.clone(), arch: opts.arch });
    }
    // A git tree builds in krepro's worktree of its repository, at a
    // snapshot of it (uncommitted changes included): the build dir follows
    // that worktree, so a bisect there later starts from this build.
    let mut _held = None;
    let source = match worktree::git_top(&source).filter(|_| !worktree::is_ours(cache, &source)) {
        Some(top) => {
            let snap = match &opts.commit {
                Some(c) => c.clone(),
                None => worktree::snapshot(&top)?,
            };
            let wt = worktree::take(cache, &top, None, &mut |m| on(BuildEvent::Note(m)))?;
            worktree::checkout(&wt.path, &snap)?;
            on(BuildEvent::Note(&format!(
                "building {} at {} in krepro's worktree {}",
                top.display(),
                &snap[..12.min(snap.len())],
                wt.path.display()
            )));
            let path = wt.path.clone();
            _held = Some(wt);
            path
        }
        None => source,
    };
    let ccache = match which::which("ccache") {
        Ok(c) => Some(c),
        // Distributed compiles go through ccache's prefix command.
        Err(_) if opts.distribute.is_some() => Some(
            crate::host::install::find_or_install("ccache", "ccache", &mut |m| on(BuildEvent::Note(m)))
                .map_err(|e| BuildError::Toolchain(format!("--distcc: {e}")))?,
        ),
        Err(_) => None,
    };
    let started = Instant::now();
    let tc = resolve_toolchain(opts, &source, ccache.as_deref(), None, on)?;
    let toolchain_secs = started.elapsed().as_secs_f64();
    let (first, next) = (tc.compiler, tc.next.clone());
    let with_toolchain = |mut built: Built| {
        built.phases.toolchain = toolchain_secs;
        built
    };
    let result = match build_with(opts, &source, cache, tc, ccache.as_deref(), on).map(with_toolchain) {
        Err(BuildError::Make { known: Some(sig), excerpt, log, compiler })
            if first.is_some() && opts.cc == toolchain::CcChoice::Auto =>
        {
            let Some(pick) = first.and_then(|f| toolchain::retry_pick(f, &next, sig.mismatch)) else {
                return Err(BuildError::Make { known: Some(sig), excerpt, log, compiler });
            };
            on(BuildEvent::Note(&format!(
                "{compiler} failed with a known signature ({}): retrying once with {}",
                sig.describe(),
                pick.compiler
            )));
            let tc = resolve_toolchain(opts, &source, ccache.as_deref(), Some(pick), on)?;
            build_with(opts, &source, cache, tc, ccache.as_deref(), on)
        }
        other => other,
    };
    match result {
        // A signal stopped it (a config make died of it, or the make loop
        // saw it): not the tree's failure.
        Err(_) if interrupt.load(std::sync::atomic::Ordering::SeqCst) => Err(BuildError::Interrupted),
        // A write of krepro's own (the .config, the finished kernel) found
        // the disk full: said as such, not as an I/O error.
        Err(BuildError::Io { source, .. })
            if matches!(source.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) =>
        {
            Err(no_space(&cache.build_dirs()))
        }
        other => other,
    }
}

/// One build with one compiler.
fn build_with(
    opts: &BuildOptions,
    source: &Path,
    cache: &Cache,
    tc: Toolchain,
    ccache: Option<&Path>,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<Built, BuildError> {
    let source = source.to_owned();
    let reqs = requests(opts)?;
    let base_id = match &opts.base {
        Base::Tinyconfig => "tinyconfig".to_owned(),
        Base::Defconfig => "defconfig".to_owned(),
        Base::File(f) => {
            let text = std::fs::read(f).map_err(io(format!("read base config {}", f.display())))?;
            format!("file:{}", blake3::hash(&text).to_hex())
        }
    };

    on(BuildEvent::Phase("identify source"));
    let identify_started = Instant::now();
    let tree_key = short_hash(&[source.as_os_str().as_encoded_bytes()]);
    let identity = treehash::identity(&source, &cache.treehash().join(&tree_key))?;
    let ccache_note = ccache.filter(|_| tc.args.iter().any(|a| a.starts_with("CC=ccache "))).map(|c| {
        let cc = tc.args.iter().find_map(|a| a.strip_prefix("CC=")).unwrap_or_default();
        format!("ccache found ({}): compiling with CC=\"{cc}\"", c.display())
    });
    let Keys { key, dir } = keys(opts, &source, &identity, &base_id, &reqs, &tc);
    let done = cache.built().join(&key);
    if let Ok(info) = std::fs::read_to_string(done.join("info.json")) {
        if let Ok(mut built) = serde_json::from_str::<Built>(&info) {
            if built.image.is_file() {
                crate::host::usage::touch(&done);
                built.cache_hit = true;
                built.phases =
                    BuildPhases { identify: identify_started.elapsed().as_secs_f64(), ..BuildPhases::default() };
                return Ok(built);
            }
        }
    }

    let build_dir = cache.build_dirs().join(dir);
    std::fs::create_dir_all(&build_dir).map_err(io(format!("create {}", build_dir.display())))?;
    let what = format!("the build dir {}", build_dir.display());
    let _lock = cache.lock(&build_dir.join(".krepro-lock"), &what, &mut |m| on(BuildEvent::Note(m)))?;
    let log_path = build_dir.join("krepro-build.log");
    let make_args = make_args(opts, &build_dir, &tc);
    let make = |extra: &[&str]| {
        let mut args = vec!["-s".to_owned()];
        args.extend(make_args.iter().cloned());
        args.extend(extra.iter().map(|s| s.to_string()));
        tc.make(args, &source)
    };

    let identify = identify_started.elapsed().as_secs_f64();
    on(BuildEvent::Phase("config"));
    let config_started = Instant::now();
    let host_tools = |needs: Vec<hosttools::Need>, on: &mut dyn FnMut(BuildEvent<'_>)| {
        hosttools::provide(&needs, &mut |m| on(BuildEvent::Note(m))).map_err(BuildError::Toolchain)
    };
    host_tools(hosttools::for_any_build(), on)?;
    let config_path = build_dir.join(".config");
    // The config is made again only when something it comes from changed:
    // the requests, the base, the compiler (Kconfig asks it), the make
    // args and the tree's Kconfig files. A bisect step that changes C
    // files only keeps its .config (and kbuild its auto.conf).
    let config_key = short_hash(&[
        opts.arch.name().as_bytes(),
        base_id.as_bytes(),
        req_text(&reqs).as_bytes(),
        tc.version.as_bytes(),
        tc.args.join("\0").as_bytes(),
        opts.make_args.join("\0").as_bytes(),
        kconfig_inputs(&source, cache)?.as_bytes(),
    ]);
    let stamp = build_dir.join(".krepro-config.json");
    let made_before = ConfigStamp::read(&stamp, &config_path).filter(|s| s.key == config_key);
    let (final_config, lost) = match made_before {
        Some(stamp) => {
            for line in &stamp.lost {
                on(BuildEvent::Note(line));
            }
            let text = std::fs::read_to_string(&config_path).map_err(io("read the .config"))?;
            (kconfig::parse_config(&text), stamp.lost)
        }
        None => {
            let _ = std::fs::remove_file(&stamp);
            match &opts.base {
                Base::Tinyconfig => make(&["tinyconfig"]).output().map(drop)?,
                Base::Defconfig => make(&["defconfig"]).output().map(drop)?,
                Base::File(f) => {
                    std::fs::copy(f, &config_path).map(drop).map_err(io(format!("copy {}", f.display())))?
                }
            }
            let base_text = std::fs::read_to_string(&config_path).map_err(io("read the base .config"))?;
            std::fs::write(&config_path, kconfig::merge(&base_text, &reqs)).map_err(io("write .config"))?;
            make(&["olddefconfig"]).output()?;
            let final_text = std::fs::read_to_string(&config_path).map_err(io("read the final .config"))?;
            let final_config = kconfig::parse_config(&final_text);
            let mut fatal = Vec::new();
            let mut lost = Vec::new();
            let checked = reqs.iter().filter(|r| r.origin != kconfig::Origin::ConfigStep).cloned().collect::<Vec<_>>();
            for l in kconfig::check(&final_config, &checked) {
                let why = kconfig::explain(&source, opts.arch, &l.request.name, &final_config);
                let line = format!(
                    "CONFIG_{}={} ({}) is {} in the final config: {why}",
                    l.request.name, l.request.value, l.request.origin, l.got
                );
                on(BuildEvent::Note(&line));
                if l.request.origin.is_fatal() {
                    fatal.push(line.clone());
                }
                lost.push(line);
            }
            if !fatal.is_empty() {
                return Err(BuildError::Config(fatal));
            }
            ConfigStamp {
                key: config_key,
                config: blake3::hash(final_text.as_bytes()).to_hex().to_string(),
                lost: lost.clone(),
            }
            .write(&stamp)?;
            (final_config, lost)
        }
    };
    // A tool the config needs and the host lacks is a host problem, not a
    // tree that does not build (which a bisect would skip).
    host_tools(hosttools::for_config(&final_config, opts.arch), on)?;
    if let Some(note) = &ccache_note {
        on(BuildEvent::Note(note));
    }

    let config = config_started.elapsed().as_secs_f64();
    on(BuildEvent::Phase("build"));
    let started = Instant::now();
    // What is made: the vmlinux when krepro boots it through PVH, else
    // the boot image, whose make target is its file name (bzImage, Image).
    // A KASAN kernel does not boot through PVH (it resets at once): the
    // bzImage it is.
    let pvh = opts.arch == Arch::X86_64
        && final_config.get("PVH") == Some(&kconfig::Value::Y)
        && final_config.get("KASAN") != Some(&kconfig::Value::Y);
    let image = if opts.vmlinux && pvh { "vmlinux" } else { opts.arch.boot_image() };
    let out_name = image.rsplit('/').next().unwrap_or(image);
    // ccache's way out: distcc or icecc behind it, its shared remote
    // storage, and a stats log for this build's hits.
    let mut env = Vec::new();
    let mut jobs = opts.jobs.max(1);
    let stats_log = build_dir.join(".krepro-ccache-stats.log");
    let _ = std::fs::remove_file(&stats_log);
    if ccache_note.is_some() {
        if let Some(d) = &opts.distribute {
            let remote = distribute::prepare(d, &tc.program, tc.path.as_deref(), &mut |m| on(BuildEvent::Note(m)))
                .map_err(BuildError::Toolchain)?;
            if let Some(r) = remote {
                jobs = jobs.max(r.jobs.unwrap_or(0));
                env.extend(r.env);
            }
        }
        env.extend(distribute::remote_storage_env(opts.ccache_remote.as_deref()));
        env.push(("CCACHE_STATSLOG".to_owned(), stats_log.display().to_string()));
    } else if opts.distribute.is_some() {
        on(BuildEvent::Note("--distcc: the make args name their own CC, so compiles stay here"));
    }
    let jobs = format!("-j{jobs}");
    let made = run_make(&source, &tc, &make_args, &[jobs.as_str(), out_name], &env, &log_path, on)?;
    // Told (and kept in the build's info) where compiles may come from
    // elsewhere: distcc, icecc, a shared remote storage.
    let shared = env.iter().any(|(k, _)| k != "CCACHE_STATSLOG");
    let ccache_stats =
        std::fs::read_to_string(&stats_log).ok().map(|log| distribute::CacheStats::parse(&log)).filter(|_| shared);
    if let Some(stats) = ccache_stats {
        on(BuildEvent::Note(&stats.to_string()));
    }
    let phases = BuildPhases {
        identify,
        toolchain: 0.0,
        config,
        compile: made.compile,
        link: made.link,
        image: made.image,
        ccache: ccache_stats,
    };
    let build_secs = started.elapsed().as_secs_f64();

    // Into the cache, atomically.
    let parent = done.parent().expect("built/ dir");
    std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    let staging =
        tempfile::Builder::new().prefix(".staging-").tempdir_in(parent).map_err(io("create a staging dir"))?;
    std::fs::copy(build_dir.join(image), staging.path().join(out_name)).map_err(io(format!("copy {out_name}")))?;
    std::fs::copy(&config_path, staging.path().join("config")).map_err(io("copy .config"))?;
    // The symbols, for `bench --profile` (a tinyconfig kernel has no
    // kallsyms to ask).
    std::fs::copy(build_dir.join("System.map"), staging.path().join("System.map")).map_err(io("copy System.map"))?;
    // With debug info, the vmlinux too (unless it is the image): crash
    // titles name inlined functions from it.
    if final_config.get("DEBUG_INFO") == Some(&kconfig::Value::Y) && out_name != "vmlinux" {
        std::fs::copy(build_dir.join("vmlinux"), staging.path().join("vmlinux.debug"))
            .map_err(io("copy vmlinux (debug info)"))?;
    }
    let built = Built {
        image: done.join(out_name),
        config: done.join("config"),
        key: key.clone(),
        source_identity: identity,
        build_dir: build_dir.clone(),
        log: log_path,
        lost,
        build_secs,
        compiler: tc.name.clone(),
        compiler_version: tc.version.clone(),
        cache_hit: false,
        phases,
    };
    let info = serde_json::to_string_pretty(&built).expect("plain data");
    std::fs::write(staging.path().join("info.json"), info).map_err(io("write info.json"))?;
    let staged = staging.keep();
    if std::fs::rename(&staged, &done).is_err() {
        // Another build of the same key finished first: keep theirs.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(built)
}

/// The requests as text, one `NAME=value` a line: part of the cache keys.
fn req_text(reqs: &[Request]) -> String {
    reqs.iter().map(|r| format!("{}={}\n", r.name, r.value)).collect()
}

/// What a build dir's .config was made from and what its check found:
/// a build with the same key reuses both.
#[derive(Debug, Serialize, Deserialize)]
struct ConfigStamp {
    key: String,
    /// The .config it left, by hash: one changed since (by hand, by make)
    /// is made again.
    config: String,
    lost: Vec<String>,
}

impl ConfigStamp {
    /// The stamp at `path`, if it is there and `config` is the .config it made.
    fn read(path: &Path, config: &Path) -> Option<ConfigStamp> {
        let stamp: ConfigStamp = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        let text = std::fs::read(config).ok()?;
        (blake3::hash(&text).to_hex().as_str() == stamp.config).then_some(stamp)
    }

    fn write(&self, path: &Path) -> Result<(), BuildError> {
        let text = serde_json::to_string_pretty(self).expect("plain data");
        crate::host::atomic::write(path, text.as_bytes()).map_err(io(format!("write {}", path.display())))
    }
}

/// What a tree's config comes from, beside the requests: its Kconfig
/// files, the scripts Kconfig runs, the Makefiles that set the version
/// and the architecture. In krepro's worktree, what git's index records
/// (it is what was checked out); elsewhere their contents.
fn kconfig_inputs(source: &Path, cache: &Cache) -> Result<String, BuildError> {
    const SPECS: &[&str] = &[":(glob)**/Kconfig*", "Makefile", ":(glob)arch/*/Makefile", "scripts"];
    if worktree::is_ours(cache, source) {
        let out = Cmd::new("git", ["ls-files", "-s", "--"].iter().chain(SPECS), source).quiet().output()?;
        return Ok(blake3::hash(&out.stdout).to_hex().to_string());
    }
    let mut h = blake3::Hasher::new();
    fn walk(dir: &Path, rel: &Path, h: &mut blake3::Hasher) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let path = rel.join(&name);
            let kind = e.file_type()?;
            if kind.is_dir() && name != ".git" {
                walk(&e.path(), &path, h)?;
            } else if kind.is_file() {
                let n = name.to_string_lossy();
                let wanted = n.starts_with("Kconfig")
                    || path.starts_with("scripts")
                    || path == Path::new("Makefile")
                    || (path.starts_with("arch") && n == "Makefile" && path.components().count() == 3);
                if wanted {
                    h.update(path.as_os_str().as_encoded_bytes());
                    h.update(&std::fs::read(e.path())?);
                }
            }
        }
        Ok(())
    }
    walk(source, Path::new(""), &mut h).map_err(io(format!("read the Kconfig files of {}", source.display())))?;
    Ok(h.finalize().to_hex().to_string())
}

/// What a build is cached by, both led by the arch so that x86 and arm64
/// builds of one tree never meet.
#[derive(Debug, PartialEq, Eq)]
struct Keys {
    /// The finished kernel's: everything that went into it.
    key: String,
    /// The build dir's, per (arch, tree, base, compiler, make args):
    /// incremental rebuilds reuse it, and switching compilers does not
    /// rebuild all.
    dir: String,
}

/// The cache key and build dir name of `opts` building `source`.
fn keys(opts: &BuildOptions, source: &Path, identity: &str, base_id: &str, reqs: &[Request], tc: &Toolchain) -> Keys {
    let req_text = req_text(reqs);
    let key = short_hash(&[
        opts.arch.name().as_bytes(),
        if opts.vmlinux { b"vmlinux" } else { b"image" },
        identity.as_bytes(),
        base_id.as_bytes(),
        req_text.as_bytes(),
        tc.version.as_bytes(),
        tc.args.join("\0").as_bytes(),
        opts.make_args.join("\0").as_bytes(),
    ]);
    let dir = short_hash(&[
        opts.arch.name().as_bytes(),
        source.as_os_str().as_encoded_bytes(),
        base_id.as_bytes(),
        // One build dir per config too: switching between two (a repro's
        // options, a fragment) does not rebuild what the other changed;
        // but one for all the steps of a config bisect.
        match &opts.step {
            Some(step) => step.tag.as_bytes(),
            None => req_text.as_bytes(),
        },
        tc.name.as_bytes(),
        opts.make_args.join("\0").as_bytes(),
    ]);
    Keys { key, dir }
}

/// Every build's make args: out of tree, the arch, the compiler's, then
/// the user's (later ones win in make).
fn make_args(opts: &BuildOptions, build_dir: &Path, tc: &Toolchain) -> Vec<String> {
    let mut args = vec![format!("O={}", build_dir.display()), format!("ARCH={}", opts.arch.make_arch())];
    args.extend(tc.args.iter().cloned());
    args.extend(opts.make_args.iter().cloned());
    args
}

/// How long one make took in each stage, told apart by kbuild's own
/// lines: the link begins with the first line about vmlinux, the image
/// with the first about `arch/*/boot/` after it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct MakeTimes {
    compile: f64,
    link: f64,
    image: f64,
}

/// Which stage of a kernel build a kbuild line (`  LD      vmlinux.o`)
/// begins, if it begins one.
fn stage_of(line: &str) -> Option<Stage> {
    let mut words = line.split_whitespace();
    let (tool, target) = (words.next()?, words.next()?);
    if !tool.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
        return None;
    }
    if target.starts_with("arch/") && target.split('/').nth(2) == Some("boot") {
        return Some(Stage::Image);
    }
    let vmlinux = target.starts_with("vmlinux") || target.starts_with(".tmp_vmlinux");
    vmlinux.then_some(Stage::Link)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Link,
    Image,
}

/// Runs make with its output to `log`, counting compiled objects for
/// progress and timing its stages; on failure, the error lines and the
/// log path.
fn run_make(
    source: &Path,
    tc: &Toolchain,
    make_args: &[String],
    extra: &[&str],
    env: &[(String, String)],
    log: &Path,
    on: &mut dyn FnMut(BuildEvent<'_>),
) -> Result<MakeTimes, BuildError> {
    let mut logf = std::fs::File::create(log).map_err(io(format!("create {}", log.display())))?;
    let mut cmd = tc.make(make_args.iter().cloned().chain(extra.iter().map(|e| e.to_string())).collect(), source);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let _ = writeln!(logf, "$ {}", cmd.line());
    // make in a process group of its own: a SIGTERM or SIGHUP to krepro
    // alone (not the terminal's Ctrl-C to the whole group) stops it too.
    let mut child = cmd.contained().spawn_lines()?;
    let interrupt = crate::boot::interrupt::install();
    let started = Instant::now();
    let mut compiled = 0;
    let mut last_tick = Instant::now();
    let mut errors: Vec<String> = Vec::new();
    let (mut link_at, mut image_at) = (None, None);
    loop {
        if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
            child.stop_group();
            return Err(BuildError::Interrupted);
        }
        let line = match child.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let Line::Text(_, l) = line else { continue };
        let _ = writeln!(logf, "{l}");
        match stage_of(&l) {
            Some(Stage::Link) if link_at.is_none() => link_at = Some(started.elapsed()),
            Some(Stage::Image) if link_at.is_some() && image_at.is_none() => image_at = Some(started.elapsed()),
            _ => {}
        }
        let word = l.split_whitespace().next().unwrap_or("");
        if matches!(word, "CC" | "AS" | "LD" | "AR" | "HOSTCC" | "OBJCOPY" | "CC [M]") {
            compiled += 1;
        }
        if is_error_line(&l) {
            errors.push(l);
        }
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            on(BuildEvent::Progress { compiled, elapsed: started.elapsed() });
        }
    }
    let status = child.wait().map_err(io("wait for make"))?;
    if !status.success() {
        let skip = errors.len().saturating_sub(12);
        let mut excerpt = errors[skip..].join("\n");
        if excerpt.is_empty() {
            excerpt = format!("make exited with {status}");
        }
        drop(logf);
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if usage::says_disk_full(&text) || usage::says_disk_full(&excerpt) {
            // Not the tree's fault: never "does not build" (a bisect would
            // skip a good commit).
            return Err(no_space(log.parent().unwrap_or(log)));
        }
        let known = toolchain::classify(&text);
        return Err(BuildError::Make { excerpt, log: log.to_owned(), compiler: tc.name.clone(), known });
    }
    let end = started.elapsed();
    let link_at = link_at.unwrap_or(end);
    let image_at = image_at.unwrap_or(end).max(link_at);
    Ok(MakeTimes {
        compile: link_at.as_secs_f64(),
        link: (image_at - link_at).as_secs_f64(),
        image: (end - image_at).as_secs_f64(),
    })
}

/// A compiler or make line worth showing when a build fails.
fn is_error_line(l: &str) -> bool {
    l.contains("error:") || l.contains("*** ") || l.contains("Error ") || l.contains("undefined reference")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_is_kept_while_what_it_comes_from_is_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::at(d.path().join("cache"));
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("arch/x86")).unwrap();
        std::fs::create_dir_all(tree.join("kernel")).unwrap();
        std::fs::write(tree.join("Kconfig"), "source \"kernel/Kconfig\"\n").unwrap();
        std::fs::write(tree.join("kernel/Kconfig"), "config A\n").unwrap();
        std::fs::write(tree.join("kernel/fork.c"), "int a;\n").unwrap();
        std::fs::write(tree.join("arch/x86/Makefile"), "x\n").unwrap();
        let before = kconfig_inputs(&tree, &cache).unwrap();
        std::fs::write(tree.join("kernel/fork.c"), "int b;\n").unwrap();
        assert_eq!(kconfig_inputs(&tree, &cache).unwrap(), before, "a C file does not change the config");
        std::fs::write(tree.join("kernel/Kconfig"), "config B\n").unwrap();
        assert_ne!(kconfig_inputs(&tree, &cache).unwrap(), before);
        std::fs::write(tree.join("kernel/Kconfig"), "config A\n").unwrap();
        std::fs::write(tree.join("arch/x86/Makefile"), "y\n").unwrap();
        assert_ne!(kconfig_inputs(&tree, &cache).unwrap(), before);

        // A stamp holds only for the .config it made.
        let (stamp, config) = (d.path().join("stamp"), d.path().join(".config"));
        std::fs::write(&config, "CONFIG_A=y\n").unwrap();
        let s =
            ConfigStamp { key: "k".into(), config: blake3::hash(b"CONFIG_A=y\n").to_hex().to_string(), lost: vec![] };
        s.write(&stamp).unwrap();
        assert_eq!(ConfigStamp::read(&stamp, &config).unwrap().key, "k");
        std::fs::write(&config, "CONFIG_A=n\n").unwrap();
        assert!(ConfigStamp::read(&stamp, &config).is_none(), "a .config changed since is made again");
    }

    #[test]
    fn bases_parse() {
        assert_eq!("tinyconfig".parse::<Base>().unwrap(), Base::Tinyconfig);
        assert_eq!("defconfig".parse::<Base>().unwrap(), Base::Defconfig);
        assert_eq!("my.config".parse::<Base>().unwrap(), Base::File("my.config".into()));
    }

    #[test]
    fn kbuild_lines_mark_the_link_and_the_image() {
        assert_eq!(stage_of("  CC      kernel/fork.o"), None);
        assert_eq!(stage_of("  LD      vmlinux.o"), Some(Stage::Link));
        assert_eq!(stage_of("  AR      vmlinux.a"), Some(Stage::Link));
        assert_eq!(stage_of("  LD      .tmp_vmlinux.kallsyms1"), Some(Stage::Link));
        assert_eq!(stage_of("  SORTTAB vmlinux"), Some(Stage::Link));
        assert_eq!(stage_of("  CC      arch/x86/boot/a20.o"), Some(Stage::Image));
        assert_eq!(stage_of("  OBJCOPY arch/arm64/boot/Image"), Some(Stage::Image));
        assert_eq!(stage_of("  CC      arch/x86/kernel/setup.o"), None);
        assert_eq!(stage_of("Kernel: arch/x86/boot/bzImage is ready  (#3)"), None);
    }

    #[test]
    fn error_lines() {
        assert!(is_error_line("kernel/fork.c:12:1: error: expected ';' before '}' token"));
        assert!(is_error_line("make[3]: *** [scripts/Makefile.build:250: kernel/fork.o] Error 1"));
        assert!(!is_error_line("  CC      kernel/fork.o"));
    }

    #[test]
    fn requests_stack_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let frag = dir.path().join("f.config");
        std::fs::write(&frag, "CONFIG_INET=n\n").unwrap();
        let opts = BuildOptions {
            source: dir.path().into(),
            repro: Some(ReproConfig {
                name: "smoke".into(),
                options: vec!["PROC_FS".into(), "NET".into(), "INET".into()],
            }),
            base: Base::Tinyconfig,
            fragments: vec![frag],
            settings: vec!["CONFIG_NET=y".into()],
            commit: None,
            step: None,
            make_args: vec![],
            jobs: 1,
            cpus: 1,
            disks: vec![],
            cc: toolchain::CcChoice::Auto,
            arch: Arch::X86_64,
            vmlinux: false,
            distribute: None,
            ccache_remote: None,
        };
        let reqs = requests(&opts).unwrap();
        let inet: Vec<_> = reqs.iter().filter(|r| r.name == "INET").collect();
        assert_eq!(inet.len(), 2);
        assert_eq!(inet[1].value, kconfig::Value::N);
        let mut bad = opts.clone();
        bad.source = "/nonexistent".into();
        bad.repro = None;
        let cache = Cache::at(dir.path().join("cache"));
        assert!(matches!(build(&bad, &cache, &mut |_| {}), Err(BuildError::Io { .. })));
        let not_kernel = BuildOptions { source: dir.path().into(), repro: None, ..opts };
        assert!(matches!(build(&not_kernel, &cache, &mut |_| {}), Err(BuildError::NotAKernelTree { .. })));
    }

    fn options(dir: &Path, arch: Arch) -> BuildOptions {
        BuildOptions {
            source: dir.into(),
            repro: Some(ReproConfig {
                name: "smoke".into(),
                options: vec!["PROC_FS".into(), "NET".into(), "INET".into()],
            }),
            base: Base::Tinyconfig,
            fragments: vec![],
            settings: vec![],
            commit: None,
            step: None,
            make_args: vec![],
            jobs: 1,
            cpus: 1,
            disks: vec![],
            cc: toolchain::CcChoice::Auto,
            arch,
            vmlinux: false,
            distribute: None,
            ccache_remote: None,
        }
    }

    /// The toolchain `--cc gcc-12` resolves to, without looking at the host.
    fn gcc12(arch: Arch) -> Toolchain {
        let target = toolchain::Target { arch, cross: arch != Arch::X86_64 };
        let compiler = toolchain::Compiler { family: toolchain::Family::Gcc, major: Some(12) };
        let (args, path) = toolchain::make_args(compiler, None, target);
        let version = format!("{} (Debian 12.2.0-14) 12.2.0", toolchain::program(compiler, target));
        Toolchain {
            name: "gcc-12".into(),
            compiler: Some(compiler),
            args,
            path,
            version,
            program: "gcc-12".into(),
            next: vec![],
        }
    }

    #[test]
    fn arm64_builds_an_image_with_the_cross_gcc() {
        let opts = BuildOptions { make_args: vec!["KCFLAGS=-Og".into()], ..options(Path::new("/src"), Arch::Aarch64) };
        assert_eq!(
            make_args(&opts, Path::new("/cache/build/k"), &gcc12(Arch::Aarch64)),
            [
                "O=/cache/build/k",
                "ARCH=arm64",
                "CROSS_COMPILE=aarch64-linux-gnu-",
                "CC=aarch64-linux-gnu-gcc-12",
                "HOSTCC=gcc",
                "KCFLAGS=-Og"
            ]
        );
        let x86 = options(Path::new("/src"), Arch::X86_64);
        assert_eq!(
            make_args(&x86, Path::new("/cache/build/k"), &gcc12(Arch::X86_64)),
            ["O=/cache/build/k", "ARCH=x86_64", "CC=gcc-12", "HOSTCC=gcc-12"]
        );
        let reqs = requests(&opts).unwrap();
        let has = |name: &str| reqs.iter().any(|r| r.name == name);
        assert!(has("SERIAL_AMBA_PL011_CONSOLE") && has("INET") && !has("SERIAL_8250") && !has("PVH"));
    }

    #[test]
    fn the_cache_key_and_build_dir_differ_by_arch() {
        let src = Path::new("/src");
        let key = |arch| {
            let opts = options(src, arch);
            // The same requests and compiler for both: the arch alone differs.
            let reqs = kconfig::krepro_fragment(Arch::X86_64);
            keys(&opts, src, "identity", "tinyconfig", &reqs, &gcc12(Arch::X86_64))
        };
        let (x86, arm) = (key(Arch::X86_64), key(Arch::Aarch64));
        assert_ne!(x86.key, arm.key);
        assert_ne!(x86.dir, arm.dir);
        assert_eq!(key(Arch::Aarch64), arm, "the same inputs give the same keys");
    }

    #[test]
    fn a_tree_needs_the_arch_dir() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["Makefile", "Kconfig"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("arch/x86")).unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        let err = build(&options(dir.path(), Arch::Aarch64), &cache, &mut |_| {}).unwrap_err();
        assert!(matches!(err, BuildError::NotAKernelTree { arch: Arch::Aarch64, .. }), "{err}");
        assert!(
            err.to_string().ends_with(" is not a kernel source tree for aarch64 (no Makefile, Kconfig and arch/arm64)"),
            "{err}"
        );
    }

    #[test]
    fn a_users_gcc_for_another_arch_gets_its_binutils() {
        let other = if Arch::host() == Some(Arch::X86_64) { Arch::Aarch64 } else { Arch::X86_64 };
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path(), other);
        opts.make_args = vec![format!("CC={}-gcc", other.gnu_triple())];
        let tc = resolve_toolchain(&opts, dir.path(), None, None, &mut |_| {}).unwrap();
        assert_eq!(tc.args, [format!("CROSS_COMPILE={}-", other.gnu_triple())]);
        opts.make_args.push("CROSS_COMPILE=/opt/cross/bin/aarch64-none-linux-gnu-".into());
        let tc = resolve_toolchain(&opts, dir.path(), None, None, &mut |_| {}).unwrap();
        assert!(tc.args.is_empty(), "the user's CROSS_COMPILE is left alone: {:?}", tc.args);
        opts.make_args = vec!["LLVM=1".into()];
        let tc = resolve_toolchain(&opts, dir.path(), None, None, &mut |_| {}).unwrap();
        assert!(tc.args.is_empty(), "clang needs no prefix: {:?}", tc.args);
    }

    #[test]
    fn ccache_wraps_the_chosen_compiler_and_the_users_cc_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ccache = Path::new("/usr/bin/ccache");
        let gcc = toolchain::CcChoice::Fixed(toolchain::Compiler { family: toolchain::Family::Gcc, major: None });
        let mut opts = BuildOptions { repro: None, cc: gcc, ..options(dir.path(), Arch::X86_64) };
        let mut notes = Vec::new();
        let tc = resolve_toolchain(&opts, dir.path(), Some(ccache), None, &mut |e| {
            if let BuildEvent::Note(n) = e {
                notes.push(n.to_owned())
            }
        })
        .unwrap();
        assert_eq!(tc.args, ["CC=ccache gcc", "HOSTCC=gcc"]);
        assert!(tc.version.starts_with("gcc"), "the key names the compiler, not ccache: {}", tc.version);
        assert_eq!(notes, ["compiler: gcc (--cc gcc)"]);
        opts.make_args = vec!["LLVM=1".into()];
        let tc = resolve_toolchain(&opts, dir.path(), Some(ccache), None, &mut |_| {}).unwrap();
        assert_eq!((tc.args.as_slice(), tc.compiler), (&["CC=ccache clang".to_owned()][..], None));
        opts.make_args = vec!["CC=clang".into()];
        let tc = resolve_toolchain(&opts, dir.path(), Some(ccache), None, &mut |_| {}).unwrap();
        assert!(tc.args.is_empty(), "a user's CC= is left alone");
        opts.make_args = vec![];
        let tc = resolve_toolchain(&opts, dir.path(), None, None, &mut |_| {}).unwrap();
        assert_eq!(tc.args, ["CC=gcc", "HOSTCC=gcc"]);
    }
}
