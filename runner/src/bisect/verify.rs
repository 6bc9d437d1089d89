//! Checking an answer before it is reported. A wrong culprit sends a
//! maintainer after an innocent commit, so the answer is tested again, as
//! KernelCI does before it reports one: the culprit fails again, the commit
//! before it passes again, and the bad end with the culprit reverted
//! passes. A bisect over prebuilt kernels checks its boundary the same way
//! (the first bad kernel fails again, the last good passes again).

use serde::{Deserialize, Serialize};

use crate::bisect::short;
use crate::boot::outcome::Mark;
use crate::boot::outcome::Outcome;

/// How many console lines a disagreeing check keeps.
pub(crate) const CONSOLE_TAIL: usize = 30;

/// The verdict on the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum VerifyStatus {
    /// Every check gave what the answer predicts.
    Verified,
    /// A check gave the opposite: the answer is not to be trusted.
    NotVerified,
    /// A check could not be made (the revert conflicts, does not build, or
    /// the repro skipped): the answer is unconfirmed.
    CouldNotVerify,
}

impl VerifyStatus {
    pub(crate) fn name(self) -> &'static str {
        match self {
            VerifyStatus::Verified => "verified",
            VerifyStatus::NotVerified => "not verified",
            VerifyStatus::CouldNotVerify => "could not verify",
        }
    }
}

/// One re-test.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Check {
    /// What it checks, e.g. "the culprit fails again".
    pub what: String,
    /// What was tested: a commit, a kernel, or "BAD with C reverted".
    pub tested: String,
    /// What the answer predicts.
    pub expected: Mark,
    /// What the runs gave; None when it could not be tested at all.
    pub got: Option<Mark>,
    /// One per boot.
    pub outcomes: Vec<Outcome>,
    /// Why it could not be tested, or the message of the deciding run.
    pub message: String,
    pub build_secs: f64,
    pub boot_secs: f64,
    /// The console's last lines, kept when the check did not agree.
    pub console_tail: Vec<String>,
}

impl Check {
    /// A check that could not be made (nothing booted).
    pub(crate) fn untestable(what: &str, tested: &str, expected: Mark, why: String, build_secs: f64) -> Check {
        Check {
            what: what.to_owned(),
            tested: tested.to_owned(),
            expected,
            got: None,
            outcomes: Vec::new(),
            message: why,
            build_secs,
            boot_secs: 0.0,
            console_tail: Vec::new(),
        }
    }

