//! Progress on stderr for long jobs: a live line on a terminal, a line
//! every 30 s otherwise (CI logs), and notes always.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use krepro_runner::build::BuildEvent;

pub struct Progress {
    tty: bool,
    started: Instant,
    phase: String,
    last: Option<Instant>,
    drawn: bool,
}

/// 452.3 -> "7m32s".
pub fn mmss(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{secs:.1}s")
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            phase: String::new(),
            last: None,
            drawn: false,
        }
    }

    pub fn build_event(&mut self, ev: BuildEvent<'_>) {
        match ev {
            BuildEvent::Phase(p) => {
                self.phase = p.to_owned();
                self.line(&format!("{p} ..."), true);
            }
            BuildEvent::Note(n) => {
                self.clear();
                eprintln!("krepro: {n}");
            }
            BuildEvent::Progress { compiled, elapsed } => {
                let text = format!("{}: {compiled} objects, {}", self.phase, mmss(elapsed.as_secs_f64()));
                self.line(&text, false);
            }
        }
    }

    /// A status line: redrawn in place on a terminal, else printed at most
    /// every 30 s (always when `force`).
    pub fn line(&mut self, text: &str, force: bool) {
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
    pub fn status(&mut self, text: &str) {
        if self.tty {
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
