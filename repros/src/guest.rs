//! What PID 1 (`init/`) works out without a system call, kept here so that
//! `cargo test` runs it on the host: init itself is a `no_main` binary for
//! the guest only.

pub mod heap;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt::{self, Write as _};

use crate::protocol::{self, Kind};
use crate::sdk::{Error, Result};

/// The exit status of an `--exec` child whose execve(2) failed, as a
/// shell's "cannot execute": it prints why and exits with this, and PID 1,
/// told the errno through a close-on-exec pipe, reports `error` instead of
/// a verdict on the program.
pub const EXEC_FAILED: i32 = 127;

/// A `fmt::Write` into a fixed array: formatting that never allocates
/// (the panic path may run with the allocator exhausted). Output past the
/// end is dropped, whole characters at a time; the last byte is kept for
/// [`FixedBuf::end_line`].
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        const { assert!(N > 0, "FixedBuf needs room for the newline") };
        FixedBuf { buf: [0; N], len: 0 }
    }

    /// The text so far, as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 sequences are ever copied in (see write_str).
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Ends the text with a newline, even when it was cut.
    pub fn end_line(&mut self) {
        // len <= N - 1 (write_str keeps the last byte free); a second
        // end_line overwrites the newline instead of running off the end.
        let at = self.len.min(N - 1);
        self.buf[at] = b'\n';
        self.len = at + 1;
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = (N - 1).saturating_sub(self.len);
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// The words of a kernel command line as the kernel splits it: at
/// whitespace outside double quotes (`mod.opt="a b"` is one word, quotes
/// kept, as finit_module's own parser wants them).
pub fn cmdline_words(cmdline: &str) -> impl Iterator<Item = &str> {
    let mut rest = cmdline;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                quoted ^= c == '"';
                c.is_ascii_whitespace() && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        // `end` is a char boundary; the checked split keeps core's
        // string-slicing panic (~3 KiB of formatting code) out of PID 1.
        let (word, tail) = rest.split_at_checked(end)?;
        rest = tail;
        Some(word)
    })
}

/// Whether the kernel command line holds `word` (e.g. `quiet`) by itself.
pub fn cmdline_has(cmdline: &str, word: &str) -> bool {
    cmdline_words(cmdline).any(|w| w == word)
}

/// `krepro.guest_timeout=S`: how long PID 1 lets an `--exec` child run.
pub fn guest_timeout(cmdline: &str) -> Result<Option<u64>> {
    seconds(cmdline, protocol::CMDLINE_GUEST_TIMEOUT, "parse krepro.guest_timeout")
}

/// `krepro.duration=S`: how long an `--exec` child runs as a syzkaller
/// reproducer (see [`protocol::CMDLINE_DURATION`]).
pub fn duration(cmdline: &str) -> Result<Option<u64>> {
    seconds(cmdline, protocol::CMDLINE_DURATION, "parse krepro.duration")
}

fn seconds(cmdline: &str, key: &str, step: &'static str) -> Result<Option<u64>> {
    match protocol::cmdline_param(cmdline, key) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| Error::Reason { step, reason: "not a whole number of seconds" }),
    }
}

/// A source path of a panic location as rustc names files of the
/// workspace (`repros/src/repros/selftest.rs`): the repros' files are
/// included by absolute path from build.rs's output, so their locations
/// lose the workspace root here.
pub fn source_path(file: &str) -> &str {
    file.strip_prefix(env!("KREPRO_SOURCE_ROOT")).unwrap_or(file)
}

/// The verdict message for a repro name PID 1 does not know, naming
/// those it was built with.
pub fn unknown_repro<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let mut msg = format!("unknown repro '{name}'; known repros: ");
    for n in known {
        let _ = write!(msg, "{n}, ");
    }
    msg.push_str(protocol::EXEC_REPRO);
    msg
}

