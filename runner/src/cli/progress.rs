//! The one progress printer: a live status line on a terminal (redrawn in
//! place), a line every 30 s otherwise (CI logs), and messages that clear
//! the live line first. `run`, `kernel build`, `bisect` and `bench` all
//! print through it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::builder::BuildEvent;

pub struct Progress {
    tty: bool,
    /// Whether a live line is shown at all (off for `--json` or `-v`).
    live: bool,
    started: Instant,
    phase: String,
    last: Option<Instant>,
    drawn: bool,
}

/// 452.3 -> "7m32s".
pub(crate) fn mmss(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Progress {
    pub fn new() -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress { tty, live: true, started: Instant::now(), phase: String::new(), last: None, drawn: false }
    }

    /// No live line (`-v` streams the console instead); messages still print.
    pub(crate) fn without_live_line(mut self) -> Progress {
        self.live = false;
        self
    }

    /// Restarts the elapsed-time clock.
    pub(crate) fn restart(&mut self) {
        self.started = Instant::now();
    }

    /// A message: `krepro: {text}` on its own line.
    pub fn say(&mut self, text: &str) {
        self.clear();
        eprintln!("krepro: {text}");
    }

    pub(crate) fn build_event(&mut self, ev: BuildEvent<'_>) {
        match ev {
            BuildEvent::Phase(p) => {
                self.phase = p.to_owned();
                self.line(&format!("{p} ..."), true);
            }
            BuildEvent::Note(n) => self.say(n),
            BuildEvent::Progress { compiled, elapsed } => {
                let text = format!("{}: {compiled} objects, {}", self.phase, mmss(elapsed.as_secs_f64()));
                self.line(&text, false);
            }
        }
    }

    /// A status line: redrawn in place on a terminal, else printed at most
    /// every 30 s (always when `force`).
    pub fn line(&mut self, text: &str, force: bool) {
        if !self.live {
            return;
        }
        let every = if self.tty { Duration::from_millis(200) } else { Duration::from_secs(30) };
        if !force && self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let total = mmss(self.started.elapsed().as_secs_f64());
        if self.tty {
            eprint!("\r\x1b[Kkrepro: {text} [{total}]");
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else {
            eprintln!("krepro: {text} [{total}]");
        }
    }

    /// A status line shown on a terminal only (a log gets the summaries).
    pub(crate) fn status(&mut self, text: &str) {
        if self.tty {
            self.line(text, true);
        }
    }

    /// A status line shown on a terminal only, redrawn at most every
    /// 100 ms (for events that come fast, like console lines).
    pub(crate) fn tick(&mut self, text: &str) {
        if self.tty && self.last.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)) {
            self.line(text, true);
        }
    }

    pub fn clear(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(mmss(0.44), "0.4s");
        assert_eq!(mmss(59.4), "59.4s");
        assert_eq!(mmss(60.0), "1m00s");
        assert_eq!(mmss(452.3), "7m32s");
    }
}
