//! `cargo xtask bench`: krepro against the ways people boot-test kernels
//! today, on the same kernels and machine, in one run, alternating, as
//! ratios to a baseline measured in the same rounds. Medians are quoted.
//!
//! Tools: krepro (its default path and the plainer paths it chose against),
//! a static C init in a gzip'd cpio booted with a plain qemu command line
//! (the baseline), a busybox initramfs doing the same, and virtme-ng and
//! vmtest when installed (`--peers` installs them: see peers.rs).

mod bisect;
mod peers;
pub mod planted;
mod profile;
mod svg;

use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use krepro_runner::boot::qemu::{Accel, MachineChoice};
use krepro_runner::boot::run::{self, EntryChoice, Plan, RunResult};
use krepro_runner::cli::progress::Progress;
use krepro_runner::cli::BootArgs;
use krepro_runner::guest::{ReproArg, Selected};
use krepro_runner::host::cache::Cache;
use krepro_runner::host::install;
use krepro_runner::host::spawn::{Cmd, Line, Stream};
use krepro_runner::image::arch::Arch;
use krepro_runner::image::kernel::{check_kernel, Kernel};
use krepro_runner::initrd;
use krepro_runner::initrd::modules::Modules;
use krepro_runner::request::{self, Program};
use krepro_runner::session::{self, What};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A kernel to measure on; repeatable [default: the newest cached kernel]
    #[arg(long, value_name = "FILE")]
    kernel: Vec<PathBuf>,
    /// The repro krepro's rounds run: a name or a .rs file; it must pass
    #[arg(long, value_name = "NAME|FILE", default_value = request::DEFAULT_REPRO)]
    repro: String,
    /// Rounds per kernel (every tool once per round)
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Also write the results as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also draw them: one box per tool and kernel, in seconds (SVG)
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Instead of timing rounds, boot each kernel once with initcall_debug
    /// and print where the time goes: krepro's split, the slowest
    /// initcalls, the longest silences on the console (--json FILE too)
    #[arg(long, conflicts_with = "plot")]
    profile: bool,
    /// Instead of boot rounds, run the planted bisect (a git history on
    /// Debian's linux-source-6.1, as the slow tier's) from a fresh krepro
    /// cache and a warm ccache, after the user's own build, and print
    /// where each step's time went (`--json FILE`: its report)
    #[arg(long, conflicts_with_all = ["profile", "peers", "plot"])]
    bisect: bool,
    /// Install virtme-ng and vmtest (and what they need: apt packages, a
    /// venv and cargo installs under ~/.cache/krepro/peers) and run them in
    /// the same rounds; a peer that cannot run on a kernel says why
    #[arg(long)]
    peers: bool,
    /// Also boot J at once (as `run --parallel J`) in each round: a row
    /// with krepro's seconds per boot when J boot side by side (the
    /// round's wall time over J), against the baseline's one at a time
    #[arg(long, value_name = "J", value_parser = clap::value_parser!(u32).range(2..))]
    parallel: Option<u32>,
    /// How krepro boots, as for `run`; the variants below change one
    /// choice each, and the baselines use the accelerator krepro ends up with
    #[command(flatten)]
    boot: BootArgs,
}

