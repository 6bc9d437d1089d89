//! Raw system calls, for what rustix does not wrap, and the safe typed
//! wrappers repros use instead of them.
//!
//! This is the repros crate's one `unsafe` module. Its rules:
//! - [`syscall6`] (and the shorter forms) issue one system call and return
//!   what the kernel returned: a value, or the errno it gave. They are
//!   `unsafe`: a system call can write anywhere its arguments point, unmap
//!   memory or end the process, and only the caller knows which.
//! - A safe wrapper here exists only where its signature makes every call
//!   sound: its arguments are integers the kernel does not dereference, or
//!   references to exactly the type the kernel reads or writes. Each one has
//!   a `// SAFETY:` line saying why.
//!
//! Numbers come from [`linux_raw_sys::general`] (`__NR_*`); constants and
//! structs linux-raw-sys lacks are written here once, from the kernel's
//! uapi headers, with the header named.

#![allow(unsafe_code)]

use rustix::io::Errno;

pub use linux_raw_sys::general as nr;

/// `syscall(2)` with six arguments: the kernel's return value, or the errno
/// it returned (-4095..=-1 on x86_64 and aarch64).
///
/// <https://man7.org/linux/man-pages/man2/syscall.2.html>
///
/// # Safety
/// `nr` and its arguments must be a system call whose effects on this
/// process (memory it writes, mappings, signals, exit) the caller accounts
/// for; a pointer argument must be valid for what the kernel does with it.
#[inline]
pub unsafe fn syscall6(nr: u32, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> Result<usize, Errno> {
    let ret: usize;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller vouches for the call; `syscall` takes its number in
    // rax and arguments in rdi, rsi, rdx, r10, r8, r9, returns in rax and
    // clobbers rcx and r11. It does not touch our stack.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as usize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            in("r9") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller vouches for the call; `svc 0` takes its number in
    // x8 and arguments in x0..x5, and returns in x0.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr as usize,
            inlateout("x0") a => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            in("x4") e,
            in("x5") f,
            options(nostack),
        );
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = (nr, a, b, c, d, e, f);
        compile_error!("repros::syscall supports x86_64 and aarch64");
    }
    if ret > -4096isize as usize {
        Err(Errno::from_raw_os_error(ret.wrapping_neg() as i32))
    } else {
        Ok(ret)
    }
}

/// [`syscall6`] with no arguments.
///
/// # Safety
/// As for [`syscall6`].
#[inline]
pub unsafe fn syscall0(nr: u32) -> Result<usize, Errno> {
    // SAFETY: the caller's contract; the unused arguments are zero, which
    // the kernel ignores.
    unsafe { syscall6(nr, 0, 0, 0, 0, 0, 0) }
}

/// [`syscall6`] with one argument.
///
/// # Safety
/// As for [`syscall6`].
#[inline]
pub unsafe fn syscall1(nr: u32, a: usize) -> Result<usize, Errno> {
    // SAFETY: as for syscall0.
    unsafe { syscall6(nr, a, 0, 0, 0, 0, 0) }
}

/// [`syscall6`] with three arguments.
///
/// # Safety
/// As for [`syscall6`].
#[inline]
pub unsafe fn syscall3(nr: u32, a: usize, b: usize, c: usize) -> Result<usize, Errno> {
    // SAFETY: as for syscall0.
    unsafe { syscall6(nr, a, b, c, 0, 0, 0) }
}

/// [`syscall6`] with five arguments.
///
/// # Safety
/// As for [`syscall6`].
#[inline]
pub unsafe fn syscall5(nr: u32, a: usize, b: usize, c: usize, d: usize, e: usize) -> Result<usize, Errno> {
    // SAFETY: as for syscall0.
    unsafe { syscall6(nr, a, b, c, d, e, 0) }
}

/// `getcpu(cpu, node, NULL)`: the CPU and NUMA node the calling thread
/// runs on. A system call, not the vDSO (rustix's sched_getcpu uses the
/// vDSO, whose lookup costs PID 1 some 2 KiB).
///
/// <https://man7.org/linux/man-pages/man2/getcpu.2.html>
pub fn getcpu() -> Result<(u32, u32), Errno> {
    let (mut cpu, mut node) = (0u32, 0u32);
    let (c, n): (*mut u32, *mut u32) = (&mut cpu, &mut node);
    // SAFETY: the kernel writes one u32 through each of the two pointers,
    // which point to live locals; the third argument is unused (NULL).
    unsafe { syscall3(nr::__NR_getcpu, c as usize, n as usize, 0) }?;
    Ok((cpu, node))
}

