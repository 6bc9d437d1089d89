//! `krepro new NAME`: a one-file repro to start from. It builds, passes on
//! a kernel without the bug, and shows the SDK's main calls: reading
//! files, printing, a socket, the kernel log, a sysctl, threads, `?` on a
//! failed step.

use std::path::{Path, PathBuf};

use repros::decl;

use super::{io, GuestError};

const TEMPLATE: &str = r##"//! `@NAME@`: what this reproduces, in one line (`krepro repros .` lists it).
//!
//! Run it with `krepro run @NAME@.rs` (in a kernel tree: `krepro run -b
//! @NAME@.rs` builds the tree with the config below first). Exit status:
//! 0 pass, 1 fail (the bug is there), 2 crash, 3 hang, 128 error.

use repros::prelude::*;
use rustix::net::{self, RecvFlags, SendFlags};

pub const REPRO: Repro = Repro {
    name: "@NAME@",
    description: "describe the bug this reproduces",
    // Kernel options it needs, without CONFIG_: a kernel krepro builds
    // (`krepro run -b`, `krepro bisect`) gets them.
    config: &["PROC_FS", "NET", "INET"],
    // What the guest needs, when not the default (1 CPU, no disk, 256 MiB):
    // cpus: 2, disks: &["new:64M:ext4"], memory_mib: 512,
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    // The kernel log's end: a WARNING or BUG after this is ours.
    let mark = cx.kmsg_mark()?;

    let version = cx.read_to_string("/proc/version").step("read /proc/version")?;
    println!(cx, "{}", version.trim_end());

    // Replace this with what triggers the bug: system calls (rustix, or
    // repros::syscall for the ones it lacks), files, sockets, threads
    // (cx.spawn), child processes (cx.fork), sysctls (cx.set_sysctl).
    // A failed step returns `error` with the kernel's errno: `?` does it.
    let (listener, addr) = listen_loopback(1)?;
    let client = tcp_client(Duration::from_secs(3))?;
    net::connect(&client, &addr).step("connect")?;
    let server = net::accept(&listener).step("accept")?;
    net::send(&client, b"ping", SendFlags::empty()).step("send")?;
    let mut buf = [0u8; 4];
    let (got, _) = net::recv(&server, &mut buf, RecvFlags::WAITALL).step("recv")?;
    if &buf[..got] != b"ping" {
        // The bug is there: fail, saying what was seen.
        return Ok(Verdict::Fail(format!("loopback TCP gave back {got} other bytes")));
    }

    if let Some(line) = splat(&cx.kmsg_since(mark)?) {
        return Ok(Verdict::Fail(format!("the kernel complained: {line}")));
    }
    Ok(Verdict::Pass)
}
"##;

/// The text of a new repro called `name`.
pub(crate) fn render(name: &str) -> String {
    TEMPLATE.replace("@NAME@", name)
}

/// Writes `NAME.rs` in `dir` (never over an existing file); its path.
pub(crate) fn write(dir: &Path, name: &str) -> Result<PathBuf, GuestError> {
    let path = dir.join(format!("{name}.rs"));
    if !decl::valid_name(name) {
        return Err(GuestError::NotARepro {
            path,
            why: format!("{name:?} is not a repro name: lower-case letters, digits and _ only"),
        });
    }
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(GuestError::NotARepro { path, why: "already exists: krepro new does not overwrite".into() })
        }
        Err(e) => return Err(io(format!("create {}", path.display()))(e)),
    };
    std::io::Write::write_all(&mut file, render(name).as_bytes()).map_err(io(format!("write {}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_declares_the_name_and_is_written_once() {
        let d = tempfile::tempdir().unwrap();
        let path = write(d.path(), "probe").unwrap();
        let decls = decl::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(decls.len(), 1);
        assert_eq!((decls[0].name.as_str(), decls[0].config.len()), ("probe", 3));
        let e = write(d.path(), "probe").unwrap_err();
        assert!(e.to_string().ends_with("already exists: krepro new does not overwrite"), "{e}");
        let e = write(d.path(), "Bad-Name").unwrap_err();
        assert!(e.to_string().contains("is not a repro name"), "{e}");
    }
}