    /// A check from a tested commit or kernel: what its runs gave, and the
    /// console's tail when that is not what was expected.
    pub(crate) fn from_test(what: &str, tested: &str, expected: Mark, t: &crate::bisect::Tested) -> Check {
        let agreed = t.verdict == expected;
        let console_tail = match (&t.console_log, agreed) {
            (Some(log), false) => std::fs::read_to_string(log)
                .map(|text| {
                    let lines: Vec<&str> = text.lines().collect();
                    lines[lines.len().saturating_sub(CONSOLE_TAIL)..].iter().map(|l| (*l).to_owned()).collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Check {
            what: what.to_owned(),
            tested: tested.to_owned(),
            expected,
            // A skip (no verdict, the repro skipped, no build) confirms nothing.
            got: (t.verdict != Mark::Skip).then_some(t.verdict),
            outcomes: t.outcomes.clone(),
            message: t.message.clone(),
            build_secs: t.build_secs,
            boot_secs: t.boot_secs,
            console_tail,
        }
    }

    pub(crate) fn agrees(&self) -> bool {
        self.got == Some(self.expected)
    }
}

/// The checks of one answer, and what they add up to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Verification {
    pub status: VerifyStatus,
    /// One line: what held, or which check disagreed or could not be made.
    pub summary: String,
    pub checks: Vec<Check>,
    /// Wall time of the checks (builds and boots).
    pub secs: f64,
}

impl Verification {
    /// Adds the checks up: a disagreement outweighs a check that could not
    /// be made (it is evidence against the answer, not a lack of it).
    pub(crate) fn from_checks(checks: Vec<Check>, secs: f64) -> Verification {
        let disagreed: Vec<&Check> = checks.iter().filter(|c| c.got.is_some() && !c.agrees()).collect();
        let untested: Vec<&Check> = checks.iter().filter(|c| c.got.is_none()).collect();
        let describe = |c: &Check| {
            let got = match c.got {
                Some(m) => m.name().to_owned(),
                None => "untestable".to_owned(),
            };
            let runs: Vec<&str> = c.outcomes.iter().map(|o| o.name()).collect();
            let runs = if runs.is_empty() { String::new() } else { format!(" [{}]", runs.join(", ")) };
            format!("{} ({}): {got}{runs}: {}", c.what, c.tested, c.message.trim())
        };
        let (status, summary) = if !disagreed.is_empty() {
            let list: Vec<String> = disagreed.iter().map(|c| describe(c)).collect();
            (VerifyStatus::NotVerified, format!("did not hold: {}", list.join("; ")))
        } else if !untested.is_empty() {
            let list: Vec<String> = untested.iter().map(|c| describe(c)).collect();
            (VerifyStatus::CouldNotVerify, format!("could not check: {}", list.join("; ")))
        } else {
            let list: Vec<&str> = checks.iter().map(|c| c.what.as_str()).collect();
            (VerifyStatus::Verified, list.join(", "))
        };
        Verification { status, summary, checks, secs }
    }

    /// The report's section on it, in Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut md = format!("\n### Verification: {} ({:.0} s)\n\n{}\n", self.status.name(), self.secs, self.summary);
        md.push_str("\n| check | tested | expected | got | runs | build | boot |\n|---|---|---|---|---|---|---|\n");
        for c in &self.checks {
            let runs: Vec<&str> = c.outcomes.iter().map(|o| o.name()).collect();
            let runs = if runs.is_empty() { c.message.clone() } else { runs.join(", ") };
            let got = c.got.map_or("untestable", Mark::name);
            let row = [c.what.as_str(), short(&c.tested), c.expected.name(), got, &runs].map(|s| s.replace('|', "\\|"));
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.0} s | {:.1} s |\n",
                row[0], row[1], row[2], row[3], row[4], c.build_secs, c.boot_secs
            ));
        }
        for c in self.checks.iter().filter(|c| !c.console_tail.is_empty()) {
            md.push_str(&format!(
                "\nConsole of \"{}\" (last {} lines):\n\n```\n{}\n```\n",
                c.what,
                c.console_tail.len(),
                c.console_tail.join("\n")
            ));
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(what: &str, expected: Mark, got: Option<Mark>) -> Check {
        let mut c = Check::untestable(what, "0123456789abcdef", expected, "why".into(), 1.0);
        c.got = got;
        if got.is_some() {
            c.outcomes = vec![if got == Some(Mark::Good) { Outcome::Pass } else { Outcome::Fail }];
        }
        c
    }

    #[test]
    fn checks_add_up() {
        let v = Verification::from_checks(
            vec![
                check("the culprit fails again", Mark::Bad, Some(Mark::Bad)),
                check("its parent passes again", Mark::Good, Some(Mark::Good)),
            ],
            3.0,
        );
        assert_eq!(v.status, VerifyStatus::Verified);
        assert_eq!(v.summary, "the culprit fails again, its parent passes again");

        let v = Verification::from_checks(
            vec![
                check("the culprit fails again", Mark::Bad, Some(Mark::Good)),
                check("reverted passes", Mark::Good, None),
            ],
            3.0,
        );
        assert_eq!(v.status, VerifyStatus::NotVerified, "a disagreement outweighs an untestable check");
        assert!(
            v.summary.starts_with("did not hold: the culprit fails again (0123456789abcdef): good [pass]"),
            "{}",
            v.summary
        );

        let v = Verification::from_checks(vec![check("reverted passes", Mark::Good, None)], 3.0);
        assert_eq!(v.status, VerifyStatus::CouldNotVerify);
        assert!(
            v.markdown().contains("| reverted passes | 0123456789ab | good | untestable | why | 1 s | 0.0 s |"),
            "{}",
            v.markdown()
        );
    }
}
