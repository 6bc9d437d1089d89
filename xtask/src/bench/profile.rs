//! `cargo xtask bench --profile`: where one boot's time goes, without
//! reading logs. The kernel boots with `initcall_debug` (and
//! `ignore_loglevel`, since it prints at KERN_DEBUG) and printk times; the
//! report is krepro's split of the boot, the slowest initcalls and the
//! longest silences between two console lines, each with the line that
//! ends it. initcall_debug's own lines cost UART time, so a profiled boot
//! is slower than a plain one: the ranking, not the total, is the point.
//!
//! A second, plain boot is sampled: every 2 ms the guest's program counter
//! is read through qemu's monitor (`info registers`) and named with the
//! kernel's symbols. That sees what initcalls cannot: work before the
//! initcalls and between them, with interrupts off and the kernel's clock
//! stopped (LOCK-prefix patching, APIC timer calibration, freeing init
//! memory). The symbols come from a System.map beside the kernel (or in
//! its tree), else from the guest's own /proc/kallsyms, read by a third
//! boot; both sampled boots get `nokaslr` so that the addresses agree.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use krepro_runner::boot::run::{self, Plan, RunEvent};
use krepro_runner::image::kernel::Kernel;
use serde::Serialize;

/// How many entries each ranking shows.
const TOP: usize = 12;

/// The command line words a profiled boot adds.
pub const PROFILE_APPEND: &[&str] = &["initcall_debug", "ignore_loglevel", "printk.time=1"];

/// One initcall and how long it took.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Initcall {
    pub name: String,
    pub usecs: u64,
}

/// A silence between two console lines (kernel time), and the line that
/// ended it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gap {
    pub from_s: f64,
    pub ms: f64,
    pub before: String,
    pub after: String,
}

/// Where the guest's CPU was: one function, how many samples found it
/// there (each stands for [`SAMPLE_EVERY`] or so of host time) and the
/// host time from the first sample to the first and last of them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HotSpot {
    pub function: String,
    pub samples: usize,
    pub ms: f64,
    pub first_s: f64,
    pub last_s: f64,
}

/// How often the sampler reads the guest's program counter.
const SAMPLE_EVERY: Duration = Duration::from_millis(2);

/// One profiled boot.
#[derive(Debug, Serialize)]
pub struct Profile {
    pub kernel: String,
    pub kernel_to_init_ms: Option<u64>,
    pub init_to_verdict_ms: Option<u64>,
    pub verdict_to_exit_ms: Option<u64>,
    /// Sum of every initcall's time, and how many there were.
    pub initcalls_ms: f64,
    pub initcall_count: usize,
    pub slowest_initcalls: Vec<Initcall>,
    pub longest_gaps: Vec<Gap>,
    /// Where the symbols came from (a System.map, or the guest's kallsyms).
    pub symbols: String,
    /// The sampled boot: how many samples, over how long.
    pub samples: usize,
    pub sampled_ms: f64,
    pub hot_spots: Vec<HotSpot>,
}

/// A kernel's text symbols, sorted by address.
pub struct Symbols(Vec<(u64, String)>);

impl Symbols {
    /// Parses System.map or /proc/kallsyms text (`ADDR TYPE NAME [MODULE]`);
    /// keeps text symbols. None when there are too few to be real (Debian
    /// ships a one-line System.map that points to its -dbg package).
    pub fn parse(text: &str) -> Option<Symbols> {
        let mut syms: Vec<(u64, String)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let kind = f.next()?;
                let name = f.next()?;
                (matches!(kind, "t" | "T" | "w" | "W") && addr != 0).then(|| (addr, name.to_owned()))
            })
            .collect();
        syms.sort_unstable();
        (syms.len() >= 1000).then_some(Symbols(syms))
    }

    /// The function `addr` falls in: a kernel text symbol, "user space",
    /// or the address.
    pub fn name(&self, addr: u64) -> String {
        if addr < 0x8000_0000_0000 {
            return "(user space)".to_owned();
        }
        match self.0.partition_point(|(a, _)| *a <= addr).checked_sub(1) {
            Some(i) if addr - self.0[i].0 < 1 << 20 => self.0[i].1.clone(),
            _ => format!("{addr:#x}"),
        }
    }
}

