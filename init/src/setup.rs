//! What PID 1 sets up before the repro: file systems and the loopback device.

use repros::{guest, Error, Step as _};
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::mount::{mount, MountFlags};

use crate::{report, sys};

/// The file systems PID 1 mounts: (type, mount point).
const MOUNTS: &[(&str, &str)] = &[("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev"), ("tmpfs", "/tmp")];

/// Mounts /proc, /sys, devtmpfs on /dev and tmpfs on /tmp. A file system the
/// kernel lacks is reported on the console and setup goes on: the repro that
/// needs it will say so.
pub fn mount_all() {
    for &(fstype, target) in MOUNTS {
        if let Err(e) = mount_one(fstype, target) {
            report::warn(format_args!("mount {fstype} on {target}: {e}"));
        }
    }
}

/// Mounts cgroup2 on /sys/fs/cgroup, as the programs syzkaller writes
/// expect. A kernel without cgroups says nothing: the program finds out.
pub fn mount_cgroup2() {
    match mount_one("cgroup2", "/sys/fs/cgroup") {
        Ok(()) | Err(Error::Errno { errno: Errno::NODEV | Errno::NOENT | Errno::PERM, .. }) => {}
        Err(e) => report::warn(format_args!("mount cgroup2 on /sys/fs/cgroup: {e}")),
    }
}

fn mount_one(fstype: &str, target: &str) -> repros::Result<()> {
    match rustix::fs::mkdir(target, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(errno) => return Err(Error::Errno { step: "mkdir", errno }),
    }
    let flags = MountFlags::NOSUID | if fstype == "devtmpfs" { MountFlags::empty() } else { MountFlags::NODEV };
    mount(fstype, target, fstype, flags, None).step("mount")
}

/// Loads the kernel modules the runner put into the initrd (`--modules`),
/// in the order of their `NN-` prefixes (dependencies first), each with its
/// `name.param=` words from the kernel command line, as modprobe does
/// (microvm passes `virtio_mmio.device=` that way); see
/// [`guest::module_file`] and [`guest::module_params`]. A module the kernel
/// already has is fine; any other failure is reported and setup goes on.
pub fn load_modules(cmdline: &str) {
    use rustix::fs::OFlags;
    // Absent: no --modules.
    let Ok(mut names) = repros::read_dir(repros::protocol::MODULES_DIR) else { return };
    names.retain(|n| guest::module_file(n).is_some());
    guest::sort_modules(&mut names);
    for n in names {
        let Some((_, module)) = guest::module_file(&n) else { continue };
        let path = alloc::format!("{}/{n}", repros::protocol::MODULES_DIR);
        let params = guest::module_params(cmdline, module);
        let params = core::ffi::CStr::from_bytes_until_nul(&params).unwrap_or(c"");
        let loaded = rustix::fs::open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .and_then(|fd| rustix::system::finit_module(&fd, params, 0));
        match loaded {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => {
                report::warn(format_args!("load module {n}: {}", Error::Errno { step: "finit_module", errno }))
            }
        }
    }
}

/// Brings `lo` up (SIOCSIFFLAGS with IFF_UP) and checks that it is.
pub fn loopback_up() -> repros::Result<()> {
    use rustix::net::{socket, AddressFamily, SocketType};
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None).step("socket(AF_INET, SOCK_DGRAM)")?;
    let flags = sys::if_flags(&sock, b"lo").step("ioctl(SIOCGIFFLAGS, lo)")?;
    let up = sys::IFF_UP;
    if flags & up == 0 {
        sys::set_if_flags(&sock, b"lo", flags | up).step("ioctl(SIOCSIFFLAGS, lo)")?;
        let now = sys::if_flags(&sock, b"lo").step("ioctl(SIOCGIFFLAGS, lo)")?;
        if now & up == 0 {
            // The kernel took the request and returned no error: say so,
            // with no errno of our own making.
            return Err(Error::Reason { step: "ioctl(SIOCSIFFLAGS, lo)", reason: "succeeded, yet lo is still down" });
        }
    }
    Ok(())
}
