//! What the integration tests share: the kernels, running the xtask binary.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use krepro_runner::host::cache;
use krepro_runner::image::arch::Arch;
use serde_json::Value;

/// The newest cached Debian x86_64 cloud kernel of a series, or a failure
/// that says how to get one.
pub fn kernel_of(series: &str) -> PathBuf {
    arch_kernel_of(Arch::X86_64, series)
}

/// The newest cached Debian cloud kernel of `arch` and a series.
pub fn arch_kernel_of(arch: Arch, series: &str) -> PathBuf {
    let kernels = cache::Cache::from_env().kernels();
    krepro_runner::host::fetch::newest_cached(&kernels, arch, Some(series)).unwrap_or_else(|| {
        panic!(
            "no Debian {series} {arch} cloud kernel in {}: run `cargo xtask kernel fetch {series} --arch {arch}` \
             (or `cargo xtask ci`)",
            kernels.display()
        )
    })
}

/// Debian's arm64 6.12 cloud kernel (an uncompressed Image).
pub fn arm64_612() -> PathBuf {
    arch_kernel_of(Arch::Aarch64, "6.12")
}

pub fn k612() -> PathBuf {
    kernel_of("6.12")
}

pub fn k61() -> PathBuf {
    kernel_of("6.1")
}

pub fn require_qemu() {
    require_qemu_for(Arch::X86_64);
}

pub fn require_qemu_for(arch: Arch) {
    which::which(arch.qemu()).unwrap_or_else(|_| {
        panic!("{} is needed for boot tests: apt-get install -y {}", arch.qemu(), arch.qemu_package())
    });
}

/// A finished xtask process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// Where a `run`'s console logs went (`--log-dir`): a temp dir that lives
    /// as long as this `Run`, so `console_log` stays readable until then.
    pub logs: tempfile::TempDir,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON object ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// The cache every xtask child uses unless its caller gives one: under
/// cargo's temp dir for this target, never the user's. Kernels come from
/// the user's cache (what `cargo xtask ci` fetched), passed with --kernel;
/// what the children keep (the PVH vmlinux, the KVM marker) stays here.
pub fn test_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("krepro-cache")
}

/// A temp dir for one test's state (a cache, logs, trees), named for the test.
pub fn temp(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("krepro-test-{what}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("create a temp dir in {}: {e}", std::env::temp_dir().display()))
}

/// Runs the xtask binary with `args` and extra environment. A `run` gets
/// `--log-dir` in the `Run`'s own temp dir: no test leaves console logs in
/// ~/.cache/krepro/logs. Anything else that writes krepro's cache (bisect,
/// bench, kernel build) is given `XDG_CACHE_HOME` by its caller.
pub fn xtask_env(args: &[&str], env: &[(&str, &Path)]) -> Run {
    run_bin(Path::new(env!("CARGO_BIN_EXE_xtask")), None, args, env)
}

/// `bin ARGS` (in `dir`, if given) with the tests' cache, `--log-dir` for
/// a `run`, and extra environment.
fn run_bin(bin: &Path, dir: Option<&Path>, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let logs = temp("logs");
    let started = Instant::now();
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null()).env("XDG_CACHE_HOME", test_cache());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    if args.first() == Some(&"run") {
        cmd.arg("--log-dir").arg(logs.path());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("run {}: {e}", bin.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
        logs,
    }
}

pub fn xtask(args: &[&str]) -> Run {
    xtask_env(args, &[])
}

/// The installed-style `krepro` binary of this checkout, beside xtask's
/// (built once here when this test target was built alone).
pub fn krepro_bin() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let bin = Path::new(env!("CARGO_BIN_EXE_xtask")).with_file_name("krepro");
    BUILT.call_once(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "--quiet", "--package", "krepro-runner", "--bin", "krepro"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build --bin krepro: {st}");
    });
    bin
}

/// `krepro ARGS` run in `dir` (a kernel tree, say), with extra
/// environment; the cache as for [`xtask_env`].
pub fn krepro_in(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Run {
    run_bin(&krepro_bin(), Some(dir), args, env)
}

/// The console log a `run --json` named, read; it must be in the run's
/// `--log-dir`.
pub fn console_log(run: &Run, j: &Value) -> String {
    let path = Path::new(j["console_log"].as_str().unwrap_or_else(|| panic!("console_log in {j}")));
    assert_eq!(path.parent(), Some(run.logs.path()), "the console log is not in --log-dir: {j}");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The qemu processes whose command line holds `marker`.
pub fn qemus_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains("qemu-system-") && text.contains(marker) {
                found.push(text);
            }
        }
    }
    found
}

pub fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Debian's linux-source-6.1 (`cargo xtask ci` installs it): the slow
/// tier builds kernels from it, the kselftest tests build its selftests.
pub const LINUX_SOURCE: &str = "/usr/src/linux-source-6.1.tar.xz";

