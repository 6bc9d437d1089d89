//! Which compiler builds which kernel: `--cc`, the table of compilers by
//! kernel era, the tree's own minimum, and the signatures of build failures
//! that mean "compiler too new (or too old) for this tree".
//!
//! Everything era-specific is in the tables below, each row citing where
//! it comes from; the code only reads them.

use std::path::{Path, PathBuf};

use crate::host::spawn::Cmd;
use crate::image::arch::Arch;

/// A compiler family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    Gcc,
    Clang,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Gcc => "gcc",
            Family::Clang => "clang",
        }
    }
}

/// A compiler: `gcc`, `gcc-12`, `clang`, `clang-19`. `major` None is the
/// unversioned command on PATH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Compiler {
    pub family: Family,
    pub major: Option<u32>,
}

impl std::fmt::Display for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.major {
            Some(n) => write!(f, "{}-{n}", self.family.name()),
            None => f.write_str(self.family.name()),
        }
    }
}

/// What a build compiles for, seen from this host: the guest's
/// architecture, and whether gcc and binutils for it are a cross
/// toolchain here (Debian's `gcc-N-<triple>`, run as `<triple>-gcc-N`).
/// clang is a cross compiler by itself: `LLVM=1 ARCH=arm64` gives it
/// `--target` (scripts/Makefile.clang, v5.15 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub arch: Arch,
    pub cross: bool,
}

impl Target {
    /// A build for `arch` on this machine.
    pub(crate) fn here(arch: Arch) -> Target {
        Target { arch, cross: Arch::host() != Some(arch) }
    }

    /// What gcc and binutils are prefixed with: `CROSS_COMPILE=`
    /// (`aarch64-linux-gnu-`), empty for a native build.
    pub(crate) fn prefix(self) -> String {
        if self.cross {
            format!("{}-", self.arch.gnu_triple())
        } else {
            String::new()
        }
    }
}

/// The command that runs `c` for `target`: `gcc-12`, or a cross gcc
/// `aarch64-linux-gnu-gcc-12`; clang is `clang` whatever the target.
pub(crate) fn program(c: Compiler, target: Target) -> String {
    match c.family {
        Family::Gcc => format!("{}{c}", target.prefix()),
        Family::Clang => c.to_string(),
    }
}

/// What `--cc` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) enum CcChoice {
    /// Per tree: the newest compiler the era table allows, at least the
    /// tree's own minimum, preferring what is installed.
    #[default]
    Auto,
    Fixed(Compiler),
}

impl std::str::FromStr for CcChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<CcChoice, String> {
        let bad = || format!("{s}: not a compiler (auto, gcc, gcc-N, clang or clang-N)");
        if s == "auto" {
            return Ok(CcChoice::Auto);
        }
        let (name, major) = match s.split_once('-') {
            Some((name, n)) => (name, Some(n.parse::<u32>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let family = match name {
            "gcc" => Family::Gcc,
            "clang" => Family::Clang,
            _ => return Err(bad()),
        };
        Ok(CcChoice::Fixed(Compiler { family, major }))
    }
}

impl std::fmt::Display for CcChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CcChoice::Auto => f.write_str("auto"),
            CcChoice::Fixed(c) => c.fmt(f),
        }
    }
}

/// A kernel version (VERSION.PATCHLEVEL).
pub(crate) type KVer = (u32, u32);

/// The compilers known to build the kernels from `from` on (until the next
/// row): the newest major of each family, None when any newer one does.
pub(crate) struct Era {
    pub from: KVer,
    pub gcc_max: Option<u32>,
    /// None with `clang_min` 0: clang cannot build this era for x86.
    pub clang_max: Option<u32>,
    /// The oldest clang the era accepts (before min-tool-version.sh).
    pub clang_min: u32,
    pub source: &'static str,
}

