//! Self-tests: one repro per outcome, so every path from guest to host exit
//! code can be tested on a real kernel.

use crate::prelude::*;

pub const FAIL: Repro = Repro {
    name: "selftest_fail",
    description: "self-test: always fails",
    config: &[],
    run: |_| Ok(Verdict::Fail("selftest: failing on purpose".into())),
};

pub const SKIP: Repro = Repro {
    name: "selftest_skip",
    description: "self-test: always skips",
    config: &[],
    run: |_| Ok(Verdict::Skip("selftest: skipping on purpose".into())),
};

pub const PANIC: Repro = Repro {
    name: "selftest_panic",
    description: "self-test: panics the kernel through /proc/sysrq-trigger",
    config: &["MAGIC_SYSRQ", "PROC_FS"],
    run: panic_kernel,
};

pub const HANG: Repro = Repro {
    name: "selftest_hang",
    description: "self-test: never reports a verdict",
    config: &[],
    run: |cx| loop {
        cx.sleep(Duration::from_secs(3600));
    },
};

pub const SILENT: Repro = Repro {
    name: "selftest_silent",
    description: "self-test: powers off without a verdict",
    config: &[],
    run: |_| {
        rustix::system::reboot(rustix::system::RebootCommand::PowerOff).step("reboot(POWER_OFF)")?;
        unreachable!("reboot(POWER_OFF) returned Ok")
    },
};

pub const RUST_PANIC: Repro = Repro {
    name: "selftest_rust_panic",
    description: "self-test: a Rust panic in the repro (reported as error)",
    config: &[],
    run: |_| panic!("selftest: Rust panic on purpose"),
};

fn panic_kernel(cx: &mut Cx) -> Result {
    if let Err(e) = cx.write_file("/proc/sysrq-trigger", b"c") {
        return Ok(Verdict::Skip(format!(
            "cannot panic the kernel: {}",
            Error { step: "write /proc/sysrq-trigger", errno: e }
        )));
    }
    // The write does not return on a kernel with sysrq; give it a moment anyway.
    cx.sleep(Duration::from_secs(5));
    Err(Error { step: "sysrq-trigger c returned without a panic", errno: Errno::NOSYS })
}