/// A module file in [`protocol::MODULES_DIR`], `NN-name.ko` as the runner
/// names them: its place in the load order (dependencies first) and the
/// module's name. `None` for a file that is not a module. A name without
/// the `NN-` prefix loads after the numbered ones.
pub fn module_file(file_name: &str) -> Option<(u32, &str)> {
    let stem = file_name.strip_suffix(".ko").filter(|s| !s.is_empty())?;
    Some(match stem.split_once('-') {
        Some((n, module)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !module.is_empty() => {
            (n.parse().unwrap_or(u32::MAX), module)
        }
        _ => (u32::MAX, stem),
    })
}

/// Sorts module file names into load order ([`module_file`]); files that
/// are not modules go last. An insertion sort: a handful of names, and a
/// fraction of the code size of the library sorts (1.2 KiB of PID 1).
pub fn sort_modules<S: AsRef<str>>(files: &mut [S]) {
    fn key(file: &str) -> (u32, bool, &str) {
        module_file(file).map_or((u32::MAX, true, ""), |(n, module)| (n, false, module))
    }
    for i in 1..files.len() {
        let mut j = i;
        while j > 0 && key(files[j - 1].as_ref()) > key(files[j].as_ref()) {
            files.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The parameters of `module` on the kernel command line (`module.a=1
/// module.b`), as finit_module(2) takes them: `a=1 b`, NUL-terminated.
/// As for the kernel's own parameters, `-` and `_` are the same in the
/// module name; a word with no parameter name (`module.`, `module.=1`)
/// is skipped.
pub fn module_params(cmdline: &str, module: &str) -> Vec<u8> {
    let mut params = Vec::new();
    for word in cmdline_words(cmdline) {
        let Some((prefix, param)) = word.split_once('.') else { continue };
        if !same_module(prefix, module) || param.is_empty() || param.starts_with('=') || param.contains('\0') {
            continue;
        }
        if !params.is_empty() {
            params.push(b' ');
        }
        params.extend_from_slice(param.as_bytes());
    }
    params.push(0);
    params
}

/// Module names compare with `-` and `_` the same, as the kernel does.
fn same_module(a: &str, b: &str) -> bool {
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

/// Ends a list of NUL-terminated strings (as the runner writes
/// `--arg`/`--env` into the initrd) with a NUL if its last one lacks it.
pub fn end_nul_list(list: &mut Vec<u8>) {
    if list.last().is_some_and(|&c| c != 0) {
        list.push(0);
    }
}

/// The C strings of a list of NUL-terminated strings; empty ones count
/// (`--arg ""` is an argument). Bytes after the last NUL are not a string:
/// see [`end_nul_list`].
pub fn nul_list(list: &[u8]) -> Vec<&CStr> {
    list.split_inclusive(|&b| b == 0).filter_map(|s| CStr::from_bytes_with_nul(s).ok()).collect()
}

/// The verdict on an `--exec` program from how it ended (its exit status,
/// else the signal that killed it): 0 pass, [`protocol::EXIT_SKIP`] skip,
/// any other status or a signal fail.
pub fn exec_verdict(exit_status: Option<i32>, signal: Option<i32>) -> (Kind, String) {
    match (exit_status, signal) {
        (Some(0), _) => (Kind::Pass, String::new()),
        (Some(protocol::EXIT_SKIP), _) => (Kind::Skip, format!("exit status {} (KSFT_SKIP)", protocol::EXIT_SKIP)),
        (Some(code), _) => (Kind::Fail, format!("exit status {code}")),
        (None, Some(sig)) => (Kind::Fail, format!("killed by signal {sig}{}", signal_name(sig))),
        (None, None) => (Kind::Error, "child stopped without exiting".into()),
    }
}

/// ` (SIGSEGV)` for the signals that usually end a crashing test.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_buf_starts_empty() {
        let mut b = FixedBuf::<8>::new();
        assert_eq!((b.as_str(), b.as_bytes()), ("", &b""[..]));
        b.end_line();
        assert_eq!(b.as_str(), "\n");
    }

    #[test]
    fn fixed_buf_formats_what_fits() {
        let mut b = FixedBuf::<16>::new();
        write!(b, "errno {}", 22).unwrap();
        assert_eq!(b.as_str(), "errno 22");
        b.end_line();
        assert_eq!(b.as_bytes(), b"errno 22\n");
    }

    #[test]
    fn fixed_buf_cuts_and_keeps_room_for_the_newline() {
        let mut b = FixedBuf::<8>::new();
        write!(b, "0123456789").unwrap();
        assert_eq!(b.as_str(), "0123456");
        write!(b, "more").unwrap();
        assert_eq!(b.as_str(), "0123456");
        b.end_line();
        assert_eq!(b.as_str(), "0123456\n");
        // A second end_line cannot run past the end.
        b.end_line();
        assert_eq!(b.as_str(), "0123456\n");
    }

    #[test]
    fn fixed_buf_cuts_between_characters() {
        let mut b = FixedBuf::<6>::new();
        // "é" is two bytes: "abcdé" is 6, one more than the 5 that fit.
        write!(b, "abcdé").unwrap();
        assert_eq!(b.as_str(), "abcd");
        let mut b = FixedBuf::<4>::new();
        write!(b, "€").unwrap(); // three bytes: exactly fits
        write!(b, "x").unwrap();
        assert_eq!(b.as_str(), "€");
    }

    #[test]
    fn fixed_buf_of_one_holds_only_the_newline() {
        let mut b = FixedBuf::<1>::new();
        write!(b, "x").unwrap();
        assert_eq!(b.as_str(), "");
        b.end_line();
        assert_eq!(b.as_str(), "\n");
    }

    #[test]
    fn cmdline_words_split_like_the_kernel() {
        let words: Vec<&str> = cmdline_words(" console=ttyS0  m.opt=\"a b\" quiet\n").collect();
        assert_eq!(words, ["console=ttyS0", "m.opt=\"a b\"", "quiet"]);
        assert_eq!(cmdline_words("").count(), 0);
        assert_eq!(cmdline_words(" \t\n").count(), 0);
        // An unclosed quote runs to the end, as in the kernel.
        assert_eq!(cmdline_words("a x=\"b c").collect::<Vec<_>>(), ["a", "x=\"b c"]);
        assert!(cmdline_has("console=ttyS0 quiet panic=-1", "quiet"));
        assert!(!cmdline_has("console=ttyS0 quiet=1 loglevel=quiet", "quiet"));
    }

    #[test]
    fn guest_timeout_is_whole_seconds() {
        assert_eq!(duration("krepro.duration=150 console=ttyS0"), Ok(Some(150)));
        assert!(duration("krepro.duration=2m").is_err());
        assert_eq!(guest_timeout("console=ttyS0"), Ok(None));
        assert_eq!(guest_timeout("krepro.guest_timeout=30"), Ok(Some(30)));
        assert_eq!(guest_timeout("krepro.guest_timeout=5 krepro.guest_timeout=7"), Ok(Some(7)));
        for bad in ["", "-1", "1.5", "10s", "99999999999999999999"] {
            let e = guest_timeout(&format!("krepro.guest_timeout={bad}")).unwrap_err();
            assert_eq!(
                e,
                Error::Reason { step: "parse krepro.guest_timeout", reason: "not a whole number of seconds" }
            );
        }
    }

    #[test]
    fn source_paths_are_relative_to_the_workspace() {
        let here = concat!(env!("CARGO_MANIFEST_DIR"), "/src/repros/selftest.rs");
        assert_eq!(source_path(here), "repros/src/repros/selftest.rs");
        assert_eq!(source_path("repros/src/sdk.rs"), "repros/src/sdk.rs");
        assert_eq!(source_path("/elsewhere/x.rs"), "/elsewhere/x.rs");
    }

    #[test]
    fn unknown_repro_lists_every_name_and_exec() {
        let msg = unknown_repro("nope", crate::registry::REPROS.iter().map(|r| r.name));
        assert!(msg.starts_with("unknown repro 'nope'; known repros: smoke, listen_backlog, "), "{msg}");
        assert!(msg.ends_with(", selftest_version, exec"), "{msg}");
        assert_eq!(msg.matches(", ").count(), crate::registry::REPROS.len());
        assert_eq!(unknown_repro("x", core::iter::empty()), "unknown repro 'x'; known repros: exec");
    }

    #[test]
    fn module_files_name_order_and_module() {
        assert_eq!(module_file("00-virtio_mmio.ko"), Some((0, "virtio_mmio")));
        assert_eq!(module_file("12-snd-hda-intel.ko"), Some((12, "snd-hda-intel")));
        assert_eq!(module_file("virtio_mmio.ko"), Some((u32::MAX, "virtio_mmio")));
        assert_eq!(module_file("snd-hda.ko"), Some((u32::MAX, "snd-hda")));
        assert_eq!(module_file("-x.ko"), Some((u32::MAX, "-x")));
        assert_eq!(module_file("07-.ko"), Some((u32::MAX, "07-")));
        assert_eq!(module_file(".ko"), None);
        assert_eq!(module_file("00-x.ko.xz"), None);
        assert_eq!(module_file("README"), None);
    }

    #[test]
    fn modules_sort_by_number_not_by_text() {
        let mut files = ["100-c.ko", "x.txt", "b.ko", "02-z.ko", "11-a.ko", "02-y.ko"];
        sort_modules(&mut files);
        assert_eq!(files, ["02-y.ko", "02-z.ko", "11-a.ko", "100-c.ko", "b.ko", "x.txt"]);
        let mut none: [&str; 0] = [];
        sort_modules(&mut none);
        let mut one = ["a.ko"];
        sort_modules(&mut one);
        assert_eq!(one, ["a.ko"]);
    }

    #[test]
    fn module_params_come_from_the_cmdline() {
        let cmdline = "console=ttyS0 virtio_mmio.device=4K@0xfeb00e00:12 virtio-mmio.verbose \
                       virtio_mmiox.device=no xvirtio_mmio.a=no virtio_mmio. virtio_mmio.=1 \
                       virtio_mmio.opt=\"a b\" virtio_mmio";
        assert_eq!(module_params(cmdline, "virtio_mmio"), b"device=4K@0xfeb00e00:12 verbose opt=\"a b\"\0");
        assert_eq!(module_params(cmdline, "virtio-mmio"), module_params(cmdline, "virtio_mmio"));
        assert_eq!(module_params(cmdline, "9p"), b"\0");
        assert_eq!(module_params("", "x"), b"\0");
    }

    #[test]
    fn nul_lists_keep_empty_strings() {
        let mut list = b"a\0\0b c\0d".to_vec();
        end_nul_list(&mut list);
        assert_eq!(list, b"a\0\0b c\0d\0");
        assert_eq!(nul_list(&list), [c"a", c"", c"b c", c"d"]);
        let mut empty = Vec::new();
        end_nul_list(&mut empty);
        assert!(empty.is_empty() && nul_list(&empty).is_empty());
        assert_eq!(nul_list(b"\0"), [c""]);
        // Without end_nul_list, a last string with no NUL is not one.
        assert_eq!(nul_list(b"a\0b"), [c"a"]);
    }

    #[test]
    fn exit_statuses_and_signals_become_verdicts() {
        assert_eq!(exec_verdict(Some(0), None), (Kind::Pass, String::new()));
        assert_eq!(exec_verdict(Some(4), None), (Kind::Skip, "exit status 4 (KSFT_SKIP)".into()));
        assert_eq!(exec_verdict(Some(1), None), (Kind::Fail, "exit status 1".into()));
        assert_eq!(exec_verdict(Some(EXEC_FAILED), None), (Kind::Fail, "exit status 127".into()));
        assert_eq!(exec_verdict(Some(255), None), (Kind::Fail, "exit status 255".into()));
        assert_eq!(exec_verdict(None, Some(11)), (Kind::Fail, "killed by signal 11 (SIGSEGV)".into()));
        assert_eq!(exec_verdict(None, Some(9)), (Kind::Fail, "killed by signal 9 (SIGKILL)".into()));
        assert_eq!(exec_verdict(None, Some(64)), (Kind::Fail, "killed by signal 64".into()));
        assert_eq!(exec_verdict(None, None), (Kind::Error, "child stopped without exiting".into()));
    }
}
