//! What a run found ([`Outcome`]) and the exit code it becomes ([`Exit`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a boot found. Kept apart from [`super::BootError`], which is why a
/// boot could not happen at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The repro ran and the bug is absent.
    Pass,
    /// The repro ran and the bug is present.
    Fail,
    /// The console shows a panic, Oops or BUG (or a WARNING with
    /// `--warn-is-crash`) and the repro did not report `fail`.
    Crash,
    /// No verdict before the timeout; qemu was killed.
    Hang,
    /// The repro said it cannot test this kernel.
    Skip,
    /// The kernel stopped without a verdict or a crash.
    NoVerdict,
    /// The guest could not run the repro (init reported `error`).
    Error,
}

impl Outcome {
    /// The name used in messages and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Crash => "crash",
            Outcome::Hang => "hang",
            Outcome::Skip => "skip",
            Outcome::NoVerdict => "no-verdict",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The process exit codes of `krepro run` and `cargo xtask run`, chosen so
/// that `git bisect run` does the right thing: 0 good, 1-127 bad except 125
/// skip, above 127 abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Exit {
    /// pass; a bisect's verified answer
    Good,
    /// fail (or an outcome remapped to bad)
    Bad,
    /// crash
    Crash,
    /// a bisect named an answer that its verification did not confirm
    NotVerified,
    /// hang
    Hang,
    /// skip, no-verdict (by default); a tree that does not build
    Skip,
    /// could not run: setup error, bad input, init `error`
    Error,
    /// interrupted by a signal (Ctrl-C)
    Interrupted,
}

impl Exit {
    /// The number the process exits with.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Good => 0,
            Exit::Bad => 1,
            Exit::Crash | Exit::NotVerified => 2,
            Exit::Hang => 3,
            Exit::Skip => 125,
            Exit::Error => 128,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(code: Exit) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// Good, bad or skip: what a kernel (or commit) is for the bug, and what
/// `--on-crash`, `--on-hang` and `--on-no-verdict` turn an outcome into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// The bug is absent (exit 0).
    Good,
    /// The bug is present (exit 1).
    Bad,
    /// Cannot tell: does not build, the repro skipped, no verdict (exit 125).
    Skip,
}

impl Mark {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mark::Good => "good",
            Mark::Bad => "bad",
            Mark::Skip => "skip",
        }
    }
}

impl From<Mark> for Exit {
    fn from(m: Mark) -> Self {
        match m {
            Mark::Good => Exit::Good,
            Mark::Bad => Exit::Bad,
            Mark::Skip => Exit::Skip,
        }
    }
}

/// The user's remapping of the outcomes that are bad or not depending on
/// the bug being chased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remap {
    pub on_crash: Option<Mark>,
    pub on_hang: Option<Mark>,
    pub on_no_verdict: Option<Mark>,
}

impl Remap {
    /// The exit code of `outcome` under this remapping.
    pub(crate) fn exit_code(&self, outcome: Outcome) -> Exit {
        match outcome {
            Outcome::Pass => Exit::Good,
            Outcome::Fail => Exit::Bad,
            Outcome::Crash => self.on_crash.map_or(Exit::Crash, Exit::from),
            Outcome::Hang => self.on_hang.map_or(Exit::Hang, Exit::from),
            Outcome::Skip => Exit::Skip,
            Outcome::NoVerdict => self.on_no_verdict.map_or(Exit::Skip, Exit::from),
            Outcome::Error => Exit::Error,
        }
    }
}

/// The outcome of several runs of the same test: pass only if every run
/// passed; otherwise the most serious outcome seen (error, then fail,
/// crash, hang, no-verdict, skip).
pub(crate) fn combine(outcomes: impl IntoIterator<Item = Outcome>) -> Option<Outcome> {
    const SEVERITY: [Outcome; 7] = [
        Outcome::Pass,
        Outcome::Skip,
        Outcome::NoVerdict,
        Outcome::Hang,
        Outcome::Crash,
        Outcome::Fail,
        Outcome::Error,
    ];
    let rank = |o: &Outcome| SEVERITY.iter().position(|s| s == o);
    outcomes.into_iter().max_by_key(rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exit_codes_are_the_contract() {
        let r = Remap::default();
        let codes: Vec<u8> = [
            Outcome::Pass,
            Outcome::Fail,
            Outcome::Crash,
            Outcome::Hang,
            Outcome::Skip,
            Outcome::NoVerdict,
            Outcome::Error,
        ]
        .into_iter()
        .map(|o| r.exit_code(o).code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 125, 125, 128]);
        assert_eq!(Exit::Interrupted.code(), 130);
    }

    #[test]
    fn remap_changes_only_what_it_names() {
        let r = Remap { on_crash: Some(Mark::Good), on_hang: Some(Mark::Bad), on_no_verdict: Some(Mark::Bad) };
        assert_eq!(r.exit_code(Outcome::Crash), Exit::Good);
        assert_eq!(r.exit_code(Outcome::Hang), Exit::Bad);
        assert_eq!(r.exit_code(Outcome::NoVerdict), Exit::Bad);
        assert_eq!(r.exit_code(Outcome::Fail), Exit::Bad);
        assert_eq!(r.exit_code(Outcome::Error), Exit::Error);
        let r = Remap { on_crash: Some(Mark::Skip), ..Remap::default() };
        assert_eq!(r.exit_code(Outcome::Crash), Exit::Skip);
        assert_eq!(r.exit_code(Outcome::Hang), Exit::Hang);
    }

    #[test]
    fn combined_runs_pass_only_if_all_pass() {
        use Outcome::*;
        assert_eq!(combine([Pass, Pass, Pass]), Some(Pass));
        assert_eq!(combine([Pass, Fail, Pass]), Some(Fail));
        assert_eq!(combine([Pass, Skip]), Some(Skip));
        assert_eq!(combine([Hang, Crash]), Some(Crash));
        assert_eq!(combine([Fail, Error]), Some(Error));
        assert_eq!(combine([]), None);
    }
}
