//! Threads of PID 1 on raw clone(2), and fork(2): the [`repros::Runtime`]
//! behind `cx.spawn` and `cx.fork`.
//!
//! A thread gets a mapping of its own: a guard page (PROT_NONE, so an
//! overflow faults instead of running into other memory), then its stack,
//! and at the top a [`Control`] block shared with its [`Handle`]. clone
//! runs with CLONE_PARENT_SETTID and CLONE_CHILD_CLEARTID on
//! `Control::tid`: the kernel sets it before clone returns and clears it
//! (with a futex wake) once the thread has exited, after which nothing
//! uses the stack, and join unmaps it. No CLONE_SETTLS: nothing in PID 1
//! uses thread-local storage.

use alloc::boxed::Box;
use core::any::Any;
use core::ffi::c_void;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use linux_raw_sys::general::{
    CLONE_CHILD_CLEARTID, CLONE_FILES, CLONE_FS, CLONE_PARENT_SETTID, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD,
    CLONE_VM,
};
#[cfg(target_arch = "x86_64")]
use repros::syscall::syscall0;
#[cfg(target_arch = "aarch64")]
use repros::syscall::syscall5;
use repros::syscall::{nr, syscall1};
use repros::{Error, Join, Step as _, ThreadMain};
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::process::Pid;
use rustix::thread::futex;

use super::heap;

/// Each thread's stack. Untouched pages cost nothing.
const STACK: usize = 1 << 20;
/// The guard page below it.
const GUARD: usize = repros::guest::heap::PAGE;

/// PID 1's runtime.
pub struct Pid1;

/// The runtime [`repros::Cx`] gets.
pub static RUNTIME: Pid1 = Pid1;

impl repros::Runtime for Pid1 {
    fn spawn(&self, main: ThreadMain) -> repros::Result<Box<dyn Join>> {
        Ok(Box::new(spawn(main)?))
    }

    fn fork(&self, child: &mut dyn FnMut() -> i32) -> repros::Result<Pid> {
        match fork()? {
            Some(pid) => Ok(pid),
            None => super::exit_child(child()),
        }
    }
}

/// Shared by a thread and its handle, at the top of the thread's mapping.
struct Control {
    /// The thread's id while it runs; 0 once it has exited.
    tid: AtomicU32,
    /// What the thread runs; taken by the thread.
    main: Option<ThreadMain>,
    /// What it returned; taken by join.
    result: Option<Box<dyn Any + Send>>,
}

/// A running thread: its mapping and control block.
struct Handle {
    map: NonNull<c_void>,
    control: NonNull<Control>,
}

// SAFETY: the handle only reaches the control block through the tid
// protocol (the thread is done with it once tid is 0), from whichever
// thread joins.
unsafe impl Send for Handle {}

impl Join for Handle {
    fn join(self: Box<Self>) -> Box<dyn Any + Send> {
        // SAFETY: the control block lives until the mapping is unmapped,
        // below; `tid` is only ever accessed atomically.
        let tid = unsafe { &(*self.control.as_ptr()).tid };
        loop {
            let now = tid.load(Ordering::Acquire);
            if now == 0 {
                break;
            }
            // Not FUTEX_PRIVATE: the kernel's wake at thread exit is not.
            // EAGAIN (tid changed) and EINTR: look again.
            let _ = futex::wait(tid, futex::Flags::empty(), now, None);
        }
        // SAFETY: tid is 0, so the thread has exited and no longer uses
        // its stack or the control block: both are ours to read and unmap.
        // Its store of `result` came before its exit, and the kernel clears
        // tid (and wakes us) on the exit path, past full memory barriers.
        unsafe {
            let result = (*self.control.as_ptr()).result.take();
            let _ = rustix::mm::munmap(self.map.as_ptr(), GUARD + STACK);
            result.unwrap_or_else(|| Box::new(()))
        }
    }
}

/// Starts `main` on a new thread.
fn spawn(main: ThreadMain) -> repros::Result<Handle> {
    // SAFETY: a new anonymous mapping at an address of the kernel's choice
    // overlaps nothing of ours.
    let map = unsafe {
        rustix::mm::mmap_anonymous(
            ptr::null_mut(),
            GUARD + STACK,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::PRIVATE | MapFlags::STACK,
        )
    }
    .step("mmap a thread stack")?;
    let map = NonNull::new(map).ok_or(Error::Reason { step: "mmap a thread stack", reason: "got address 0" })?;
    // SAFETY: the first page of our own fresh mapping.
    if let Err(errno) = unsafe { rustix::mm::mprotect(map.as_ptr(), GUARD, MprotectFlags::empty()) } {
        // SAFETY: nobody else knows of the mapping yet.
        let _ = unsafe { rustix::mm::munmap(map.as_ptr(), GUARD + STACK) };
        return Err(Error::Errno { step: "mprotect a guard page", errno });
    }
    // The control block at the top, the stack below it, 16-byte aligned
    // as the ABI wants at a call.
    let top = map.as_ptr() as usize + GUARD + STACK;
    let control = (top - size_of::<Control>()) & !(align_of::<Control>().max(16) - 1);
    let control = control as *mut Control;
    // SAFETY: inside our mapping, aligned for Control, not used yet.
    unsafe { control.write(Control { tid: AtomicU32::new(0), main: Some(main), result: None }) };
    // SAFETY: `control` was just initialised.
    let tid = unsafe { (*control).tid.as_ptr() };

    let flags = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID;
    // SAFETY: the new thread shares our memory and runs `entry` on a stack
    // nobody else uses, with the control block it alone reads `main` from;
    // the kernel writes only `tid`, an AtomicU32 that lives until join
    // sees it cleared.
    let ret = unsafe { clone(flags as usize, control.cast(), tid, control) };
    match ret {
        Ok(_) => Ok(Handle {
            map,
            // SAFETY: derived from a non-null mapping address.
            control: unsafe { NonNull::new_unchecked(control) },
        }),
        Err(errno) => {
            // SAFETY: no thread was made: the mapping and its control block
            // are still ours alone.
            unsafe {
                ptr::drop_in_place(control);
                let _ = rustix::mm::munmap(map.as_ptr(), GUARD + STACK);
            }
            Err(Error::Errno { step: "clone", errno })
        }
    }
}

