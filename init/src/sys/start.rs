//! The process entry point. The kernel starts PID 1 at `_start` with the
//! stack pointer at argc (then argv, envp, auxv) and nothing else set up.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    // Mark the outermost frame for debuggers and backtraces.
    "xor ebp, ebp",
    // Pass the initial stack pointer (argc, argv, ...) as the first argument.
    "mov rdi, rsp",
    // The ABI wants rsp 16-byte aligned before a call.
    "and rsp, -16",
    "call {entry}",
    // entry never returns.
    "ud2",
    entry = sym entry,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,%function",
    "_start:",
    // Mark the outermost frame: no frame pointer, no return address.
    "mov x29, #0",
    "mov x30, #0",
    // Pass the initial stack pointer (argc, argv, ...) as the first argument.
    "mov x0, sp",
    // The kernel starts us 16-byte aligned, as the ABI wants; make sure.
    "and x1, x0, #-16",
    "mov sp, x1",
    "bl {entry}",
    // entry never returns.
    "brk #1",
    entry = sym entry,
);

/// Rust side of `_start`. PID 1 takes nothing from argc/argv/envp: its
/// input is the kernel command line, read from /proc.
extern "C" fn entry(_stack: *const usize) -> ! {
    crate::main()
}

/// The precompiled `alloc` crate is built for unwinding and keeps references
/// to the unwinder in its cleanup paths. PID 1 is built with `panic = "abort"`,
/// so nothing ever unwinds and this is never called; it only satisfies the
/// linker. Should it run anyway, stop like a second panic would.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    super::power_off()
}

/// The unwinder's personality routine, referenced from the same precompiled
/// cleanup paths as [`_Unwind_Resume`]; never called without unwinding.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// Debian's precompiled compiler_builtins for arm64 carries libgcc's C code
/// for outline atomics (`__aarch64_cas4_acq` and friends): a constructor
/// that asks `getauxval(AT_HWCAP)` whether the CPU has LSE atomics, and
/// stack-protected CPU feature probing. PID 1 has no C runtime, so no
/// constructor ever runs: the atomics keep their default, the LL/SC
/// sequences every ARMv8.0 CPU has. These three only satisfy the linker,
/// and answer as a libc would that knows nothing of the process.
#[cfg(target_arch = "aarch64")]
mod libc_for_builtins {
    /// `getauxval(3)`: no entry found (0, as glibc returns for a missing
    /// type).
    #[no_mangle]
    extern "C" fn getauxval(_type: core::ffi::c_ulong) -> core::ffi::c_ulong {
        0
    }

    /// The canary the stack-protected C code compares against.
    #[no_mangle]
    static __stack_chk_guard: usize = 0x6b72_6570_726f_0a00;

    /// A smashed stack in that C code: stop, as after a panic.
    #[no_mangle]
    extern "C" fn __stack_chk_fail() -> ! {
        super::super::power_off()
    }
}
