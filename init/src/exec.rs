//! `--exec FILE`: run the user's static executable as a child and turn its
//! exit status into the verdict: 0 pass, 4 (KSFT_SKIP) skip, anything else
//! (a signal included) fail. `krepro.guest_timeout=S` kills a child that
//! runs longer, before the host's timeout, with the kernel log tail shown.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ffi::CStr;
use core::time::Duration;

use repros::protocol::{self, Kind};
use rustix::io::Errno;
use rustix::process::{kill_process, waitpid, Signal, WaitOptions};

use crate::{report, sys};

/// The NUL-terminated strings of a file of the initrd (absent: none).
fn nul_list(path: &str, step: &'static str) -> repros::Result<Vec<u8>> {
    match repros::read_file(path) {
        Ok(mut b) => {
            if b.last().is_some_and(|&c| c != 0) {
                b.push(0);
            }
            Ok(b)
        }
        Err(Errno::NOENT) => Ok(Vec::new()),
        Err(errno) => Err(repros::Error::Errno { step, errno }),
    }
}

/// The C strings in a buffer of NUL-terminated strings.
fn c_strs(buf: &[u8]) -> Vec<&CStr> {
    buf.split_inclusive(|&b| b == 0).filter(|s| s.len() > 1).filter_map(|s| CStr::from_bytes_with_nul(s).ok()).collect()
}

/// Runs the child; the verdict and its message.
pub fn run(cmdline: &str) -> (Kind, String) {
    match run_inner(cmdline) {
        Ok(v) => v,
        Err(e) => (Kind::Error, format!("{}: {e}", protocol::EXEC_PATH)),
    }
}

fn run_inner(cmdline: &str) -> repros::Result<(Kind, String)> {
    let path = protocol::EXEC_PATH_C;
    let args = nul_list(protocol::EXEC_ARGS, "read the --exec arguments")?;
    let env = nul_list(protocol::EXEC_ENV, "read the --exec environment")?;
    let timeout = match protocol::cmdline_param(cmdline, protocol::CMDLINE_GUEST_TIMEOUT) {
        Some(s) => Some(s.parse::<u64>().map_err(|_| repros::Error::Reason {
            step: "parse krepro.guest_timeout",
            reason: "not a whole number of seconds",
        })?),
        None => None,
    };

    let mut argv = alloc::vec![path];
    argv.extend(c_strs(&args));
    let started = repros::since_boot();
    let pid = sys::spawn(path, &argv, &c_strs(&env))?;
    let status = loop {
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => break status,
            Ok(None) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(repros::Error::Errno { step: "waitpid", errno }),
        }
        if let Some(limit) = timeout {
            if repros::since_boot() - started > Duration::from_secs(limit) {
                let _ = kill_process(pid, Signal::KILL);
                let _ = waitpid(Some(pid), WaitOptions::empty());
                report::kmsg(Some(20));
                return Ok((
                    Kind::Fail,
                    format!("{} still running after krepro.guest_timeout={limit} s: killed", protocol::EXEC_PATH),
                ));
            }
        }
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec { tv_sec: 0, tv_nsec: 10_000_000 });
    };
    Ok(match (status.exit_status(), status.terminating_signal()) {
        (Some(0), _) => (Kind::Pass, String::new()),
        (Some(protocol::EXIT_SKIP), _) => (Kind::Skip, format!("exit status {} (KSFT_SKIP)", protocol::EXIT_SKIP)),
        (Some(code), _) => (Kind::Fail, format!("exit status {code}")),
        (None, Some(sig)) => (Kind::Fail, format!("killed by signal {sig}{}", signal_name(sig))),
        (None, None) => (Kind::Error, "child stopped without exiting".into()),
    })
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}
