//! `cargo xtask bench --profile`: where one boot's time goes, without
//! reading logs. The kernel boots with `initcall_debug` (and
//! `ignore_loglevel`, since it prints at KERN_DEBUG) and printk times; the
//! report is krepro's split of the boot, the slowest initcalls and the
//! longest silences between two console lines, each with the line that
//! ends it. initcall_debug's own lines cost UART time, so a profiled boot
//! is slower than a plain one: the ranking, not the total, is the point.

use std::path::Path;

use anyhow::{bail, Result};
use krepro_runner::boot::run::{self, Plan, RunEvent};
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

/// Boots `kernel` once under `plan` (whose append has [`PROFILE_APPEND`])
/// and ranks what took the time.
pub fn profile(plan: &Plan, kernel: &Path, say: &mut dyn FnMut(&str)) -> Result<Profile> {
    let target = plan.target(kernel, say)?;
    let mut lines = Vec::new();
    let r = run::run(plan, &target, 1, &mut |ev| {
        if let RunEvent::Console(l) = ev {
            lines.push(l.to_owned());
        }
    })?;
    if r.outcome != krepro_runner::Outcome::Pass {
        bail!("the profiled boot of {} did not pass: {} {}", kernel.display(), r.outcome, r.message);
    }
    let (slowest_initcalls, longest_gaps, initcalls_ms, initcall_count) = rank(&lines);
    Ok(Profile {
        kernel: target.kernel.release.clone().unwrap_or_else(|| kernel.display().to_string()),
        kernel_to_init_ms: r.boot_to_init_ms,
        init_to_verdict_ms: r.init_to_verdict_ms,
        verdict_to_exit_ms: r.verdict_to_exit_ms,
        initcalls_ms,
        initcall_count,
        slowest_initcalls,
        longest_gaps,
    })
}

/// The report on stdout.
pub fn print(p: &Profile) {
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v} ms"));
    println!("{} (one boot with {})", p.kernel, PROFILE_APPEND.join(" "));
    // qemu start -> kernel is left out: the host sees PID 1's start line
    // only after the UART has sent initcall_debug's backlog.
    println!(
        "  kernel -> /init {}, /init -> verdict {}, verdict -> qemu exit {}",
        ms(p.kernel_to_init_ms),
        ms(p.init_to_verdict_ms),
        ms(p.verdict_to_exit_ms)
    );
    println!("  {} initcalls, {:.0} ms in all; the slowest:", p.initcall_count, p.initcalls_ms);
    for c in &p.slowest_initcalls {
        println!("    {:>9.1} ms  {}", c.usecs as f64 / 1000.0, c.name);
    }
    println!("  the longest silences on the console (kernel time):");
    for g in &p.longest_gaps {
        println!("    {:>9.1} ms  at {:>8.3} s, until: {}", g.ms, g.from_s, clip(&g.after, 90));
        println!("    {:>12}  after: {}", "", clip(&g.before, 90));
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
