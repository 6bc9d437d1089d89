//! The flags `run`, `bisect`, `bench`, `initrd` and `kernel build` share,
//! each group turned into its plain request ([`crate::request`]) here and
//! nowhere else.

use std::path::PathBuf;

use crate::boot::disk::DiskSpec;
use crate::boot::outcome::{Mark, Remap};
use crate::boot::qemu::{AccelChoice, MachineChoice};
use crate::boot::run::EntryChoice;
use crate::builder::toolchain::CcChoice;
use crate::builder::Base;
use crate::guest::ReproArg;
use crate::image::arch::Arch;
use crate::initrd::modules::Modules;
use crate::request;

/// How every boot is made: the flags `run`, `bisect` and `bench` share.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "How the guest boots")]
pub struct BootArgs {
    /// Seconds without a verdict before a boot counts as a hang
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,

    /// Accelerator: kvm, tcg, or auto (kvm when it works, else tcg)
    #[arg(long, value_enum, value_name = "ACCEL", default_value_t = AccelChoice::Auto)]
    pub(crate) accel: AccelChoice,

    /// Guest architecture: x86_64 or aarch64 (arm64) [default: the kernel
    /// image's; with no kernel named, the host's]. An aarch64 guest on an
    /// x86_64 host runs under TCG
    #[arg(long, value_enum, value_name = "ARCH")]
    pub(crate) arch: Option<Arch>,

    /// Machine: auto (microvm on x86_64, virt on aarch64), microvm, pc, q35
    /// or virt. On pc, q35 and virt the virtio-serial channel uses PCI; on
    /// microvm virtio-mmio
    #[arg(long, value_enum, value_name = "MACHINE", default_value_t = MachineChoice::Auto)]
    pub(crate) machine: MachineChoice,

    /// Kernel entry: auto (PVH when the kernel has it: the vmlinux is taken
    /// out of the bzImage once and cached, skipping emulated
    /// decompression), pvh, or bzimage
    #[arg(long, value_enum, value_name = "ENTRY", default_value_t = EntryChoice::Auto)]
    pub(crate) entry: EntryChoice,

    /// Extra kernel command line words, last (after krepro's own, so they
    /// win), e.g. --append krepro.max_uptime_ms=3000
    #[arg(long, value_name = "WORD")]
    pub(crate) append: Vec<String>,

    /// Console while booting: full, or quiet (errors only, which spares the
    /// emulated UART); with quiet, init prints the whole kernel log before
    /// any verdict other than pass
    #[arg(long, value_enum, value_name = "MODE", default_value_t = ConsoleMode::Full)]
    pub(crate) console: ConsoleMode,

    /// Guest memory in MiB [default: what the repro declares, else 256]
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(64..))]
    pub(crate) memory: Option<u32>,

    /// Guest CPUs [default: what the repro declares, else 1]; the kernel
    /// builder adds SMP when N > 1
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) cpus: Option<u32>,

    /// A block device, as virtio-blk (/dev/vda, /dev/vdb, ... in order):
    /// FILE (the guest's writes are discarded: FILE is never written),
    /// FILE:rw (writes go to FILE), or new:SIZE[:FS] (a fresh sparse
    /// scratch disk, made with mkfs.FS on the host, e.g. new:64M:ext4);
    /// repeatable [default: what the repro declares]
    #[arg(long = "disk", value_name = "SPEC")]
    pub(crate) disks: Vec<DiskSpec>,

    /// Passed to qemu unchanged, after krepro's own arguments (a device or
    /// CPU feature krepro does not model: --qemu-arg=-cpu --qemu-arg=max);
    /// repeatable; --json marks such a run as customised
    #[arg(long = "qemu-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) qemu_args: Vec<String>,

    /// Count a kernel WARNING on the console as a crash
    #[arg(long)]
    pub(crate) warn_is_crash: bool,

    /// Boot with the kernel's own defaults: leave out krepro's speed-ups on
    /// the command line (cryptomgr.notests; on x86_64 noreplace-smp and
    /// 8250.nr_uarts=1, and nolapic_timer under TCG on one CPU for kernels
    /// that tick periodically only). They skip crypto self-tests,
    /// LOCK-prefix patching and probes of absent hardware; `--append` can
    /// also undo the ones that take a value
    #[arg(long)]
    pub(crate) no_speedups: bool,

    /// Where console logs go [default: ~/.cache/krepro/logs, which keeps
    /// the newest 200 logs and 64 MiB; each log keeps the first and last
    /// MiB of the console]
    #[arg(long, value_name = "DIR")]
    pub(crate) log_dir: Option<PathBuf>,
}

