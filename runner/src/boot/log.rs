//! Console logs: one file per boot, capped and rotated so a chatty guest
//! or a long series of runs cannot fill the disk.
//!
//! A log keeps the first [`LogPolicy::head_bytes`] of the console as they
//! come and, past that, only the last [`LogPolicy::tail_bytes`] (in
//! memory, written when the boot ends) with one line between them saying
//! how much was cut. The log directory keeps the newest
//! [`LogPolicy::keep_files`] logs and at most [`LogPolicy::keep_bytes`] in
//! all; older ones are removed when a new log starts.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// How much console krepro keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogPolicy {
    pub head_bytes: u64,
    pub tail_bytes: u64,
    pub keep_files: usize,
    pub keep_bytes: u64,
}

impl Default for LogPolicy {
    fn default() -> LogPolicy {
        LogPolicy { head_bytes: 1 << 20, tail_bytes: 1 << 20, keep_files: 200, keep_bytes: 64 << 20 }
    }
}

/// A log directory and its policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDir {
    pub dir: PathBuf,
    pub(crate) policy: LogPolicy,
}

impl LogDir {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> LogDir {
        LogDir { dir: dir.into(), policy: LogPolicy::default() }
    }

    /// A new log file named by time, pid and `label` (also for other
    /// logs, like `--build-cmd`'s output, rotated with the console logs),
    /// after removing logs the policy no longer keeps.
    pub(crate) fn create_file(&self, label: &str) -> std::io::Result<(PathBuf, File)> {
        std::fs::create_dir_all(&self.dir)?;
        self.prune();
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        // Boots at once (`--parallel`) can start in the same millisecond:
        // each gets a file of its own.
        for n in 1.. {
            let suffix = if n == 1 { String::new() } else { format!(".{n}") };
            let path = self.dir.join(format!("{stamp}-{}-{label}{suffix}.log", std::process::id()));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((path, file)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("some suffix is free")
    }

    /// Starts a new console log (named as by [`LogDir::create_file`]).
    pub(crate) fn create(&self, label: &str) -> std::io::Result<ConsoleLog> {
        let (path, file) = self.create_file(label)?;
        let file = BufWriter::new(file);
        Ok(ConsoleLog {
            path,
            file,
            policy: self.policy,
            written: 0,
            tail: VecDeque::new(),
            tail_len: 0,
            cut: (0, 0),
            failed: None,
        })
    }

    /// Keeps the newest logs (names start with a timestamp) within the
    /// policy's count and total size, leaving room for one more.
    fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut logs: Vec<(PathBuf, u64)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
            .collect();
        logs.sort();
        let mut total: u64 = logs.iter().map(|l| l.1).sum();
        let mut count = logs.len();
        for (path, size) in logs {
            if count < self.policy.keep_files && total <= self.policy.keep_bytes {
                break;
            }
            let _ = std::fs::remove_file(path);
            count -= 1;
            total -= size;
        }
    }
}

/// One boot's console log being written.
pub(crate) struct ConsoleLog {
    path: PathBuf,
    file: BufWriter<File>,
    policy: LogPolicy,
    /// Bytes written to the head so far.
    written: u64,
    /// Lines past the head (an entry holds one line or several, with
    /// their count), the newest last, at most `tail_bytes` in all.
    tail: VecDeque<(String, u64)>,
    tail_len: u64,
    /// (lines, bytes) dropped between head and tail.
    cut: (u64, u64),
    /// The first write that failed (a full disk): the log is short.
    failed: Option<std::io::Error>,
}

impl ConsoleLog {
    fn write(&mut self, text: &str) {
        if self.failed.is_none() {
            if let Err(e) = writeln!(self.file, "{text}") {
                self.failed = Some(e);
            }
        }
    }

    /// Adds one line, or several joined by `\n` (bulk output comes in
    /// chunks of whole lines).
    pub(crate) fn line(&mut self, text: &str) {
        let len = text.len() as u64 + 1;
        let head = self.policy.head_bytes;
        if self.written + len <= head {
            self.written += len;
            self.write(text);
            return;
        }
        if self.written < head {
            // A chunk that only partly fits: its lines fill the head.
            let room = (head - self.written) as usize;
            if let Some(end) = text.as_bytes()[..room.min(text.len())].iter().rposition(|&b| b == b'\n') {
                self.line(&text[..end]);
                self.line(&text[end + 1..]);
                return;
            }
        }
        let lines = memchr::memchr_iter(b'\n', text.as_bytes()).count() as u64 + 1;
        self.tail.push_back((text.to_owned(), lines));
        self.tail_len += len;
        while self.tail_len > self.policy.tail_bytes {
            let Some((old, lines)) = self.tail.pop_front() else { break };
            self.tail_len -= old.len() as u64 + 1;
            self.cut.0 += lines;
            self.cut.1 += old.len() as u64 + 1;
        }
    }

