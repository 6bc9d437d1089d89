//! What the user asked for, as plain data: the command line (or xtask, or
//! a test) fills these in; [`crate::session`] checks them once and turns
//! them into what the lower layers take. Nothing here is checked yet, and
//! nothing here knows clap.

use std::path::PathBuf;

use crate::boot::disk::DiskSpec;
use crate::boot::outcome::Remap;
use crate::boot::qemu::{AccelChoice, MachineChoice};
use crate::boot::run::EntryChoice;
use crate::builder::toolchain::CcChoice;
use crate::builder::Base;
use crate::guest::ReproArg;
use crate::image::arch::Arch;
use crate::initrd::modules::Modules;

/// How every boot is made: what `run`, `bisect` and `bench` share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// Seconds without a verdict before a boot is a hang.
    pub timeout_secs: u64,
    pub accel: AccelChoice,
    /// The guest's architecture, when the user named one.
    pub arch: Option<Arch>,
    pub machine: MachineChoice,
    pub entry: EntryChoice,
    /// The user's kernel command line words: always last.
    pub append: Vec<String>,
    /// `--console quiet`.
    pub quiet: bool,
    pub memory_mib: Option<u32>,
    pub cpus: Option<u32>,
    pub disks: Vec<DiskSpec>,
    pub qemu_args: Vec<String>,
    pub warn_is_crash: bool,
    /// krepro's speed-ups on the command line (`--no-speedups` clears it).
    pub speedups: bool,
    /// Where console logs go (None: the cache's).
    pub log_dir: Option<PathBuf>,
}

impl Default for Boot {
    fn default() -> Boot {
        Boot {
            timeout_secs: 60,
            accel: AccelChoice::Auto,
            arch: None,
            machine: MachineChoice::Auto,
            entry: EntryChoice::Auto,
            append: Vec::new(),
            quiet: false,
            memory_mib: None,
            cpus: None,
            disks: Vec::new(),
            qemu_args: Vec::new(),
            warn_is_crash: false,
            speedups: true,
            log_dir: None,
        }
    }
}

/// What the guest runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A repro: krepro's own by name, or a `.rs` file or directory (then
    /// `name` picks one of several), or a C source.
    Repro { arg: ReproArg, name: Option<String> },
    /// A static executable or `#!` script (`--exec FILE`).
    Exec(PathBuf),
    /// An initrd made before (`krepro initrd`): booted as it is, its init
    /// told to run `repro`.
    Initrd { path: PathBuf, repro: String },
}

impl Default for Program {
    fn default() -> Program {
        Program::Repro { arg: ReproArg::Name(DEFAULT_REPRO.into()), name: None }
    }
}

/// The repro a command runs when none is named.
pub const DEFAULT_REPRO: &str = "smoke";

/// The guest side: what runs and what else goes into the initrd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Guest {
    pub program: Program,
    /// Arguments and `K=V` environment of an `--exec` program (or a C repro).
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Seconds the guest gives an `--exec` program.
    pub guest_timeout: Option<u64>,
    /// `--file SRC[:DEST]`.
    pub files: Vec<String>,
    pub modules: Option<Modules>,
    pub modules_from: Option<PathBuf>,
}

/// How a kernel is built from source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Build {
    pub source: PathBuf,
    /// The base config: tinyconfig, defconfig, or a whole config file
    /// (`--config FILE`).
    pub base: Base,
    /// Fragments on top (`--fragment`, `--config-add FILE`), later ones win.
    pub fragments: Vec<PathBuf>,
    /// Single options on top of those (`--config-add CONFIG_X=y`).
    pub settings: Vec<String>,
    /// Of a git tree: this commit, not the tree as it is.
    pub commit: Option<String>,
    pub make_args: Vec<String>,
    pub jobs: Option<usize>,
    pub cc: CcChoice,
    /// `--distcc`.
    pub distribute: Option<crate::builder::distribute::Distribute>,
    /// `--ccache-remote`.
    pub ccache_remote: Option<String>,
}

/// Which kernel a run boots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `--kernel FILE`.
    File(PathBuf),
    /// A kernel tree's own image, as it was last built there (`O=` in
    /// `build_dir`, when given).
    Tree { dir: PathBuf, build_dir: Option<PathBuf> },
    /// Built first (`--build`, `--source`).
    Build(Build),
    /// `$KREPRO_KERNEL`, else the newest in the cache, else /boot's, else
    /// the newest distro kernel, fetched.
    #[default]
    Default,
}

/// How the runs of one kernel add up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdicts {
    pub runs: u32,
    /// `--parallel`: boots at once (None: as many as the host holds).
    pub parallel: Option<u32>,
    pub remap: Remap,
}

impl Default for Verdicts {
    fn default() -> Verdicts {
        Verdicts { runs: 1, parallel: None, remap: Remap::default() }
    }
}

/// Which bug a bisect chases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Chase {
    /// `--same-crash`: runs crashing with another title are not the bug.
    pub same_crash: bool,
    /// The bug's title (None: the bad end's).
    pub title: Option<String>,
    /// `--min-bad`.
    pub min_bad: u32,
}

/// `krepro run`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Run {
    pub kernel: Kernel,
    pub guest: Guest,
    pub boot: Boot,
    pub verdicts: Verdicts,
}
