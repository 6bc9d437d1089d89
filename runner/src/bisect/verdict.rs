//! A candidate's verdict from its runs, and how far the answer can be
//! trusted.
//!
//! A run shows the bug, shows another crash, runs clean, or says nothing
//! (a skip). `--same-crash` tells the first two apart by crash title, so
//! that a flaky unrelated crash at an intermediate commit is not taken for
//! the bug (syzkaller #3855). `--min-bad K` asks for K runs showing the
//! bug before a candidate is bad.
//!
//! The default K is 1. syzbot asks for max(2, N/6) of N runs to drop "1
//! crashed, 9 OK" outliers, but those outliers were unrelated crashes
//! counted as the bug; with titles compared they are "other" already, and
//! a second sighting only costs sensitivity: for a bug shown in 30% of
//! runs, 10 runs miss it 2.8% of the time with K = 1 and 15% with K = 2,
//! so over the four or five bad commits of a search K = 2 goes wrong about
//! half the time. K = 1 also lets a bad commit stop at its first sighting.

use serde::{Deserialize, Serialize};

use crate::boot::outcome::{Mark, Outcome, Remap};
use crate::boot::title::same_bug;

/// What one run says of the bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shows {
    /// It showed the bug (with `--same-crash`: a crash with its title).
    Bug,
    /// It crashed (or failed, or hung) some other way.
    Other,
    /// It passed.
    Clean,
    /// It could not tell (the repro skipped, no verdict).
    Unclear,
}

/// How runs count: the user's remapping, `--min-bad`, and with
/// `--same-crash` the title that is the bug.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rules<'a> {
    pub remap: &'a Remap,
    pub min_bad: u32,
    /// `--same-crash`.
    pub same_crash: bool,
    /// The bug's crash title (given, or learned from the bad end); None
    /// before it is known: every bad run is the bug then.
    pub title: Option<&'a str>,
}

impl Rules<'_> {
    /// What a run with `outcome` and crash `title` shows. An outcome whose
    /// exit code is above 127 (`error`) is no verdict on the candidate but
    /// on the setup: Err with the reason.
    pub(crate) fn shows(&self, outcome: Outcome, title: Option<&str>) -> Result<Shows, String> {
        Ok(match self.remap.exit_code(outcome).code() {
            0 => Shows::Clean,
            125 => Shows::Unclear,
            c if c > 127 => {
                return Err(format!("a run ended in '{outcome}' (exit {c}): that is a setup problem, not a verdict"))
            }
            _ => match (self.same_crash, self.title) {
                (true, Some(bug)) if !title.is_some_and(|t| same_bug(t, bug)) => Shows::Other,
                _ => Shows::Bug,
            },
        })
    }

    /// The verdict of runs that showed `counts`: bad with at least
    /// `min_bad` sightings of the bug; else good when a run was clean and
    /// none unclear; else skip (only other crashes, or a run that could
    /// not tell). Err for no run at all.
    pub(crate) fn verdict(&self, counts: &Counts) -> Result<Mark, String> {
        if counts.runs == 0 {
            return Err("no run".into());
        }
        Ok(if counts.bug >= self.min_bad.max(1) {
            Mark::Bad
        } else if counts.clean > 0 && counts.unclear == 0 {
            Mark::Good
        } else {
            Mark::Skip
        })
    }

    /// Whether more runs could change the verdict: once it is bad, no.
    pub(crate) fn needs_more_runs(&self, counts: &Counts) -> bool {
        counts.bug < self.min_bad.max(1)
    }
}

/// How a candidate's runs went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub runs: u32,
    /// Runs that showed the bug.
    pub bug: u32,
    /// Runs that crashed (or failed, or hung) otherwise.
    pub other: u32,
    /// Runs that passed.
    pub clean: u32,
    /// Runs that could not tell.
    pub unclear: u32,
}

impl Counts {
    pub(crate) fn add(&mut self, s: Shows) {
        self.runs += 1;
        match s {
            Shows::Bug => self.bug += 1,
            Shows::Other => self.other += 1,
            Shows::Clean => self.clean += 1,
            Shows::Unclear => self.unclear += 1,
        }
    }

    /// The share of runs that could show the bug and did: the bug's rate.
    pub(crate) fn rate(&self) -> Option<f64> {
        let seen = self.bug + self.clean;
        (seen > 0).then(|| f64::from(self.bug) / f64::from(seen))
    }

    /// For people: "3 bug, 1 other, 6 clean".
    pub fn describe(&self) -> String {
        let parts = [(self.bug, "bug"), (self.other, "other"), (self.clean, "clean"), (self.unclear, "unclear")];
        let words: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, w)| format!("{n} {w}")).collect();
        words.join(", ")
    }
}

