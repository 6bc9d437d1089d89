//! Faults and hostile inputs, with real parts: a compression bomb as
//! `--kernel`, file trees too big for an initrd. Each case checks the
//! exit status, the one-line message, and that nothing was left behind
//! (no qemu, no temp dir, nothing in the cache).

// Tests drive the binaries and tools directly; the rule that every child
// goes through krepro's spawner is for krepro itself.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_empty, k61, temp, xtask_env};

/// An xz stream that decompresses to `blocks` copies of 64 MiB of zeros,
/// one block made by xz and repeated, with the index and footer that
/// describe them all: 10 GiB in a few hundred KiB, made in a second.
fn xz_bomb(blocks: u64) -> Vec<u8> {
    let zeros = tempfile::NamedTempFile::new().unwrap();
    zeros.as_file().set_len(64 << 20).unwrap();
    let out = Command::new("xz")
        .args(["-0", "--check=crc32", "--block-size=64MiB", "-T1", "-c"])
        .arg(zeros.path())
        .output()
        .expect("run xz (apt-get install -y xz-utils)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let one = out.stdout;
    // Stream header (12), the block, the index, the footer (12), whose
    // backward size gives the index's length.
    let backward = u32::from_le_bytes(one[one.len() - 8..one.len() - 4].try_into().unwrap());
    let index_at = one.len() - 12 - (backward as usize + 1) * 4;
    let (header, block, index) = (&one[..12], &one[12..index_at], &one[index_at..one.len() - 12]);
    // The index of one block: 0x00, count 1, unpadded size, uncompressed size.
    assert_eq!(&index[..2], &[0, 1], "one block");
    let (unpadded, n) = vli(&index[2..]);
    let (uncompressed, _) = vli(&index[2 + n..]);
    assert_eq!(uncompressed, 64 << 20);

    let mut out = header.to_vec();
    for _ in 0..blocks {
        out.extend_from_slice(block);
    }
    let mut index = vec![0u8];
    put_vli(&mut index, blocks);
    for _ in 0..blocks {
        put_vli(&mut index, unpadded);
        put_vli(&mut index, uncompressed);
    }
    index.resize(index.len().next_multiple_of(4), 0);
    index.extend_from_slice(&crc32(&index).to_le_bytes());
    out.extend_from_slice(&index);
    // Footer: CRC32 of (backward size, flags), backward size, flags, "YZ".
    let mut tail = (u32::try_from(index.len() / 4 - 1).unwrap()).to_le_bytes().to_vec();
    tail.extend_from_slice(&header[6..8]);
    out.extend_from_slice(&crc32(&tail).to_le_bytes());
    out.extend_from_slice(&tail);
    out.extend_from_slice(b"YZ");
    out
}

fn vli(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    panic!("unterminated VLI");
}

fn put_vli(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// A bzImage as the kernel's Makefile lays it out (boot header, then the
/// protected-mode code, here only the payload and its size word), with
/// the version string of a real one so that it passes the header checks.
fn bzimage_around(payload: &[u8], claimed: u32) -> Vec<u8> {
    let mut body = payload.to_vec();
    body.extend_from_slice(&claimed.to_le_bytes());
    let mut bz = vec![0u8; 5 * 512];
    bz[0x1f1] = 4; // setup_sects
    bz[0x1f4..0x1f8].copy_from_slice(&u32::try_from(body.len().div_ceil(16)).unwrap().to_le_bytes());
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    bz[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    bz[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
    bz[0x24c..0x250].copy_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    bz.extend_from_slice(&body);
    bz.resize(bz.len().next_multiple_of(16), 0);
    bz
}

/// No process whose command line mentions `what` (qemu on a test file).
fn assert_no_process_with(what: &Path) {
    let needle = what.to_str().unwrap();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            assert!(!(cmd.contains("qemu-system") && cmd.contains(needle)), "left running: {cmd}");
        }
    }
}

#[test]
fn a_ten_gib_xz_bomb_as_kernel_is_refused_at_the_cap_before_qemu() {
    let dir = temp("bomb");
    let xz = xz_bomb(160);
    assert!(xz.len() < 4 << 20, "{} bytes", xz.len());
    let bomb = dir.path().join("bzImage");
    std::fs::write(&bomb, bzimage_around(&xz, u32::MAX)).unwrap();
    let (cache, tmp) = (temp("bomb-cache"), temp("bomb-tmp"));
    let run = xtask_env(
        &["run", "--kernel", bomb.to_str().unwrap(), "--accel", "tcg"],
        &[("XDG_CACHE_HOME", cache.path()), ("TMPDIR", tmp.path())],
    );
    assert_eq!(run.code, 128, "{}", run.stderr);
    let line = run.stderr.trim_end();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.starts_with(&format!("error: {} is not a kernel image", bomb.display()))
            && line.contains("xz data decompresses to more than 512 MiB: refused")
            && line.ends_with("(--entry bzimage boots it anyway)"),
        "{line}"
    );
    // It stopped at the cap: seconds, not the minutes 10 GiB would take.
    assert!(run.took < Duration::from_secs(60), "{:?}", run.took);
    assert_no_process_with(&bomb);
    assert_empty(tmp.path());
    assert_empty(run.logs.path());
    // Nothing of it kept in the cache: no vmlinux, no "no PVH" verdict.
    let vmlinux = cache.path().join("krepro/vmlinux");
    assert!(!vmlinux.exists() || std::fs::read_dir(&vmlinux).unwrap().next().is_none(), "{vmlinux:?}");
}

#[test]
fn a_truncated_payload_is_refused_and_a_huge_file_is_not_read() {
    let dir = temp("truncated");
    let xz = xz_bomb(2);
    let cut = dir.path().join("bzImage");
    std::fs::write(&cut, bzimage_around(&xz[..xz.len() / 2], 128 << 20)).unwrap();
    let run = xtask_env(&["run", "--kernel", cut.to_str().unwrap(), "--accel", "tcg"], &[]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    assert!(run.stderr.contains("decompressing the payload: xz: "), "{}", run.stderr);

    // 10 GiB of sparse file named as the kernel: refused by its size.
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge).unwrap().set_len(10 << 30).unwrap();
    let run = xtask_env(&["run", "--kernel", huge.to_str().unwrap()], &[]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "error: {} is not a kernel image (an x86 bzImage or an arm64 Image): 10240 MiB, more than any kernel image \
             (2048 MiB at most)",
            huge.display()
        )
    );
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
}

