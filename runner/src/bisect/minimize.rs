//! `krepro config minimize`: a big config that reproduces, made small.
//!
//! The way syzkaller's `kconfig.Minimize` goes, within a budget of
//! builds: the options the big config sets beyond krepro's minimal one
//! (for the repro), those with a prompt, are the candidates. First the
//! sanitizers and debug options the crash does not need go (a WARN needs
//! no KASAN); then the candidates are halved, each half with its
//! dependency closure from the big config (what its options depend on and
//! the big config has on). One half is built a halving: when it does not
//! reproduce, the other is taken on trust and checked by a later build,
//! so eight builds take some 750 candidates down to about 25. A set that
//! reproduces less often than the big config is rejected, as syzkaller
//! does. The answer is always a set a build showed to reproduce.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::builder::kconfig::Value;
use crate::builder::kindex::Index;

/// What one trial gave: how many runs showed the bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Trial {
    pub bug: u32,
    pub runs: u32,
    /// Whether it built at all (a config that does not build shows nothing).
    pub built: bool,
}

impl Trial {
    fn shows(&self) -> bool {
        self.bug > 0
    }

    /// At least as often as `reference` (the big config's rate).
    fn as_often_as(&self, reference: &Trial) -> bool {
        self.shows()
            && u64::from(self.bug) * u64::from(reference.runs) >= u64::from(reference.bug) * u64::from(self.runs)
    }
}

/// One trial of the search, for the report.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Step {
    /// "the big config", "without unneeded debug options", "half 1 of 12 options".
    pub what: String,
    /// How many options beyond the minimal config it set.
    pub options: usize,
    /// None: a half taken without a build, because the other did not
    /// reproduce.
    pub trial: Option<Trial>,
    pub kept: bool,
}

/// The answer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Minimized {
    /// The options kept, with the big config's values, in the order
    /// applied (what an option depends on first).
    pub kept: Vec<(String, Value)>,
    /// How many options the big config set beyond the minimal one.
    pub of: usize,
    pub steps: Vec<Step>,
    /// The builds made, the minimal config's included (the budget bounds them).
    pub builds: usize,
    /// Why it stopped.
    pub stopped: String,
}

impl Minimized {
    /// The fragment the builder and `run --source` take (`--config-add FILE`).
    pub(crate) fn fragment(&self) -> String {
        self.kept
            .iter()
            .map(|(n, v)| match v {
                Value::N => format!("# CONFIG_{n} is not set\n"),
                v => format!("CONFIG_{n}={v}\n"),
            })
            .collect()
    }
}

/// Builds the minimal config plus these options and boots it (`--runs`
/// times); Err stops the search (an infrastructure failure).
pub(crate) trait Tester {
    fn test(&mut self, options: &[(String, Value)], what: &str) -> Result<Trial, String>;
    /// The crash title of the bug, once a run showed it (None: it fails
    /// without crashing).
    fn crash_title(&self) -> Option<String>;
}

/// Sanitizers and debug options, and the crash titles that need each
/// group: a crash with none of these words needs none of them.
const DEBUG_GROUPS: &[(&[&str], &[&str])] = &[
    (&["KASAN"], &["KASAN"]),
    (&["KCSAN"], &["KCSAN", "data-race"]),
    (&["KMSAN"], &["KMSAN", "uninit"]),
    (&["UBSAN"], &["UBSAN"]),
    (
        &[
            "LOCKDEP",
            "PROVE_LOCKING",
            "PROVE_RCU",
            "DEBUG_LOCK",
            "DEBUG_RT_MUTEXES",
            "DEBUG_SPINLOCK",
            "DEBUG_MUTEXES",
            "DEBUG_WW_MUTEX",
            "DEBUG_RWSEMS",
            "LOCK_STAT",
        ],
        &["deadlock", "lock", "RCU"],
    ),
    (&["DEBUG_LIST", "BUG_ON_DATA_CORRUPTION"], &["corrupted list", "list_"]),
    (&["HARDENED_USERCOPY"], &["usercopy"]),
    (&["DEBUG_OBJECTS"], &["ODEBUG"]),
    (&["KFENCE"], &["KFENCE"]),
    (
        &[
            "KCOV",
            "FAULT_INJECTION",
            "FAIL",
            "DEBUG_KMEMLEAK",
            "DEBUG_PAGEALLOC",
            "DEBUG_VM",
            "DEBUG_INFO",
            "DEBUG_KOBJECT",
            "DEBUG_SG",
            "DEBUG_NOTIFIERS",
            "DEBUG_CREDENTIALS",
            "DEBUG_STACK_USAGE",
        ],
        &["memory leak", "kmemleak", "VM_BUG", "page", "sg_"],
    ),
];

