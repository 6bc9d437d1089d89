//! Compiles beyond this machine: distcc (`--distcc HOSTS`, or
//! `$DISTCC_HOSTS`) or icecream (`--distcc icecc`), behind ccache, and
//! ccache's shared remote storage (`--ccache-remote URL`, or ccache's own
//! `remote_storage`).
//!
//! The compiler goes out as ccache's prefix command (`CCACHE_PREFIX`,
//! ccache's documented way to chain distcc): `CC` stays `ccache gcc-12`,
//! so kbuild's recorded command lines, krepro's build keys and ccache's
//! own keys are the same with and without distcc, and a cached object
//! never goes over the network. make, the preprocessor and the link stay
//! here.
//!
//! distcc trusts a host to run the same compiler: a host with another
//! one gives objects of another compiler, or fails. Each host compiles a
//! probe first; the compiler identity the object records (its `.comment`:
//! "GCC: (Debian 12.2.0-14) 12.2.0") must be the local one's. A host that
//! does not answer or differs is dropped, saying why; with none left the
//! build is local, saying so.

use std::path::Path;

use crate::host::spawn::Cmd;

/// `--distcc`: where compiles go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Distribute {
    /// distcc to these hosts, in DISTCC_HOSTS' syntax.
    Distcc(String),
    /// icecream: its scheduler picks the hosts, and it ships the
    /// compiler to them itself.
    Icecc,
}

impl Distribute {
    /// `icecc`, else distcc hosts.
    pub fn parse(s: &str) -> Distribute {
        match s.trim() {
            "icecc" | "icecream" => Distribute::Icecc,
            hosts => Distribute::Distcc(hosts.to_owned()),
        }
    }
}

/// What make gets for distributed compiles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Remote {
    /// Environment for make (ccache's prefix, distcc's hosts).
    pub env: Vec<(String, String)>,
    /// Jobs the hosts take at once (distcc's slots), when known.
    pub jobs: Option<usize>,
}

/// The compiler identities an object file records in its `.comment`:
/// "GCC: (Debian 12.2.0-14) 12.2.0", "Debian clang version 16.0.6".
pub(crate) fn identities(object: &[u8]) -> Vec<String> {
    let mut found: Vec<String> = object
        .split(|b| *b == 0)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .filter(|s| s.starts_with("GCC: (") || s.contains("clang version"))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

/// One DISTCC_HOSTS entry that names a machine (not an option like
/// `--randomize`, nor `localhost`, which compiles here).
fn is_remote(entry: &str) -> bool {
    !entry.starts_with("--") && !matches!(entry.split(['/', ',']).next(), Some("localhost"))
}

/// Checks every distcc host of `hosts` against the local `compiler`
/// (run with `path` first on PATH), keeping those that answer with the
/// same compiler; `say` hears why each other one is dropped. None: no
/// remote host is left, the build is local.
pub fn check_distcc(
    hosts: &str,
    compiler: &str,
    path: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> Result<Option<Remote>, String> {
    let distcc = crate::host::install::find_or_install("distcc", "distcc", say).map_err(|e| e.to_string())?;
    let dir = tempfile::Builder::new().prefix("krepro-distcc-").tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("probe.c"), "int krepro_probe(int x) { return x * 3; }\n")
        .map_err(|e| e.to_string())?;
    let search_path = {
        let mut p = std::ffi::OsString::new();
        if let Some(dir) = path {
            p.push(dir);
            p.push(":");
        }
        p.push(std::env::var_os("PATH").unwrap_or_default());
        p
    };
    let compile = |program: &Path, args: &[&str], host: Option<&str>, out: &str| {
        let mut cmd = Cmd::new(program, args.iter().copied().chain(["-c", "probe.c", "-o", out]), dir.path())
            .quiet()
            .env("PATH", &search_path)
            // distcc's lock and state files stay in the probe's temp dir.
            .env("DISTCC_DIR", dir.path());
        if let Some(host) = host {
            // That host only: no local fallback, no local retry.
            cmd = cmd
                .env("DISTCC_HOSTS", host)
                .env("DISTCC_FALLBACK", "0")
                .env("DISTCC_SKIP_LOCAL_RETRY", "1")
                .env("DISTCC_IO_TIMEOUT", "20");
        }
        cmd.output().map_err(|e| e.to_string())?;
        let object = std::fs::read(dir.path().join(out)).map_err(|e| e.to_string())?;
        Ok::<Vec<String>, String>(identities(&object))
    };
    let local = compile(Path::new(compiler), &[], None, "local.o")
        .map_err(|e| format!("--distcc: the local {compiler} cannot compile a probe: {e}"))?;
    let mut kept = Vec::new();
    let mut remote = 0;
    for entry in hosts.split_whitespace() {
        if !is_remote(entry) {
            kept.push(entry.to_owned());
            continue;
        }
        let out = format!("{}.o", kept.len() + remote + 1);
        match compile(&distcc, &[compiler], Some(entry), &out) {
            Ok(ids) if ids == local => {
                kept.push(entry.to_owned());
                remote += 1;
            }
            Ok(ids) => say(&format!(
                "warning: distcc host {entry} compiles with {}, not this machine's {}: dropped (its objects would be another compiler's)",
                words(&ids),
                words(&local)
            )),
            Err(e) => say(&format!(
                "warning: distcc host {entry} did not compile with {compiler}: dropped ({})",
                e.lines().find(|l| !l.trim().is_empty()).unwrap_or("no answer").trim()
            )),
        }
    }
    if remote == 0 {
        say("warning: no distcc host is left: compiling here");
        return Ok(None);
    }
    let kept = kept.join(" ");
    let jobs = Cmd::new(&distcc, ["-j"], dir.path())
        .quiet()
        .env("DISTCC_HOSTS", &kept)
        .env("DISTCC_DIR", dir.path())
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok());
    say(&format!(
        "distcc: {remote} host(s) with the same {compiler} ({kept}){}",
        jobs.map(|j| format!(", {j} jobs at once")).unwrap_or_default()
    ));
    Ok(Some(Remote { env: vec![("CCACHE_PREFIX".into(), "distcc".into()), ("DISTCC_HOSTS".into(), kept)], jobs }))
}

