//! Everything `unsafe` in PID 1, in one place.
//!
//! Safety rules of this module:
//! - `_start` ([`start`]) is entered by the kernel with only a stack; it
//!   calls [`crate::main`] and never returns.
//! - The global allocator ([`heap`]) hands out each block once until it is
//!   freed; its free lists are only touched under its lock.
//! - Port I/O (`debug_exit_ioport`, x86_64 only) is done only after `ioperm`
//!   granted the port, and only to qemu's isa-debug-exit port.
//! - The interface ioctls pass a properly sized, zero-initialised `ifreq`
//!   with a NUL-terminated name.
//! - Threads ([`thread`]) run on stacks of their own, mapped with a guard
//!   page and unmapped only once the kernel has said (CLONE_CHILD_CLEARTID)
//!   that the thread exited.
//! - [`thread::fork`] holds the allocator's lock across fork(2), so the
//!   child's heap is consistent whatever other threads were doing. A child
//!   never returns into the rest of init (no verdict, no power-off): it
//!   execs or [`exit_child`]s, and a panic in it ends it ([`abort_child`]).
//!
//! Every `unsafe` block here carries a `// SAFETY:` comment; the rest of init
//! and every repro use safe rustix APIs (`unsafe_code = "deny"` elsewhere).
//!
//! This is the bottom layer of init: it uses rustix, linux-raw-sys and the
//! pure helpers of [`repros::guest`], and of init itself only `crate::main`,
//! which `_start` calls. Reporting (`report`) is built on it, never the
//! other way round; so [`power_off`], the way every path of PID 1 ends,
//! lives here.

#![allow(unsafe_code)]

mod heap;
mod mem;
mod start;
pub mod thread;

use alloc::vec::Vec;
use core::ffi::CStr;
use core::fmt::Write as _;
use core::{iter, ptr};

use linux_raw_sys::net::{ifreq, IFNAMSIZ};
use repros::guest::{FixedBuf, EXEC_FAILED};
use repros::syscall::{nr, syscall0, syscall1, syscall3};
use repros::{Error, Step as _};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, WaitOptions};

/// fd 1: /dev/console, opened by the kernel for PID 1 (from the initrd's
/// /dev/console node) and never closed by init.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: init never closes fd 1, so it stays valid for the whole
    // process; if the kernel could not open a console, calls on it fail
    // with EBADF, which every caller ignores or reports.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// Powers off; if that fails, restarts (qemu runs with -no-reboot, so either
/// ends it). Never returns: how PID 1 ends, whatever happened.
///
/// <https://man7.org/linux/man-pages/man2/reboot.2.html>
pub fn power_off() -> ! {
    use rustix::system::{reboot, RebootCommand};
    let _ = reboot(RebootCommand::PowerOff);
    let _ = reboot(RebootCommand::Restart);
    park()
}

/// Sleeps for ever: what a thread does while another one reports the
/// verdict and powers off.
pub fn park() -> ! {
    loop {
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec { tv_sec: 1, tv_nsec: 0 });
    }
}

/// `IFF_UP` as the `ifr_flags` field holds it.
pub const IFF_UP: i16 = linux_raw_sys::net::net_device_flags::IFF_UP as i16;

/// `ioperm(2)` then `outb`: writes `value` to I/O port `port`.
///
/// <https://man7.org/linux/man-pages/man2/ioperm.2.html>
#[cfg(target_arch = "x86_64")]
pub fn debug_exit_ioport(port: u16, value: u8) -> Result<(), Errno> {
    // SAFETY: ioperm(from, num, turn_on) takes plain integers and touches
    // no memory of ours.
    unsafe { syscall3(nr::__NR_ioperm, usize::from(port), 1, 1) }?;
    // SAFETY: ioperm just granted this process access to `port`; writing to
    // isa-debug-exit makes qemu exit and has no effect on our memory.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
    }
    Ok(())
}

fn ifreq_for(name: &[u8]) -> ifreq {
    // A real check, not a debug_assert (init is only built optimised): a
    // longer name would lose its NUL and name another interface. Callers
    // pass literals, so it costs nothing once inlined.
    assert!(name.len() < IFNAMSIZ as usize, "interface name too long for ifr_name");
    // SAFETY: ifreq is a C struct of integers, arrays and unions of those,
    // for which all-zero bytes are a valid value.
    let mut req: ifreq = unsafe { core::mem::zeroed() };
    // SAFETY: ifrn_name is the only field of its union, so writing it is fine.
    let slot = unsafe { &mut req.ifr_ifrn.ifrn_name };
    for (dst, &src) in slot.iter_mut().zip(name) {
        *dst = src as _;
    }
    req
}

/// `ioctl(fd, SIOCGIFFLAGS, &ifreq)`: the flags of interface `name`.
///
/// <https://man7.org/linux/man-pages/man7/netdevice.7.html>
pub fn if_flags(sock: impl AsFd, name: &[u8]) -> Result<i16, Errno> {
    let mut req = ifreq_for(name);
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into an
    // `ifreq`, which is exactly the type passed.
    unsafe {
        let ctl = rustix::ioctl::Updater::<{ linux_raw_sys::ioctl::SIOCGIFFLAGS as _ }, ifreq>::new(&mut req);
        rustix::ioctl::ioctl(sock, ctl)?;
    }
    // SAFETY: the kernel filled in ifru_flags for SIOCGIFFLAGS.
    Ok(unsafe { req.ifr_ifru.ifru_flags })
}