/// A System.map that belongs to `kernel`: `<kernel>.map` (what `kernel
/// build -o` writes), `System.map-<release>` or `System.map` beside it,
/// or in the tree it was built in (`<tree>/arch/*/boot/<image>`).
pub fn system_map(kernel: &Path, release: Option<&str>) -> Option<(PathBuf, Symbols)> {
    let dir = kernel.parent()?;
    let mut candidates = vec![PathBuf::from(format!("{}.map", kernel.display()))];
    if let Some(r) = release {
        candidates.push(dir.join(format!("System.map-{r}")));
    }
    candidates.push(dir.join("System.map"));
    if let Some(tree) = dir.parent().and_then(Path::parent).and_then(Path::parent) {
        candidates.push(tree.join("System.map"));
    }
    candidates.into_iter().find_map(|p| {
        let syms = Symbols::parse(&std::fs::read_to_string(&p).ok()?)?;
        Some((p, syms))
    })
}

/// The program counter in one `info registers` reply (x86_64 `RIP=`,
/// aarch64 `PC=`).
pub fn program_counter(reply: &str) -> Option<u64> {
    reply.split_whitespace().find_map(|w| {
        let hex = w.strip_prefix("RIP=").or_else(|| w.strip_prefix("PC="))?;
        u64::from_str_radix(hex, 16).ok()
    })
}

