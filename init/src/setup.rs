//! What PID 1 sets up before the repro: file systems and the loopback device.

use core::fmt;

use repros::errno_name;
use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::mount::{mount, MountFlags};

use crate::{report, sys};

/// A step of setup that failed, with the kernel's answer. `Copy`, no allocation.
#[derive(Clone, Copy, Debug)]
pub struct SetupError(pub Step, pub Errno);

/// The setup steps that can fail.
#[derive(Clone, Copy, Debug)]
pub enum Step {
    Mkdir,
    Mount,
    LoSocket,
    LoGetFlags,
    LoSetFlags,
    LoStillDown,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.0 {
            Step::Mkdir => "mkdir",
            Step::Mount => "mount",
            Step::LoSocket => "socket(AF_INET, SOCK_DGRAM)",
            Step::LoGetFlags => "ioctl(SIOCGIFFLAGS, lo)",
            Step::LoSetFlags => "ioctl(SIOCSIFFLAGS, lo)",
            Step::LoStillDown => "lo is still down after SIOCSIFFLAGS",
        };
        match errno_name(self.1) {
            Some(name) => write!(f, "{step}: {name}"),
            None => write!(f, "{step}: errno {}", self.1.raw_os_error()),
        }
    }
}

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

fn mount_one(fstype: &str, target: &str) -> Result<(), SetupError> {
    match rustix::fs::mkdir(target, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(SetupError(Step::Mkdir, e)),
    }
    let flags = MountFlags::NOSUID | if fstype == "devtmpfs" { MountFlags::empty() } else { MountFlags::NODEV };
    mount(fstype, target, fstype, flags, None).map_err(|e| SetupError(Step::Mount, e))
}

/// Loads the kernel modules the runner put into the initrd (`--modules`),
/// in file-name order (dependencies first), each with its `name.param=`
/// words from the kernel command line, as modprobe does (microvm passes
/// `virtio_mmio.device=` that way). A module the kernel already has is
/// fine; any other failure is reported and setup goes on.
pub fn load_modules(cmdline: &str) {
    use rustix::fs::{Dir, OFlags};
    let Ok(dir) = rustix::fs::open(
        repros::protocol::MODULES_DIR,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return; // no --modules
    };
    let mut names: alloc::vec::Vec<alloc::string::String> = alloc::vec::Vec::new();
    if let Ok(mut entries) = Dir::read_from(&dir) {
        while let Some(Ok(e)) = entries.read() {
            if let Ok(n) = e.file_name().to_str() {
                if n.ends_with(".ko") {
                    names.push(n.into());
                }
            }
        }
    }
    // Insertion sort: a handful of names, and a fraction of the code size of
    // the library sorts (which cost 1.2 KiB of the 64 KiB budget).
    for i in 1..names.len() {
        let mut j = i;
        while j > 0 && names[j - 1] > names[j] {
            names.swap(j - 1, j);
            j -= 1;
        }
    }
    for n in names {
        let path = alloc::format!("{}/{n}", repros::protocol::MODULES_DIR);
        // "NN-name.ko" -> its parameters "a=1 b=2\0".
        let module = n.trim_end_matches(".ko").split_once('-').map_or(n.as_str(), |(_, m)| m);
        let mut params = alloc::vec::Vec::new();
        for word in cmdline.split_ascii_whitespace() {
            if let Some(param) = word.strip_prefix(module).and_then(|w| w.strip_prefix('.')) {
                params.extend_from_slice(param.as_bytes());
                params.push(b' ');
            }
        }
        params.push(0);
        let params = core::ffi::CStr::from_bytes_until_nul(&params).unwrap_or(c"");
        let loaded = rustix::fs::open(path.as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .and_then(|fd| rustix::system::finit_module(&fd, params, 0));
        match loaded {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => {
                report::warn(format_args!("load module {n}: {}", repros::Error { step: "finit_module", errno: e }))
            }
        }
    }
}

/// Brings `lo` up (SIOCSIFFLAGS with IFF_UP) and checks that it is.
pub fn loopback_up() -> Result<(), SetupError> {
    use rustix::net::{socket, AddressFamily, SocketType};
    let sock = socket(AddressFamily::INET, SocketType::DGRAM, None).map_err(|e| SetupError(Step::LoSocket, e))?;
    let flags = sys::if_flags(&sock, b"lo").map_err(|e| SetupError(Step::LoGetFlags, e))?;
    let up = sys::IFF_UP;
    if flags & up == 0 {
        sys::set_if_flags(&sock, b"lo", flags | up).map_err(|e| SetupError(Step::LoSetFlags, e))?;
        let now = sys::if_flags(&sock, b"lo").map_err(|e| SetupError(Step::LoGetFlags, e))?;
        if now & up == 0 {
            return Err(SetupError(Step::LoStillDown, Errno::NETDOWN));
        }
    }
    Ok(())
}