/// `--console`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleMode {
    Full,
    Quiet,
}

impl BootArgs {
    pub fn request(&self) -> request::Boot {
        request::Boot {
            timeout_secs: self.timeout,
            accel: self.accel,
            arch: self.arch,
            machine: self.machine,
            entry: self.entry,
            append: self.append.clone(),
            quiet: self.console == ConsoleMode::Quiet,
            memory_mib: self.memory,
            cpus: self.cpus,
            disks: self.disks.clone(),
            qemu_args: self.qemu_args.clone(),
            warn_is_crash: self.warn_is_crash,
            speedups: !self.no_speedups,
            log_dir: self.log_dir.clone(),
        }
    }
}

/// What runs in the guest and what else goes into the initrd.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "What runs in the guest")]
pub(crate) struct GuestArgs {
    /// What to run: a repro's name (`krepro repros` lists them), a .rs
    /// repro file (`krepro new` writes one), a directory of them, or a C
    /// source (compiled statically for the guest) [default: smoke]
    #[arg(value_name = "REPRO", conflicts_with_all = ["exec", "initrd"])]
    pub(crate) what: Option<String>,

    /// The repro to run, by name: krepro's own, or one of the file's or
    /// directory's given as REPRO; also takes a file like REPRO
    #[arg(long, value_name = "NAME")]
    pub(crate) repro: Option<String>,

    /// Run this static executable (C, std Rust, a kselftest) or #! shell
    /// script (run by busybox sh) instead of a repro: exit status 0 is
    /// pass, 4 (KSFT_SKIP) skip, any other status or a signal fail
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repro", "initrd"])]
    pub(crate) exec: Option<PathBuf>,

    /// An argument for the program (--exec FILE or a C repro); repeatable
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) args: Vec<String>,

    /// An environment variable for the program; repeatable
    #[arg(long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,

    /// Seconds the guest gives the program before killing it (a fail, with
    /// the kernel log tail); keep it below --timeout
    #[arg(long, value_name = "SECS")]
    pub(crate) guest_timeout: Option<u64>,

    /// An extra file or directory for the initrd, at DEST (default /NAME); repeatable
    #[arg(long = "file", value_name = "SRC[:DEST]")]
    pub(crate) files: Vec<String>,

    /// Kernel modules init loads first: `auto` (what the virtio-serial
    /// verdict channel needs on the machine, where the kernel has it as
    /// modules: virtio_mmio or virtio_pci, and virtio_console) or a
    /// comma-separated list; dependencies come along
    #[arg(long, value_name = "auto|LIST")]
    pub(crate) modules: Option<Modules>,

    /// Where the modules are: an unpacked kernel package or a
    /// `make modules_install` tree [default: beside a packaged kernel]
    #[arg(long, value_name = "DIR", requires = "modules")]
    pub(crate) modules_from: Option<PathBuf>,

    /// Boot this initrd (`krepro initrd -o FILE` makes one) as it is; its
    /// init runs --repro NAME
    #[arg(long, value_name = "FILE")]
    pub(crate) initrd: Option<PathBuf>,
}