/// Reads the guest's program counter through the monitor at `socket`
/// every [`SAMPLE_EVERY`] until qemu closes it: (seconds since the
/// first sample, address). Waits for qemu to create the socket, or for
/// `done` (the boot ended first).
fn sample(socket: &Path, done: &AtomicBool) -> Vec<(f64, u64)> {
    let stream = loop {
        if let Ok(s) = UnixStream::connect(socket) {
            break s;
        }
        if done.load(Ordering::Relaxed) {
            return Vec::new();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let Ok(mut writer) = stream.try_clone() else { return Vec::new() };
    let mut reader = BufReader::new(stream);
    let mut samples = Vec::new();
    let mut t0 = None;
    // Each reply ends with the next "(qemu) " prompt.
    let mut reply = Vec::new();
    let next_reply = |reader: &mut BufReader<UnixStream>, reply: &mut Vec<u8>| -> bool {
        reply.clear();
        loop {
            match reader.read_until(b' ', reply) {
                Ok(0) | Err(_) => return false,
                Ok(_) if reply.ends_with(b"(qemu) ") => return true,
                Ok(_) => {}
            }
        }
    };
    if !next_reply(&mut reader, &mut reply) {
        return samples;
    }
    loop {
        if writer.write_all(b"info registers\n").is_err() || !next_reply(&mut reader, &mut reply) {
            return samples;
        }
        let now = Instant::now();
        let t = now.duration_since(*t0.get_or_insert(now)).as_secs_f64();
        if let Some(pc) = program_counter(&String::from_utf8_lossy(&reply)) {
            samples.push((t, pc));
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

/// The functions the samples fall in, most samples first.
pub fn hot_spots(samples: &[(f64, u64)], symbols: &Symbols, interval_ms: f64) -> Vec<HotSpot> {
    let mut by_name: Vec<HotSpot> = Vec::new();
    for &(t, pc) in samples {
        let name = symbols.name(pc);
        match by_name.iter_mut().find(|h| h.function == name) {
            Some(h) => {
                h.samples += 1;
                h.last_s = t;
            }
            None => by_name.push(HotSpot { function: name, samples: 1, ms: 0.0, first_s: t, last_s: t }),
        }
    }
    for h in &mut by_name {
        h.ms = h.samples as f64 * interval_ms;
    }
    by_name.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.first_s.total_cmp(&b.first_s)));
    by_name.truncate(TOP);
    by_name
}

/// `[    1.234567] text` -> (1.234567, "text").
pub fn printk_time(line: &str) -> Option<(f64, &str)> {
    let rest = line.strip_prefix('[')?;
    let (stamp, text) = rest.split_once(']')?;
    Some((stamp.trim().parse().ok()?, text.strip_prefix(' ').unwrap_or(text)))
}

/// `initcall foo+0x0/0x40 returned 0 after 1234 usecs` -> foo, 1234.
pub fn initcall(text: &str) -> Option<Initcall> {
    let rest = text.strip_prefix("initcall ")?;
    let (name, rest) = rest.split_once(' ')?;
    let usecs = rest.split_once(" after ")?.1.strip_suffix(" usecs")?.parse().ok()?;
    let name = name.split_once('+').map_or(name, |(n, _)| n).to_owned();
    Some(Initcall { name, usecs })
}

/// The slowest initcalls and the longest gaps in a boot's console lines.
pub fn rank(lines: &[String]) -> (Vec<Initcall>, Vec<Gap>, f64, usize) {
    let mut calls: Vec<Initcall> =
        lines.iter().filter_map(|l| printk_time(l)).filter_map(|(_, t)| initcall(t)).collect();
    let total_ms = calls.iter().map(|c| c.usecs as f64 / 1000.0).sum();
    let count = calls.len();
    calls.sort_by_key(|c| std::cmp::Reverse(c.usecs));
    calls.truncate(TOP);
    let stamped: Vec<(f64, &str)> = lines.iter().filter_map(|l| printk_time(l)).collect();
    let mut gaps: Vec<Gap> = stamped
        .windows(2)
        .map(|w| Gap {
            from_s: w[0].0,
            ms: (w[1].0 - w[0].0) * 1000.0,
            before: w[0].1.to_owned(),
            after: w[1].1.to_owned(),
        })
        .collect();
    gaps.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    gaps.truncate(TOP);
    (calls, gaps, total_ms, count)
}

/// Profiles `kernel`: one boot under `plan` (whose append has
/// [`PROFILE_APPEND`]) ranks initcalls and silences, one plain boot is
/// sampled. `kallsyms_plan` gives a plan that runs `cat /proc/kallsyms`
/// in the guest (asked for only when no System.map is found).
pub fn profile(
    plan: &Plan,
    kallsyms_plan: &mut dyn FnMut() -> Result<Plan>,
    kernel: &Kernel,
    say: &mut dyn FnMut(&str),
) -> Result<Profile> {
    let target = plan.target(kernel, say)?;
    let kernel_path = kernel.path.as_path();
    let mut lines = Vec::new();
    let r = run::run(plan, &target, 1, &mut |ev| {
        if let RunEvent::Console(l) = ev {
            lines.push(l.to_owned());
        }
    })?;
    if r.outcome != krepro_runner::Outcome::Pass {
        bail!("the profiled boot of {} did not pass: {} {}", kernel_path.display(), r.outcome, r.message);
    }
    let (slowest_initcalls, longest_gaps, initcalls_ms, initcall_count) = rank(&lines);

    let (symbols_from, symbols) = match system_map(kernel_path, target.kernel.release.as_deref()) {
        Some((path, syms)) => (path.display().to_string(), syms),
        None => {
            say("no System.map beside the kernel: reading the guest's /proc/kallsyms");
            let kplan = kallsyms_plan()?;
            let ktarget = kplan.target(kernel, say)?;
            let mut text = String::new();
            let r = run::run(&kplan, &ktarget, 1, &mut |ev| {
                if let RunEvent::Output(chunk) = ev {
                    text.push_str(chunk);
                    text.push('\n');
                }
            })?;
            let syms = Symbols::parse(&text).with_context(|| {
                format!("the guest's /proc/kallsyms gave no symbols ({} {}): is KALLSYMS off?", r.outcome, r.message)
            })?;
            ("the guest's /proc/kallsyms".to_owned(), syms)
        }
    };

    // Kernels without kallsyms print initcalls as addresses.
    let mut slowest_initcalls = slowest_initcalls;
    for c in &mut slowest_initcalls {
        if let Some(addr) = c.name.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok()) {
            c.name = symbols.name(addr);
        }
    }

    say("sampling a plain boot");
    let dir = tempfile::Builder::new().prefix("krepro-profile-").tempdir().context("create a temp dir")?;
    let socket = dir.path().join("monitor");
    let mut sampled = plan.clone();
    sampled.append.retain(|w| !PROFILE_APPEND.contains(&w.as_str()));
    sampled.append.push("nokaslr".into());
    sampled.qemu_args.extend(["-monitor".to_owned(), format!("unix:{},server=on,wait=off", socket.display())]);
    let done = AtomicBool::new(false);
    let (r, samples) = std::thread::scope(|s| {
        let sampler = s.spawn(|| sample(&socket, &done));
        let r = run::run(&sampled, &target, 1, &mut |_| {});
        done.store(true, Ordering::Relaxed);
        (r, sampler.join().unwrap_or_default())
    });
    let r = r?;
    if r.outcome != krepro_runner::Outcome::Pass {
        bail!("the sampled boot of {} did not pass: {} {}", kernel_path.display(), r.outcome, r.message);
    }
    let sampled_ms = samples.last().map_or(0.0, |s| s.0 * 1000.0);
    let interval_ms = if samples.len() > 1 { sampled_ms / (samples.len() - 1) as f64 } else { 0.0 };
    Ok(Profile {
        kernel: target.kernel.release.clone().unwrap_or_else(|| kernel_path.display().to_string()),
        kernel_to_init_ms: r.boot_to_init_ms,
        init_to_verdict_ms: r.init_to_verdict_ms,
        verdict_to_exit_ms: r.verdict_to_exit_ms,
        initcalls_ms,
        initcall_count,
        slowest_initcalls,
        longest_gaps,
        symbols: symbols_from,
        samples: samples.len(),
        sampled_ms,
        hot_spots: hot_spots(&samples, &symbols, interval_ms),
    })
}

/// The report on stdout.
pub fn print(p: &Profile) {
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    println!(
        "{}: kernel -> /init {}, /init -> verdict {}, verdict -> qemu exit {} (a plain boot)",
        p.kernel,
        ms(p.kernel_to_init_ms),
        ms(p.init_to_verdict_ms),
        ms(p.verdict_to_exit_ms)
    );
    println!(
        "  {} initcalls, {:.0} ms in all (a boot with {}); the slowest:",
        p.initcall_count,
        p.initcalls_ms,
        PROFILE_APPEND.join(" ")
    );
    for c in &p.slowest_initcalls {
        println!("    {:>9.1} ms  {}", c.usecs as f64 / 1000.0, c.name);
    }
    println!("  the longest silences on the console (kernel time):");
    for g in &p.longest_gaps {
        println!("    {:>9.1} ms  at {:>8.3} s, until: {}", g.ms, g.from_s, clip(&g.after, 90));
        println!("    {:>12}  after: {}", "", clip(&g.before, 90));
    }
    println!(
        "  where the guest's CPU was (a plain boot: {} samples over {:.0} ms; symbols from {}):",
        p.samples, p.sampled_ms, p.symbols
    );
    for h in &p.hot_spots {
        println!("    {:>9.0} ms  {:<36} {:.2}-{:.2} s", h.ms, h.function, h.first_s, h.last_s);
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_printk_times_and_initcalls() {
        assert_eq!(printk_time("[    1.250000] Run /init as init process"), Some((1.25, "Run /init as init process")));
        assert_eq!(printk_time("krepro: start boot_ms=1"), None);
        assert_eq!(
            initcall("initcall pci_subsys_init+0x0/0x70 returned 0 after 15234 usecs"),
            Some(Initcall { name: "pci_subsys_init".into(), usecs: 15234 })
        );
        assert_eq!(initcall("calling  pci_subsys_init+0x0/0x70 @ 1"), None);
    }

    fn map(extra: &str) -> String {
        // Enough filler for a map to count as real, then the named ones.
        let mut text: String =
            (0..1000).map(|i| format!("{:016x} T filler{i}\n", 0xffff_ffff_8200_0000u64 + i)).collect();
        text.push_str(extra);
        text
    }

    #[test]
    fn symbols_name_kernel_text_and_user_space() {
        assert!(Symbols::parse("ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n")
            .is_none());
        let s = Symbols::parse(&map(
            "ffffffff810a690d T free_reserved_area\nffffffff810a6a00 t next_one\nffffffff810a7000 D some_data\n",
        ))
        .unwrap();
        assert_eq!(s.name(0xffffffff810a69bd), "free_reserved_area");
        assert_eq!(s.name(0xffffffff810a6a00), "next_one");
        // Data symbols are not functions: the text before them owns the address.
        assert_eq!(s.name(0xffffffff810a7010), "next_one");
        assert_eq!(s.name(0x401000), "(user space)");
        assert_eq!(s.name(0xffffffff80000000), "0xffffffff80000000");
    }

    #[test]
    fn reads_the_program_counter_of_either_arch() {
        let x86 = "RAX=0000000000000000 RBX=ffffffff82a03e00\r\nRSI=0 RDI=0\r\nRIP=ffffffff810a69bd RFL=00000002 [-------] CPL=0";
        assert_eq!(program_counter(x86), Some(0xffffffff810a69bd));
        assert_eq!(program_counter("PC=ffff800080a1b2c4 X00=0000000000000000"), Some(0xffff800080a1b2c4));
        assert_eq!(program_counter("unknown command"), None);
    }

    #[test]
    fn hot_spots_count_samples_per_function() {
        let s = Symbols::parse(&map("ffffffff81000000 T a\nffffffff81001000 T b\n")).unwrap();
        let samples =
            [(0.0, 0xffffffff81000010), (0.002, 0xffffffff81001000), (0.004, 0xffffffff81001004), (0.5, 0x1000)];
        let h = hot_spots(&samples, &s, 2.0);
        assert_eq!(h[0], HotSpot { function: "b".into(), samples: 2, ms: 4.0, first_s: 0.002, last_s: 0.004 });
        assert_eq!(h.iter().map(|h| h.function.as_str()).collect::<Vec<_>>(), ["b", "a", "(user space)"]);
    }

    #[test]
    fn finds_the_system_map_beside_the_kernel_or_in_its_tree() {
        let d = tempfile::tempdir().unwrap();
        let boot = d.path().join("arch/x86/boot");
        std::fs::create_dir_all(&boot).unwrap();
        let kernel = boot.join("bzImage");
        assert!(system_map(&kernel, None).is_none());
        std::fs::write(d.path().join("System.map"), map("")).unwrap();
        assert_eq!(system_map(&kernel, None).unwrap().0, d.path().join("System.map"));
        std::fs::write(boot.join("bzImage.map"), map("")).unwrap();
        assert_eq!(system_map(&kernel, None).unwrap().0, boot.join("bzImage.map"));
        // Debian's stub System.map-<release> is passed over.
        let k = d.path().join("vmlinuz-6.12");
        std::fs::write(d.path().join("System.map-6.12"), "ffffffffffffffff B The real System.map is elsewhere\n")
            .unwrap();
        assert_eq!(system_map(&k, Some("6.12")).unwrap().0, d.path().join("System.map"));
    }

    #[test]
    fn ranks_initcalls_and_gaps() {
        let lines: Vec<String> = [
            "[    0.100000] initcall a+0x0/0x1 returned 0 after 100 usecs",
            "[    0.300000] initcall b+0x0/0x1 returned 0 after 200000 usecs",
            "krepro: a line without a time",
            "[    0.310000] initcall c returned -19 after 5000 usecs",
            "[    0.900000] Run /init as init process",
        ]
        .map(String::from)
        .to_vec();
        let (calls, gaps, total, count) = rank(&lines);
        assert_eq!(count, 3);
        assert!((total - 205.1).abs() < 1e-9, "{total}");
        assert_eq!(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["b", "c", "a"]);
        assert_eq!(gaps[0].after, "Run /init as init process");
        assert!((gaps[0].ms - 590.0).abs() < 1e-6, "{}", gaps[0].ms);
        assert_eq!(gaps[1].before, "initcall a+0x0/0x1 returned 0 after 100 usecs");
    }
}