/// Whether `name` is a sanitizer or debug option that a crash titled
/// `title` (None: not a crash, e.g. a failing repro) does not need.
pub(crate) fn unneeded_debug(name: &str, title: Option<&str>) -> bool {
    DEBUG_GROUPS.iter().any(|(prefixes, needed_by)| {
        prefixes.iter().any(|p| name.starts_with(p)) && !title.is_some_and(|t| needed_by.iter().any(|w| t.contains(w)))
    })
}

/// The options the big config sets beyond `base`: on (or another value)
/// in `big` and not so in `base`, except the `pinned` ones (krepro's and
/// the repro's, in every candidate anyway) and those without a prompt
/// (what selects them or their defaults decide them: olddefconfig sets
/// them again from the options kept), in dependency order. The second
/// number is how many the big config set beyond `base` in all.
pub(crate) fn candidates(
    big: &BTreeMap<String, Value>,
    base: &BTreeMap<String, Value>,
    pinned: &BTreeSet<String>,
    index: &Index,
) -> (Vec<String>, usize) {
    let beyond: Vec<&String> =
        big.iter().filter(|(n, v)| **v != Value::N && base.get(*n) != Some(*v)).map(|(n, _)| n).collect();
    let settable = |n: &&&String| index.entries.get(n.as_str()).is_none_or(|e| e.prompt.is_some());
    let names: Vec<String> =
        beyond.iter().filter(|n| !pinned.contains(n.as_str())).filter(settable).map(|n| (*n).clone()).collect();
    (index.dependency_order(&names), beyond.len())
}

/// `names` and what they depend on among the `pool` of candidates (what
/// is not a candidate the minimal config has already), transitively, in
/// the pool's order.
pub(crate) fn closure(names: &[String], pool: &[String], index: &Index) -> Vec<String> {
    let pool_set: BTreeSet<&str> = pool.iter().map(String::as_str).collect();
    let mut out: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if !out.insert(n.clone()) {
            continue;
        }
        if let Some(e) = index.entries.get(&n) {
            todo.extend(e.depends_on().into_iter().filter(|d| pool_set.contains(d.as_str()) && !out.contains(d)));
        }
    }
    pool.iter().filter(|n| out.contains(*n)).cloned().collect()
}

