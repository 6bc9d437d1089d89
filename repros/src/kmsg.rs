//! The kernel log, as /dev/kmsg gives it: [`Cx::kmsg_mark`],
//! [`Cx::kmsg_since`] and [`splat`], so a repro can fail with the warning
//! its own actions caused.

use alloc::string::String;
use alloc::vec::Vec;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::sdk::{Cx, Error, Result};

/// A place in the kernel log: the records after it are those logged after
/// [`Cx::kmsg_mark`] was called. [`KmsgMark::START`] is before them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KmsgMark(u64);

impl KmsgMark {
    /// Before the first record: `kmsg_since(KmsgMark::START)` is the whole
    /// log the kernel still holds.
    pub const START: KmsgMark = KmsgMark(0);
}

/// What starts the line of a kernel splat: a warning, a BUG, a sanitizer
/// report, an Oops, a fault in the kernel. (The `cut here` line before a
/// warning says nothing itself.)
pub const SPLAT_MARKERS: &[&str] =
    &["WARNING:", "BUG:", "KASAN:", "UBSAN:", "KFENCE:", "Oops", "general protection fault", "kernel BUG"];

impl Cx {
    /// Marks the end of the kernel log now.
    pub fn kmsg_mark(&self) -> Result<KmsgMark> {
        let mut next = 0;
        read(&mut |seq, _| next = seq + 1)?;
        Ok(KmsgMark(next))
    }

    /// The messages logged after `mark`, first lines only (the `KEY=value`
    /// lines that follow a record are left out).
    pub fn kmsg_since(&self, mark: KmsgMark) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        read(&mut |seq, message| {
            if seq >= mark.0 {
                lines.push(message.into());
            }
        })?;
        Ok(lines)
    }
}

/// The first line of `lines` that shows a kernel splat ([`SPLAT_MARKERS`]):
/// what a repro fails with.
pub fn splat<S: AsRef<str>>(lines: &[S]) -> Option<&str> {
    lines.iter().map(AsRef::as_ref).find(|l| SPLAT_MARKERS.iter().any(|m| holds(l, m)))
}

/// Whether `line` holds `marker`: a plain search, as `str::contains`
/// inlines its two-way searcher at each call (2 KiB of PID 1 here).
fn holds(line: &str, marker: &str) -> bool {
    line.as_bytes().windows(marker.len()).any(|w| w == marker.as_bytes())
}

/// Calls `each(sequence number, message)` for every record the kernel
/// still holds, oldest first, without waiting for new ones. A record
/// overwritten while being read (EPIPE) is skipped.
pub fn read(each: &mut dyn FnMut(u64, &str)) -> Result<()> {
    let fd = rustix::fs::open("/dev/kmsg", OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| Error::Errno { step: "open /dev/kmsg", errno })?;
    // One record per read; the kernel's limit is 1 KiB of text plus the
    // header and continuation lines.
    let mut buf = [0u8; 2048];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) | Err(Errno::AGAIN) => return Ok(()),
            Ok(n) => {
                // The kernel escapes every byte outside printable ASCII
                // (as \xNN), so a record is always UTF-8.
                if let Some((seq, message)) = buf.get(..n).and_then(|b| core::str::from_utf8(b).ok()).and_then(record) {
                    each(seq, message);
                }
            }
            Err(Errno::PIPE | Errno::INTR) => {}
            Err(errno) => return Err(Error::Errno { step: "read /dev/kmsg", errno }),
        }
    }
}

/// A /dev/kmsg record, `prio,seq,usec,flags;message\n` followed by
/// ` KEY=value` lines: its sequence number and the message's first line.
pub fn record(text: &str) -> Option<(u64, &str)> {
    let (header, message) = text.split_once(';')?;
    let seq = header.split(',').nth(1)?.parse().ok()?;
    Some((seq, message.lines().next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_give_their_sequence_number_and_first_line() {
        assert_eq!(record("6,1,0,-;Linux version 6.12.0\n SUBSYSTEM=x\n"), Some((1, "Linux version 6.12.0")));
        assert_eq!(record("4,302,1234567,-;a; b\n"), Some((302, "a; b")));
        assert_eq!(record("6,2,0,-;"), Some((2, "")));
        assert_eq!(record("no header\n"), None);
        assert_eq!(record("6,x,0,-;text"), None);
        assert_eq!(record(""), None);
    }

    #[test]
    fn splats_are_found_cut_here_lines_are_not() {
        let log = [
            "Linux version 6.12.0",
            "------------[ cut here ]------------",
            "WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2",
            "BUG: kernel NULL pointer dereference, address: 0",
        ];
        assert_eq!(splat(&log), Some("WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2"));
        assert_eq!(splat(&log[3..]), Some("BUG: kernel NULL pointer dereference, address: 0"));
        assert_eq!(splat(&["BUG: KASAN: slab-use-after-free in foo"]), Some("BUG: KASAN: slab-use-after-free in foo"));
        let oops = "Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP";
        assert_eq!(splat(&[oops]), Some(oops));
        assert_eq!(splat(&log[..2]), None);
        assert_eq!(splat::<&str>(&[]), None);
    }

    #[test]
    fn marks_and_reads_on_the_host_when_allowed() {
        let cx = Cx::new(String::new(), None);
        // Reading /dev/kmsg needs CAP_SYSLOG (or dmesg_restrict=0).
        match cx.kmsg_mark() {
            Ok(mark) => {
                assert!(mark >= KmsgMark::START);
                assert!(cx.kmsg_since(mark).unwrap().len() <= 5, "records after a fresh mark");
                assert!(!cx.kmsg_since(KmsgMark::START).unwrap().is_empty());
            }
            Err(e) => assert!(matches!(e.errno(), Some(Errno::PERM | Errno::ACCESS | Errno::NOENT)), "{e}"),
        }
    }
}
