//! `cargo xtask`: krepro's commands for users and developers.
//!
//! Everything external goes through `krepro_runner::host::spawn::Cmd`;
//! cargo is taken from `$CARGO`; outputs go under `target/`; the cache is
//! `Cache::from_env()`, made once here and handed down.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use krepro_runner::boot::disk::DiskSpec;
use krepro_runner::boot::qemu::{self, Machine};
use krepro_runner::cli::progress::{mmss, Progress};
use krepro_runner::cli::{self, GuestSpec, RunArgs};
use krepro_runner::host::cache::Cache;
use krepro_runner::host::spawn::Cmd;
use krepro_runner::host::{fetch, install};
use krepro_runner::{build, image::kernel, initrd};

mod bench;
mod bisect;
mod init;

use init::{build_init, build_initrd, default_initrd, DEFAULT_REPRO};
use krepro_runner::image::arch::Arch;

/// krepro: turn a kernel bug into a boot test that runs in seconds.
///
/// `cargo xtask run` builds the init, packs the initrd, boots the kernel in
/// qemu and exits with the verdict: 0 pass, 1 fail, 2 crash, 3 hang, 125
/// skip or no verdict, 128 could not run.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Xtask {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the initrd, boot a kernel with it and exit with the verdict
    ///
    /// With --source DIR the kernel is built first (or found in the build
    /// cache) with the config the repro needs; a tree that does not build
    /// exits 125, so `git bisect run` skips it.
    Run {
        #[command(flatten)]
        args: RunArgs,
        #[command(flatten)]
        build: BuildArgs,
    },
    /// Build init and pack the initrd (gzip'd newc cpio); prints its path
    Initrd {
        /// The repro init runs when the kernel command line names none
        #[arg(long, value_name = "NAME", default_value = DEFAULT_REPRO, conflicts_with = "exec")]
        repro: String,
        /// The guest architecture init is built for [default: the host's]
        #[arg(long, value_enum, value_name = "ARCH")]
        arch: Option<Arch>,
        /// Where to write it [default: target/krepro/initrd.cpio.gz, or
        /// initrd-ARCH.cpio.gz for another architecture]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        exec: cli::ExecArgs,
    },
    /// List the repros: name, what it checks, the kernel config it needs
    Repros,
    /// Fetch a distro kernel, or build the smallest kernel for a repro from source
    Kernel {
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// Find the commit that caused a bug (or, with --find-fix, fixed it)
    ///
    /// Runs git's own bisect in a worktree of krepro's (your checkout,
    /// index and stash are never touched), building each commit with the
    /// kernel builder (or --build-cmd) and booting it with the repro. A
    /// commit that does not build is skipped; an infrastructure failure
    /// stops the bisect; the same command resumes it. With --kernels or
    /// --debian it bisects prebuilt kernels instead, nothing built, and
    /// names the upstream range to bisect in git next. Prints a Markdown
    /// report. Exit: 0 found (and verified), 2 found but not verified, 125
    /// only untestable commits left, 128 error, 130 interrupted
    Bisect(bisect::BisectArgs),
    /// Measure krepro against a C init, busybox, virtme-ng and vmtest on
    /// the same kernels, alternating, as ratios to the C-init baseline
    Bench(bench::BenchArgs),
    /// Run exactly what CI runs: prerequisites, fmt, clippy, all tests
    Ci,
}

