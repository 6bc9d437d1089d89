//! `dmesg_clean`: the kernel log holds no warning, BUG or Oops.

use crate::prelude::*;
use rustix::fs::{Mode, OFlags};

pub const REPRO: Repro = Repro {
    name: "dmesg_clean",
    description: "fails if the kernel log holds a WARNING:, BUG:, Oops or cut here line, quoting it",
    config: &["PRINTK", "DEVTMPFS"],
    run,
    ..Repro::DEFAULT
};

/// What marks a kernel splat.
const MARKERS: &[&str] = &["WARNING:", "BUG:", "Oops", "cut here"];

fn run(_cx: &mut Cx) -> Result {
    let kmsg = match rustix::fs::open("/dev/kmsg", OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(errno) => {
            return Ok(Verdict::Skip(format!("no kernel log: {}", Error::Errno { step: "open /dev/kmsg", errno })))
        }
    };
    // Each read returns one record: "prio,seq,usec,flags;text\n".
    let mut buf = [0u8; 8192];
    loop {
        match rustix::io::read(&kmsg, &mut buf) {
            Ok(0) | Err(Errno::AGAIN) => return Ok(Verdict::Pass),
            Ok(n) => {
                if let Some(line) = splat(&buf[..n]) {
                    return Ok(Verdict::Fail(format!("kernel log: {line}")));
                }
            }
            // EPIPE: the record was overwritten while we read; go on.
            Err(Errno::PIPE | Errno::INTR) => {}
            Err(errno) => return Err(Error::Errno { step: "read /dev/kmsg", errno }),
        }
    }
}

/// The message of a /dev/kmsg record if it is a splat.
fn splat(record: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(record);
    let first = crate::guest::kmsg_message(&text);
    MARKERS.iter().any(|m| first.contains(m)).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_splats_in_kmsg_records() {
        assert_eq!(
            splat(b"4,302,1234567,-;WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2\n"),
            Some("WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2".into())
        );
        assert_eq!(
            splat(b"1,5,10,-;BUG: kernel NULL pointer dereference, address: 0\n").unwrap(),
            "BUG: kernel NULL pointer dereference, address: 0"
        );
        assert_eq!(
            splat(b"4,9,10,-;------------[ cut here ]------------\n").unwrap(),
            "------------[ cut here ]------------"
        );
        assert_eq!(splat(b"6,1,0,-;Linux version 6.12.0\n SUBSYSTEM=x\n"), None);
    }
}