#[test]
fn a_file_tree_too_big_for_the_initrd_is_refused_before_it_is_read() {
    let dir = temp("big-tree");
    let tree = dir.path().join("data");
    std::fs::create_dir(&tree).unwrap();
    std::fs::File::create(tree.join("disk.img")).unwrap().set_len(8 << 30).unwrap();
    std::fs::write(tree.join("notes"), "small").unwrap();
    let k = k61();
    let run = xtask_env(
        &["run", "--kernel", k.to_str().unwrap(), "--file", &format!("{}:srv", tree.display()), "--accel", "tcg"],
        &[],
    );
    assert_eq!(run.code, 128, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "error: --file would put 8.0 GiB in the initrd, more than its 1.0 GiB cap (the guest unpacks it into its \
         RAM); the biggest: /srv/disk.img (8.0 GiB), /srv/notes (5 B)"
    );
    assert!(run.took < Duration::from_secs(20), "{:?}", run.took);
    assert_empty(run.logs.path());
}

#[test]
fn inputs_at_the_edges_are_one_line_and_exit_128() {
    common::require_qemu();
    let k = k61();
    let k = k.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--disk", "/dev/null"], "error: --disk /dev/null: a character device, a pipe or a socket, not a disk image"),
        (&["--disk", "/"], "error: --disk /: a directory, not a disk image"),
        (
            &["--memory", "100000000"],
            "error: --memory 100000000: the guest would get 100000000 MiB, but this host has ",
        ),
        // qemu's own word for a flag it rejects, with no fallback to the
        // bzImage (the flag is to blame, not the image).
        (&["--qemu-arg", "-no-such-flag"], "error: qemu failed before the kernel printed anything (exit status: 1): "),
    ];
    for (extra, want) in cases {
        let run = xtask_env(&[&["run", "--kernel", k, "--accel", "tcg"], extra].concat(), &[]);
        assert_eq!(run.code, 128, "{extra:?}: {}", run.stderr);
        let line = run.stderr.trim_end();
        assert!(line.starts_with(want) && line.lines().count() == 1, "{extra:?}: {line}");
        assert!(run.took < Duration::from_secs(30), "{extra:?} took {:?}", run.took);
    }
}