/// `enum kcmp_type` of include/uapi/linux/kcmp.h.
pub mod kcmp_type {
    /// The files behind `idx1` in pid1 and `idx2` in pid2.
    pub const KCMP_FILE: u32 = 0;
    /// The address spaces.
    pub const KCMP_VM: u32 = 1;
    /// The file descriptor tables.
    pub const KCMP_FILES: u32 = 2;
    /// The file system information (root, cwd, umask).
    pub const KCMP_FS: u32 = 3;
    /// The signal handler tables.
    pub const KCMP_SIGHAND: u32 = 4;
    /// The I/O contexts.
    pub const KCMP_IO: u32 = 5;
    /// The System V semaphore undo lists.
    pub const KCMP_SYSVSEM: u32 = 6;
    /// A file of pid1 with a target of an epoll of pid2
    /// ([`kcmp_epoll_tfd`](super::kcmp_epoll_tfd)).
    pub const KCMP_EPOLL_TFD: u32 = 7;
    /// The number of types: the first invalid one.
    pub const KCMP_TYPES: u32 = 8;
}

/// `struct kcmp_epoll_slot` of include/uapi/linux/kcmp.h: which target of
/// epoll `efd` to compare.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct KcmpEpollSlot {
    /// The epoll file descriptor.
    pub efd: u32,
    /// The target's file descriptor number.
    pub tfd: u32,
    /// Which of the targets with that number (0: the first).
    pub toff: u32,
}

/// `kcmp(pid1, pid2, type, idx1, idx2)`: 0 if the two kernel objects are
/// the same, 1 or 2 for an order, 3 if they differ with no order.
/// For `KCMP_EPOLL_TFD`, whose `idx2` is a pointer, use [`kcmp_epoll_tfd`]:
/// this function panics if given it.
///
/// <https://man7.org/linux/man-pages/man2/kcmp.2.html>
pub fn kcmp(pid1: i32, pid2: i32, kind: u32, idx1: usize, idx2: usize) -> Result<usize, Errno> {
    assert!(kind != kcmp_type::KCMP_EPOLL_TFD, "kcmp(KCMP_EPOLL_TFD) takes a pointer: use kcmp_epoll_tfd");
    // SAFETY: for every other type (valid or not) the kernel reads no
    // memory of ours: the arguments are pids, a type and indexes.
    unsafe { syscall5(nr::__NR_kcmp, pid1 as usize, pid2 as usize, kind as usize, idx1, idx2) }
}

/// `kcmp(pid1, pid2, KCMP_EPOLL_TFD, fd1, &slot)`: whether file `fd1` of
/// pid1 is the target `slot` names in an epoll of pid2.
///
/// <https://man7.org/linux/man-pages/man2/kcmp.2.html>
pub fn kcmp_epoll_tfd(pid1: i32, pid2: i32, fd1: i32, slot: &KcmpEpollSlot) -> Result<usize, Errno> {
    let slot: *const KcmpEpollSlot = slot;
    // SAFETY: the kernel only reads one `struct kcmp_epoll_slot` at idx2,
    // which `slot` is (same layout, repr(C)), alive for the call.
    unsafe {
        syscall5(
            nr::__NR_kcmp,
            pid1 as usize,
            pid2 as usize,
            kcmp_type::KCMP_EPOLL_TFD as usize,
            fd1 as usize,
            slot as usize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_errnos_are_the_kernels() {
        // SAFETY: getpid and close(-1) touch no memory of ours.
        unsafe {
            assert_eq!(syscall0(nr::__NR_getpid), Ok(rustix::process::getpid().as_raw_nonzero().get() as usize));
            assert_eq!(syscall1(nr::__NR_close, -1i32 as usize), Err(Errno::BADF));
            // An unknown system call number.
            assert_eq!(syscall0(100_000), Err(Errno::NOSYS));
        }
    }

    #[test]
    fn getcpu_names_a_cpu_we_may_run_on() {
        let (cpu, _node) = getcpu().unwrap();
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        assert!(allowed.is_set(cpu as usize), "{cpu}");
    }

    #[test]
    fn kcmp_compares_kernel_objects() {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        match kcmp(me, me, kcmp_type::KCMP_VM, 0, 0) {
            // A host kernel without CONFIG_KCMP, or a sandbox refusing it.
            Err(Errno::NOSYS | Errno::PERM) => return,
            other => assert_eq!(other, Ok(0)),
        }
        assert_eq!(kcmp(me, me, kcmp_type::KCMP_TYPES, 0, 0), Err(Errno::INVAL));
        let (r, w) = rustix::pipe::pipe().unwrap();
        use rustix::fd::AsRawFd;
        let (r, w) = (r.as_raw_fd() as usize, w.as_raw_fd() as usize);
        assert_eq!(kcmp(me, me, kcmp_type::KCMP_FILE, r, r), Ok(0));
        assert!(matches!(kcmp(me, me, kcmp_type::KCMP_FILE, r, w), Ok(1 | 2)));
        // Not an epoll: the kernel says so.
        let slot = KcmpEpollSlot { efd: r as u32, tfd: w as u32, toff: 0 };
        assert_eq!(kcmp_epoll_tfd(me, me, w as i32, &slot), Err(Errno::INVAL));
    }
}
