//! The one way krepro runs an external command: program and arguments as a
//! list (never `sh -c` with user input), the working directory explicit, the
//! command line echoed to stderr, and failures that carry the command line.

use std::ffi::OsStr;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use rustix::process::Signal;

/// A command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("could not run `{line}`: {source}")]
    Spawn { line: String, source: std::io::Error },
    #[error("`{line}` failed ({status}){}", tail(.stderr))]
    Failed { line: String, status: ExitStatus, stderr: String },
}

fn tail(stderr: &str) -> String {
    match stderr.trim().lines().last() {
        Some(last) => format!(": {last}"),
        None => String::new(),
    }
}

/// The longest line [`Cmd::spawn_lines`] hands on in one piece: a guest
/// that prints megabytes without a newline must not grow the runner's
/// memory without bound.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// How many lines [`Cmd::spawn_lines`] holds between its readers and the
/// caller: past that a reader waits, and so does what writes to it (qemu,
/// and through virtio-serial the guest), so a guest that prints without
/// end holds the runner's memory to this many lines of at most
/// [`MAX_LINE`] bytes.
pub(crate) const LINES_IN_FLIGHT: usize = 1024;

/// A command about to run.
pub struct Cmd {
    inner: Command,
    line: String,
    echo: bool,
    /// Read line by line beside stdout and stderr ([`Stream::Extra`]).
    extra: Option<std::fs::File>,
    /// Started in a process group of its own ([`Cmd::contained`]).
    group: bool,
}

impl Cmd {
    /// `program args...`, run in `cwd`.
    pub fn new<I, S>(program: impl AsRef<OsStr>, args: I, cwd: &Path) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        #[allow(clippy::disallowed_methods)] // this is the one place
        let mut inner = Command::new(program.as_ref());
        inner.current_dir(cwd);
        let line = program.as_ref().to_string_lossy().into_owned();
        Cmd { inner, line, echo: true, extra: None, group: false }.args(args)
    }

    /// The user's own shell command line (`--build-cmd`), run by `sh -c`
    /// exactly as they wrote it. krepro never builds such a line itself.
    pub fn shell(script: &str, cwd: &Path) -> Cmd {
        Cmd::new("sh", ["-c", script], cwd)
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.line.push(' ');
            self.line.push_str(&quote(&a.as_ref().to_string_lossy()));
            self.inner.arg(a);
        }
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.inner.env(key, value);
        self
    }

    /// Removes an environment variable for the command.
    pub(crate) fn env_remove(mut self, key: &str) -> Cmd {
        self.inner.env_remove(key);
        self
    }

    /// Does not echo the command line.
    pub fn quiet(mut self) -> Cmd {
        self.echo = false;
        self
    }

    /// Starts it in a process group of its own (a Ctrl-C in the terminal
    /// reaches krepro, which then stops it and cleans up) and has the
    /// kernel SIGKILL it if krepro dies without cleaning up. For qemu and
    /// make.
    pub fn contained(mut self) -> Cmd {
        super::sys::own_process_group_and_die_with_parent(&mut self.inner);
        self.group = true;
        self
    }

    /// The command line as a shell user would type it.
    pub(crate) fn line(&self) -> &str {
        &self.line
    }

    /// Runs it with stdout and stderr captured; fails unless it exits 0.
    pub fn output(self) -> Result<Output, CmdError> {
        let line = self.line.clone();
        let out = self.output_any_status()?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err(CmdError::Failed { line, status: out.status, stderr });
        }
        Ok(out)
    }

    /// Runs it with stdout and stderr captured, whatever its exit status
    /// (for commands whose status is an answer, like `git bisect skip`).
    pub fn output_any_status(mut self) -> Result<Output, CmdError> {
        self.announce();
        self.inner.stdin(Stdio::null()).output().map_err(|source| CmdError::Spawn { line: self.line.clone(), source })
    }

    /// Runs it with stdout and stderr passed through; fails unless it exits 0.
    pub fn status(mut self) -> Result<(), CmdError> {
        self.announce();
        let status = self
            .inner
            .stdin(Stdio::null())
            .status()
            .map_err(|source| CmdError::Spawn { line: self.line.clone(), source })?;
        if !status.success() {
            return Err(CmdError::Failed { line: self.line, status, stderr: String::new() });
        }
        Ok(())
    }

    /// Runs it with stdout and stderr both written to `log`; returns its
    /// exit status, whatever it is.
    pub(crate) fn status_to_log(mut self, log: std::fs::File) -> Result<ExitStatus, CmdError> {
        self.announce();
        let spawn_err = |source| CmdError::Spawn { line: self.line.clone(), source };
        let err = log.try_clone().map_err(spawn_err)?;
        self.inner.stdin(Stdio::null()).stdout(log).stderr(err).status().map_err(spawn_err)
    }

    /// Starts it with stdout and stderr read line by line on two threads;
    /// the lines arrive, in order per stream, through [`Running`], which
    /// kills and reaps the child when it is dropped (errors, panics and
    /// Ctrl-C included).
    pub fn spawn_lines(mut self) -> Result<Running, CmdError> {
        self.announce();
        let mut child = self
            .inner
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CmdError::Spawn { line: self.line.clone(), source })?;
        let (tx, rx) = mpsc::sync_channel(LINES_IN_FLIGHT);
        if let Some(out) = child.stdout.take() {
            read_lines(out, tx.clone(), Stream::Stdout);
        }
        if let Some(extra) = self.extra.take() {
            read_chunks(extra, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            read_lines(err, tx, Stream::Stderr);
        }
        Ok(Running { child, lines: rx, group: self.group })
    }

    /// With [`Cmd::spawn_lines`], also reads `file` line by line as
    /// [`Stream::Extra`] (a FIFO the child writes to), until it ends.
    pub(crate) fn read_also(mut self, file: std::fs::File) -> Cmd {
        self.extra = Some(file);
        self
    }

    fn announce(&self) {
        if self.echo {
            eprintln!("$ {}", self.line);
        }
    }
}

