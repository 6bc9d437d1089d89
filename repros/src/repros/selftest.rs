//! Self-tests: one repro per outcome, so every path from guest to host exit
//! code can be tested on a real kernel.

use repros::prelude::*;

pub const FAIL: Repro = Repro {
    name: "selftest_fail",
    description: "self-test: always fails",
    config: &[],
    run: |_| Ok(Verdict::Fail("selftest: failing on purpose".into())),
    ..Repro::DEFAULT
};

pub const SKIP: Repro = Repro {
    name: "selftest_skip",
    description: "self-test: always skips",
    config: &[],
    run: |_| Ok(Verdict::Skip("selftest: skipping on purpose".into())),
    ..Repro::DEFAULT
};

pub const PANIC: Repro = Repro {
    name: "selftest_panic",
    description: "self-test: panics the kernel through /proc/sysrq-trigger",
    config: &["MAGIC_SYSRQ", "PROC_FS"],
    run: panic_kernel,
    ..Repro::DEFAULT
};

pub const HANG: Repro = Repro {
    name: "selftest_hang",
    description: "self-test: never reports a verdict",
    config: &[],
    run: |cx| loop {
        cx.sleep(Duration::from_secs(3600));
    },
    ..Repro::DEFAULT
};

pub const SILENT: Repro = Repro {
    name: "selftest_silent",
    description: "self-test: powers off without a verdict",
    config: &[],
    run: |_| {
        rustix::system::reboot(rustix::system::RebootCommand::PowerOff).step("reboot(POWER_OFF)")?;
        unreachable!("reboot(POWER_OFF) returned Ok")
    },
    ..Repro::DEFAULT
};

pub const RUST_PANIC: Repro = Repro {
    name: "selftest_rust_panic",
    description: "self-test: a Rust panic in the repro (reported as error)",
    config: &[],
    run: |_| panic!("selftest: Rust panic on purpose"),
    ..Repro::DEFAULT
};

pub const THREAD_PANIC: Repro = Repro {
    name: "selftest_thread_panic",
    description: "self-test: a Rust panic in a thread of the repro, the main thread waiting to join it (reported as error)",
    config: &[],
    run: |cx| {
        cx.spawn(None, || -> Result<()> { panic!("selftest: thread panic on purpose") })?.join()?;
        Err(Error::Reason { step: "join", reason: "returned from a thread that panicked" })
    },
    ..Repro::DEFAULT
};

pub const VERSION: Repro = Repro {
    name: "selftest_version",
    description: "self-test: fails on kernels at or above krepro.fail_from=VERSION or below krepro.pass_from=VERSION (the upstream version: Debian's in /proc/version, else the release; with krepro.fail_every=N, only on every Nth run)",
    config: &[],
    run: version,
    ..Repro::DEFAULT
};

/// Tells kernels apart by version, so a bisect over commits that pick one
/// of two real kernels, or over a list of distro kernels, has a known
/// answer; `pass_from` gives old kernels the bug (a fix to find);
/// `fail_every` makes it flaky on purpose.
fn version(cx: &mut Cx) -> Result {
    let not_a_number = |step| Error::Reason { step, reason: "not a whole number" };
    let (fail_from, pass_from) = (cx.param("fail_from"), cx.param("pass_from"));
    if fail_from.is_none() && pass_from.is_none() {
        return Err(Error::Reason { step: "krepro.fail_from= or krepro.pass_from=", reason: "required, not given" });
    }
    let uname = rustix::system::uname();
    let release =
        uname.release().to_str().map_err(|_| Error::Reason { step: "uname", reason: "release is not UTF-8" })?;
    // Debian's release need not be the upstream version (6.1.0-56 is
    // 6.1.192): its /proc/version says "... Debian 6.1.192-2 (date)".
    let proc_version = cx.read_to_string("/proc/version").unwrap_or_default();
    // (Words split on a char: a &str pattern pulls in ~9 KiB of searcher.)
    let debian = proc_version.split(' ').skip_while(|w| *w != "Debian").nth(1);
    let version = release_numbers(debian.unwrap_or(release));
    let kernel = match debian {
        Some(d) => format!("kernel {release} (Debian {d})"),
        None => format!("kernel {release}"),
    };
    let broken = match (fail_from, pass_from) {
        (Some(from), _) if version >= release_numbers(from) => format!("{kernel} is at or above {from}"),
        (_, Some(from)) if version < release_numbers(from) => format!("{kernel} is below {from}"),
        _ => return Ok(Verdict::Pass),
    };
    if let Some(every) = cx.param("fail_every") {
        let every: u32 = every.parse().map_err(|_| not_a_number("parse krepro.fail_every"))?;
        let run: u32 = cx
            .param(repros::protocol::CMDLINE_RUN)
            .unwrap_or("1")
            .parse()
            .map_err(|_| not_a_number("parse krepro.run"))?;
        if every == 0 || !run.is_multiple_of(every) {
            return Ok(Verdict::Pass);
        }
    }
    Ok(Verdict::Fail(broken))
}

/// "6.12.117+deb12-cloud-amd64" -> [6, 12, 117].
fn release_numbers(release: &str) -> Vec<u64> {
    // The leading digits and dots (no slicing: see guest::cmdline_words).
    let numbers = release.split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
    numbers.split('.').filter_map(|n| n.parse().ok()).collect()
}

fn panic_kernel(cx: &mut Cx) -> Result {
    if let Err(e) = cx.write_file("/proc/sysrq-trigger", b"c").step("write /proc/sysrq-trigger") {
        return Ok(Verdict::Skip(format!("cannot panic the kernel: {e}")));
    }
    // The write does not return on a kernel with sysrq; give it a moment anyway.
    cx.sleep(Duration::from_secs(5));
    Err(Error::Reason { step: "write c to /proc/sysrq-trigger", reason: "returned, and no panic followed within 5 s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_numbers_compare_as_versions() {
        assert_eq!(release_numbers("6.12.117+deb12-cloud-amd64"), [6, 12, 117]);
        assert!(release_numbers("6.1.0-56-cloud-amd64") < release_numbers("6.12"));
        assert!(release_numbers("6.12.117+deb12") >= release_numbers("6.12"));
        assert_eq!(release_numbers("6.1.192-2"), [6, 1, 192]);
        assert_eq!(release_numbers("6.12.111-1~deb12u1"), [6, 12, 111]);
    }
}
