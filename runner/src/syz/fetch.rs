//! A bug from syzbot's dashboard: its JSON (`/bug?extid=...&json=1`)
//! names the crashes; the first with a C reproducer gives the title,
//! commit, compiler, arch, config and reproducer, fetched with curl into
//! the cache as the files a report directory holds.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SyzError;
use crate::host::cache::Cache;
use crate::host::install;
use crate::host::spawn::Cmd;

/// syzbot's dashboard.
pub(crate) const DASHBOARD: &str = "https://syzkaller.appspot.com";

/// The dashboard's description of a bug (the fields krepro reads).
#[derive(Debug, Deserialize)]
pub(crate) struct Bug {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub crashes: Vec<Crash>,
}

/// One crash of a bug, with links relative to the dashboard.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct Crash {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub syz_reproducer: Option<String>,
    #[serde(default)]
    pub c_reproducer: Option<String>,
    #[serde(default)]
    pub kernel_config: Option<String>,
    #[serde(default)]
    pub kernel_source_git: Option<String>,
    #[serde(default)]
    pub kernel_source_commit: Option<String>,
    #[serde(default)]
    pub compiler_description: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub crash_report_link: Option<String>,
}

/// What SOURCE names when it is not a directory: the bug's dashboard
/// URL, made to ask for JSON, and a name for its cache directory.
pub(crate) fn bug_url(source: &str) -> Option<(String, String)> {
    let id_of = |s: &str| s.chars().take_while(char::is_ascii_alphanumeric).collect::<String>();
    if let Some(rest) = source.strip_prefix(DASHBOARD).or_else(|| source.strip_prefix("http://syzkaller.appspot.com")) {
        let (key, id) = ["extid=", "id="].iter().find_map(|k| rest.split_once(k).map(|(_, v)| (*k, id_of(v))))?;
        return (!id.is_empty()).then(|| (format!("{DASHBOARD}/bug?{key}{id}&json=1"), id));
    }
    // A bare extid: the 20 hex digits of syzbot+EXTID@ addresses.
    let extid = source.strip_prefix("syzbot+").unwrap_or(source);
    let extid = extid.split('@').next().unwrap_or(extid);
    (extid.len() == 20 && extid.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (format!("{DASHBOARD}/bug?extid={extid}&json=1"), extid.to_owned()))
}

/// Fetches the bug at `url` into `<cache>/syz/<id>/` as a report
/// directory (report.txt, repro.c, .config, repro.syz, console.log) and
/// returns it. Fetched once: a directory made before is used as it is.
pub(crate) fn fetch(cache: &Cache, url: &str, id: &str, say: &mut dyn FnMut(&str)) -> Result<PathBuf, SyzError> {
    let dir = cache.root().join("syz").join(id);
    if dir.join("report.txt").is_file() {
        return Ok(dir);
    }
    let curl =
        install::find_or_install("curl", "curl", say).map_err(|e| SyzError::Fetch(format!("fetching {url}: {e}")))?;
    std::fs::create_dir_all(cache.root().join("syz"))
        .map_err(|e| SyzError::Fetch(format!("create {}: {e}", cache.root().join("syz").display())))?;
    let staging = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache.root().join("syz"))
        .map_err(|e| SyzError::Fetch(format!("create a temp dir: {e}")))?;
    say(&format!("fetching {url}"));
    let json = get(&curl, url, &staging.path().join("bug.json"))?;
    let bug: Bug =
        serde_json::from_slice(&json).map_err(|e| SyzError::Fetch(format!("{url}: not syzbot's bug JSON ({e})")))?;
    let crash = bug
        .crashes
        .iter()
        .find(|c| c.c_reproducer.is_some())
        .ok_or_else(|| SyzError::Fetch(format!("{url}: \"{}\" has no C reproducer: nothing to run", bug.title)))?;
    for (link, name) in [
        (&crash.c_reproducer, "repro.c"),
        (&crash.kernel_config, ".config"),
        (&crash.syz_reproducer, "repro.syz"),
        (&crash.crash_report_link, "console.log"),
    ] {
        if let Some(link) = link {
            get(&curl, &absolute(link), &staging.path().join(name))?;
        }
    }
    std::fs::write(staging.path().join("report.txt"), report_text(&bug, crash, id))
        .map_err(|e| SyzError::Fetch(format!("write report.txt: {e}")))?;
    let kept = staging.keep();
    std::fs::rename(&kept, &dir)
        .map_err(|e| SyzError::Fetch(format!("move {} to {}: {e}", kept.display(), dir.display())))?;
    Ok(dir)
}