/// Which output of a child a [`Line`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// The file given to [`Cmd::read_also`]. Read in bulk: one
    /// [`Line::Text`] of it holds one or more whole lines, joined by `\n`.
    Extra,
}

/// What a running child's reader threads report.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// One line, without its line ending, invalid UTF-8 replaced; a line
    /// longer than [`MAX_LINE`] bytes comes in pieces.
    Text(Stream, String),
    /// The stream ended (the child closed it, usually by exiting).
    End(Stream),
}

/// A child started by [`Cmd::spawn_lines`].
pub struct Running {
    child: Child,
    lines: Receiver<Line>,
    group: bool,
}

impl Running {
    /// The next line, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Line, RecvTimeoutError> {
        self.lines.recv_timeout(timeout)
    }

    /// Every line until both streams end.
    #[cfg(test)]
    pub(crate) fn lines(&self) -> impl Iterator<Item = Line> + '_ {
        self.lines.iter()
    }

    /// Its exit status, if it has exited.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }

    /// Kills it (if it still runs) and reaps it.
    pub(crate) fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Kills the process group of a [`Cmd::contained`] child, so also what
    /// it started (vng's qemu and virtiofsd), then reaps the child. Its pid
    /// names the group until it is reaped and the group's last process is
    /// gone, so call it before waiting, or right after.
    pub fn stop_group(&mut self) {
        let _ = rustix::process::kill_process_group(rustix::process::Pid::from_child(&self.child), Signal::KILL);
        self.stop();
    }
}

impl Drop for Running {
    /// Also on an unwinding panic (a broken pipe on krepro's stderr): a
    /// contained child that still runs takes its whole group with it, not
    /// make alone. (Once reaped, its pid may name another group.)
    fn drop(&mut self) {
        if self.group && matches!(self.child.try_wait(), Ok(None)) {
            self.stop_group();
        } else {
            self.stop();
        }
    }
}

fn read_lines<R: Read + Send + 'static>(from: R, tx: SyncSender<Line>, stream: Stream) {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, from);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.send(Line::Text(stream, text)).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Line::End(stream));
    });
}