impl GuestArgs {
    pub(crate) fn request(&self) -> request::Guest {
        let program = match (&self.initrd, &self.exec, &self.what, &self.repro) {
            (Some(path), _, _, name) => request::Program::Initrd {
                // qemu runs in a temp dir of its own.
                path: std::path::absolute(path).unwrap_or_else(|_| path.clone()),
                repro: name.clone().unwrap_or_else(|| request::DEFAULT_REPRO.into()),
            },
            (None, Some(exec), _, _) => request::Program::Exec(exec.clone()),
            (None, None, Some(what), name) => {
                request::Program::Repro { arg: ReproArg::parse(what), name: name.clone() }
            }
            (None, None, None, Some(name)) => request::Program::Repro { arg: ReproArg::parse(name), name: None },
            (None, None, None, None) => request::Program::default(),
        };
        request::Guest {
            program,
            args: self.args.clone(),
            env: self.env.clone(),
            guest_timeout: self.guest_timeout,
            files: self.files.clone(),
            modules: self.modules.clone(),
            modules_from: self.modules_from.clone(),
        }
    }
}

/// How outcomes count, for `run` and `bisect`.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "How outcomes count")]
pub(crate) struct VerdictArgs {
    /// Boots per kernel: it passes only if every boot passes, and fails if
    /// any fails (flaky repros)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) runs: u32,

    /// Boots at once for --runs N, each with its own qemu (outcomes are
    /// still reported in order) [default: the host's CPUs over the
    /// guest's, within free memory; 1 with --verbose]
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) parallel: Option<u32>,

    /// How a crash counts: good, bad or skip [default: crash, exit 2; bad in a bisect]
    #[arg(long, value_enum, value_name = "MARK")]
    pub(crate) on_crash: Option<Mark>,

    /// How a hang counts [default: hang, exit 3; bad in a bisect]
    #[arg(long, value_enum, value_name = "MARK")]
    pub(crate) on_hang: Option<Mark>,

    /// How a boot without verdict counts [default: skip, exit 125]
    #[arg(long, value_enum, value_name = "MARK")]
    pub(crate) on_no_verdict: Option<Mark>,
}

impl VerdictArgs {
    pub(crate) fn request(&self) -> request::Verdicts {
        request::Verdicts {
            runs: self.runs,
            parallel: self.parallel,
            remap: Remap { on_crash: self.on_crash, on_hang: self.on_hang, on_no_verdict: self.on_no_verdict },
        }
    }
}

/// Which bug a bisect chases, for `bisect` and `syz`.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Which bug is chased")]
pub(crate) struct ChaseArgs {
    /// Chase one crash: a run that crashes with another title than TITLE
    /// (syzbot's form, e.g. "WARNING in kcmp_lock"; default: the bad
    /// end's first crash) counts as another crash, not the bug, and a
    /// commit with only other crashes is skipped
    #[arg(long, value_name = "TITLE", num_args = 0..=1, default_missing_value = "")]
    pub(crate) same_crash: Option<String>,

    /// With --runs N: a commit is bad when at least K runs show the bug
    /// (a flaky repro); see the README for why 1 is the default
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) min_bad: u32,
}

impl ChaseArgs {
    /// (--same-crash given, its title), `--min-bad` checked against `runs`.
    pub(crate) fn request(&self, runs: u32) -> Result<request::Chase, String> {
        if self.min_bad > runs {
            return Err(format!("--min-bad {} is more than --runs {runs}", self.min_bad));
        }
        Ok(request::Chase {
            same_crash: self.same_crash.is_some(),
            title: self.same_crash.clone().filter(|t| !t.trim().is_empty()),
            min_bad: self.min_bad,
        })
    }
}

