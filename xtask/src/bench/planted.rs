//! The planted history `bench --bisect` and the slow tier's bisect tests
//! share (the tests include this file): a git repository on top of
//! Debian's linux-source-6.1 with eight small commits, the fifth of which
//! plants a regression `listen_backlog` sees. Tags `krepro-test-good`
//! (the base) and `krepro-test-bad` (the last commit).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use krepro_runner::host::spawn::Cmd;

/// Debian's linux-source-6.1 (`cargo xtask ci` installs it).
pub const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

pub const PLANT_FILE: &str = "net/ipv4/tcp_input.c";
const PLANT_FROM: &str = "\tif (sk_acceptq_is_full(sk)) {\n\t\tNET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);";
const PLANT_TO: &str =
    "\tif (sk_acceptq_is_full(sk) || !READ_ONCE(sk->sk_max_ack_backlog)) {\n\t\tNET_INC_STATS(sock_net(sk), LINUX_MIB_LISTENOVERFLOWS);";
pub const PLANT_SUBJECT: &str = "tcp: drop SYNs to listeners with backlog 0 (planted regression)";

/// The eight commits: the file each touches and its subject.
const CHANGES: [(&str, &str); 8] = [
    ("kernel/sys.c", "sys: note"),
    ("fs/read_write.c", "fs: note"),
    ("lib/string.c", "lib: note"),
    ("init/main.c", "init: note"),
    (PLANT_FILE, PLANT_SUBJECT),
    ("kernel/fork.c", "fork: note"),
    ("mm/mmap.c", "mm: note"),
    ("drivers/tty/tty_io.c", "tty: note"),
];

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Cmd::new("git", args, dir).quiet().output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The history at `repo`, made once (a history an older version made, or
/// an interrupted run left, is made again).
pub fn history(repo: &Path) -> Result<PathBuf> {
    let made = repo.join(".git").is_dir()
        && git(repo, &["tag", "-l", "krepro-test-bad-v2"]).is_ok_and(|t| t.trim() == "krepro-test-bad-v2");
    if made {
        return Ok(repo.to_owned());
    }
    if repo.exists() {
        std::fs::remove_dir_all(repo).with_context(|| format!("remove {}", repo.display()))?;
    }
    if !Path::new(TARBALL).is_file() {
        bail!("{TARBALL} is missing: apt-get install -y linux-source-6.1 xz-utils (cargo xtask ci installs it)");
    }
    let parent = repo.parent().expect("a repository in a directory");
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    // Extracted beside it, then renamed: a half-extracted tree never sits at `repo`.
    let tmp = tempfile::tempdir_in(parent).context("create a temp dir")?;
    Cmd::new("tar", ["xf", TARBALL], tmp.path()).quiet().output()?;
    std::fs::rename(tmp.path().join("linux-source-6.1"), repo)
        .with_context(|| format!("move the tree to {}", repo.display()))?;
    // Debian's tarball ignores everything at the top level ("/*" then
    // "!/debian/"): drop that, or git adds nothing.
    let gi = repo.join(".gitignore");
    let text = std::fs::read_to_string(&gi).with_context(|| format!("read {}", gi.display()))?;
    let kept: Vec<&str> = text.lines().filter(|l| *l != "/*" && *l != "!/debian/").collect();
    std::fs::write(&gi, kept.join("\n") + "\n").with_context(|| format!("write {}", gi.display()))?;
    let g = |args: &[&str]| git(repo, args);
    g(&["init", "-q", "-b", "main"])?;
    g(&["config", "user.name", "Krepro Test"])?;
    g(&["config", "user.email", "test@krepro.invalid"])?;
    g(&["add", "-A"])?;
    g(&["commit", "-qm", "linux-source-6.1 (base)"])?;
    g(&["tag", "krepro-test-good"])?;
    for (i, (file, subject)) in CHANGES.iter().enumerate() {
        let path = repo.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let text = if *subject == PLANT_SUBJECT {
            if !text.contains(PLANT_FROM) {
                bail!("{file} changed upstream: the plant site is not found");
            }
            // Both backlog checks: the syncookie path's and tcp_conn_request's.
            text.replace(PLANT_FROM, PLANT_TO)
        } else {
            format!("{text}/* krepro test history: change {i} */\n")
        };
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
        g(&["commit", "-qam", subject])?;
    }
    g(&["tag", "krepro-test-bad"])?;
    // Marks a history made by this version.
    g(&["tag", "krepro-test-bad-v2"])?;
    Ok(repo.to_owned())
}