/// Newest compilers by era, oldest era first. The gcc columns follow the
/// compilers syzkaller's bisection uses per kernel era (its bisect_bin set:
/// gcc 5.5 before v4.11, 7.3 at v4.11, 8.1 from v4.12, 10.1 from v5.9, the
/// default from v5.16; clang 9 before v5.9); the minimums follow
/// Documentation/process/changes.rst; the last row adds what Debian builds
/// its kernels with and what krepro's slow tier builds here.
pub(crate) const ERAS: &[Era] = &[
    Era {
        from: (0, 0),
        gcc_max: Some(5),
        clang_max: None,
        clang_min: 0,
        source: "syzkaller's bisection compilers: gcc 5.5 before v4.11; clang builds x86 only from v4.15",
    },
    Era {
        from: (4, 11),
        gcc_max: Some(7),
        clang_max: None,
        clang_min: 0,
        source: "syzkaller's bisection compilers: gcc 7.3 at v4.11",
    },
    Era {
        from: (4, 12),
        gcc_max: Some(8),
        clang_max: None,
        clang_min: 0,
        source: "syzkaller's bisection compilers: gcc 8.1 from v4.12",
    },
    Era {
        from: (4, 15),
        gcc_max: Some(8),
        clang_max: Some(9),
        clang_min: 5,
        source: "syzkaller: gcc 8.1 from v4.12, clang 9 before v5.9; x86 clang builds from v4.15 (ClangBuiltLinux)",
    },
    Era {
        from: (5, 9),
        gcc_max: Some(10),
        clang_max: None,
        clang_min: 10,
        source: "syzkaller: gcc 10.1 from v5.9, its default clang after; Documentation/process/changes.rst: clang 10.0.1 from v5.9",
    },
    Era {
        from: (5, 16),
        gcc_max: None,
        clang_max: None,
        clang_min: 11,
        source: "syzkaller: the default gcc from v5.16; Debian 12 builds 6.1 with gcc-12; krepro's slow tier: 6.1 with gcc-11, gcc-12, clang-15, 6.12 with gcc-12, clang-19",
    },
];

/// The row for a kernel version.
pub(crate) fn era(version: KVer) -> &'static Era {
    ERAS.iter().rev().find(|e| version >= e.from).unwrap_or(&ERAS[0])
}

/// The tree's VERSION and PATCHLEVEL, from its top Makefile.
pub(crate) fn tree_version(source: &Path) -> Option<KVer> {
    let text = std::fs::read_to_string(source.join("Makefile")).ok()?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('=')?.trim().parse::<u32>().ok())
    };
    Some((field("VERSION")?, field("PATCHLEVEL")?))
}

/// The oldest major the tree accepts for `family` building `arch`: its
/// scripts/min-tool-version.sh (v5.15 and later; it reads SRCARCH), else
/// what the era table says (gcc 4 for older trees; their compiler-gcc.h
/// asks for 4.6 or so).
pub(crate) fn tree_minimum(source: &Path, family: Family, arch: Arch) -> u32 {
    let script = source.join("scripts/min-tool-version.sh");
    let tool = match family {
        Family::Gcc => "gcc",
        Family::Clang => "llvm",
    };
    if script.is_file() {
        let out = Cmd::new("sh", [script.as_os_str(), tool.as_ref()], source)
            .quiet()
            .env("SRCARCH", arch.kernel_arch())
            .output();
        if let Some(major) = out.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout).trim().split('.').next().and_then(|m| m.parse::<u32>().ok())
        }) {
            return major;
        }
    }
    match family {
        Family::Gcc => 4,
        Family::Clang => tree_version(source).map_or(11, |v| era(v).clang_min),
    }
}

