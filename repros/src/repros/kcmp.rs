//! `kcmp`: kcmp(2) compares kernel objects of two processes. A port of
//! the kernel's selftest tools/testing/selftests/kcmp/kcmp_test.c (Linux
//! 6.1): PID 1 opens a file, a pipe and an epoll watching the pipe's read
//! end and a copy of its write end at fd 64 (then closes fd 64); a forked
//! child checks that
//!
//! - the file it inherited is the parent's (KCMP_FILE, 0),
//! - the parent's address space is its own (KCMP_VM, pid1 vs pid1, 0),
//! - the epoll's target at fd 64 is the pipe's write end (KCMP_EPOLL_TFD, 0).
//!
//! The C test prints but does not check two more results; here they are
//! checked too: the same file opened again is another file (KCMP_FILE,
//! not 0) and a type past the last is EINVAL. And where the C test's
//! parent ignores its child's exit status, here it is the verdict.

use repros::prelude::*;
use repros::syscall::kcmp_type::{KCMP_FILE, KCMP_TYPES, KCMP_VM};
use repros::syscall::{kcmp, kcmp_epoll_tfd, KcmpEpollSlot};
use rustix::event::epoll;
use rustix::fd::AsRawFd;
use rustix::fs::{Mode, OFlags};

pub const REPRO: Repro = Repro {
    name: "kcmp",
    description: "kcmp(2) matches files, address spaces and epoll targets across fork (selftests/kcmp/kcmp_test.c)",
    config: &["PROC_FS", "CHECKPOINT_RESTORE", "KCMP", "EPOLL"],
    run,
    ..Repro::DEFAULT
};

const KPATH: &str = "/kcmp-test-file";
/// The fd number the C test dup2s the pipe's write end to.
const DUPED_NUM: i32 = 64;

/// The child's checks, each a bit of its exit status when it fails.
const CHECKS: [&str; 5] = [
    "KCMP_FILE: an inherited fd is the parent's file",
    "KCMP_VM: a process shares its address space with itself",
    "KCMP_EPOLL_TFD: the epoll's target at fd 64 is the pipe's write end",
    "KCMP_FILE: a file opened twice is two files",
    "kcmp type KCMP_TYPES: EINVAL",
];
/// The child's exit status when the kernel has no kcmp (ENOSYS).
const NO_KCMP: i32 = 64;
/// The child's exit status when it could not open the file again.
const NO_FILE: i32 = 65;

fn run(cx: &mut Cx) -> Result {
    kcmp_test(cx, KPATH)
}

/// The test, with its scratch file at `kpath`.
fn kcmp_test(cx: &Cx, kpath: &str) -> Result {
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC;
    let fd1 = rustix::fs::open(kpath, flags, Mode::from_raw_mode(0o644)).step("create /kcmp-test-file")?;
    let (pipe_r, pipe_w) = rustix::pipe::pipe().step("pipe")?;
    let epollfd = epoll::create(epoll::CreateFlags::CLOEXEC).step("epoll_create1")?;
    let events = epoll::EventFlags::IN | epoll::EventFlags::OUT;
    epoll::add(&epollfd, &pipe_r, epoll::EventData::new_u64(u64::MAX), events).step("epoll_ctl ADD")?;
    let fddup = rustix::io::fcntl_dupfd_cloexec(&pipe_w, DUPED_NUM).step("dup to fd 64")?;
    if fddup.as_raw_fd() != DUPED_NUM {
        return Err(Error::Reason { step: "dup to fd 64", reason: "fd 64 is taken" });
    }
    epoll::add(&epollfd, &fddup, epoll::EventData::new_u64(u64::MAX), events).step("epoll_ctl ADD")?;
    drop(fddup);

    let pid1 = rustix::process::getpid().as_raw_nonzero().get();
    let (fd1, efd, wfd) = (fd1.as_raw_fd(), epollfd.as_raw_fd(), pipe_w.as_raw_fd());
    let exit = cx.fork(|| child(cx, kpath, pid1, fd1, efd, wfd))?;
    let _ = rustix::fs::unlink(kpath);
    Ok(match exit {
        ChildExit::Exited(0) => Verdict::Pass,
        ChildExit::Exited(NO_KCMP) => Verdict::Skip("kcmp: ENOSYS (CONFIG_KCMP=n)".into()),
        ChildExit::Exited(NO_FILE) => {
            return Err(Error::Reason { step: "open /kcmp-test-file in the child", reason: "failed" })
        }
        ChildExit::Exited(mask) if (1..1 << CHECKS.len()).contains(&mask) => {
            let mut failed = String::from("failed:");
            for (_, check) in CHECKS.iter().enumerate().filter(|(bit, _)| mask & 1 << bit != 0) {
                failed.push_str(if failed.ends_with(':') { " " } else { "; " });
                failed.push_str(check);
            }
            Verdict::Fail(failed)
        }
        other => Verdict::Fail(format!("the child ended with {other}")),
    })
}

/// The C test's child: its checks' failures as bits of its exit status.
fn child(cx: &Cx, kpath: &str, pid1: i32, fd1: i32, efd: i32, wfd: i32) -> i32 {
    let pid2 = rustix::process::getpid().as_raw_nonzero().get();
    let Ok(fd2) = rustix::fs::open(kpath, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) else {
        return NO_FILE;
    };
    let fd2 = fd2.as_raw_fd();
    let (f1, f2) = (fd1 as usize, fd2 as usize);
    let slot = KcmpEpollSlot { efd: efd as u32, tfd: DUPED_NUM as u32, toff: 0 };
    let results = [
        kcmp(pid1, pid2, KCMP_FILE, f1, f1),
        kcmp(pid1, pid1, KCMP_VM, 0, 0),
        kcmp_epoll_tfd(pid1, pid1, wfd, &slot),
        kcmp(pid1, pid2, KCMP_FILE, f1, f2),
        kcmp(pid1, pid2, KCMP_TYPES, 0, 0),
    ];
    if results.iter().all(|r| *r == Err(Errno::NOSYS)) {
        return NO_KCMP;
    }
    let mut failed = 0;
    for (bit, (result, check)) in results.iter().zip(CHECKS).enumerate() {
        let ok = match bit {
            3 => matches!(result, Ok(n) if *n != 0),
            4 => *result == Err(Errno::INVAL),
            _ => *result == Ok(0),
        };
        match result {
            _ if ok => {}
            Ok(n) => println!(cx, "kcmp: FAIL: {check}: returned {n}"),
            Err(errno) => println!(cx, "kcmp: FAIL: {check}: {}", Error::Errno { step: "kcmp", errno: *errno }),
        }
        failed |= i32::from(!ok) << bit;
    }
    failed
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::task::host::HOST;

    #[test]
    fn passes_on_the_host() {
        let cx = Cx::new(String::new(), None).with_runtime(&HOST);
        let kpath = std::env::temp_dir().join(format!("kcmp-test-file-{}", std::process::id()));
        match kcmp_test(&cx, kpath.to_str().unwrap()) {
            Ok(Verdict::Pass) => {}
            // A host kernel without CONFIG_KCMP.
            Ok(Verdict::Skip(m)) => assert_eq!(m, "kcmp: ENOSYS (CONFIG_KCMP=n)"),
            other => panic!("{other:?}"),
        }
        assert!(!kpath.exists());
    }
}
