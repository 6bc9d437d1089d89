//! Everything `unsafe` in PID 1, in one place.
//!
//! Safety rules of this module:
//! - `_start` ([`start`]) is entered by the kernel with only a stack; it
//!   calls [`crate::main`] and never returns.
//! - The global allocator ([`heap`]) hands out disjoint parts of one static
//!   arena; PID 1 is single-threaded, but the bookkeeping is atomic anyway.
//! - Port I/O ([`debug_exit_ioport`]) is done only after `ioperm` granted the
//!   port, and only to qemu's isa-debug-exit port.
//! - The interface ioctls pass a properly sized, zero-initialised `ifreq`
//!   with a NUL-terminated name.
//!
//! Every `unsafe` block here carries a `// SAFETY:` comment; the rest of init
//! and every repro use safe rustix APIs (`unsafe_code = "deny"` elsewhere).

#![allow(unsafe_code)]

mod heap;
mod mem;
mod start;

use linux_raw_sys::net::{ifreq, IFNAMSIZ};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::io::Errno;

/// fd 1: /dev/console, opened by the kernel for PID 1 (from the initrd's
/// /dev/console node) and never closed by init.
pub fn stdout() -> BorrowedFd<'static> {
    // SAFETY: init never closes fd 1, so it stays valid for the whole
    // process; if the kernel could not open a console, calls on it fail
    // with EBADF, which every caller ignores or reports.
    unsafe { BorrowedFd::borrow_raw(1) }
}

/// `IFF_UP` as the `ifr_flags` field holds it.
pub const IFF_UP: i16 = linux_raw_sys::net::net_device_flags::IFF_UP as i16;

/// `ioperm(2)` then `outb`: writes `value` to I/O port `port`.
///
/// <https://man7.org/linux/man-pages/man2/ioperm.2.html>
pub fn debug_exit_ioport(port: u16, value: u8) -> Result<(), Errno> {
    let ret: isize;
    // SAFETY: ioperm(from, num, turn_on) takes plain integers and touches no
    // memory of ours; the syscall clobbers rcx and r11 as declared.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") linux_raw_sys::general::__NR_ioperm as isize => ret,
            in("rdi") u64::from(port),
            in("rsi") 1u64,
            in("rdx") 1u64,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        return Err(Errno::from_raw_os_error(-ret as i32));
    }
    // SAFETY: ioperm just granted this process access to `port`; writing to
    // isa-debug-exit makes qemu exit and has no effect on our memory.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags));
    }
    Ok(())
}

fn ifreq_for(name: &[u8]) -> ifreq {
    debug_assert!(name.len() < IFNAMSIZ as usize, "interface name too long");
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