/// Reads `from` in chunks of up to 64 KiB of whole lines, each sent as one
/// [`Line::Text`] (lines joined by `\n`, the last newline dropped): bulk
/// output at a message per chunk, not per line. A line longer than
/// [`MAX_LINE`] comes in pieces, as from [`read_lines`].
fn read_chunks<R: Read + Send + 'static>(mut from: R, tx: SyncSender<Line>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_LINE];
        let mut have = 0;
        loop {
            let n = match from.read(&mut buf[have..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            have += n;
            // Up to the last newline, or all of it when the buffer is full.
            let end = match buf[..have].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if have == buf.len() => have,
                None => continue,
            };
            let text = String::from_utf8_lossy(&buf[..end]);
            let text = text.strip_suffix('\n').unwrap_or(&text).replace('\r', "");
            if tx.send(Line::Text(Stream::Extra, text)).is_err() {
                return;
            }
            buf.copy_within(end..have, 0);
            have -= end;
        }
        if have > 0 {
            let _ = tx.send(Line::Text(Stream::Extra, String::from_utf8_lossy(&buf[..have]).into_owned()));
        }
        let _ = tx.send(Line::End(Stream::Extra));
    });
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// Quotes a word for display the way a shell user would type it.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,@%^".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_command_line() {
        let err = Cmd::new("sh", ["-c", "echo oops >&2; exit 3"], Path::new("/")).quiet().output().unwrap_err();
        assert_eq!(err.to_string(), "`sh -c 'echo oops >&2; exit 3'` failed (exit status: 3): oops");
        let err = Cmd::new("/nonexistent/tool", ["x"], Path::new("/")).quiet().output().unwrap_err();
        assert!(err.to_string().starts_with("could not run `/nonexistent/tool x`: "), "{err}");
    }

    #[test]
    fn lines_arrive_per_stream_and_long_lines_are_cut() {
        let script = format!("printf 'a\\r\\nb\\n'; echo e >&2; head -c {} /dev/zero | tr '\\0' x", MAX_LINE + 10);
        let run = Cmd::shell(&script, Path::new("/")).quiet().spawn_lines().unwrap();
        let lines: Vec<Line> = run.lines().collect();
        let out: Vec<&str> = lines
            .iter()
            .filter_map(|l| match l {
                Line::Text(Stream::Stdout, t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(out.len(), 4, "{:?}", &out[..2]);
        assert_eq!(&out[..2], ["a", "b"]);
        assert_eq!(out[2].len(), MAX_LINE);
        assert_eq!(out[3].len(), 10);
        assert!(lines.contains(&Line::Text(Stream::Stderr, "e".into())));
        assert!(lines.contains(&Line::End(Stream::Stdout)) && lines.contains(&Line::End(Stream::Stderr)));
    }

    #[test]
    fn an_extra_file_comes_in_chunks_of_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extra");
        let long = "y".repeat(MAX_LINE + 5);
        std::fs::write(&path, format!("one\ntwo\r\n{long}\nlast, no newline")).unwrap();
        let run = Cmd::new("true", [""; 0], dir.path())
            .quiet()
            .read_also(std::fs::File::open(&path).unwrap())
            .spawn_lines()
            .unwrap();
        let pieces: Vec<String> = run
            .lines()
            .filter_map(|l| match l {
                Line::Text(Stream::Extra, t) => Some(t),
                _ => None,
            })
            .collect();
        assert_eq!(pieces[0], "one\ntwo", "whole lines, the CR dropped");
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE), "no piece longer than MAX_LINE");
        assert_eq!(pieces.last().map(String::as_str), Some("last, no newline"));
        let all: String = pieces.concat().chars().filter(|c| *c != '\n').collect();
        assert!(all == format!("onetwo{long}last, no newline"), "nothing lost or added");
    }

    #[test]
    fn a_dropped_child_is_killed_and_reaped() {
        let run = Cmd::new("sleep", ["30"], Path::new("/")).quiet().contained().spawn_lines().unwrap();
        let pid = run.child.id();
        drop(run);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "sleep {pid} still exists");
    }

    /// A contained shell that started a `sleep` of its own, and that
    /// sleep's pid.
    fn with_grandchild(dir: &Path) -> (Running, String) {
        let pid_file = dir.join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let run = Cmd::shell(&script, Path::new("/")).quiet().contained().spawn_lines().unwrap();
        while std::fs::read_to_string(&pid_file).map_or(true, |p| !p.ends_with('\n')) {
            std::thread::sleep(Duration::from_millis(10));
        }
        (run, std::fs::read_to_string(&pid_file).unwrap().trim().to_owned())
    }

    /// Killed, its parent gone: init reaps it soon after.
    fn soon_gone(pid: &str) -> bool {
        (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
        })
    }

    #[test]
    fn a_stopped_group_takes_the_grandchildren_along() {
        let dir = tempfile::tempdir().unwrap();
        let (mut run, grandchild) = with_grandchild(dir.path());
        run.stop_group();
        assert!(soon_gone(&grandchild), "sleep {grandchild} still runs");
    }

    #[test]
    fn a_dropped_contained_child_takes_its_group_along() {
        // As when krepro unwinds from a panic in the middle of a build:
        // make's sub-makes and compilers go with it.
        let dir = tempfile::tempdir().unwrap();
        let (run, grandchild) = with_grandchild(dir.path());
        drop(run);
        assert!(soon_gone(&grandchild), "sleep {grandchild} still runs");
    }

    #[test]
    fn shell_and_log_capture() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let status = Cmd::shell("echo out; echo err >&2; exit 3", dir.path())
            .quiet()
            .status_to_log(std::fs::File::create(&log).unwrap())
            .unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "out\nerr\n");
    }

    #[test]
    fn runs_in_the_given_directory() {
        let out = Cmd::new("pwd", [""; 0], Path::new("/tmp")).quiet().output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/tmp");
    }
}