/// A bisect over kernel files (the 6.1 kernel, then the 6.12 one under
/// two names: the first bad is the second file), in a cache of its own,
/// one kernel at a time (the tests stop it between its steps).
struct FileBisect {
    args: Vec<String>,
    cache: tempfile::TempDir,
    _files: tempfile::TempDir,
    marker: String,
}

impl FileBisect {
    fn new(what: &str) -> FileBisect {
        common::require_qemu();
        let files = temp("files");
        let paths = [("a-6.1", k61()), ("b-6.12", common::k612()), ("c-6.12", common::k612())].map(|(name, target)| {
            let p = files.path().join(name);
            std::os::unix::fs::symlink(target, &p).unwrap();
            p.display().to_string()
        });
        let marker = format!("krepro.test_marker={what}{}", std::process::id());
        let mut args: Vec<String> = vec!["bisect".into(), "--kernels".into()];
        args.extend(paths);
        for a in [
            "--repro",
            "selftest_version",
            "--parallel",
            "1",
            "--append",
            "krepro.fail_from=6.12",
            "--accel",
            "tcg",
            "--append",
        ] {
            args.push(a.into());
        }
        args.push(marker.clone());
        FileBisect { args, cache: temp(what), _files: files, marker }
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        self.args.iter().map(String::as_str).chain(extra.iter().copied()).collect()
    }

    fn run(&self, extra: &[&str]) -> common::Run {
        xtask_env(&self.args(extra), &[("XDG_CACHE_HOME", self.cache.path())])
    }

    /// Starts it and reads its stderr until `until` shows.
    fn start_until(&self, until: &str) -> (std::process::Child, String, std::io::BufReader<std::process::ChildStderr>) {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(self.args(&[]))
            .env("XDG_CACHE_HOME", self.cache.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        while !seen.contains(until) {
            let mut line = String::new();
            assert!(stderr.read_line(&mut line).unwrap() > 0, "ended early: {seen}");
            seen.push_str(&line);
        }
        (child, seen, stderr)
    }

    fn state(&self) -> std::path::PathBuf {
        let dir = self.cache.path().join("krepro/bisect");
        let one = std::fs::read_dir(&dir).unwrap().flatten().next().expect("a bisect state dir");
        one.path().join("state.json")
    }
}

fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_child(child), sig).unwrap();
}

#[test]
fn a_second_krepro_on_the_same_bisect_is_told_who_holds_it_and_sigterm_then_resume_works() {
    let b = FileBisect::new("race");
    let (child, seen, mut stderr) = b.start_until("krepro: checking an end: ");
    // The same bisect again, while the first boots: one line, exit 128.
    let second = b.run(&[]);
    assert_eq!(second.code, 128, "{}", second.stderr);
    let line = second.stderr.trim_end();
    assert!(
        line.starts_with("error: the bisect in ")
            && line.contains(&format!(" is in use by krepro pid {} (`", child.id()))
            && line.ends_with("wait for it to finish, or pass --wait")
            && line.lines().count() == 1,
        "{line}"
    );
    assert!(!line.contains("index.lock"), "{line}");

    // SIGTERM in the middle of the second step: exit 130, qemu gone, the
    // first step's verdict kept whole.
    let mut seen = seen;
    while seen.matches("krepro: checking an end: ").count() < 2 {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0, "ended early: {seen}");
        seen.push_str(&line);
    }
    signal(&child, rustix::process::Signal::TERM);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), Some(130), "{seen}{rest}");
    assert!(common::qemus_with(&b.marker).is_empty(), "qemu left running");
    serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(b.state()).unwrap()).unwrap();

    // The same command resumes and names the first 6.12 file.
    let run = b.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("krepro: resuming the bisect in "), "{}", run.stderr);
    assert!(run.stderr.contains("(1 kernels tested so far)"), "{}", run.stderr);
    assert!(run.stdout.contains("b-6.12"), "{}", run.stdout);
}