/// clone(2) whose child starts in [`entry`] with `arg`, on `stack`.
///
/// # Safety
/// `stack` is the 16-byte aligned top of memory the new thread may use as
/// its stack; `tid` as clone(2) uses it for `flags`; `arg` is what
/// [`entry`] expects.
#[cfg(target_arch = "x86_64")]
unsafe fn clone(flags: usize, stack: *mut u8, tid: *mut u32, arg: *mut Control) -> Result<usize, rustix::io::Errno> {
    let ret: isize;
    // SAFETY: the caller's contract. In the child (rax 0) the code jumps
    // straight to `entry` on its new stack: it never returns into the
    // parent's frame, which this block's operands describe. r12 is
    // callee-saved, so it still holds `arg` in the child.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            // Child: `entry(arg)` with a zero frame pointer and a zero
            // return address, as if called (rsp 8 below 16-byte alignment).
            "mov rdi, r12",
            "xor ebp, ebp",
            "push rax",
            "jmp {entry}",
            "2:",
            entry = sym entry,
            inlateout("rax") nr::__NR_clone as isize => ret,
            in("rdi") flags,
            in("rsi") stack,
            in("rdx") tid,
            in("r10") tid,
            in("r8") 0usize,
            in("r12") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    clone_result(ret)
}

/// clone(2) whose child starts in [`entry`] with `arg`, on `stack`.
///
/// # Safety
/// `stack` is the 16-byte aligned top of memory the new thread may use as
/// its stack; `tid` as clone(2) uses it for `flags`; `arg` is what
/// [`entry`] expects.
#[cfg(target_arch = "aarch64")]
unsafe fn clone(flags: usize, stack: *mut u8, tid: *mut u32, arg: *mut Control) -> Result<usize, rustix::io::Errno> {
    let ret: isize;
    // SAFETY: the caller's contract. arm64's clone takes (flags, stack,
    // parent_tid, tls, child_tid) in x0..x4. In the child (x0 0) the code
    // branches straight to `entry` on its new stack: it never returns into
    // the parent's frame, which this block's operands describe. The child
    // starts with the parent's registers, so x20 still holds `arg`.
    unsafe {
        core::arch::asm!(
            "svc 0",
            "cbnz x0, 2f",
            // Child: `entry(arg)` with no frame pointer and no return
            // address, as the outermost frame.
            "mov x0, x20",
            "mov x29, xzr",
            "mov x30, xzr",
            "b {entry}",
            "2:",
            entry = sym entry,
            in("x8") nr::__NR_clone as usize,
            inlateout("x0") flags => ret,
            in("x1") stack,
            in("x2") tid,
            in("x3") 0usize,
            in("x4") tid,
            in("x20") arg,
            options(nostack),
        );
    }
    clone_result(ret)
}

/// clone's return value: the child's tid, or the errno.
fn clone_result(ret: isize) -> Result<usize, rustix::io::Errno> {
    if ret < 0 {
        Err(rustix::io::Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// Where a new thread starts: runs its function, stores what it returned,
/// and exits the thread (only this thread: exit, not exit_group).
extern "C" fn entry(control: *mut Control) -> ! {
    // SAFETY: clone passed the control block, which the parent wrote
    // before the thread existed and touches again only after it exited.
    let main = unsafe { (*control).main.take() };
    if let Some(main) = main {
        let result = main();
        // SAFETY: as above.
        unsafe { (*control).result = Some(result) };
    }
    loop {
        // SAFETY: exit ends this thread only; the kernel then clears `tid`,
        // and the joiner unmaps the stack we are on.
        let _ = unsafe { syscall1(nr::__NR_exit, 0) };
    }
}

/// fork(2) with the allocator's lock held, so the child's heap is
/// consistent whatever other threads were doing: `None` in the child, the
/// child's pid in the parent.
///
/// <https://man7.org/linux/man-pages/man2/fork.2.html>
pub fn fork() -> repros::Result<Option<Pid>> {
    let pid = {
        let _heap = heap::lock();
        // SAFETY: fork takes no arguments. The child has only this thread,
        // and the allocator's lock is released on both sides when `_heap`
        // drops; other threads hold no other lock.
        #[cfg(target_arch = "x86_64")]
        let pid = unsafe { syscall0(nr::__NR_fork) };
        // SAFETY: as above: arm64 has no fork(2); clone with only the exit
        // signal and no new stack is fork, as glibc and musl issue it.
        #[cfg(target_arch = "aarch64")]
        let pid = unsafe { syscall5(nr::__NR_clone, nr::SIGCHLD as usize, 0, 0, 0, 0) };
        pid
    }
    .step("fork")?;
    // A positive pid in the parent, 0 in the child.
    Ok(Pid::from_raw(pid as i32))
}

/// The thread id of the caller (gettid(2)); PID 1's main thread is 1.
pub fn tid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}