/// How a kernel is configured and built (`run -b`, `kernel build`, `bisect`).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Building the kernel")]
pub(crate) struct ConfigArgs {
    /// Build from this whole config (e.g. the tree's own .config, which
    /// is read, never written) instead of krepro's minimal one
    #[arg(long, value_name = "FILE", conflicts_with = "base")]
    pub(crate) config: Option<PathBuf>,
    /// Base config: tinyconfig (krepro's minimal config: tinyconfig plus
    /// what init and the repro need), defconfig, or a config FILE
    #[arg(long, value_name = "BASE", default_value = "tinyconfig")]
    pub(crate) base: Base,
    /// Extra config fragment (CONFIG_X=y lines) on top; repeatable, later wins
    #[arg(long = "fragment", value_name = "FILE")]
    pub(crate) fragments: Vec<PathBuf>,
    /// An option on top of the config: CONFIG_X=y (=n, =m, =VALUE), or a
    /// fragment FILE as --fragment; repeatable, after the fragments
    #[arg(long = "config-add", value_name = "CONFIG_X=y|FILE")]
    pub(crate) config_add: Vec<String>,
    /// Passed to make, e.g. --make-arg LLVM=1, --make-arg KCFLAGS=-Og; repeatable
    #[arg(long = "make-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub(crate) make_args: Vec<String>,
    /// Parallel make jobs [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Compiler: auto (per tree: the newest the kernel's era is known to
    /// build with, at least its own minimum, installed with apt when
    /// missing and root), gcc, gcc-N, clang or clang-N (LLVM=1 with its own
    /// lld); HOSTCC follows. A CC= or LLVM= --make-arg overrides it
    #[arg(long, value_name = "CC", default_value = "auto")]
    pub(crate) cc: CcChoice,

    #[command(flatten)]
    pub(crate) distribute: DistributeArgs,
}

/// Compiles beyond this machine (`run -b`, `kernel build`, `bisect`, `syz`).
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct DistributeArgs {
    /// Send compiles to distcc hosts (DISTCC_HOSTS' syntax: "host1/8
    /// host2:3632/4"), or `icecc` for icecream. Each host must answer with
    /// this machine's compiler (checked; others are dropped); make, the
    /// preprocessor and the link stay here; -j follows the hosts' slots
    #[arg(long, value_name = "HOSTS|icecc", env = "DISTCC_HOSTS", hide_env_values = true)]
    pub(crate) distcc: Option<String>,
    /// ccache's shared remote storage (redis://HOST:PORT, http://HOST/PATH),
    /// so that one machine's objects serve the next build anywhere
    /// [default: ccache's own remote_storage]
    #[arg(long, value_name = "URL")]
    pub(crate) ccache_remote: Option<String>,
}

impl DistributeArgs {
    pub(crate) fn request(&self) -> (Option<crate::builder::distribute::Distribute>, Option<String>) {
        let d =
            self.distcc.as_deref().filter(|h| !h.trim().is_empty()).map(crate::builder::distribute::Distribute::parse);
        (d, self.ccache_remote.clone())
    }
}

impl ConfigArgs {
    /// The build of the tree at `source`.
    pub(crate) fn request(&self, source: PathBuf) -> request::Build {
        let (settings, files): (Vec<&String>, Vec<&String>) =
            self.config_add.iter().partition(|a| a.starts_with("CONFIG_") || a.starts_with("# CONFIG_"));
        request::Build {
            source,
            base: self.config.clone().map_or_else(|| self.base.clone(), Base::File),
            fragments: self.fragments.iter().cloned().chain(files.into_iter().map(PathBuf::from)).collect(),
            settings: settings.into_iter().cloned().collect(),
            commit: None,
            make_args: self.make_args.clone(),
            jobs: self.jobs,
            cc: self.cc,
            distribute: self.distribute.request().0,
            ccache_remote: self.distribute.request().1,
        }
    }
}

/// Where the kernel tree is, for `run`, `kernel build` and `bisect`.
#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "The kernel tree")]
pub(crate) struct TreeArgs {
    /// The kernel tree [default: the current directory, when it is one].
    /// Never written to: builds go out of tree, in krepro's cache (a git
    /// tree in krepro's own worktree of it)
    #[arg(long, value_name = "DIR", alias = "linux")]
    pub(crate) source: Option<PathBuf>,
}

