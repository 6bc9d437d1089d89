//! The process entry point. The kernel starts PID 1 at `_start` with the
//! stack pointer at argc (then argv, envp, auxv) and nothing else set up.

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