fn words(ids: &[String]) -> String {
    if ids.is_empty() {
        "no recorded compiler".to_owned()
    } else {
        format!("\"{}\"", ids.join("\", \""))
    }
}

/// What `d` gives make for `compiler`, checked: see the module's text.
/// The answer is remembered for as long as krepro runs (a bisect builds
/// at every step).
pub(crate) fn prepare(
    d: &Distribute,
    compiler: &str,
    path: Option<&Path>,
    say: &mut dyn FnMut(&str),
) -> Result<Option<Remote>, String> {
    type Known = Vec<((Distribute, String), Option<Remote>)>;
    static CHECKED: std::sync::Mutex<Known> = std::sync::Mutex::new(Vec::new());
    let question = (d.clone(), compiler.to_owned());
    if let Some((_, r)) = CHECKED.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(q, _)| *q == question) {
        return Ok(r.clone());
    }
    let remote = match d {
        Distribute::Distcc(hosts) => check_distcc(hosts, compiler, path, say)?,
        Distribute::Icecc => {
            crate::host::install::find_or_install("icecc", "icecc", say).map_err(|e| e.to_string())?;
            say("icecream: compiles go through icecc (its scheduler picks the hosts and ships the compiler)");
            Some(Remote { env: vec![("CCACHE_PREFIX".into(), "icecc".into())], jobs: None })
        }
    };
    CHECKED.lock().unwrap_or_else(|p| p.into_inner()).push((question, remote.clone()));
    Ok(remote)
}

/// How one build's compiles went in ccache: from its stats log
/// (`CCACHE_STATSLOG`), one block a compile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Found in the local cache.
    pub local_hits: u32,
    /// Found in the shared remote storage (not locally).
    pub remote_hits: u32,
    /// Compiled.
    pub compiled: u32,
}

impl CacheStats {
    /// Reads a ccache stats log: blocks of "# FILE" then statistic ids.
    pub(crate) fn parse(log: &str) -> CacheStats {
        let mut stats = CacheStats::default();
        for block in log.split("# ").filter(|b| !b.trim().is_empty()) {
            let ids: Vec<&str> = block.lines().skip(1).map(str::trim).collect();
            if ids.contains(&"local_storage_hit") {
                stats.local_hits += 1;
            } else if ids.contains(&"remote_storage_hit") {
                stats.remote_hits += 1;
            } else if ids.contains(&"cache_miss") {
                stats.compiled += 1;
            }
        }
        stats
    }
}

impl std::fmt::Display for CacheStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ccache: {} local hits, {} remote hits, {} compiled",
            self.local_hits, self.remote_hits, self.compiled
        )
    }
}

/// ccache's settings for a shared remote storage: `url` (`--ccache-remote`)
/// or the one ccache's own config names. krepro's build dirs and trees sit
/// at other paths on other machines (and in other caches on one): with
/// `base_dir` = / ccache hashes paths relative to the compile's directory,
/// and without `hash_dir` the directory itself stays out of the hash, so
/// one machine's objects serve another's build of the same source.
pub(crate) fn remote_storage_env(url: Option<&str>) -> Vec<(String, String)> {
    let configured = || {
        Cmd::new("ccache", ["-k", "remote_storage"], Path::new("/"))
            .quiet()
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let mut env = Vec::new();
    match url {
        Some(url) => env.push(("CCACHE_REMOTE_STORAGE".to_owned(), url.to_owned())),
        None if configured().is_some() => {}
        None => return env,
    }
    env.push(("CCACHE_BASEDIR".to_owned(), "/".to_owned()));
    env.push(("CCACHE_NOHASHDIR".to_owned(), "1".to_owned()));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compiler_is_known_by_the_identity_its_objects_record() {
        let object = b"\x7fELF junk\0GCC: (Debian 12.2.0-14+deb12u1) 12.2.0\0\0.symtab\0";
        assert_eq!(identities(object), ["GCC: (Debian 12.2.0-14+deb12u1) 12.2.0"]);
        assert_eq!(
            identities(b"\0Debian clang version 16.0.6 (15~deb12u1)\0"),
            ["Debian clang version 16.0.6 (15~deb12u1)"]
        );
        assert!(identities(b"no comment").is_empty());
    }

    #[test]
    fn hosts_options_and_localhost_are_told_apart() {
        assert!(is_remote("10.0.0.2:3632/8"));
        assert!(is_remote("builder,lzo"));
        assert!(!is_remote("localhost/2"));
        assert!(!is_remote("--randomize"));
        assert_eq!(Distribute::parse("icecc"), Distribute::Icecc);
        assert_eq!(Distribute::parse("a b/4"), Distribute::Distcc("a b/4".into()));
    }

    #[test]
    fn a_stats_log_counts_local_and_remote_hits_and_misses() {
        let log = "# a.c\ncache_miss\ndirect_cache_miss\nlocal_storage_miss\nlocal_storage_write\n\
                   # b.c\ndirect_cache_hit\nlocal_storage_hit\nlocal_storage_read_hit\n\
                   # c.c\ndirect_cache_hit\nlocal_storage_miss\nremote_storage_hit\nremote_storage_read_hit\n";
        assert_eq!(CacheStats::parse(log), CacheStats { local_hits: 1, remote_hits: 1, compiled: 1 });
        assert_eq!(CacheStats::parse(""), CacheStats::default());
    }
}