    /// Writes the tail and closes the log; returns its path.
    /// Writes what is held back and closes the log: its path, or the path
    /// and the write error that cut it short.
    pub(crate) fn finish(mut self) -> Result<PathBuf, (PathBuf, std::io::Error)> {
        if self.cut.0 > 0 {
            let (lines, bytes) = self.cut;
            self.write(&format!(
                "[krepro: {lines} console lines ({bytes} bytes) cut here; the log keeps the first and last MiB]"
            ));
        }
        for (l, _) in std::mem::take(&mut self.tail) {
            self.write(&l);
        }
        if let (None, Err(e)) = (&self.failed, self.file.flush()) {
            self.failed = Some(e);
        }
        match self.failed.take() {
            None => Ok(self.path),
            Some(e) => Err((self.path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(dir: &std::path::Path) -> LogDir {
        LogDir {
            dir: dir.to_owned(),
            policy: LogPolicy { head_bytes: 20, tail_bytes: 12, keep_files: 3, keep_bytes: 1000 },
        }
    }

    #[test]
    fn logs_made_in_the_same_millisecond_are_files_of_their_own() {
        let d = tempfile::tempdir().unwrap();
        let logs = LogDir { dir: d.path().to_owned(), policy: LogPolicy { keep_files: 100, ..small(d.path()).policy } };
        let paths: Vec<PathBuf> = (0..20).map(|_| logs.create_file("smoke-tcg").unwrap().0).collect();
        let distinct: std::collections::BTreeSet<&PathBuf> = paths.iter().collect();
        assert_eq!(distinct.len(), 20, "{paths:?}");
    }

    #[test]
    fn a_long_console_keeps_its_head_and_tail() {
        let d = tempfile::tempdir().unwrap();
        let mut log = small(d.path()).create("smoke-tcg").unwrap();
        for i in 0..100 {
            log.line(&format!("line {i:02}"));
        }
        let path = log.finish().unwrap();
        assert!(path.to_string_lossy().ends_with("-smoke-tcg.log"));
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // 8 bytes a line: two fit the 20-byte head, one the 12-byte tail.
        assert_eq!(lines[..2], ["line 00", "line 01"]);
        assert_eq!(lines[2], "[krepro: 97 console lines (776 bytes) cut here; the log keeps the first and last MiB]");
        assert_eq!(lines[3..], ["line 99"]);
    }

    #[test]
    fn chunks_of_lines_fill_the_head_by_line_and_count_as_lines_when_cut() {
        let d = tempfile::tempdir().unwrap();
        let mut log = small(d.path()).create("bulk").unwrap();
        // Three 8-byte lines in one chunk: two fit the 20-byte head.
        log.line("line 00\nline 01\nline 02");
        log.line("line 03\nline 04");
        log.line("line 05");
        let text = std::fs::read_to_string(log.finish().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["line 00", "line 01"]);
        assert_eq!(lines[2], "[krepro: 3 console lines (24 bytes) cut here; the log keeps the first and last MiB]");
        assert_eq!(lines[3..], ["line 05"]);
    }

    #[test]
    fn a_short_console_is_kept_whole() {
        let d = tempfile::tempdir().unwrap();
        let mut log = small(d.path()).create("x").unwrap();
        log.line("one");
        log.line("two");
        assert_eq!(std::fs::read_to_string(log.finish().unwrap()).unwrap(), "one\ntwo\n");
    }

    #[test]
    fn the_directory_keeps_the_newest_by_count_and_size() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..5 {
            std::fs::write(d.path().join(format!("{i:05}-x.log")), b"12345").unwrap();
        }
        std::fs::write(d.path().join("notes.txt"), b"kept: not a log").unwrap();
        let logs = small(d.path());
        let new = logs.create("y").unwrap().finish().unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left.len(), 4, "{left:?}");
        assert_eq!(left[..2], ["00003-x.log", "00004-x.log"]);
        assert!(new.exists() && d.path().join("notes.txt").exists());
        // By size: 100 bytes allowed, two 60-byte logs leave one.
        let d = tempfile::tempdir().unwrap();
        for i in 0..2 {
            std::fs::write(d.path().join(format!("{i:05}-x.log")), [b'x'; 60]).unwrap();
        }
        let logs = LogDir { dir: d.path().to_owned(), policy: LogPolicy { keep_bytes: 100, ..small(d.path()).policy } };
        logs.create("y").unwrap().finish().unwrap();
        assert!(!d.path().join("00000-x.log").exists() && d.path().join("00001-x.log").exists());
    }
}
