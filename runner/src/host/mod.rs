//! The host around the guest: the one process spawner, tools installed
//! with apt, krepro's cache, and distro kernels fetched into it.

pub(crate) mod atomic;
pub mod cache;
pub mod fetch;
pub mod install;
pub mod lock;
pub mod spawn;
pub(crate) mod sys;
pub mod usage;

/// The host's memory available for new work (`MemAvailable` of
/// /proc/meminfo), in MiB; None where it cannot be read.
pub(crate) fn memory_available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_available_mib(&text)
}

fn meminfo_available_mib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memavailable_is_read_in_mib() {
        let text = "MemTotal:       24578300 kB\nMemFree:         1000000 kB\nMemAvailable:   20480000 kB\n";
        assert_eq!(super::meminfo_available_mib(text), Some(20000));
        assert_eq!(super::meminfo_available_mib("MemTotal: 1 kB\n"), None);
        assert!(super::memory_available_mib().is_some_and(|m| m > 0));
    }
}
