//! A syzbot report, as `krepro syz` reads it: the bug's title, the
//! kernel's commit, config, compiler and architecture, and the C
//! reproducer. From a directory of the report's files, or from syzbot's
//! dashboard (a bug URL or extid), fetched into the cache first.
//!
//! A directory holds what syzbot's email and dashboard link to, saved by
//! hand: `report.txt` (the email, its Subject line included), `repro.c`,
//! `.config`, and optionally `repro.syz` and `console.log`.

pub(crate) mod config;
pub(crate) mod fetch;

use std::path::{Path, PathBuf};

use crate::builder::toolchain::{self, CcChoice, Compiler, Family, Target};
use crate::image::arch::Arch;

/// Why a report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SyzError {
    #[error("{0}")]
    BadReport(String),
    #[error("{0}")]
    Fetch(String),
}

/// A report's facts and files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Where its files are.
    pub dir: PathBuf,
    /// The bug's title ("WARNING in kcmp_lock").
    pub title: String,
    /// The kernel commit it was seen on (as the report gives it: 12 hex digits or more).
    pub commit: Option<String>,
    /// The git tree it names (a URL, or "upstream").
    pub tree: Option<String>,
    /// The report's `compiler:` line.
    pub compiler: Option<String>,
    pub arch: Option<Arch>,
    /// Where the architecture was read from, for the user.
    pub arch_from: &'static str,
    pub config: Option<PathBuf>,
    pub repro_c: Option<PathBuf>,
    pub repro_syz: Option<PathBuf>,
    pub console: Option<PathBuf>,
    /// The dashboard's id for the bug.
    pub extid: Option<String>,
}

/// The names a saved file may have, first wins.
const CONFIG_NAMES: &[&str] = &[".config", "config", "kernel.config", "config.txt"];
const CONSOLE_NAMES: &[&str] = &["console.log", "log.txt", "console.txt"];

impl Report {
    /// The report in directory `dir`.
    pub fn read_dir(dir: &Path) -> Result<Report, SyzError> {
        let bad = |why: String| SyzError::BadReport(why);
        if !dir.is_dir() {
            return Err(bad(format!("{} is not a directory of report files", dir.display())));
        }
        let find = |names: &[&str]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
        let text_path = dir.join("report.txt");
        let text = std::fs::read_to_string(&text_path).map_err(|e| {
            bad(format!(
                "{}: {e}; save syzbot's email there (its Subject line names the bug), with repro.c and .config",
                text_path.display()
            ))
        })?;
        let mut r = Report::parse_email(&text);
        r.dir = dir.to_owned();
        r.config = find(CONFIG_NAMES);
        r.repro_c = find(&["repro.c"]);
        r.repro_syz = find(&["repro.syz"]);
        r.console = find(CONSOLE_NAMES);
        if r.title.is_empty() {
            return Err(bad(format!(
                "{}: no bug title: it needs the email's Subject line (Subject: [syzbot] WARNING in f) or the crash",
                text_path.display()
            )));
        }
        if r.arch.is_none() {
            let from_config = r
                .config
                .as_ref()
                .and_then(|c| std::fs::read_to_string(c).ok())
                .and_then(|c| crate::image::config::config_arch(&c));
            if let Some(a) = from_config {
                (r.arch, r.arch_from) = (Some(a), "the config");
            }
        }
        Ok(r)
    }

