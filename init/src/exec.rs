//! `--exec FILE`: run the user's static executable as a child and turn its
//! exit status into the verdict: 0 pass, 4 (KSFT_SKIP) skip, anything else
//! (a signal included) fail. `krepro.guest_timeout=S` kills a child that
//! runs longer, before the host's timeout, with the kernel log tail shown.
//!
//! `krepro.duration=S` runs it as a syzkaller C reproducer is run: for S
//! seconds, in /tmp, with cgroup2 mounted; its exit status is no verdict
//! and surviving the time is a pass. The kernel's crash, if it comes, is
//! the verdict the host reads off the console.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use repros::guest;
use repros::protocol::{self, Kind};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{kill_process, waitpid, Signal, WaitOptions};

use crate::{report, sys};

/// The NUL-terminated strings of a file of the initrd (absent: none).
fn read_nul_list(path: &str, step: &'static str) -> repros::Result<Vec<u8>> {
    match repros::read_file(path) {
        Ok(mut list) => {
            guest::end_nul_list(&mut list);
            Ok(list)
        }
        Err(Errno::NOENT) => Ok(Vec::new()),
        Err(errno) => Err(repros::Error::Errno { step, errno }),
    }
}

/// Runs the child, its stdout and stderr on `output` (the virtio-serial
/// output port) when given, else on the console; the verdict and its
/// message.
pub fn run(cmdline: &str, output: Option<&OwnedFd>) -> (Kind, String) {
    match run_inner(cmdline, output) {
        Ok(v) => v,
        Err(e) => (Kind::Error, format!("{}: {e}", protocol::EXEC_PATH)),
    }
}

fn run_inner(cmdline: &str, output: Option<&OwnedFd>) -> repros::Result<(Kind, String)> {
    let path = protocol::EXEC_PATH_C;
    let args = read_nul_list(protocol::EXEC_ARGS, "read the --exec arguments")?;
    let env = read_nul_list(protocol::EXEC_ENV, "read the --exec environment")?;
    let timeout = guest::guest_timeout(cmdline)?;
    let duration = guest::duration(cmdline)?;
    if duration.is_some() {
        crate::setup::mount_cgroup2();
    }

    let mut argv = alloc::vec![path];
    argv.extend(guest::nul_list(&args));
    let started = repros::since_boot();
    let cwd = duration.map(|_| c"/tmp");
    let pid = sys::spawn(path, &argv, &guest::nul_list(&env), output.map(AsFd::as_fd), cwd)?;
    let status = loop {
        match waitpid(Some(pid), WaitOptions::NOHANG) {
            Ok(Some((_, status))) => break status,
            Ok(None) => {}
            Err(Errno::INTR) => continue,
            Err(errno) => return Err(repros::Error::Errno { step: "waitpid", errno }),
        }
        if let Some(limit) = duration {
            if repros::since_boot() - started > Duration::from_secs(limit) {
                stop(pid);
                return Ok((Kind::Pass, format!("no crash in {limit} s")));
            }
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
    if let Some(limit) = duration {
        // It ended early (a reproducer that does not loop): what it did
        // may still crash the kernel from a workqueue or an RCU callback.
        let ran = repros::since_boot() - started;
        let tail = Duration::from_secs(limit).saturating_sub(ran).min(TAIL);
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: tail.as_secs() as i64,
            tv_nsec: i64::from(tail.subsec_nanos()),
        });
        stop(pid);
        let how = match (status.exit_status(), status.terminating_signal()) {
            (Some(code), _) => format!("exited with {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "ended".into(),
        };
        let secs = (ran + tail).as_secs();
        return Ok((
            Kind::Pass,
            format!("no crash in {secs} s ({} {how} after {} s)", protocol::EXEC_PATH, ran.as_secs()),
        ));
    }
    Ok(guest::exec_verdict(status.exit_status(), status.terminating_signal()))
}

/// How long a reproducer that ended early is given for a late crash.
const TAIL: Duration = Duration::from_secs(3);

/// Kills the program's whole session (it and every process it started).
fn stop(pid: rustix::process::Pid) {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    let _ = kill_process(pid, Signal::KILL);
    let _ = waitpid(Some(pid), WaitOptions::NOHANG);
}