/// How sure the answer is, given the bug's rate `p` at the bad end: each
/// good verdict from `clean` runs could have been a bad candidate that
/// hid the bug every time, which happens with probability (1 - p)^clean;
/// the confidence is the product of the chances that none did.
pub(crate) fn confidence(p: f64, clean_runs_of_good: impl IntoIterator<Item = u32>) -> f64 {
    clean_runs_of_good.into_iter().map(|n| 1.0 - (1.0 - p).powi(i32::try_from(n).unwrap_or(i32::MAX))).product()
}

/// Under this the answer is flagged unreliable.
pub const RELIABLE: f64 = 0.66;

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    fn counts(rules: &Rules<'_>, runs: &[(Outcome, Option<&str>)]) -> Counts {
        let mut c = Counts::default();
        for (o, t) in runs {
            c.add(rules.shows(*o, *t).unwrap());
        }
        c
    }

    #[test]
    fn plain_rules_are_the_old_ones() {
        let remap = Remap::default();
        let r = Rules { remap: &remap, min_bad: 1, same_crash: false, title: None };
        let v = |runs: &[Outcome]| {
            let runs: Vec<(Outcome, Option<&str>)> = runs.iter().map(|o| (*o, None)).collect();
            r.verdict(&counts(&r, &runs))
        };
        assert_eq!(v(&[Pass, Pass, Pass]), Ok(Mark::Good));
        assert_eq!(v(&[Pass, Pass, Fail]), Ok(Mark::Bad));
        assert_eq!(v(&[Crash]), Ok(Mark::Bad));
        assert_eq!(v(&[Hang]), Ok(Mark::Bad));
        assert_eq!(v(&[Pass, Skip]), Ok(Mark::Skip));
        assert_eq!(v(&[NoVerdict]), Ok(Mark::Skip));
        assert_eq!(v(&[Skip, Fail]), Ok(Mark::Bad));
        assert!(r.shows(Error, None).unwrap_err().contains("'error'"));
        assert!(v(&[]).is_err());
        let skip_hangs = Remap { on_hang: Some(Mark::Skip), ..Remap::default() };
        let r2 = Rules { remap: &skip_hangs, ..r };
        assert_eq!(r2.verdict(&counts(&r2, &[(Hang, None)])), Ok(Mark::Skip));
        assert!(r.needs_more_runs(&counts(&r, &[(Pass, None)])));
        assert!(!r.needs_more_runs(&counts(&r, &[(Pass, None), (Fail, None)])));
    }

    #[test]
    fn same_crash_tells_the_bug_from_other_crashes() {
        let remap = Remap::default();
        let r = Rules { remap: &remap, min_bad: 1, same_crash: true, title: Some("WARNING in __do_sys_prctl") };
        let bug = (Crash, Some("WARNING in prctl"));
        let other = (Crash, Some("BUG: unable to handle kernel NULL pointer dereference in prctl"));
        assert_eq!(r.shows(bug.0, bug.1), Ok(Shows::Bug));
        assert_eq!(r.shows(other.0, other.1), Ok(Shows::Other));
        // A hang, or a crash without a title, is not the titled bug.
        assert_eq!(r.shows(Hang, None), Ok(Shows::Other));
        assert_eq!(r.verdict(&counts(&r, &[other, other])), Ok(Mark::Skip), "only other crashes: skipped");
        assert_eq!(r.verdict(&counts(&r, &[other, (Pass, None)])), Ok(Mark::Good));
        assert_eq!(r.verdict(&counts(&r, &[other, bug])), Ok(Mark::Bad));
        // Before the title is known, every bad run is the bug.
        let learning = Rules { title: None, ..r };
        assert_eq!(learning.shows(other.0, other.1), Ok(Shows::Bug));
    }

    #[test]
    fn min_bad_needs_that_many_sightings() {
        let remap = Remap::default();
        let r = Rules { remap: &remap, min_bad: 2, same_crash: false, title: None };
        let c = counts(&r, &[(Fail, None), (Pass, None), (Pass, None)]);
        assert_eq!(r.verdict(&c), Ok(Mark::Good));
        assert!(r.needs_more_runs(&c));
        let c = counts(&r, &[(Fail, None), (Pass, None), (Fail, None)]);
        assert_eq!(r.verdict(&c), Ok(Mark::Bad));
        assert!(!r.needs_more_runs(&c));
        assert_eq!(c.describe(), "2 bug, 1 clean");
        assert_eq!(c.rate(), Some(2.0 / 3.0));
    }

    #[test]
    fn confidence_multiplies_the_chance_each_good_was_right() {
        // A bug in 30% of runs, three good commits of 10 clean runs each.
        let c = confidence(0.3, [10, 10, 10]);
        assert!((c - 0.9718_f64.powi(3)).abs() < 1e-3, "{c}");
        assert!(c > RELIABLE);
        // One run each: 0.3^... each good verdict is a coin toss.
        assert!(confidence(0.3, [1, 1, 1]) < RELIABLE);
        assert_eq!(confidence(1.0, [1, 1]), 1.0);
        assert_eq!(confidence(0.5, []), 1.0);
    }
}