/// The krepro variants measured: the boot flags given (by default,
/// krepro's default path) and the choices it made against, each a change
/// to those flags.
/// A variant runs on guests of every architecture unless it names one.
type Variant = (&'static str, Option<Arch>, fn(&mut request::Boot, &mut request::Guest));
const KREPRO_VARIANTS: &[Variant] = &[
    ("krepro", None, |_, _| {}),
    // What the command-line speed-ups save (qemu::speedup_words).
    ("krepro --no-speedups", None, |b, _| b.speedups = false),
    ("krepro --machine pc --entry bzimage", Some(Arch::X86_64), |b, _| {
        b.machine = MachineChoice::Pc;
        b.entry = EntryChoice::Bzimage;
    }),
    ("krepro --machine pc", Some(Arch::X86_64), |b, _| b.machine = MachineChoice::Pc),
    ("krepro --entry bzimage", Some(Arch::X86_64), |b, _| b.entry = EntryChoice::Bzimage),
    // What krepro's `-cpu max,pauth-impdef=on` saves under TCG: plain
    // `max` emulates the architected QARMA5 pointer authentication.
    ("krepro -cpu max (QARMA5 pauth)", Some(Arch::Aarch64), |b, _| {
        b.qemu_args = vec!["-cpu".into(), "max".into()];
    }),
    ("krepro --console quiet", None, |b, _| b.quiet = true),
    ("krepro --memory 1024", None, |b, _| b.memory_mib = Some(1024)),
    // What loading the output channel's modules by default costs a boot
    // (on kernels that have them as modules; elsewhere the same boot).
    ("krepro --modules none", None, |_, g| g.modules = Some(Modules::None)),
    // What the resources cost: a second CPU, a fresh ext4 disk (made with
    // mkfs.ext4 per boot; virtio_blk loaded where it is a module).
    ("krepro --cpus 2", None, |b, _| b.cpus = Some(2)),
    ("krepro --disk new:64M:ext4", None, |b, _| b.disks = vec!["new:64M:ext4".parse().expect("a valid spec")]),
];

const BASELINE: &str = "c-init (plain qemu)";
const BUSYBOX: &str = "busybox (plain qemu)";

/// One tool's results on one kernel.
#[derive(Serialize)]
struct ToolResult {
    tool: String,
    /// Seconds per round; empty when not installed.
    wall_s: Vec<f64>,
    min_s: Option<f64>,
    median_s: Option<f64>,
    max_s: Option<f64>,
    /// Median over rounds of (this tool / baseline), same round.
    ratio_to_baseline: Option<f64>,
    initrd_bytes: Option<u64>,
    note: Option<String>,
}

/// krepro's own split, medians over rounds, milliseconds.
#[derive(Serialize, Default)]
struct Split {
    qemu_to_kernel_ms: Option<f64>,
    kernel_to_init_ms: Option<f64>,
    init_to_verdict_ms: Option<f64>,
    verdict_to_exit_ms: Option<f64>,
    host_overhead_ms: Option<f64>,
}

#[derive(Serialize)]
struct KernelResult {
    kernel: PathBuf,
    release: Option<String>,
    accel: String,
    rounds: u32,
    tools: Vec<ToolResult>,
    krepro_split: Split,
}

impl KernelResult {
    /// The release and the file: two builds of one tree share a release.
    fn heading(&self) -> String {
        let file =
            self.kernel.file_name().map_or_else(|| self.kernel.display().to_string(), |f| f.to_string_lossy().into());
        format!("{} [{file}] ({}, {} rounds)", self.release.as_deref().unwrap_or("?"), self.accel, self.rounds)
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// A boot with a plain qemu command line, as people write it: the default
/// machine and devices (on arm64 `-M virt -cpu max`, which it has no
/// default for), -nographic, -no-reboot so the guest's restart ends qemu.
/// Passes when the console shows `expect`.
fn plain_qemu(qemu: &Path, arch: Arch, accel: Accel, kernel: &Path, initrd: &Path, expect: &str) -> Result<f64> {
    let machine: &[&str] = match (arch, accel) {
        (Arch::X86_64, _) => &[],
        (Arch::Aarch64, Accel::Kvm) => &["-M", "virt", "-cpu", "host"],
        (Arch::Aarch64, Accel::Tcg) => &["-M", "virt", "-cpu", "max"],
    };
    let cmd = Cmd::new(qemu, ["-accel", accel.name(), "-m", "256", "-nographic", "-no-reboot"], Path::new("/"))
        .args(machine)
        .args(["-kernel".as_ref(), kernel.as_os_str(), "-initrd".as_ref(), initrd.as_os_str()])
        .args(["-append", &format!("console={} panic=-1", arch.console())])
        .quiet()
        .contained();
    let started = Instant::now();
    let mut child = cmd.spawn_lines()?;
    let deadline = started + Duration::from_secs(180);
    let mut seen = false;
    loop {
        match child.recv_timeout(Duration::from_millis(5)) {
            Ok(Line::Text(Stream::Stdout, l)) => seen |= l.contains(expect),
            Ok(Line::End(Stream::Stdout)) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() > deadline {
            bail!("a plain qemu boot did not finish in 180 s");
        }
    }
    child.wait()?;
    let secs = started.elapsed().as_secs_f64();
    if !seen {
        bail!("the plain qemu boot did not print {expect:?}");
    }
    Ok(secs)
}

/// The C-init baseline's initrd: the program above, static (built with
/// the host's cc, or the cross gcc for another architecture), plus
/// /dev/console.
fn baseline_initrd(dir: &Path, arch: Arch) -> Result<PathBuf> {
    let src = dir.join("baseline_init.c");
    std::fs::write(&src, include_str!("baseline_init.c"))?;
    let exe = dir.join("init");
    let (cc, package) = if Arch::host() == Some(arch) {
        ("cc".to_owned(), "build-essential".to_owned())
    } else {
        (format!("{}-gcc", arch.gnu_triple()), format!("gcc-{}", arch.gnu_triple()))
    };
    Cmd::new(&cc, ["-static".as_ref(), "-Os".as_ref(), "-o".as_ref(), exe.as_os_str(), src.as_os_str()], dir)
        .quiet()
        .output()
        .with_context(|| format!("{cc} -static for the C-init baseline (apt-get install -y {package})"))?;
    let entries = vec![
        initrd::Member::dir("dev"),
        initrd::Member::char_dev("dev/console", 0o600, 5, 1),
        initrd::Member::file("init", 0o755, std::fs::read(&exe)?),
    ];
    let out = dir.join("c-init.cpio.gz");
    initrd::write_file(&entries, &out)?;
    Ok(out)
}

/// The busybox initramfs: busybox-static as /init (its init applet) with an
/// inittab that prints and restarts. No shell script as /init: tinyconfig
/// kernels lack CONFIG_BINFMT_SCRIPT.
fn busybox_initrd(dir: &Path, busybox: &Path) -> Result<PathBuf> {
    let bb = std::fs::read(busybox)?;
    // reboot, not poweroff: see baseline_init.c.
    let inittab = "::sysinit:/bin/busybox echo busybox: ok\n::sysinit:/bin/busybox reboot -f\n";
    let entries = vec![
        initrd::Member::dir("bin"),
        initrd::Member::file("bin/busybox", 0o755, bb.clone()),
        initrd::Member::dir("dev"),
        initrd::Member::char_dev("dev/console", 0o600, 5, 1),
        initrd::Member::dir("etc"),
        initrd::Member::file("etc/inittab", 0o644, inittab.as_bytes().to_vec()),
        initrd::Member::file("init", 0o755, bb),
    ];
    let out = dir.join("busybox.cpio.gz");
    initrd::write_file(&entries, &out)?;
    Ok(out)
}

/// The kernels bench measures, checked: its --kernels (one architecture
/// for all), else krepro's default kernel for --arch or the host's.
fn kernels(args: &BenchArgs, boot: &request::Boot, cache: &Cache, say: &mut dyn FnMut(&str)) -> Result<Vec<Kernel>> {
    let mut kernels = Vec::new();
    for k in &args.kernel {
        let kernel = check_kernel(k)?;
        let arch = session::arch(boot, Some(&kernel))?;
        if kernels.first().is_some_and(|f: &Kernel| f.arch != arch) {
            bail!(
                "--kernel: {} is {arch}, the kernels before it are not: one bench measures one architecture",
                k.display()
            );
        }
        kernels.push(kernel);
    }
    if kernels.is_empty() {
        let arch = session::arch(boot, None)?;
        kernels.push(session::default_kernel(arch, cache, say)?);
    }
    Ok(kernels)
}

/// krepro's plan for the smoke repro (or `what`) with `boot`.
fn plan_for(
    what: &What,
    guest: &request::Guest,
    boot: &request::Boot,
    arch: Arch,
    cache: &Cache,
    say: &mut dyn FnMut(&str),
) -> Result<(Plan, PathBuf)> {
    let g = session::guest(what, guest, boot, arch, cache, say)?;
    Ok((session::plan(boot, &g, cache, say)?, g.initrd))
}

pub fn bench(args: &BenchArgs, cache: &Cache) -> Result<()> {
    if args.bisect {
        return bisect::bench(&[], args.json.as_deref());
    }
    let mut progress = Progress::new();
    let boot = args.boot.request();
    let kernels = kernels(args, &boot, cache, &mut |m| progress.say(m))?;
    let arch = kernels[0].arch;
    let smoke = match krepro_runner::guest::select(&ReproArg::parse(&args.repro), None)? {
        Selected::Repro(r) => What::Repro(r),
        Selected::CSource(c) => What::CSource(c),
    };
    let no_guest = request::Guest::default();
    if args.profile {
        let mut boot = boot.clone();
        boot.append.extend(profile::PROFILE_APPEND.iter().map(|w| (*w).to_owned()));
        let (plan, _) = plan_for(&smoke, &no_guest, &boot, arch, cache, &mut |m| progress.say(m))?;
        // For kernels without a System.map: a boot that prints the guest's
        // kallsyms, on pc, where virtio-pci carries the output port
        // without modules.
        let script_dir = tempfile::Builder::new().prefix("krepro-profile-").tempdir()?;
        let script = script_dir.path().join("kallsyms.sh");
        std::fs::write(&script, "#!/bin/sh\nexec cat /proc/kallsyms\n")?;
        let mut kallsyms_plan = || -> Result<Plan> {
            let mut boot = args.boot.request();
            boot.machine = MachineChoice::Pc;
            boot.append.push("nokaslr".into());
            let exec = request::Guest { program: Program::Exec(script.clone()), ..request::Guest::default() };
            let what = What::Exec(script.clone());
            Ok(plan_for(&what, &exec, &boot, arch, cache, &mut |m: &str| eprintln!("krepro: {m}"))?.0)
        };
        let mut profiles = Vec::new();
        for k in &kernels {
            progress.line(&format!("profiling {}", k.path.display()), true);
            profiles.push(profile::profile(&plan, &mut kallsyms_plan, k, &mut |m: &str| progress.say(m))?);
        }
        progress.clear();
        for p in &profiles {
            profile::print(p);
        }
        if let Some(path) = &args.json {
            std::fs::write(path, serde_json::to_string_pretty(&profiles)?)
                .with_context(|| format!("write {}", path.display()))?;
        }
        return Ok(());
    }
    // Each krepro variant planned once, as `run` would with those flags.
    let mut plans = Vec::new();
    let mut krepro_initrd = PathBuf::new();
    for (label, only, change) in KREPRO_VARIANTS {
        if only.is_some_and(|a| a != arch) {
            continue;
        }
        let (mut boot, mut guest) = (boot.clone(), no_guest.clone());
        change(&mut boot, &mut guest);
        let (p, initrd) = plan_for(&smoke, &guest, &boot, arch, cache, &mut |m| progress.say(m))?;
        krepro_initrd = initrd;
        plans.push((*label, p));
    }
    let krepro_initrd = krepro_initrd.as_path();
    let qemu_bin = plans[0].1.qemu.clone();
    let busybox = install::busybox(arch, cache, &mut |m: &str| progress.say(m)).ok();
    let peers = peers::prepare(args.peers, arch, cache, &mut |m: &str| progress.say(m))?;
    let scratch = tempfile::tempdir()?;
    let base_initrd = baseline_initrd(scratch.path(), arch)?;
    let bb_initrd = busybox.as_deref().map(|b| busybox_initrd(scratch.path(), b)).transpose()?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();

    let mut results = Vec::new();
    for kernel in &kernels {
        let k = &kernel.path;
        let mut configs = Vec::new();
        for (label, plan) in &plans {
            configs.push((*label, plan, plan.target(kernel, &mut |m: &str| progress.say(m))?));
        }
        let kernel = configs[0].2.kernel.clone();
        let name = kernel.release.clone().unwrap_or_else(|| k.display().to_string());
        // One boot first: it warms the caches and tells the accelerator
        // krepro ends up with (auto: KVM where it works), which the
        // baselines then use too.
        let warm = run::run(configs[0].1, &configs[0].2, 1, &mut |_| {})?;
        let accel = warm.accel;
        let mut walls: Vec<Vec<f64>> = vec![Vec::new(); configs.len() + 4];
        // krepro's default path, J boots at once: seconds per boot.
        let mut side_by_side: Vec<f64> = Vec::new();
        let mut krepro_runs: Vec<RunResult> = Vec::new();
        let mut peer_runs = peers.on(&kernel, &qemu_bin, accel, scratch.path(), cache);
        for round in 0..args.runs {
            progress.line(&format!("bench {name}: round {}/{}", round + 1, args.runs), true);
            // Alternate the order so no tool always goes first.
            let n = configs.len() + 4;
            for step in 0..n {
                let t = (step + round as usize) % n;
                if t < configs.len() {
                    let r = run::run(configs[t].1, &configs[t].2, round + 1, &mut |_| {})?;
                    if r.outcome != krepro_runner::Outcome::Pass {
                        bail!("{} did not pass on {name}: {} {}", configs[t].0, r.outcome, r.message);
                    }
                    walls[t].push(r.wall_ms as f64 / 1000.0);
                    if t == 0 {
                        krepro_runs.push(r);
                    }
                } else {
                    let secs = match t - configs.len() {
                        0 => Some(plain_qemu(&qemu_bin, arch, accel, k, &base_initrd, "baseline: ok")?),
                        1 => bb_initrd
                            .as_deref()
                            .map(|i| plain_qemu(&qemu_bin, arch, accel, k, i, "busybox: ok"))
                            .transpose()?,
                        p => peer_runs.run(p - 2, &configs[0].1.interrupt)?,
                    };
                    if let Some(s) = secs {
                        walls[t].push(s);
                    }
                }
            }
            if let Some(j) = args.parallel {
                let (plan, target) = (configs[0].1, &configs[0].2);
                let started = std::time::Instant::now();
                let boot = |i: u32, on: &mut dyn FnMut(run::RunEvent<'_>)| run::run(plan, target, i + 1, on);
                let failed = krepro_runner::boot::parallel::after_an_error;
                for r in krepro_runner::boot::parallel::boot_all(j, j, &boot, &failed, &mut |_| {}) {
                    let r = r?;
                    if r.outcome != krepro_runner::Outcome::Pass {
                        bail!("krepro, {j} at once did not pass on {name}: {} {}", r.outcome, r.message);
                    }
                }
                side_by_side.push(started.elapsed().as_secs_f64() / f64::from(j));
            }
        }
        let base = &walls[configs.len()];
        let mut tools = Vec::new();
        let labels: Vec<String> = configs
            .iter()
            .map(|(l, _, _)| l.to_string())
            .chain([BASELINE, BUSYBOX].map(String::from))
            .chain(peers::Peer::ALL.map(|p| p.label().to_owned()))
            .collect();
        for (t, label) in labels.iter().enumerate() {
            let w = &walls[t];
            let ratios: Vec<f64> = w.iter().zip(base).map(|(a, b)| a / b).collect();
            let note = if t >= configs.len() + 2 {
                peer_runs.note(t - configs.len() - 2)
            } else if !w.is_empty() {
                None
            } else {
                Some("not installed (busybox-static)".to_owned())
            };
            let initrd_bytes = match t {
                t if t < configs.len() => size(krepro_initrd),
                t if t == configs.len() => size(&base_initrd),
                t if t == configs.len() + 1 => bb_initrd.as_deref().and_then(size),
                _ => None,
            };
            tools.push(ToolResult {
                tool: label.clone(),
                min_s: w.iter().copied().reduce(f64::min),
                median_s: median(w),
                max_s: w.iter().copied().reduce(f64::max),
                ratio_to_baseline: median(&ratios),
                initrd_bytes,
                wall_s: w.clone(),
                note,
            });
        }
        if let Some(j) = args.parallel {
            let ratios: Vec<f64> = side_by_side.iter().zip(base).map(|(a, b)| a / b).collect();
            let w = &side_by_side;
            tools.push(ToolResult {
                tool: format!("krepro, {j} at once (s per boot)"),
                min_s: w.iter().copied().reduce(f64::min),
                median_s: median(w),
                max_s: w.iter().copied().reduce(f64::max),
                ratio_to_baseline: median(&ratios),
                initrd_bytes: size(krepro_initrd),
                wall_s: w.clone(),
                note: None,
            });
        }
        let ms = |f: &dyn Fn(&RunResult) -> Option<u64>| {
            median(&krepro_runs.iter().filter_map(f).map(|v| v as f64).collect::<Vec<_>>())
        };
        let split = Split {
            qemu_to_kernel_ms: ms(&|r| r.qemu_to_kernel_ms),
            kernel_to_init_ms: ms(&|r| r.boot_to_init_ms),
            init_to_verdict_ms: ms(&|r| r.init_to_verdict_ms),
            verdict_to_exit_ms: ms(&|r| r.verdict_to_exit_ms),
            host_overhead_ms: ms(&|r| Some(r.wall_ms.saturating_sub(r.qemu_ms))),
        };
        results.push(KernelResult {
            kernel: k.clone(),
            release: kernel.release,
            accel: accel.name().to_owned(),
            rounds: args.runs,
            tools,
            krepro_split: split,
        });
    }

    progress.clear();
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, svg::boxes(&results)).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn print_table(results: &[KernelResult]) {
    let s = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    for k in results {
        println!("{}", k.heading());
        println!("  {:<38} {:>6} {:>7} {:>6} {:>7} {:>9}", "tool", "min s", "median", "max s", "ratio", "initrd");
        for t in &k.tools {
            if let Some(note) = &t.note {
                println!("  {:<38} {note}", t.tool);
                continue;
            }
            let initrd = t.initrd_bytes.map_or("-".to_owned(), |b| format!("{:.1} KiB", b as f64 / 1024.0));
            println!(
                "  {:<38} {:>6} {:>7} {:>6} {:>7} {:>9}",
                t.tool,
                s(t.min_s),
                s(t.median_s),
                s(t.max_s),
                t.ratio_to_baseline.map_or("-".to_owned(), |r| format!("{r:.2}")),
                initrd
            );
        }
        let m = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let sp = &k.krepro_split;
        println!(
            "  krepro split (median ms): qemu start->kernel {}, kernel->/init {}, /init->verdict {}, verdict->qemu exit {}, host overhead {}",
            m(sp.qemu_to_kernel_ms),
            m(sp.kernel_to_init_ms),
            m(sp.init_to_verdict_ms),
            m(sp.verdict_to_exit_ms),
            m(sp.host_overhead_ms)
        );
    }
}