    /// What syzbot's email says: the Subject's title, `HEAD commit:`, `git
    /// tree:`, `compiler:`, `userspace arch:` (or a manager's name), the
    /// dashboard link's extid; without a Subject, the title of the crash
    /// the email quotes.
    pub fn parse_email(text: &str) -> Report {
        let mut r = Report::default();
        let field = |line: &str, key: &str| line.strip_prefix(key).map(|v| v.trim().to_owned());
        for line in text.lines() {
            let l = line.trim();
            if let Some(subject) = field(l, "Subject:") {
                r.title = subject_title(&subject);
            } else if let Some(v) = field(l, "HEAD commit:") {
                r.commit = v.split_whitespace().next().filter(|h| is_hex(h)).map(str::to_owned);
            } else if let Some(v) = field(l, "git tree:") {
                r.tree = Some(v);
            } else if let Some(v) = field(l, "compiler:") {
                r.compiler = Some(v);
            } else if let Some(v) = field(l, "userspace arch:").or_else(|| field(l, "arch:")) {
                if let Some(a) = arch_word(&v) {
                    (r.arch, r.arch_from) = (Some(a), "the report's arch line");
                }
            } else if let Some(v) = field(l, "manager:").or_else(|| field(l, "syz-manager:")) {
                if let Some(a) = manager_arch(&v).filter(|_| r.arch.is_none()) {
                    (r.arch, r.arch_from) = (Some(a), "the manager's name");
                }
            }
            if let Some((_, id)) = l.split_once("extid=") {
                r.extid = Some(id.chars().take_while(char::is_ascii_alphanumeric).collect());
            }
        }
        if r.title.is_empty() {
            r.title = crate::boot::title::title(text.lines()).unwrap_or_default();
        }
        r
    }

    /// The compiler to build with: the report's, where it is installed or
    /// installable here, else krepro's pick by the tree's era (`why` says so).
    pub(crate) fn cc_choice(&self, arch: Arch) -> (CcChoice, Option<String>) {
        let Some(line) = &self.compiler else { return (CcChoice::Auto, None) };
        let Some(c) = compiler_of(line) else {
            return (CcChoice::Auto, Some(format!("the report's compiler ({line}) is not one krepro knows")));
        };
        let target = Target::here(arch);
        let mut have = toolchain::installed(c.family, target);
        have.extend(toolchain::available(c.family, target));
        match c.major {
            Some(m) if have.contains(&m) => (CcChoice::Fixed(c), None),
            _ => (
                CcChoice::Auto,
                Some(format!("the report's {c} is not installable here: the compiler is chosen by the tree's era")),
            ),
        }
    }
}

/// A Subject's bug title: `[syzbot]`, subsystem tags (`[kernel?]`,
/// `[net]`), `Re:` and a trailing `(2)` numbering off.
fn subject_title(subject: &str) -> String {
    let mut t = subject.trim();
    loop {
        let before = t;
        t = t.strip_prefix("Re:").or_else(|| t.strip_prefix("RE:")).unwrap_or(t).trim_start();
        if t.starts_with('[') {
            if let Some((_, rest)) = t.split_once(']') {
                t = rest.trim_start();
            }
        }
        if t == before {
            break;
        }
    }
    // A bug seen again after its fix is "... (2)".
    match t.rsplit_once(" (") {
        Some((head, n)) if n.strip_suffix(')').is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) => {
            head.to_owned()
        }
        _ => t.to_owned(),
    }
}

