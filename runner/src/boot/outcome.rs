//! What a run found ([`Outcome`]) and the exit code it becomes ([`ExitCode`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a boot found. Kept apart from [`crate::RunError`], which is why a
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
    pub fn name(self) -> &'static str {
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
pub enum ExitCode {
    /// pass
    Good = 0,
    /// fail (or an outcome remapped to bad)
    Bad = 1,
    /// crash
    Crash = 2,
    /// hang
    Hang = 3,
    /// skip, no-verdict (by default)
    Skip = 125,
    /// could not run: setup error, bad input, init `error`
    Error = 128,
    /// interrupted by a signal (Ctrl-C)
    Interrupted = 130,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// What `--on-crash`, `--on-hang` and `--on-no-verdict` turn an outcome into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Decision {
    /// exit 0
    Good,
    /// exit 1
    Bad,
    /// exit 125
    Skip,
}

impl From<Decision> for ExitCode {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Good => ExitCode::Good,
            Decision::Bad => ExitCode::Bad,
            Decision::Skip => ExitCode::Skip,
        }
    }
}

/// The user's remapping of the outcomes that are bad or not depending on
/// the bug being chased.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remap {
    pub on_crash: Option<Decision>,
    pub on_hang: Option<Decision>,
    pub on_no_verdict: Option<Decision>,
}

impl Remap {
    /// The exit code of `outcome` under this remapping.
    pub fn exit_code(&self, outcome: Outcome) -> ExitCode {
        match outcome {
            Outcome::Pass => ExitCode::Good,
            Outcome::Fail => ExitCode::Bad,
            Outcome::Crash => self.on_crash.map_or(ExitCode::Crash, ExitCode::from),
            Outcome::Hang => self.on_hang.map_or(ExitCode::Hang, ExitCode::from),
            Outcome::Skip => ExitCode::Skip,
            Outcome::NoVerdict => self.on_no_verdict.map_or(ExitCode::Skip, ExitCode::from),
            Outcome::Error => ExitCode::Error,
        }
    }
}

/// The outcome of several runs of the same test: pass only if every run
/// passed; otherwise the most serious outcome seen (error, then fail,
/// crash, hang, no-verdict, skip).
pub fn combine(outcomes: impl IntoIterator<Item = Outcome>) -> Option<Outcome> {
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
        assert_eq!(ExitCode::Interrupted.code(), 130);
    }

    #[test]
    fn remap_changes_only_what_it_names() {
        let r =
            Remap { on_crash: Some(Decision::Good), on_hang: Some(Decision::Bad), on_no_verdict: Some(Decision::Bad) };
        assert_eq!(r.exit_code(Outcome::Crash), ExitCode::Good);
        assert_eq!(r.exit_code(Outcome::Hang), ExitCode::Bad);
        assert_eq!(r.exit_code(Outcome::NoVerdict), ExitCode::Bad);
        assert_eq!(r.exit_code(Outcome::Fail), ExitCode::Bad);
        assert_eq!(r.exit_code(Outcome::Error), ExitCode::Error);
        let r = Remap { on_crash: Some(Decision::Skip), ..Remap::default() };
        assert_eq!(r.exit_code(Outcome::Crash), ExitCode::Skip);
        assert_eq!(r.exit_code(Outcome::Hang), ExitCode::Hang);
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