/// The majors of `family` for `target` installed on PATH (`gcc-12`,
/// `aarch64-linux-gnu-gcc-12`, `clang-19`, ...).
pub(crate) fn installed(family: Family, target: Target) -> Vec<u32> {
    let stem = program(Compiler { family, major: None }, target);
    let mut found = Vec::new();
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix(stem.as_str()).and_then(|r| r.strip_prefix('-')) {
                if let Ok(n) = n.parse::<u32>() {
                    found.push(n);
                }
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// The majors of `family` for `target` the package archive offers
/// (apt-cache: `gcc-12`, `gcc-12-aarch64-linux-gnu`, `clang-19`),
/// installed or not.
pub(crate) fn available(family: Family, target: Target) -> Vec<u32> {
    let suffix = match family {
        Family::Gcc if target.cross => format!("-{}", target.arch.gnu_triple()),
        _ => String::new(),
    };
    let pattern = format!("^{}-[0-9]+{suffix}$", family.name());
    let out = Cmd::new("apt-cache", ["search", "--names-only", &pattern], Path::new("/")).quiet().output();
    let mut found: Vec<u32> = out
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| {
                    let name = l.split_whitespace().next()?;
                    name.strip_prefix(family.name())?.strip_prefix('-')?.strip_suffix(suffix.as_str())?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found.dedup();
    found
}

/// What `auto` chose and why, or a fixed choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    pub compiler: Compiler,
    /// One line for the user: why this one.
    pub why: String,
    /// Whether it has to be installed first.
    pub install: bool,
}

/// The compilers a tree of `version` with minimums `mins` (gcc, clang)
/// accepts, best first: gcc before clang (the kernel's default), newest
/// first, installed before installable. `installed`/`available` list the
/// majors of each family.
pub(crate) fn candidates(
    version: KVer,
    mins: (u32, u32),
    installed: &dyn Fn(Family) -> Vec<u32>,
    available: &dyn Fn(Family) -> Vec<u32>,
) -> Vec<Choice> {
    let row = era(version);
    let mut out = Vec::new();
    for (family, min, max) in
        [(Family::Gcc, mins.0, row.gcc_max), (Family::Clang, mins.1.max(row.clang_min), row.clang_max)]
    {
        if family == Family::Clang && row.clang_min == 0 {
            continue;
        }
        let fits = |n: &u32| *n >= min && max.is_none_or(|m| *n <= m);
        let have = installed(family);
        let mut majors: Vec<u32> = have.iter().copied().chain(available(family)).filter(fits).collect();
        majors.sort_unstable_by(|a, b| b.cmp(a));
        majors.dedup();
        let range = match max {
            Some(m) => format!("{min} to {m}"),
            None => format!("{min} or newer"),
        };
        // Installed ones first, newest first; then what apt could install.
        let (mut inst, mut rest): (Vec<u32>, Vec<u32>) = majors.into_iter().partition(|n| have.contains(n));
        inst.append(&mut rest);
        for n in inst {
            let installed_now = have.contains(&n);
            out.push(Choice {
                compiler: Compiler { family, major: Some(n) },
                why: format!(
                    "v{}.{} takes {} {range} ({}); {}-{n} {}",
                    version.0,
                    version.1,
                    family.name(),
                    row.source,
                    family.name(),
                    if installed_now { "is installed" } else { "is in the package archive" }
                ),
                install: !installed_now,
            });
        }
    }
    out
}

/// The Debian packages that provide a compiler for `target` (a cross gcc
/// brings its binutils; clang with its lld and binutils, as LLVM=1 uses
/// them).
pub(crate) fn packages(c: Compiler, target: Target) -> Vec<String> {
    let cross = if target.cross { format!("-{}", target.arch.gnu_triple()) } else { String::new() };
    match (c.family, c.major) {
        (Family::Gcc, Some(n)) => vec![format!("gcc-{n}{cross}")],
        (Family::Gcc, None) => vec![format!("gcc{cross}")],
        (Family::Clang, Some(n)) => vec![format!("clang-{n}"), format!("lld-{n}"), format!("llvm-{n}")],
        (Family::Clang, None) => vec!["clang".into(), "lld".into(), "llvm".into()],
    }
}

/// How make is told to use `c` for `target`, with `ccache` wrapping CC
/// when given: (make args, extra PATH dir). A cross gcc comes with
/// CROSS_COMPILE (binutils by that prefix) and the host's own gcc as
/// HOSTCC. A versioned clang is used through its /usr/lib/llvm-N/bin
/// (clang, ld.lld, llvm-ar, ... by their plain names), which LLVM=1 then
/// picks up, for any target; HOSTCC follows the choice.
pub(crate) fn make_args(c: Compiler, ccache: Option<&Path>, target: Target) -> (Vec<String>, Option<PathBuf>) {
    let wrap = |cc: &str| match ccache {
        Some(_) => format!("CC=ccache {cc}"),
        None => format!("CC={cc}"),
    };
    match c.family {
        Family::Gcc if target.cross => {
            let prefix = target.prefix();
            (vec![format!("CROSS_COMPILE={prefix}"), wrap(&program(c, target)), "HOSTCC=gcc".into()], None)
        }
        Family::Gcc => {
            let cc = c.to_string();
            (vec![wrap(&cc), format!("HOSTCC={cc}")], None)
        }
        Family::Clang => {
            let dir = c.major.map(|n| PathBuf::from(format!("/usr/lib/llvm-{n}/bin")));
            (vec!["LLVM=1".into(), wrap("clang"), "HOSTCC=clang".into()], dir)
        }
    }
}

/// Why a build failed, when the log says the compiler does not suit the
/// tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    TooNew,
    TooOld,
}

/// A known build failure: the text that identifies it in make's output,
/// what it means, and the upstream commit that fixes it, where one does.
#[derive(Debug)]
pub struct Signature {
    pub needle: &'static str,
    pub mismatch: Mismatch,
    /// The fix, to cherry-pick onto trees that lack it (`git cherry-pick`
    /// of this commit, as --cherry-pick does).
    pub fix: Option<&'static str>,
    pub source: &'static str,
}

pub(crate) const SIGNATURES: &[Signature] = &[
    Signature {
        needle: "multiple definition of `yylloc'",
        mismatch: Mismatch::TooNew,
        fix: Some("e33a814e772cdc36436c8c188d8c42d019fda639"),
        source: "gcc 10 defaults to -fno-common; scripts/dtc fixed in v5.7 by e33a814e772c \
                 (\"scripts/dtc: Remove redundant YYLOC global declaration\"), which syzkaller cherry-picks",
    },
    Signature {
        needle: "error: pointer used after 'realloc' [-Werror=use-after-free]",
        mismatch: Mismatch::TooNew,
        fix: Some("52a9dab6d892763b2a8334a568bd4e2c1a6fde66"),
        source: "gcc 12's -Wuse-after-free in tools/lib/subcmd; fixed in v5.19 by 52a9dab6d892 \
                 (\"libsubcmd: Fix use-after-free for realloc(..., 0)\"), which syzkaller cherry-picks",
    },
    Signature {
        needle: "'-mindirect-branch' and '-fcf-protection' are not compatible",
        mismatch: Mismatch::TooNew,
        fix: None,
        source: "gcc 9+ built with -fcf-protection by default (Ubuntu, Debian) against retpoline kernels before v5.8",
    },
    Signature {
        needle: "error: 'asm goto' constructs are not supported yet",
        mismatch: Mismatch::TooOld,
        fix: None,
        source: "clang before 9 has no asm goto; x86 requires it from v4.20",
    },
    Signature {
        needle: "*** Compiler is too old.",
        mismatch: Mismatch::TooOld,
        fix: None,
        source: "scripts/cc-version.sh (v5.15 and later): below scripts/min-tool-version.sh",
    },
    Signature {
        needle: "Sorry, your version of GCC is too old",
        mismatch: Mismatch::TooOld,
        fix: None,
        source: "include/linux/compiler-gcc.h before v5.15",
    },
    Signature {
        needle: "error: unrecognized command-line option",
        mismatch: Mismatch::TooOld,
        fix: None,
        source: "gcc rejecting a flag the tree's Makefile passes without checking (cc-option)",
    },
];

impl Signature {
    /// One line: what it means, and its fix.
    pub(crate) fn describe(&self) -> String {
        let what = match self.mismatch {
            Mismatch::TooNew => "compiler too new for this tree",
            Mismatch::TooOld => "compiler too old for this tree",
        };
        match self.fix {
            Some(fix) => format!("{what}, fixed upstream by {}: {}", &fix[..12], self.source),
            None => format!("{what}: {}", self.source),
        }
    }
}

/// The compiler a retry uses after `failed` gave `mismatch`: from `next`
/// (what `auto` allows, best first), one older than `failed` (an older
/// major of its family, or the other family) for "too new", one newer for
/// "too old".
pub(crate) fn retry_pick(failed: Compiler, next: &[Choice], mismatch: Mismatch) -> Option<Choice> {
    next.iter()
        .find(|c| {
            if c.compiler.family != failed.family {
                return true;
            }
            match (c.compiler.major, failed.major, mismatch) {
                (Some(a), Some(b), Mismatch::TooNew) => a < b,
                (Some(a), Some(b), Mismatch::TooOld) => a > b,
                _ => false,
            }
        })
        .cloned()
}

/// The first known signature in a failed build's log.
pub(crate) fn classify(log: &str) -> Option<&'static Signature> {
    SIGNATURES.iter().find(|s| log.contains(s.needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cc_choices() {
        assert_eq!("auto".parse::<CcChoice>(), Ok(CcChoice::Auto));
        assert_eq!("gcc-11".parse::<CcChoice>().unwrap().to_string(), "gcc-11");
        assert_eq!("clang".parse::<CcChoice>().unwrap().to_string(), "clang");
        assert_eq!(
            "clang-19".parse::<CcChoice>(),
            Ok(CcChoice::Fixed(Compiler { family: Family::Clang, major: Some(19) }))
        );
        assert!("icc".parse::<CcChoice>().unwrap_err().contains("not a compiler"));
        assert!("gcc-x".parse::<CcChoice>().is_err());
    }

    #[test]
    fn eras_are_ordered_and_cover_old_and_new_trees() {
        assert!(ERAS.windows(2).all(|w| w[0].from < w[1].from));
        assert_eq!(era((4, 4)).gcc_max, Some(5));
        assert_eq!(era((4, 19)).clang_max, Some(9));
        assert_eq!(era((5, 10)).gcc_max, Some(10));
        assert_eq!(era((6, 12)).gcc_max, None);
    }

    #[test]
    fn auto_prefers_installed_gcc_within_the_era() {
        let installed = |f: Family| if f == Family::Gcc { vec![12] } else { vec![] };
        let available = |f: Family| if f == Family::Gcc { vec![11, 12] } else { vec![13, 14, 15, 16, 19] };
        // 6.1: gcc-12 (installed), then gcc-11 (installable), then clangs newest first.
        let c = candidates((6, 1), (5, 11), &installed, &available);
        let names: Vec<String> = c.iter().map(|c| c.compiler.to_string()).collect();
        assert_eq!(names, ["gcc-12", "gcc-11", "clang-19", "clang-16", "clang-15", "clang-14", "clang-13"]);
        assert!(!c[0].install && c[1].install);
        assert!(c[0].why.starts_with("v6.1 takes gcc 5 or newer ("), "{}", c[0].why);
        // 6.12 wants clang 13 at least (its min-tool-version.sh).
        let c = candidates((6, 12), (5, 13), &installed, &available);
        assert!(c.iter().all(|c| c.compiler.family == Family::Gcc || c.compiler.major >= Some(13)));
        // v5.10: gcc up to 10 only; nothing here fits but clang (no max).
        let c = candidates((5, 10), (4, 10), &installed, &available);
        assert_eq!(c[0].compiler.to_string(), "clang-19");
        // v4.19: neither family has a fit here.
        assert!(candidates((4, 19), (4, 5), &installed, &available).is_empty());
    }

    #[test]
    fn make_args_per_family() {
        let native = Target { arch: Arch::X86_64, cross: false };
        let gcc11 = Compiler { family: Family::Gcc, major: Some(11) };
        assert_eq!(make_args(gcc11, None, native).0, ["CC=gcc-11", "HOSTCC=gcc-11"]);
        let clang = Compiler { family: Family::Clang, major: Some(19) };
        let (args, path) = make_args(clang, Some(Path::new("/usr/bin/ccache")), native);
        assert_eq!(args, ["LLVM=1", "CC=ccache clang", "HOSTCC=clang"]);
        assert_eq!(path, Some(PathBuf::from("/usr/lib/llvm-19/bin")));
        assert_eq!(packages(clang, native), ["clang-19", "lld-19", "llvm-19"]);
    }

    #[test]
    fn a_cross_gcc_has_its_prefix_and_the_host_gcc_builds_the_tools() {
        let arm = Target { arch: Arch::Aarch64, cross: true };
        let gcc12 = Compiler { family: Family::Gcc, major: Some(12) };
        let (args, path) = make_args(gcc12, Some(Path::new("/usr/bin/ccache")), arm);
        assert_eq!(args, ["CROSS_COMPILE=aarch64-linux-gnu-", "CC=ccache aarch64-linux-gnu-gcc-12", "HOSTCC=gcc"]);
        assert_eq!(path, None);
        assert_eq!(program(gcc12, arm), "aarch64-linux-gnu-gcc-12");
        assert_eq!(packages(gcc12, arm), ["gcc-12-aarch64-linux-gnu"]);
        let gcc = Compiler { family: Family::Gcc, major: None };
        assert_eq!(
            make_args(gcc, None, arm).0,
            ["CROSS_COMPILE=aarch64-linux-gnu-", "CC=aarch64-linux-gnu-gcc", "HOSTCC=gcc"]
        );
        assert_eq!(packages(gcc, arm), ["gcc-aarch64-linux-gnu"]);
        // clang targets arm64 by itself (LLVM=1 ARCH=arm64): same args as native.
        let clang = Compiler { family: Family::Clang, major: Some(19) };
        assert_eq!(make_args(clang, None, arm), make_args(clang, None, Target { arch: Arch::X86_64, cross: false }));
        assert_eq!(program(clang, arm), "clang-19");
        assert_eq!(packages(clang, arm), ["clang-19", "lld-19", "llvm-19"]);
        // An arm64 host building arm64 is native.
        assert_eq!(program(gcc12, Target { arch: Arch::Aarch64, cross: false }), "gcc-12");
        assert_eq!(Target::here(Arch::Aarch64).cross, Arch::host() != Some(Arch::Aarch64));
    }

    #[test]
    fn the_trees_minimum_is_read_for_the_builds_arch() {
        // A min-tool-version.sh that answers by SRCARCH, as 6.1's does for s390.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scripts")).unwrap();
        std::fs::write(
            dir.path().join("scripts/min-tool-version.sh"),
            "case \"$1\" in gcc) echo 5.1.0;; llvm) if [ \"$SRCARCH\" = arm64 ]; then echo 13.0.0; else echo 11.0.0; fi;; esac\n",
        )
        .unwrap();
        assert_eq!(tree_minimum(dir.path(), Family::Clang, Arch::Aarch64), 13);
        assert_eq!(tree_minimum(dir.path(), Family::Clang, Arch::X86_64), 11);
        assert_eq!(tree_minimum(dir.path(), Family::Gcc, Arch::Aarch64), 5);
    }

    #[test]
    fn a_retry_goes_the_other_way() {
        let c =
            |family, n| Choice { compiler: Compiler { family, major: Some(n) }, why: String::new(), install: false };
        let next = [c(Family::Gcc, 11), c(Family::Clang, 19)];
        let gcc12 = Compiler { family: Family::Gcc, major: Some(12) };
        assert_eq!(retry_pick(gcc12, &next, Mismatch::TooNew).unwrap().compiler.to_string(), "gcc-11");
        assert_eq!(retry_pick(gcc12, &next, Mismatch::TooOld).unwrap().compiler.to_string(), "clang-19");
        assert!(retry_pick(gcc12, &[], Mismatch::TooNew).is_none());
    }

    #[test]
    fn classifies_known_failures() {
        let s = classify("ld: scripts/dtc/dtc-parser.tab.o:(.bss+0x10): multiple definition of `yylloc'; x").unwrap();
        assert_eq!((s.mismatch, s.fix.map(|f| &f[..12])), (Mismatch::TooNew, Some("e33a814e772c")));
        assert_eq!(classify("*** Compiler is too old.").unwrap().mismatch, Mismatch::TooOld);
        assert!(classify("kernel/sys.c:1:1: error: expected ';'").is_none());
    }
}