#[test]
fn a_bisect_whose_reader_goes_away_stops_quietly_and_resumes() {
    // `krepro bisect ... 2>&1 | head`: head exits, the next progress line
    // meets a broken pipe. krepro stops qemu on its way out, exits 130
    // (not a panic's 101), and the bisect resumes from what it saved.
    let b = FileBisect::new("pipe");
    let (child, _, stderr) = b.start_until("krepro: checking an end: ");
    drop(stderr);
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(common::qemus_with(&b.marker).is_empty(), "qemu left running");
    let run = b.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("b-6.12"), "{}", run.stdout);
}

#[test]
fn a_corrupt_bisect_state_is_named_and_restart_starts_over() {
    let b = FileBisect::new("corrupt");
    let (child, _, _stderr) = b.start_until("krepro:   -> bad");
    signal(&child, rustix::process::Signal::HUP);
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let state = b.state();
    std::fs::write(&state, "{\"steps\": [tru").unwrap();
    let run = b.run(&[]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end().lines().last().unwrap(),
        format!(
            "error: the bisect state {} cannot be read (EOF while parsing a value at line 1 column 14): --restart \
             starts this bisect over",
            state.display()
        )
    );
    let run = b.run(&["--restart"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("krepro: --restart: dropped the saved state "), "{}", run.stderr);
    assert!(run.stdout.contains("b-6.12"), "{}", run.stdout);
    assert!(common::qemus_with(&b.marker).is_empty());
}

#[test]
fn the_cache_shows_its_parts_trims_least_recently_used_and_after_a_command() {
    let dir = temp("cache-parts");
    let root = dir.path().join("krepro");
    let put = |rel: &str, bytes: usize| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, vec![7u8; bytes]).unwrap();
        p
    };
    let old = put("vmlinux/old.elf", 2 << 20);
    std::fs::File::open(&old).unwrap().set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
    put("vmlinux/new.elf", 1 << 20);
    put("logs/run.log", 64 << 10);
    // A worktree whose kernel tree is gone.
    let wt = put("worktrees/0123-0/.git", 0).parent().unwrap().to_owned();
    std::fs::write(wt.join(".git"), format!("gitdir: {}/gone/.git/worktrees/0123-0\n", dir.path().display())).unwrap();
    let env = [("XDG_CACHE_HOME", dir.path())];

    let show = xtask_env(&["cache", "--json"], &env);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let j = show.json();
    assert!(j["bytes"].as_u64().unwrap() >= 3 << 20, "{j}");
    let vmlinux = j["parts"].as_array().unwrap().iter().find(|p| p["part"] == "vmlinux").unwrap().clone();
    assert_eq!(vmlinux["entries"], 2, "{j}");
    let text = xtask_env(&["cache"], &env);
    assert!(text.stdout.contains("  worktrees ") && text.stdout.contains("  total "), "{}", text.stdout);

    // To 2 MiB: the orphan worktree, then the oldest (old.elf) go.
    let gc = xtask_env(&["cache", "gc", "--max-size", "2M", "--json"], &env);
    assert_eq!(gc.code, 0, "{}", gc.stderr);
    let removed: Vec<String> =
        gc.json()["removed"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect();
    assert_eq!(removed, [wt.display().to_string(), old.display().to_string()]);
    assert!(root.join("vmlinux/new.elf").exists());

    // After any command, a cache over $KREPRO_CACHE_MAX is trimmed.
    let run = xtask_env(&["run", "--kernel", "/etc/passwd"], &[env[0], ("KREPRO_CACHE_MAX", Path::new("100K"))]);
    assert_eq!(run.code, 128);
    assert!(run.stderr.contains("krepro: trimmed the cache to "), "{}", run.stderr);
    assert!(!root.join("vmlinux/new.elf").exists());

    let bad = xtask_env(&["cache", "gc", "--max-size", "lots"], &env);
    assert_eq!((bad.code, bad.stderr.trim_end()), (128, "error: --max-size lots: not a size (e.g. 20G, 512M)"));
}