impl TreeArgs {
    /// The tree: --source, else the current directory when it is a kernel tree.
    pub(crate) fn tree(&self) -> Option<PathBuf> {
        match &self.source {
            Some(dir) => Some(dir.clone()),
            None => std::env::current_dir().ok().filter(|d| crate::builder::is_kernel_tree(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        guest: GuestArgs,
        #[command(flatten)]
        boot: BootArgs,
        #[command(flatten)]
        verdict: VerdictArgs,
    }

    fn parse(words: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("run").chain(words.iter().copied()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.boot.request(), request::Boot::default());
        assert_eq!(f.guest.request(), request::Guest::default());
        assert_eq!(f.verdict.request(), request::Verdicts::default());
        assert_eq!(
            request::Guest::default().program,
            request::Program::Repro { arg: ReproArg::Name("smoke".into()), name: None }
        );
    }

    #[test]
    fn what_runs_is_a_name_a_file_a_program_or_an_initrd() {
        let program = |w: &[&str]| parse(w).unwrap().guest.request().program;
        assert_eq!(program(&["kcmp"]), request::Program::Repro { arg: ReproArg::Name("kcmp".into()), name: None });
        assert_eq!(program(&["--repro", "kcmp"]), program(&["kcmp"]));
        assert_eq!(
            program(&["dir/", "--repro", "a"]),
            request::Program::Repro { arg: ReproArg::Path("dir/".into()), name: Some("a".into()) }
        );
        assert_eq!(
            program(&["probe.rs"]),
            request::Program::Repro { arg: ReproArg::Path("probe.rs".into()), name: None }
        );
        assert_eq!(program(&["--exec", "/bin/t"]), request::Program::Exec("/bin/t".into()));
        assert_eq!(
            program(&["--initrd", "i.gz", "--repro", "kcmp"]),
            request::Program::Initrd { path: std::env::current_dir().unwrap().join("i.gz"), repro: "kcmp".into() }
        );
    }

    #[test]
    fn flags_land_in_their_requests() {
        let f = parse(&[
            "--exec",
            "/bin/true",
            "--arg",
            "-v",
            "--env",
            "A=1",
            "--guest-timeout",
            "9",
            "--file",
            "d:/srv",
            "--machine",
            "pc",
            "--entry",
            "bzimage",
            "--console",
            "quiet",
            "--memory",
            "512",
            "--append",
            "x=1",
            "--runs",
            "3",
            "--on-hang",
            "skip",
            "--no-speedups",
        ])
        .unwrap();
        let g = f.guest.request();
        assert_eq!(
            (g.args, g.env, g.guest_timeout, g.files),
            (vec!["-v".into()], vec!["A=1".into()], Some(9), vec!["d:/srv".into()])
        );
        let b = f.boot.request();
        assert_eq!(
            (b.machine, b.entry, b.memory_mib, b.quiet, b.speedups),
            (MachineChoice::Pc, EntryChoice::Bzimage, Some(512), true, false)
        );
        assert_eq!(b.append, ["x=1"]);
        let v = f.verdict.request();
        assert_eq!(v.runs, 3);
        assert_eq!(v.remap.exit_code(crate::boot::outcome::Outcome::Hang), crate::boot::outcome::Exit::Skip);
    }

    #[test]
    fn contradictions_and_out_of_range_values_are_refused() {
        use clap::error::ErrorKind;
        let kind = |w: &[&str]| parse(w).unwrap_err().kind();
        assert_eq!(kind(&["--repro", "smoke", "--exec", "/bin/true"]), ErrorKind::ArgumentConflict);
        assert_eq!(kind(&["probe.rs", "--exec", "/bin/true"]), ErrorKind::ArgumentConflict);
        assert_eq!(kind(&["--timeout", "0"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--runs", "0"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--memory", "32"]), ErrorKind::ValueValidation);
        assert_eq!(kind(&["--accel", "xen"]), ErrorKind::InvalidValue);
    }
}
