//! `krepro syz --config krepro`: krepro's minimal config plus what of the
//! report's config decides whether and how a bug shows: the sanitizers,
//! lock and memory debugging, the hang and stall detectors and what they
//! do when they fire, fault injection. Builds and boots in a fraction of
//! the full config's time, but leaves out the subsystem the bug is in
//! unless the tree's defaults or `--config-add` bring it: the full config
//! (the default) is the safer choice for a bug in a driver, a filesystem
//! or a protocol tinyconfig does not build.

/// Options of the report's config kept, by prefix of their name.
const KEPT: &[&str] = &[
    "KASAN",
    "KCSAN",
    "KMSAN",
    "KFENCE",
    "UBSAN",
    "LOCKDEP",
    "PROVE_LOCKING",
    "PROVE_RCU",
    "LOCK_STAT",
    "DEBUG_",
    "PANIC_ON_OOPS",
    "PANIC_TIMEOUT",
    "BOOTPARAM_",
    "DETECT_HUNG_TASK",
    "DEFAULT_HUNG_TASK_TIMEOUT",
    "SOFTLOCKUP_DETECTOR",
    "HARDLOCKUP_DETECTOR",
    "WQ_WATCHDOG",
    "RCU_CPU_STALL_TIMEOUT",
    "RCU_EXP_CPU_STALL_TIMEOUT",
    "BUG_ON_DATA_CORRUPTION",
    "LIST_HARDENED",
    "HARDENED_USERCOPY",
    "FORTIFY_SOURCE",
    "STACKPROTECTOR",
    "SLUB_DEBUG",
    "PAGE_POISONING",
    "INIT_ON_ALLOC_DEFAULT_ON",
    "INIT_ON_FREE_DEFAULT_ON",
    "REFCOUNT_FULL",
    "FAULT_INJECTION",
    "FAILSLAB",
    "FAIL_",
    "KCOV",
];

/// Left out though they match: debug info makes builds slower and
/// bigger without changing what runs.
const DROPPED: &[&str] = &["DEBUG_INFO", "DEBUG_INFO_", "DEBUG_PREEMPT_NONE"];

/// What the kept options need to survive `olddefconfig` on tinyconfig,
/// and a stack with function names.
const NEEDED: &[&str] = &["DEBUG_KERNEL", "KALLSYMS", "SLUB", "STACKTRACE", "PRINTK", "BUG", "PROC_SYSCTL"];

/// The fragment (`CONFIG_X=value` lines) of `config` that `--config
/// krepro` builds on top of krepro's minimal config.
pub(crate) fn sanitizer_fragment(config: &str) -> String {
    let mut out: Vec<String> = NEEDED.iter().map(|n| format!("CONFIG_{n}=y")).collect();
    for line in config.lines() {
        let Some((name, value)) = line.trim().strip_prefix("CONFIG_").and_then(|l| l.split_once('=')) else { continue };
        let kept = KEPT.iter().any(|k| name.starts_with(k));
        let dropped = DROPPED.iter().any(|d| name == *d || (d.ends_with('_') && name.starts_with(d)));
        if kept && !dropped && !value.is_empty() {
            out.push(format!("CONFIG_{name}={value}"));
        }
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_sanitizers_and_detectors_only() {
        let config = "\
CONFIG_X86_64=y
CONFIG_KASAN=y
CONFIG_KASAN_GENERIC=y
CONFIG_DEBUG_INFO=y
CONFIG_DEBUG_INFO_DWARF5=y
CONFIG_DEBUG_LIST=y
CONFIG_NET=y
CONFIG_CMDLINE=\"root=/dev/sda panic_on_warn=1\"
CONFIG_RCU_CPU_STALL_TIMEOUT=100
# CONFIG_UBSAN is not set
CONFIG_PANIC_ON_OOPS=y
";
        let f = sanitizer_fragment(config);
        for kept in [
            "CONFIG_KASAN=y",
            "CONFIG_KASAN_GENERIC=y",
            "CONFIG_DEBUG_LIST=y",
            "CONFIG_RCU_CPU_STALL_TIMEOUT=100",
            "CONFIG_PANIC_ON_OOPS=y",
            "CONFIG_DEBUG_KERNEL=y",
            "CONFIG_KALLSYMS=y",
        ] {
            assert!(f.lines().any(|l| l == kept), "{kept} in\n{f}");
        }
        for gone in ["NET=", "DEBUG_INFO", "CMDLINE", "UBSAN", "X86_64"] {
            assert!(!f.contains(gone), "{gone} in\n{f}");
        }
        crate::builder::kconfig::parse_fragment(&f, "test").unwrap();
    }
}