/// A report.txt in the email's words, from the dashboard's facts.
pub(crate) fn report_text(bug: &Bug, crash: &Crash, id: &str) -> String {
    let title = if crash.title.is_empty() { &bug.title } else { &crash.title };
    let mut text = format!("Subject: [syzbot] {title}\n\n");
    let mut line = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            text.push_str(&format!("{key:<16}{v}\n"));
        }
    };
    line("HEAD commit:", &crash.kernel_source_commit);
    line("git tree:", &crash.kernel_source_git);
    line("compiler:", &crash.compiler_description);
    line("userspace arch:", &crash.architecture);
    text.push_str(&format!("dashboard link: {DASHBOARD}/bug?extid={id}\n"));
    text
}

fn absolute(link: &str) -> String {
    if link.starts_with("http") {
        link.to_owned()
    } else {
        format!("{DASHBOARD}{link}")
    }
}

/// `url`'s body, also written to `to`.
fn get(curl: &Path, url: &str, to: &Path) -> Result<Vec<u8>, SyzError> {
    let args = ["--fail", "--silent", "--show-error", "--location", "--max-time", "60", "-o"];
    Cmd::new(curl, args, Path::new("/")).args([to.as_os_str(), url.as_ref()]).quiet().output().map_err(|e| {
        SyzError::Fetch(format!(
            "could not fetch {url}: {e}; without network, save the report's files in a directory \
                 (report.txt with its Subject line, repro.c, .config) and pass that"
        ))
    })?;
    std::fs::read(to).map_err(|e| SyzError::Fetch(format!("read {}: {e}", to.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_a_bug_or_nothing() {
        let (url, id) = bug_url("https://syzkaller.appspot.com/bug?extid=0123456789abcdef0123").unwrap();
        assert_eq!(url, "https://syzkaller.appspot.com/bug?extid=0123456789abcdef0123&json=1");
        assert_eq!(id, "0123456789abcdef0123");
        assert_eq!(bug_url("0123456789abcdef0123").unwrap().1, "0123456789abcdef0123");
        assert_eq!(bug_url("syzbot+0123456789abcdef0123@syzkaller.appspotmail.com").unwrap().1, "0123456789abcdef0123");
        let (url, _) = bug_url("https://syzkaller.appspot.com/bug?id=abcdef12").unwrap();
        assert!(url.ends_with("/bug?id=abcdef12&json=1"), "{url}");
        assert_eq!(bug_url("some/dir"), None);
        assert_eq!(bug_url("https://syzkaller.appspot.com/upstream"), None);
    }

    #[test]
    fn the_dashboards_json_becomes_a_report() {
        let json = r#"{"version":1,"title":"WARNING in kcmp_lock","id":"x","crashes":[
            {"title":"WARNING in kcmp_lock","kernel-config":"/text?tag=KernelConfig&x=1",
             "kernel-source-git":"https://git.kernel.org/torvalds/linux.git","kernel-source-commit":"8f6f76a6a29f1234",
             "compiler-description":"gcc (Debian 12.2.0-14) 12.2.0","architecture":"amd64",
             "c-reproducer":"/text?tag=ReproC&x=2","crash-report-link":"/text?tag=CrashReport&x=3"}]}"#;
        let bug: Bug = serde_json::from_str(json).unwrap();
        let text = report_text(&bug, &bug.crashes[0], "0123456789abcdef0123");
        let r = super::super::Report::parse_email(&text);
        assert_eq!(r.title, "WARNING in kcmp_lock");
        assert_eq!(r.commit.as_deref(), Some("8f6f76a6a29f1234"));
        assert_eq!(r.arch, Some(crate::image::arch::Arch::X86_64));
        assert_eq!(r.extid.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(absolute("/text?tag=ReproC&x=2"), "https://syzkaller.appspot.com/text?tag=ReproC&x=2");
    }
}
