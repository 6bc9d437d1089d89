//! The runner's only `unsafe`: a `pre_exec` hook for qemu.

#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Starts the command in a process group of its own (a Ctrl-C in the
/// terminal reaches krepro, which then stops qemu and cleans up) and asks
/// the kernel to SIGKILL it if krepro dies without cleaning up.
pub(crate) fn own_process_group_and_die_with_parent(cmd: &mut Command) {
    cmd.process_group(0);
    // SAFETY: the hook runs in the forked child before exec; it only makes
    // one prctl(2) system call, which is async-signal-safe and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}