/// `members` of Debian's linux-source-`version` tarball (paths below its
/// top directory; none means all of it) extracted to `dest`, atomically: a
/// half-extracted tree never sits at `dest`.
pub fn extract_linux_source(version: &str, dest: &Path, members: &[&str]) {
    let tarball = format!("/usr/src/linux-source-{version}.tar.xz");
    let top = format!("linux-source-{version}");
    assert!(
        Path::new(&tarball).is_file(),
        "{tarball} is missing: apt-get install -y {top} xz-utils (or run `cargo xtask ci`, which installs it)"
    );
    let parent = dest.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    let tmp = tempfile::tempdir_in(parent).unwrap();
    let st = Command::new("tar")
        .arg("xf")
        .arg(&tarball)
        .args(members.iter().map(|m| format!("{top}/{m}")))
        .current_dir(tmp.path())
        .status()
        .expect("run tar");
    assert!(st.success(), "tar xf {tarball} {members:?}: {st}");
    std::fs::rename(tmp.path().join(&top), dest).unwrap_or_else(|e| panic!("move the tree to {}: {e}", dest.display()));
}

/// A C program from tests/fixtures built with `cc -static` into cargo's
/// temp dir for this target.
pub fn static_fixture(source: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(source);
    let exe = Path::new(env!("CARGO_TARGET_TMPDIR")).join(Path::new(source).file_stem().unwrap());
    let st = Command::new("cc").args(["-static", "-O2", "-o"]).arg(&exe).arg(&src).status().expect("run cc");
    assert!(st.success(), "cc -static {} (apt-get install -y build-essential)", src.display());
    exe
}

/// `run --exec FILE` on `kernel` under TCG with `--json`, and `extra` flags.
pub fn run_exec(kernel: &Path, exec: &Path, extra: &[&str]) -> Run {
    require_qemu();
    let mut args = vec!["run", "--kernel", kernel.to_str().unwrap(), "--exec", exec.to_str().unwrap()];
    args.extend_from_slice(&["--accel", "tcg", "--json"]);
    args.extend_from_slice(extra);
    xtask(&args)
}

/// A tmpfs of a given size mounted at a temp dir for a test's life, to
/// fill a disk for real (root only: the tests run as root in CI, and say
/// so otherwise).
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    pub fn new(size: &str) -> SmallDisk {
        assert!(rustix::process::geteuid().is_root(), "this test mounts a small tmpfs: run it as root");
        let dir = temp("small-disk");
        SmallDisk::mount(&["-t", "tmpfs", "-o", &format!("size={size}"), "krepro-test"], dir.path());
        SmallDisk { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives it `size` in all: space freed.
    pub fn grow(&self, size: &str) {
        SmallDisk::mount(&["-o", &format!("remount,size={size}")], self.dir.path());
    }

    fn mount(args: &[&str], at: &Path) {
        let ok = Command::new("mount").args(args).arg(at).status().expect("run mount");
        assert!(ok.success(), "mount {args:?} {}", at.display());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A daemon a test started (distccd, redis-server) on a free local port;
/// killed when dropped.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
    /// Its temp dir: its log, its wrappers.
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `cmd` in a process group of its own (its workers die with
    /// it) and waits until it listens on `port`.
    fn start(mut cmd: Command, port: u16, dir: tempfile::TempDir, what: &str) -> Daemon {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        wait_for_port(port, what);
        Daemon { child, port, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    /// The daemon and its workers (distccd forks them): its process group.
    fn drop(&mut self) {
        if let Some(group) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// A local TCP port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Debian's distccd on 127.0.0.1 (`--allow 127.0.0.1`), logging to its
/// dir. `other_gcc`: its gcc and gcc-12 are a wrapper that records
/// another compiler ("GCC: (Debian 11.3.0-12) 11.3.0") in the objects it
/// makes, as a host with another compiler under the same name would.
pub fn distccd(other_gcc: bool) -> Daemon {
    let distccd = which::which("distccd").expect("distccd: apt-get install -y distcc (cargo xtask ci installs it)");
    let dir = temp("distccd");
    // distccd drops root for its own user: its log must be writable.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o1777)).unwrap();
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if other_gcc {
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let wrapper = bin.join("gcc-12");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nout=; prev=\nfor a in \"$@\"; do [ \"$prev\" = -o ] && out=$a; prev=$a; done\n\
             /usr/bin/gcc-12 -fno-ident \"$@\" || exit $?\n\
             [ -z \"$out\" ] && exit 0\n\
             printf 'GCC: (Debian 11.3.0-12) 11.3.0\\0' > \"$out.comment\"\n\
             objcopy --add-section .comment=\"$out.comment\" \"$out\" && rm -f \"$out.comment\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        // distcc sends gcc as the target's full name.
        for name in ["gcc", "x86_64-linux-gnu-gcc", "x86_64-linux-gnu-gcc-12"] {
            std::os::unix::fs::symlink("gcc-12", bin.join(name)).unwrap();
        }
        let mut p = bin.into_os_string();
        p.push(":");
        p.push(path);
        path = p;
    }
    let port = free_port();
    let mut cmd = Command::new(distccd);
    cmd.args(["--daemon", "--no-detach", "--allow", "127.0.0.1", "--listen", "127.0.0.1", "--log-level", "info"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--log-file")
        .arg(dir.path().join("log"))
        .env("PATH", path);
    Daemon::start(cmd, port, dir, "distccd")
}

/// Debian's redis-server on 127.0.0.1, nothing saved to disk.
pub fn redis_server() -> Daemon {
    let redis = which::which("redis-server")
        .expect("redis-server: apt-get install -y redis-server (cargo xtask ci installs it)");
    let dir = temp("redis");
    let port = free_port();
    let mut cmd = Command::new(redis);
    cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--dir")
        .arg(dir.path())
        .arg("--logfile")
        .arg(dir.path().join("log"));
    Daemon::start(cmd, port, dir, "redis-server")
}