/// How to build a kernel from source.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Building the kernel")]
struct BuildArgs {
    /// Kernel source tree to build (git or not; never written to: the build
    /// is out of tree, under ~/.cache/krepro/build)
    #[arg(long, value_name = "DIR")]
    source: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// How a kernel is configured and built (also for bisect).
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Building the kernel")]
struct ConfigArgs {
    /// Base config: tinyconfig, defconfig, or a config FILE
    #[arg(long, value_name = "BASE", default_value = "tinyconfig")]
    base: build::Base,
    /// Extra config fragment (CONFIG_X=y lines); repeatable, later wins
    #[arg(long = "fragment", value_name = "FILE")]
    fragments: Vec<PathBuf>,
    /// Passed to make, e.g. --make-arg LLVM=1, --make-arg KCFLAGS=-Og; repeatable
    #[arg(long = "make-arg", value_name = "ARG", allow_hyphen_values = true)]
    make_args: Vec<String>,
    /// Parallel make jobs [default: number of CPUs]
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Compiler: auto (per tree: the newest the kernel's era is known to
    /// build with, at least its own minimum, installed with apt when
    /// missing and root), gcc, gcc-N, clang or clang-N (LLVM=1 with its own
    /// lld); HOSTCC follows. A CC= or LLVM= --make-arg overrides it
    #[arg(long, value_name = "CC", default_value = "auto")]
    cc: build::toolchain::CcChoice,
}

impl BuildArgs {
    fn options(&self, source: PathBuf, repro: Option<String>, guest: &GuestSpec, arch: Arch) -> build::BuildOptions {
        self.config.options(source, repro, guest, arch)
    }
}

impl ConfigArgs {
    fn options(&self, source: PathBuf, repro: Option<String>, guest: &GuestSpec, arch: Arch) -> build::BuildOptions {
        build::BuildOptions {
            arch,
            cpus: guest.cpus,
            disks: guest.disks.clone(),
            source,
            repro,
            base: self.base.clone(),
            fragments: self.fragments.clone(),
            make_args: self.make_args.clone(),
            cc: self.cc,
            jobs: self.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

#[derive(Subcommand)]
enum KernelCommand {
    /// Build the smallest kernel that runs a repro: base config + krepro's
    /// fragment + the repro's options + your fragments, olddefconfig, every
    /// requested option checked; cached by source, config, compiler and
    /// make args. Prints the bzImage path. Exit: 0 built, 125 the tree does
    /// not build (or cannot give the repro its config), 128 error
    Build {
        /// The repro whose config options go in
        #[arg(long, value_name = "NAME")]
        repro: Option<String>,
        /// Also copy the bzImage here, its .config to FILE.config (the
        /// runner reads it, e.g. to know whether the kernel has ACPI) and
        /// its System.map to FILE.map (`bench --profile` names functions
        /// with it)
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The guest will have N CPUs: N > 1 adds SMP [default: what the
        /// repro declares, else 1]
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
        cpus: Option<u32>,
        /// The guest will have this disk (as for `run`): adds the block
        /// layer, virtio-blk and the disk's filesystem; repeatable
        #[arg(long = "disk", value_name = "SPEC")]
        disks: Vec<DiskSpec>,
        /// The kernel's architecture: x86_64 (a bzImage) or aarch64 (an
        /// arm64 Image, cross-built with the cross gcc or LLVM=1)
        /// [default: the host's]
        #[arg(long, value_enum, value_name = "ARCH")]
        arch: Option<Arch>,
        #[command(flatten)]
        build: BuildArgs,
    },
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

fn main() -> ExitCode {
    let xtask = cli::parse_or_exit::<Xtask>();
    let cache = Cache::from_env();
    match xtask.command {
        Command::Run { mut args, build } => {
            // Cheap checks first: a bad repro name should not wait for a build.
            if let Err(e) = cli::check_repro(&args.repro) {
                eprintln!("error: {e}");
                return e.exit_code().into();
            }
            if let Some(source) = build.source.clone() {
                if args.kernel.is_some() {
                    eprintln!("error: --kernel and --source exclude each other");
                    return krepro_runner::ExitCode::Error.into();
                }
                let guest = match args.boot.guest(repros::find(&args.repro)) {
                    Ok(g) => g,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return e.exit_code().into();
                    }
                };
                let arch = match cli::guest_arch(&args.boot, None) {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return e.exit_code().into();
                    }
                };
                match build_kernel(&build.options(source, Some(args.repro.clone()), &guest, arch), &cache) {
                    Ok(built) => args.kernel = Some(built.bzimage),
                    Err(code) => return code,
                }
            }
            // The runner names the repro on the kernel command line, so the
            // compiled-in default does not matter here.
            let built = cli::guest_arch(&args.boot, args.kernel.as_deref())
                .map_err(anyhow::Error::from)
                .and_then(|arch| build_initrd(arch, DEFAULT_REPRO, &default_initrd(arch)));
            match built {
                Ok(path) => cli::execute(&args, &path, &cache).into(),
                Err(e) => fail(e),
            }
        }
        Command::Initrd { repro, arch, output, exec } => {
            let arch = arch.unwrap_or_else(Arch::host_or_default);
            let out = output.unwrap_or_else(|| default_initrd(arch));
            let built = if exec.any() {
                build_exec_initrd(arch, &repro, &exec, &out)
            } else {
                cli::check_repro(&repro).map_err(anyhow::Error::from).and_then(|()| build_initrd(arch, &repro, &out))
            };
            match built {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Repros => {
            list_repros();
            ExitCode::SUCCESS
        }
        Command::Kernel { command: KernelCommand::Build { repro, output, cpus, disks, arch, build } } => {
            let Some(source) = build.source.clone() else {
                eprintln!("error: kernel build needs --source DIR");
                return krepro_runner::ExitCode::Error.into();
            };
            // The repro's declared needs, unless given here (memory does
            // not change the config).
            let guest = match GuestSpec::resolve(cpus, &disks, None, repro.as_deref().and_then(repros::find)) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: {e}");
                    return e.exit_code().into();
                }
            };
            let arch = arch.unwrap_or_else(Arch::host_or_default);
            match build_kernel(&build.options(source, repro, &guest, arch), &cache) {
                Ok(built) => {
                    let path = match output {
                        Some(out) => {
                            let beside = |suffix: &str| {
                                let mut p = out.clone().into_os_string();
                                p.push(suffix);
                                PathBuf::from(p)
                            };
                            // System.map as FILE.map, where the build kept one
                            // (builds cached before it did not).
                            let map = built.bzimage.with_file_name("System.map");
                            let copied = std::fs::copy(&built.bzimage, &out)
                                .and_then(|_| std::fs::copy(&built.config, beside(".config")))
                                .and_then(|_| {
                                    if map.is_file() {
                                        std::fs::copy(&map, beside(".map"))?;
                                    }
                                    Ok(())
                                });
                            if let Err(e) = copied {
                                return fail(anyhow::anyhow!("copy the bzImage to {}: {e}", out.display()));
                            }
                            out
                        }
                        None => built.bzimage,
                    };
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Kernel { command: KernelCommand::Fetch { series, arch } } => {
            let arch = arch.unwrap_or_else(Arch::host_or_default);
            match fetch::fetch(&cache, series.as_deref(), arch, &mut |m| eprintln!("krepro: {m}")) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.into()),
            }
        }
        Command::Bisect(args) => {
            if args.exec.exec.is_none() {
                if let Err(e) = cli::check_repro(args.repro.as_deref().unwrap_or_default()) {
                    eprintln!("error: {e}");
                    return e.exit_code().into();
                }
            }
            let arch = match bisect::guest_arch(&args) {
                Ok(arch) => arch,
                Err(e) => {
                    eprintln!("error: {e}");
                    return e.exit_code().into();
                }
            };
            match build_initrd(arch, DEFAULT_REPRO, &default_initrd(arch)) {
                Ok(initrd) => bisect::run(&args, arch, &initrd, &cache),
                Err(e) => fail(e),
            }
        }
        Command::Bench(args) => {
            let benched = bench::guest_arch(&args).and_then(|arch| {
                let initrd = build_initrd(arch, DEFAULT_REPRO, &default_initrd(arch))?;
                bench::bench(&args, arch, &initrd, &cache)
            });
            match benched {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Ci => match ci(&cache) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Builds a kernel with progress on stderr. A tree that does not build
/// exits 125 (bisect: skip); any other failure 128.
fn build_kernel(opts: &build::BuildOptions, cache: &Cache) -> Result<build::Built, ExitCode> {
    let mut progress = Progress::new();
    let result = build::build(opts, cache, &mut |ev| progress.build_event(ev));
    progress.clear();
    match result {
        Ok(built) => {
            if built.cache_hit {
                eprintln!(
                    "krepro: cache hit: {} (built in {:.0} s earlier)",
                    built.bzimage.display(),
                    built.build_secs
                );
                for line in &built.lost {
                    eprintln!("krepro: warning: {line}");
                }
            } else {
                eprintln!(
                    "krepro: built {} in {} (log {})",
                    built.bzimage.display(),
                    mmss(built.build_secs),
                    built.log.display()
                );
            }
            Ok(built)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(if e.is_tree_failure() { krepro_runner::ExitCode::Skip } else { krepro_runner::ExitCode::Error }.into())
        }
    }
}

/// One line, exit 128 (could not run), or 130 when interrupted.
fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    match e.downcast_ref::<krepro_runner::RunError>() {
        Some(run_error) => run_error.exit_code().into(),
        None => krepro_runner::ExitCode::Error.into(),
    }
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_owned()
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| "cargo".into(), PathBuf::from)
}

/// Cargo's target directory: $CARGO_TARGET_DIR, else `<root>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()).map_or_else(|| root().join("target"), PathBuf::from)
}

/// An initrd with the --exec/--file/--modules entries in it, and init's
/// default repro `exec` when there is an --exec FILE.
fn build_exec_initrd(arch: Arch, repro: &str, exec: &cli::ExecArgs, out: &Path) -> Result<PathBuf> {
    if exec.exec.is_none() {
        cli::check_repro(repro)?;
    }
    // No kernel here: modules come from --modules-from.
    let kernel = kernel::Kernel { path: PathBuf::new(), release: None, arch };
    let machine = Machine::from_choice(qemu::MachineChoice::Auto, arch)?;
    let extra = exec.extras(&mut |m| eprintln!("krepro: {m}"))?.entries_for(&kernel, machine, &[])?;
    let mut entries = initrd::standard_entries(build_init(arch, exec.repro(repro))?);
    entries.extend(extra);
    initrd::write_file(&initrd::dedup_dirs(entries), out).with_context(|| format!("write {}", out.display()))?;
    if exec.guest_timeout.is_some() {
        eprintln!("krepro: note: --guest-timeout is a kernel command line word; boot with {}", exec.append().join(" "));
    }
    Ok(out.to_owned())
}

fn list_repros() {
    println!("{:<20} {:<40} CONFIG", "NAME", "CHECKS");
    for r in repros::REPROS {
        let config = if r.config.is_empty() { "-".to_owned() } else { r.config.join(",") };
        let mut needs = Vec::new();
        if r.cpus > 1 {
            needs.push(format!("--cpus {}", r.cpus));
        }
        needs.extend(r.disks.iter().map(|d| format!("--disk {d}")));
        if r.memory_mib > 0 {
            needs.push(format!("--memory {}", r.memory_mib));
        }
        let needs = if needs.is_empty() { String::new() } else { format!(" (boots with {})", needs.join(" ")) };
        println!("{:<20} {} [{config}]{needs}", r.name, r.description);
    }
}

/// What the kselftest tests build from: Debian's kernel source (its
/// tools/testing/selftests) and a C toolchain for `cc -static`.
const KSELFTEST_PACKAGES: &[&str] = &["linux-source-6.1", "xz-utils", "build-essential"];

/// What the slow tier (KREPRO_SLOW=1) adds to build kernels (its tests
/// check for each and assert that ccache wrapped the compiler).
const SLOW_PACKAGES: &[&str] = &[
    // The compiler test's second tree; its compilers krepro installs itself.
    "linux-source-6.12",
    "flex",
    "bison",
    "bc",
    "libelf-dev",
    "libssl-dev",
    "git",
    "ccache",
    // arm64 kernels (the cross gcc; qemu-system-arm comes with every ci).
    "gcc-aarch64-linux-gnu",
];

fn slow_tier() -> bool {
    std::env::var("KREPRO_SLOW").as_deref() == Ok("1")
}

/// The kernels the boot tests use: one per Debian cloud series on x86_64,
/// and Debian's arm64 6.12.
const TEST_KERNELS: &[(Arch, &str)] = &[(Arch::X86_64, "6.12"), (Arch::X86_64, "6.1"), (Arch::Aarch64, "6.12")];

fn ci(cache: &Cache) -> Result<()> {
    let root = root();
    let say = &mut |m: &str| eprintln!("krepro: {m}");
    qemu::find_or_install(Arch::X86_64, say)?;
    qemu::find_or_install(Arch::Aarch64, say)?;
    // The arm64 tests' init: the cross toolchain (Debian's rustc-web and
    // arm64 core where rustup has no aarch64 target), installed and warmed
    // up once here rather than by the first of several tests at once.
    build_init(Arch::Aarch64, DEFAULT_REPRO).context("building init for aarch64")?;
    // The initrd tests read the archive back with GNU cpio too; the bench
    // test boots a busybox initramfs.
    install::find_or_install("cpio", "cpio", say)?;
    install::find_or_install("busybox", "busybox-static", say)?;
    // The initrd test reads init's program headers with readelf.
    install::find_or_install("readelf", "binutils", say)?;
    install::apt_packages(KSELFTEST_PACKAGES, say)?;
    for (arch, series) in TEST_KERNELS {
        if fetch::newest_cached(&cache.kernels(), *arch, Some(series)).is_none() {
            fetch::fetch(cache, Some(series), *arch, say)?;
        }
    }
    // The slow tests are #[ignore]d: a plain run lists them as ignored.
    let mut test_args = vec!["test", "--", "--test-threads", "2"];
    if slow_tier() {
        // Real kernel builds: Debian's kernel source and its build deps.
        install::apt_packages(SLOW_PACKAGES, say)?;
        test_args.push("--include-ignored");
    }
    let cargo = cargo();
    Cmd::new(&cargo, ["fmt", "--all", "--check"], &root).status().context("cargo fmt --check (run `cargo fmt`)")?;
    Cmd::new(&cargo, ["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"], &root).status()?;
    Cmd::new(
        &cargo,
        [
            "clippy",
            "--quiet",
            "--package",
            "krepro-init",
            "--profile",
            "init",
            "--target",
            Arch::host_or_default().rust_target(),
            "--",
            "-D",
            "warnings",
        ],
        &root,
    )
    .status()?;
    init::clippy_init(Arch::Aarch64)?;
    Cmd::new(&cargo, test_args, &root).status()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Xtask::command().debug_assert();
    }
}