/// The search; `max_builds` bounds the builds, `built` of them made
/// before it (the minimal config's).
pub(crate) fn minimize(
    big: &BTreeMap<String, Value>,
    candidates: Vec<String>,
    index: &Index,
    (max_builds, built): (usize, usize),
    tester: &mut dyn Tester,
) -> Result<Minimized, String> {
    let of = candidates.len();
    let with_values = |names: &[String]| -> Vec<(String, Value)> {
        names.iter().filter_map(|n| big.get(n).map(|v| (n.clone(), v.clone()))).collect()
    };
    let mut steps = Vec::new();
    let mut builds = built;
    let trial = |tester: &mut dyn Tester, names: &[String], what: String, steps: &mut Vec<Step>, builds: &mut usize| {
        *builds += 1;
        let t = tester.test(&with_values(names), &what)?;
        steps.push(Step { what, options: names.len(), trial: Some(t), kept: false });
        Ok::<Trial, String>(t)
    };

    // The big config's own rate: the bar every smaller one must meet.
    let reference = trial(tester, &candidates, "the big config".into(), &mut steps, &mut builds)?;
    if !reference.shows() {
        return Err(if reference.built {
            "the big config does not reproduce: nothing to minimize".into()
        } else {
            "the big config does not build".into()
        });
    }
    steps.last_mut().expect("a step").kept = true;
    let mut kept = candidates;
    let mut stopped = String::new();

    // The crash the big config shows decides which sanitizers stay. They
    // go without a build of their own: the first half that reproduces
    // confirms it, as for an inferred half below.
    let title = tester.crash_title();
    let lean: Vec<String> = kept.iter().filter(|n| !unneeded_debug(n, title.as_deref())).cloned().collect();
    let lean = closure(&lean, &kept, index);
    let mut confirmed = kept.clone();
    let mut inferred = false;
    if lean.len() < kept.len() {
        steps.push(Step {
            what: format!("without {} sanitizer and debug options the crash does not need", kept.len() - lean.len()),
            options: lean.len(),
            trial: None,
            kept: true,
        });
        (kept, inferred) = (lean, true);
    }

    // Halving: the half with the smaller closure is built; when it does
    // not reproduce, the bug is taken to be in the other half without a
    // build of its own (one build a halving, as a bisect). A later half
    // that reproduces confirms it; if none did when one build is left, that
    // build checks the inferred set, and should it not reproduce (the bug
    // needs options of both halves) the answer is the last set that did.
    while stopped.is_empty() {
        let left = max_builds.saturating_sub(builds);
        if inferred && (left == 1 || kept.len() <= 1) {
            let what = format!("the {} options the halving came to", kept.len());
            let t = trial(tester, &kept, what, &mut steps, &mut builds)?;
            if t.as_often_as(&reference) {
                steps.last_mut().expect("a step").kept = true;
                confirmed = kept.clone();
            } else {
                kept = confirmed.clone();
                stopped = "a half that did not reproduce held a needed option: the last set that did is kept".into();
                break;
            }
            inferred = false;
            continue;
        }
        if kept.len() <= 1 {
            stopped = "one option or none left".into();
            break;
        }
        if left == 0 {
            stopped = format!("the budget of {max_builds} builds is spent");
            break;
        }
        let (h1, h2) = kept.split_at(kept.len() / 2);
        let mut halves = [closure(h1, &kept, index), closure(h2, &kept, index)];
        halves.sort_by_key(Vec::len);
        let [small, other] = halves;
        if small.len() >= kept.len() {
            stopped = "each half depends on the other: no smaller set".into();
            break;
        }
        let what = format!("a half of {} options ({} with what they depend on)", kept.len(), small.len());
        let t = trial(tester, &small, what, &mut steps, &mut builds)?;
        if t.as_often_as(&reference) {
            steps.last_mut().expect("a step").kept = true;
            (kept, confirmed, inferred) = (small.clone(), small, false);
        } else if other.len() < kept.len() {
            steps.push(Step {
                what: format!("the other half ({} options), taken without a build", other.len()),
                options: other.len(),
                trial: None,
                kept: true,
            });
            (kept, inferred) = (other, true);
        } else {
            stopped = "the half that did not reproduce is needed, and the other half depends on it".into();
        }
    }
    if inferred {
        kept = confirmed; // the budget ran out before the check (max_builds < 3)
    }
    Ok(Minimized { kept: with_values(&kept), of, steps, builds, stopped })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::config::parse_config;
    use std::path::Path;

    /// Reproduces when every option of `needs` is on; counts its builds.
    struct Needs {
        needs: Vec<&'static str>,
        tried: Vec<usize>,
    }

    impl Tester for Needs {
        fn test(&mut self, options: &[(String, Value)], _: &str) -> Result<Trial, String> {
            self.tried.push(options.len());
            let on = |n: &str| options.iter().any(|(o, v)| o == n && *v == Value::Y);
            let bug = u32::from(self.needs.iter().all(|n| on(n)));
            Ok(Trial { bug, runs: 1, built: true })
        }

        fn crash_title(&self) -> Option<String> {
            None
        }
    }

    fn big(n: usize) -> (BTreeMap<String, Value>, Index) {
        let mut text =
            String::from("CONFIG_X86_64=y\nCONFIG_EXT4_FS=y\nCONFIG_BLOCK=y\nCONFIG_KASAN=y\nCONFIG_DEBUG_VM=y\n");
        for i in 0..n {
            text.push_str(&format!("CONFIG_DRIVER_{i:03}=y\n"));
        }
        let mut index = Index::default();
        index.add(
            Path::new("fs/Kconfig"),
            "config BLOCK\n\tbool \"block\"\n\nconfig EXT4_FS\n\ttristate \"ext4\"\n\tdepends on BLOCK\n",
        );
        // A driver that depends on a debug option keeps it.
        index.add(Path::new("lib/Kconfig.debug"), "config DRIVER_000\n\tbool \"d\"\n\tdepends on DEBUG_VM\n");
        (parse_config(&text), index)
    }

    #[test]
    fn a_config_shrinks_to_what_the_bug_needs_within_the_budget() {
        let (big, index) = big(60);
        let base = parse_config("CONFIG_X86_64=y\n");
        let (c, _) = candidates(&big, &base, &BTreeSet::new(), &index);
        assert_eq!(c.len(), 64);
        let mut t = Needs { needs: vec!["EXT4_FS", "BLOCK"], tried: Vec::new() };
        let m = minimize(&big, c, &index, (8, 0), &mut t).unwrap();
        // ext4 pulls in BLOCK, its dependency, in every half it is in.
        let kept: Vec<&str> = m.kept.iter().map(|(n, _)| n.as_str()).collect();
        assert!(kept.contains(&"EXT4_FS") && kept.contains(&"BLOCK"), "{kept:?}");
        // 1 + 1 + 2 a level: three halvings of 62 in 8 builds.
        assert!(kept.len() <= 10, "{kept:?} after {:?}", m.steps);
        assert_eq!(m.stopped, "the budget of 8 builds is spent");
        assert!(m.builds <= 8 && t.tried.len() == m.builds);
        // The debug options went first, without a build: a failing repro
        // needs no KASAN. (DEBUG_VM stays: DRIVER_000 depends on it.)
        assert!(m.steps[1].what.starts_with("without 1 sanitizer and debug") && m.steps[1].trial.is_none());
        assert!(!m.kept.iter().any(|(n, _)| n == "KASAN"), "{:?}", m.steps);
        assert_eq!(m.of, 64);
        assert!(m.fragment().contains("CONFIG_EXT4_FS=y\n"));
    }

    /// Whether `kept` shows the bug for `t`.
    fn shows(t: &mut Needs, kept: &[(String, Value)]) -> bool {
        t.test(kept, "check").unwrap().shows()
    }

    #[test]
    fn one_build_a_halving_finds_one_needed_option_among_seven_hundred() {
        let (big, index) = big(700);
        let (c, _) = candidates(&big, &parse_config("CONFIG_X86_64=y\n"), &BTreeSet::new(), &index);
        for need in ["DRIVER_007", "DRIVER_350", "DRIVER_699"] {
            let mut t = Needs { needs: vec![need], tried: Vec::new() };
            // The minimal config's build was the first of the eight.
            let m = minimize(&big, c.clone(), &index, (8, 1), &mut t).unwrap();
            assert!(m.builds <= 8 && t.tried.len() == m.builds - 1, "{:?}", m.steps);
            assert!(
                m.kept.len() <= 30 && m.kept.iter().any(|(n, _)| n == need),
                "{need}: {} {:?}",
                m.kept.len(),
                m.steps
            );
            assert!(shows(&mut t, &m.kept));
        }
    }

    #[test]
    fn needs_in_both_halves_end_with_the_last_set_that_reproduced() {
        let (big, index) = big(100);
        let (c, _) = candidates(&big, &parse_config(""), &BTreeSet::new(), &index);
        let mut t = Needs { needs: vec!["DRIVER_001", "DRIVER_098"], tried: Vec::new() };
        let m = minimize(&big, c, &index, (8, 0), &mut t).unwrap();
        assert!(shows(&mut t, &m.kept), "{:?}", m.steps);
        assert!(m.stopped.starts_with("a half that did not reproduce held a needed option"), "{}", m.stopped);
        assert!(m.builds <= 8);
    }

    #[test]
    fn options_without_a_prompt_are_left_to_olddefconfig() {
        let (big, mut index) = big(2);
        index.add(Path::new("lib/Kconfig"), "config DRIVER_001\n\tbool\n\tdefault y\n");
        let (c, beyond) = candidates(&big, &parse_config(""), &BTreeSet::new(), &index);
        assert!(!c.contains(&"DRIVER_001".to_owned()) && c.contains(&"DRIVER_000".to_owned()), "{c:?}");
        assert_eq!((c.len(), beyond), (6, 7));
    }

    #[test]
    fn a_crash_keeps_the_sanitizer_that_reports_it_and_a_rarer_repro_is_rejected() {
        assert!(!unneeded_debug("KASAN_GENERIC", Some("KASAN: use-after-free Read in f")));
        assert!(unneeded_debug("KASAN_GENERIC", Some("WARNING in f")));
        assert!(!unneeded_debug("PROVE_LOCKING", Some("possible deadlock in f")));
        assert!(!unneeded_debug("EXT4_FS", None));
        let big_rate = Trial { bug: 6, runs: 10, built: true };
        assert!(!Trial { bug: 3, runs: 10, built: true }.as_often_as(&big_rate));
        assert!(Trial { bug: 7, runs: 10, built: true }.as_often_as(&big_rate));
        assert!(!Trial { bug: 0, runs: 10, built: true }.as_often_as(&Trial { bug: 0, runs: 10, built: true }));
    }

    #[test]
    fn a_big_config_that_does_not_reproduce_is_an_error() {
        let (big, index) = big(4);
        let (c, _) = candidates(&big, &parse_config(""), &BTreeSet::new(), &index);
        let mut t = Needs { needs: vec!["NOTHING_SETS_THIS"], tried: Vec::new() };
        let e = minimize(&big, c, &index, (8, 0), &mut t).unwrap_err();
        assert_eq!(e, "the big config does not reproduce: nothing to minimize");
        assert_eq!(t.tried.len(), 1);
    }
}