/// `ioctl(fd, SIOCSIFFLAGS, &ifreq)`: sets the flags of interface `name`.
///
/// <https://man7.org/linux/man-pages/man7/netdevice.7.html>
pub fn set_if_flags(sock: impl AsFd, name: &[u8], flags: i16) -> Result<(), Errno> {
    let mut req = ifreq_for(name);
    req.ifr_ifru.ifru_flags = flags;
    // SAFETY: SIOCSIFFLAGS reads the name and flags from an `ifreq`, which is
    // exactly the type passed.
    unsafe {
        let ctl = rustix::ioctl::Updater::<{ linux_raw_sys::ioctl::SIOCSIFFLAGS as _ }, ifreq>::new(&mut req);
        rustix::ioctl::ioctl(sock, ctl)?;
    }
    Ok(())
}

/// `fork(2)` then, in the child, `setsid(2)` and `execve(2)`: starts
/// `path` with `argv` and `envp` (NUL-terminated strings), its stdout and
/// stderr on `stdio` when given (else PID 1's console), in `cwd` when
/// given, and returns the child's pid once execve has succeeded. The
/// child leads a session (and process group) of its own, so that
/// `kill(-pid)` ends it and every process it started.
///
/// If execve fails, the child prints why on the console, sends its errno
/// through a close-on-exec pipe (the way `posix_spawn` and Rust's std learn
/// it) and exits with [`EXEC_FAILED`]; spawn reaps it and returns that
/// errno, so a program that could not start is an error, not a verdict.
/// The child never returns into PID 1's code: no panic handler, no verdict.
///
/// <https://man7.org/linux/man-pages/man2/fork.2.html>,
/// <https://man7.org/linux/man-pages/man2/setsid.2.html>,
/// <https://man7.org/linux/man-pages/man2/execve.2.html>
pub fn spawn(
    path: &CStr,
    argv: &[&CStr],
    envp: &[&CStr],
    stdio: Option<BorrowedFd<'_>>,
    cwd: Option<&CStr>,
) -> repros::Result<Pid> {
    // Pointer arrays built before the fork: the child only makes syscalls.
    let argv: Vec<*const u8> = argv.iter().map(|a| a.as_ptr().cast()).chain(iter::once(ptr::null())).collect();
    let envp: Vec<*const u8> = envp.iter().map(|e| e.as_ptr().cast()).chain(iter::once(ptr::null())).collect();
    let (status_r, status_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).step("pipe2")?;
    let Some(pid) = thread::fork()? else {
        if let Some(fd) = stdio {
            for target in [1, 2] {
                // SAFETY: dup3 takes integers; `fd` is open (the parent
                // holds it) and 1 and 2 are replaced in this child only.
                let _ = unsafe { syscall3(nr::__NR_dup3, fd.as_raw_fd() as usize, target, 0) };
            }
        }
        // SAFETY: setsid takes no arguments and changes this child only.
        let _ = unsafe { syscall0(nr::__NR_setsid) };
        if let Some(dir) = cwd {
            // SAFETY: `dir` is a NUL-terminated string that outlives the call.
            if let Err(errno) = unsafe { syscall1(nr::__NR_chdir, dir.as_ptr() as usize) } {
                exec_failed(dir, errno, &status_w);
            }
        }
        // SAFETY: path, argv and envp point to NUL-terminated strings and
        // NULL-terminated pointer arrays that live until execve replaces us.
        let ret = unsafe {
            syscall3(nr::__NR_execve, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
        };
        // execve returns only when it failed.
        if let Err(errno) = ret {
            exec_failed(path, errno, &status_w);
        }
        exit_child(EXEC_FAILED);
    };
    // Our copy of the write end goes, so that execve (close-on-exec) or the
    // child's exit leaves the read end at end of file.
    drop(status_w);
    let mut errno = [0u8; 4];
    let read = loop {
        match rustix::io::read(&status_r, &mut errno) {
            Err(Errno::INTR) => {}
            other => break other,
        }
    };
    match read {
        // End of file: the program runs.
        Ok(0) => Ok(pid),
        Ok(_) => {
            let errno = Errno::from_raw_os_error(i32::from_ne_bytes(errno));
            while let Err(Errno::INTR) = rustix::process::waitpid(Some(pid), WaitOptions::empty()) {}
            Err(Error::Errno { step: "execve", errno })
        }
        Err(errno) => Err(Error::Errno { step: "read the execve status pipe", errno }),
    }
}

/// The forked child's end when execve failed: one console line, the errno
/// to the parent, exit. Nothing here can panic or allocate.
fn exec_failed(path: &CStr, errno: Errno, status: &OwnedFd) -> ! {
    let _ = rustix::io::write(status, &errno.raw_os_error().to_ne_bytes());
    let mut line = FixedBuf::<200>::new();
    let path = path.to_str().unwrap_or("the --exec program");
    let _ = write!(line, "{}{path}: {}", repros::protocol::CONSOLE_PREFIX, Error::Errno { step: "execve", errno });
    line.end_line();
    let _ = rustix::io::write(stdout(), line.as_bytes());
    exit_child(EXEC_FAILED)
}

/// Ends a forked child that panicked as C's abort(3) does: killed by
/// SIGABRT, which its parent sees; should that not end it, exit status
/// 134 (128 + SIGABRT), as a shell reports it.
pub fn abort_child() -> ! {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::ABORT);
    exit_child(134)
}

/// `_exit(2)` (exit_group): ends a forked child at once, running nothing of
/// PID 1's. PID 1 itself must never exit (the kernel panics): there it
/// powers off instead.
///
/// <https://man7.org/linux/man-pages/man2/exit_group.2.html>
pub fn exit_child(status: i32) -> ! {
    if rustix::process::getpid().is_init() {
        power_off();
    }
    loop {
        // SAFETY: exit_group takes a plain int and ends this process, which
        // is not PID 1 (checked above); it does not return.
        let _ = unsafe { syscall1(nr::__NR_exit_group, status as usize) };
    }
}
