//! The one way krepro runs an external command: program and arguments as a
//! list (never `sh -c` with user input), the working directory explicit, the
//! command line echoed to stderr, and failures that carry the command line.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A command that could not be run or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("could not run `{line}`: {source}")]
    Spawn { line: String, source: std::io::Error },
    #[error("`{line}` failed ({status}){}", tail(.stderr))]
    Failed { line: String, status: std::process::ExitStatus, stderr: String },
}

fn tail(stderr: &str) -> String {
    match stderr.trim().lines().last() {
        Some(last) => format!(": {last}"),
        None => String::new(),
    }
}

/// A command about to run.
pub struct Cmd {
    inner: Command,
    line: String,
    echo: bool,
}

impl Cmd {
    /// `program args...`, run in `cwd`.
    pub fn new<I, S>(program: impl AsRef<OsStr>, args: I, cwd: &Path) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut inner = Command::new(program.as_ref());
        inner.current_dir(cwd);
        let mut line = program.as_ref().to_string_lossy().into_owned();
        for a in args {
            line.push(' ');
            line.push_str(&quote(&a.as_ref().to_string_lossy()));
            inner.arg(a);
        }
        Cmd { inner, line, echo: true }
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        self.inner.env(key, value);
        self
    }

    /// Does not echo the command line.
    pub fn quiet(mut self) -> Cmd {
        self.echo = false;
        self
    }

    /// Runs it with stdout and stderr captured; fails unless it exits 0.
    pub fn output(mut self) -> Result<Output, CmdError> {
        self.announce();
        let out = self
            .inner
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CmdError::Spawn { line: self.line.clone(), source })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            return Err(CmdError::Failed { line: self.line, status: out.status, stderr });
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

    fn announce(&self) {
        if self.echo {
            eprintln!("$ {}", self.line);
        }
    }
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
    fn runs_in_the_given_directory() {
        let out = Cmd::new("pwd", [""; 0], Path::new("/tmp")).quiet().output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/tmp");
    }
}