fn is_hex(s: &str) -> bool {
    s.len() >= 7 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `arm64`, `amd64`, `x86_64`, `aarch64`.
fn arch_word(w: &str) -> Option<Arch> {
    match w.split_whitespace().next()? {
        "amd64" | "x86_64" | "x86-64" => Some(Arch::X86_64),
        "arm64" | "aarch64" => Some(Arch::Aarch64),
        _ => None,
    }
}

/// A syz-manager's name names its arch: `ci-upstream-gce-arm64`, `ci2-upstream-fs`.
fn manager_arch(name: &str) -> Option<Arch> {
    if name.contains("arm64") || name.contains("aarch64") {
        Some(Arch::Aarch64)
    } else if name.contains("386") || name.contains("riscv") || name.contains("arm") {
        None
    } else {
        Some(Arch::X86_64)
    }
}

/// The compiler of a report's `compiler:` line: `gcc (Debian 12.2.0-14)
/// 12.2.0, GNU ld ...` is gcc-12, `Debian clang version 15.0.6, ...` clang-15.
pub(crate) fn compiler_of(line: &str) -> Option<Compiler> {
    let first = line.split(',').next()?;
    let family = if first.contains("clang") {
        Family::Clang
    } else if first.contains("gcc") {
        Family::Gcc
    } else {
        return None;
    };
    // The last dotted version on the compiler's part of the line.
    let major = first
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .rfind(|w| w.contains('.'))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok());
    Some(Compiler { family, major })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "\
Subject: Re: [syzbot] [kernel?] WARNING in __do_sys_prctl (2)
From: syzbot <syzbot+0123456789abcdef0123@syzkaller.appspotmail.com>

Hello,

syzbot found the following issue on:

HEAD commit:    8f6f76a6a29f Merge tag 'mm-nonmm-stable'
git tree:       upstream
console output: https://syzkaller.appspot.com/x/log.txt?x=12b8
kernel config:  https://syzkaller.appspot.com/x/.config?x=7e1
dashboard link: https://syzkaller.appspot.com/bug?extid=0123456789abcdef0123
compiler:       gcc (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40
userspace arch: arm64
";

    #[test]
    fn an_email_gives_title_commit_compiler_and_arch() {
        let r = Report::parse_email(EMAIL);
        assert_eq!(r.title, "WARNING in __do_sys_prctl");
        assert_eq!(r.commit.as_deref(), Some("8f6f76a6a29f"));
        assert_eq!(r.tree.as_deref(), Some("upstream"));
        assert_eq!(r.arch, Some(Arch::Aarch64));
        assert_eq!(r.extid.as_deref(), Some("0123456789abcdef0123"));
        let c = compiler_of(r.compiler.as_deref().unwrap()).unwrap();
        assert_eq!(c.to_string(), "gcc-12");
        assert_eq!(
            compiler_of("Debian clang version 15.0.6, GNU ld (GNU Binutils for Debian) 2.40").unwrap().to_string(),
            "clang-15"
        );
        assert_eq!(compiler_of("rustc 1.80"), None);
    }

    #[test]
    fn titles_come_from_the_subject_or_the_crash() {
        assert_eq!(
            subject_title("[syzbot] [net?] KASAN: slab-use-after-free Read in tcp_v4_rcv"),
            "KASAN: slab-use-after-free Read in tcp_v4_rcv"
        );
        assert_eq!(subject_title("Re: RE: [syzbot] WARNING in kcmp_lock"), "WARNING in kcmp_lock");
        let body = "syzbot found the following issue on:\n\n------------[ cut here ]------------\n\
                    WARNING: CPU: 0 PID: 5 at kernel/kcmp.c:99 kcmp_lock+0x1/0x2\nRIP: 0010:kcmp_lock+0x1/0x2\n";
        assert_eq!(Report::parse_email(body).title, "WARNING in kcmp_lock");
        assert_eq!(manager_arch("ci-upstream-gce-arm64"), Some(Arch::Aarch64));
        assert_eq!(manager_arch("ci-upstream-kasan-gce"), Some(Arch::X86_64));
        assert_eq!(
            crate::image::config::config_arch("# CONFIG_X86_32 is not set\nCONFIG_X86_64=y\n"),
            Some(Arch::X86_64)
        );
    }

    #[test]
    fn a_directory_needs_the_email_and_reads_what_is_there() {
        let d = tempfile::tempdir().unwrap();
        let e = Report::read_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("report.txt") && e.contains("Subject line"), "{e}");
        std::fs::write(d.path().join("report.txt"), "Subject: [syzbot] WARNING in f\n").unwrap();
        std::fs::write(d.path().join(".config"), "CONFIG_X86_64=y\n").unwrap();
        std::fs::write(d.path().join("repro.c"), "int main(){}").unwrap();
        let r = Report::read_dir(d.path()).unwrap();
        assert_eq!((r.title.as_str(), r.arch, r.arch_from), ("WARNING in f", Some(Arch::X86_64), "the config"));
        assert_eq!(r.repro_c, Some(d.path().join("repro.c")));
        assert_eq!(r.console, None);
        assert!(Report::read_dir(&d.path().join("nope")).unwrap_err().to_string().contains("not a directory"));
    }
}
