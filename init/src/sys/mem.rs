//! The mem* functions the compiler emits calls to. There is no libc to
//! provide them.
//!
//! A mem* function written as a plain loop can be compiled into a call to
//! itself: LLVM's loop-idiom pass turns a byte-copy loop into `memcpy`, a
//! fill loop into `memset`, and since llvm-project#132572 (2025) a NUL-scan
//! loop into `strlen`; a compare loop into `bcmp` has been proposed too.
//! LLVM's own guard only skips functions *named* memset, memcpy or strlen, a
//! heuristic that says nothing of memcmp and does not survive inlining.
//! compiler_builtins and rlibc get out of it with `#![no_builtins]`, which is
//! crate-wide (here it would take a crate of its own for five functions);
//! others write the functions in assembly, which the optimiser cannot see into.
//!
//! Here, on x86_64: `memcpy`, `memmove` and `memset` are `rep movsb`/`rep
//! stosb`, fast on every x86_64 made since Ivy Bridge (ERMSB). arm64 has no
//! such instruction: there all three are byte loops through
//! [`read_volatile`]/[`write_volatile`], like memcmp below (PID 1 copies
//! little; the bulk of a repro's output moves inside the kernel). `memcmp` and `strlen` are byte
//! loops that read through [`read_volatile`]: loop idioms only match plain
//! loads, and a volatile load can be neither dropped, merged nor turned into
//! a call. (`repe cmpsb`/`repne scasb` would do too, but they are slow
//! microcode on current CPUs, which is why compiler_builtins does not use
//! them either.) PID 1 compares and measures a few short strings, so a byte
//! at a time is plenty.
//!
//! None of these may compare or copy through slices: `[u8] == [u8]` is itself
//! lowered to `memcmp`/`bcmp`.

#[cfg(target_arch = "x86_64")]
use core::arch::asm;
use core::ptr::read_volatile;
#[cfg(target_arch = "aarch64")]
use core::ptr::write_volatile;

/// `memcpy(3)`. <https://man7.org/linux/man-pages/man3/memcpy.3.html>
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes and do not overlap.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges; rep movsb copies forwards
    // with the direction flag clear, as the ABI keeps it.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dest
}

/// `memmove(3)`. <https://man7.org/linux/man-pages/man3/memmove.3.html>
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes; they may overlap.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is before src or past its end (or n is 0): a forward copy is
        // safe.
        // SAFETY: the caller guarantees both ranges; forward copy never reads
        // a byte it already overwrote in this case.
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: copy backwards (direction flag set, then cleared again as the
    // ABI requires), starting at the last byte of each range (n > 0 here).
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack),
        );
    }
    dest
}

/// `memset(3)`. <https://man7.org/linux/man-pages/man3/memset.3.html>
///
/// # Safety
/// `dest` is valid for `n` bytes.
#[cfg(target_arch = "x86_64")]
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees the range; rep stosb fills forwards.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") c as u8, options(nostack, preserves_flags));
    }
    dest
}

/// `memcpy(3)` on arm64.
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes and do not overlap.
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: i < n and the caller guarantees both ranges; volatile so
        // that the loop stays a loop (see the module doc).
        unsafe { write_volatile(dest.add(i), read_volatile(src.add(i))) };
    }
    dest
}

/// `memmove(3)` on arm64.
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes; they may overlap.
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // dest is before src or past its end (or n is 0): a forward copy is
        // safe.
        // SAFETY: the caller guarantees both ranges.
        return unsafe { memcpy(dest, src, n) };
    }
    for i in (0..n).rev() {
        // SAFETY: i < n; copying backwards never reads a byte it already
        // overwrote when dest lies inside src's range.
        unsafe { write_volatile(dest.add(i), read_volatile(src.add(i))) };
    }
    dest
}

/// `memset(3)` on arm64.
///
/// # Safety
/// `dest` is valid for `n` bytes.
#[cfg(target_arch = "aarch64")]
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: i < n and the caller guarantees the range; volatile so
        // that the loop stays a loop.
        unsafe { write_volatile(dest.add(i), c as u8) };
    }
    dest
}

/// `memcmp(3)`. <https://man7.org/linux/man-pages/man3/memcmp.3.html>
///
/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n and the caller guarantees n readable bytes in each;
        // volatile so that the loop stays a loop (see the module doc).
        let (x, y) = unsafe { (read_volatile(a.add(i)), read_volatile(b.add(i))) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// `bcmp(3)`: like memcmp, only equal or not.
///
/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// `strlen(3)`, used by rustix's vDSO symbol lookup.
/// <https://man7.org/linux/man-pages/man3/strlen.3.html>
///
/// # Safety
/// `s` points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL before the end of the allocation;
    // volatile so that the loop stays a loop (see the module doc).
    while unsafe { read_volatile(s.add(n)) } != 0 {
        n += 1;
    }
    n
}