#[test]
fn two_fetches_of_one_package_one_fetches_the_other_waits_and_finds_it() {
    let cache = temp("fetch-race");
    let env = [("XDG_CACHE_HOME", cache.path())];
    let kernels = cache.path().join("krepro/kernels");
    let spawn = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["kernel", "fetch", "6.1"])
            .args(extra)
            .env("XDG_CACHE_HOME", cache.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Waits until `pid` holds a fetch lock (apt's lists are read first).
    let holds = |pid: u32| {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !std::fs::read_dir(&kernels).into_iter().flatten().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".lock")
                && std::fs::read_to_string(e.path()).is_ok_and(|t| t.starts_with(&format!("{pid} ")))
        }) {
            assert!(std::time::Instant::now() < deadline, "pid {pid} never took its lock");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // The second waits for the first (without --wait: a fetch is short,
    // and its result is the second's too), then finds it in the cache.
    let first = spawn(&[]);
    let pid = first.id();
    holds(pid);
    let second = xtask_env(&["kernel", "fetch", "6.1"], &env);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.stdout.trim(), String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        second.stderr.contains("is already in the cache")
            && (second.stderr.contains(&format!("waiting for krepro pid {pid} "))
                || !second.stderr.contains("fetching")),
        "{}",
        second.stderr
    );
}

#[test]
fn a_fetch_or_a_console_log_onto_a_full_disk_says_where_and_how_much() {
    let disk = common::SmallDisk::new("8M");
    let run = xtask_env(&["kernel", "fetch", "6.1"], &[("XDG_CACHE_HOME", disk.path())]);
    assert_eq!(run.code, 128, "{}", run.stderr);
    let line = run.stderr.trim_end().lines().last().unwrap();
    assert!(
        line.starts_with(&format!("error: the disk is full: {}/krepro/kernels has ", disk.path().display()))
            && line.contains(" MiB needed; free some space (`krepro cache gc` trims krepro's cache)"),
        "{line}"
    );
    // Nothing half-fetched is left: no package dir, no temp dir.
    let left: Vec<_> = std::fs::read_dir(disk.path().join("krepro/kernels"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A console log that cannot be written: the run stops, naming the dir.
    let logs = disk.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let fill = std::fs::File::create(disk.path().join("fill")).unwrap();
    let _ = std::io::copy(&mut std::io::Read::take(std::io::repeat(0), 16 << 20), &mut &fill);
    let k = k61();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["run", "--kernel", k.to_str().unwrap(), "--accel", "tcg", "--log-dir", logs.to_str().unwrap()])
        .env("XDG_CACHE_HOME", common::test_cache())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128), "{stderr}");
    assert_eq!(
        stderr.trim_end().lines().last().unwrap(),
        format!(
            "error: the disk is full: {} has 0 B free; free some space (`krepro cache gc` trims krepro's cache) and \
             run the same command",
            logs.display()
        )
    );
}

#[test]
fn a_killed_krepro_leaves_no_qemu_and_the_next_one_takes_over_its_lock() {
    let b = FileBisect::new("sigkill");
    let (child, seen, _stderr) = b.start_until("krepro: checking an end: ");
    // SIGKILL: no cleanup at all. qemu dies with it (PR_SET_PDEATHSIG).
    signal(&child, rustix::process::Signal::KILL);
    let mut child = child;
    assert_eq!(child.wait().unwrap().code(), None, "{seen}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !common::qemus_with(&b.marker).is_empty() {
        assert!(std::time::Instant::now() < deadline, "qemu outlived its krepro");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The same command takes over the lock it left, says whose, and ends.
    let run = b.run(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let note = "krepro: taking over the bisect in ";
    let line = run.stderr.lines().find(|l| l.starts_with(note)).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains(&format!(": its last holder, krepro pid {} (`", child.id())) && line.ends_with("is gone"),
        "{line}"
    );
    assert!(run.stdout.contains("b-6.12"), "{}", run.stdout);
}
