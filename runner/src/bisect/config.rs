//! Config bisect: at one commit, which option's change from a good config
//! to a bad one turns the repro bad.
//!
//! The options whose values differ are put in an order (what an option
//! depends on, or is selected by, before it), and candidate `i` is the
//! good config with the first `i` of them set to the bad config's values:
//! candidate 0 is the good config, the last is the bad one. The search is
//! then a bisect over that list like any other (ktest's config_bisect
//! halves the same way), with its state, resume, runs and verification.
//! `olddefconfig` runs on every candidate, so an option whose dependency
//! is not applied yet falls away there, and two options that only work
//! together are named by the boundary: the later one, with the earlier
//! ones it depends on in the report. Verification checks the answer
//! alone: the good config plus the option (and the changed options it
//! depends on) is bad, and the bad config without it is good.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::git::BuildResult;
use super::{BisectError, BisectEvent, Candidate, Detail, ExtraCheck, Made, Phases, Side, Space, Tested, Words};
use crate::builder::kconfig::Value;
use crate::builder::kindex::Index;
use crate::image::arch::Arch;
use crate::image::config::{parse_config, read_kernel_config};

/// One option that differs between the configs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Change {
    /// Without `CONFIG_`.
    pub name: String,
    /// Its value in the good config and in the bad one (`n`: not set).
    pub good: Value,
    pub bad: Value,
}

impl Change {
    fn describe(&self) -> String {
        format!("CONFIG_{} {} -> {}", self.name, self.good, self.bad)
    }
}

/// The two configs, checked: both kernel configs of one architecture,
/// differing in something krepro does not set itself.
#[derive(Clone, Debug)]
pub(crate) struct Pair {
    pub good: PathBuf,
    pub bad: PathBuf,
    pub arch: Arch,
    /// What differs, in the bisect's order.
    pub changes: Vec<Change>,
}

impl Pair {
    /// Reads and checks `good` and `bad`; `pinned` are the options every
    /// candidate sets anyway (krepro's, the repro's): a difference in them
    /// is no difference. The order comes from `index` where given.
    pub(crate) fn read(
        good: &Path,
        bad: &Path,
        pinned: &BTreeSet<String>,
        index: Option<&Index>,
    ) -> Result<Pair, BisectError> {
        let read = |flag: &str, path: &Path| read_kernel_config(flag, path).map_err(BisectError::BadInput);
        let (g, ga) = read("--config-good", good)?;
        let (b, ba) = read("--config-bad", bad)?;
        if ga != ba {
            return Err(BisectError::BadInput(format!(
                "--config-good {} is an {ga} config but --config-bad {} is {ba}: one bisect builds one architecture",
                good.display(),
                bad.display()
            )));
        }
        let changes = diff(&parse_config(&g), &parse_config(&b), pinned);
        if changes.is_empty() {
            let same = if g == b { "the same config" } else { "the same options" };
            return Err(BisectError::BadInput(format!(
                "--config-good {} and --config-bad {} are {same}{}: nothing to bisect",
                good.display(),
                bad.display(),
                if pinned.is_empty() { "" } else { " (besides what krepro sets itself)" }
            )));
        }
        let changes = match index {
            Some(index) => {
                let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                let mut by_name: BTreeMap<String, Change> = changes.into_iter().map(|c| (c.name.clone(), c)).collect();
                index.dependency_order(&names).into_iter().filter_map(|n| by_name.remove(&n)).collect()
            }
            None => changes,
        };
        Ok(Pair { good: good.to_owned(), bad: bad.to_owned(), arch: ga, changes })
    }
}

/// The options whose values differ (absent is `n`), by name, except the
/// pinned ones.
pub(crate) fn diff(
    good: &BTreeMap<String, Value>,
    bad: &BTreeMap<String, Value>,
    pinned: &BTreeSet<String>,
) -> Vec<Change> {
    let names: BTreeSet<&String> = good.keys().chain(bad.keys()).collect();
    names
        .into_iter()
        .filter(|n| !pinned.contains(*n))
        .filter_map(|n| {
            let g = good.get(n).cloned().unwrap_or(Value::N);
            let b = bad.get(n).cloned().unwrap_or(Value::N);
            (g != b).then(|| Change { name: n.clone(), good: g, bad: b })
        })
        .collect()
}

/// Builds the tree with the good config and these options on top.
pub(crate) type BuildStep<'a> =
    dyn FnMut(&[(String, Value)], &mut dyn FnMut(BisectEvent<'_>)) -> Result<BuildResult, String> + 'a;

/// The candidates between two configs.
pub(crate) struct ConfigSpace<'a> {
    pair: Pair,
    /// The commit built, for the key and the report.
    commit: String,
    index: Index,
    build: &'a mut BuildStep<'a>,
}

/// What a candidate is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Which {
    /// The good config with the first `n` changes.
    Prefix(usize),
    /// The good config with these changes only.
    Only(Vec<String>),
    /// The bad config without this change.
    Without(String),
}

impl Which {
    fn id(&self) -> String {
        match self {
            Which::Prefix(n) => format!("changes:{n}"),
            Which::Only(names) => format!("only:{}", names.join(",")),
            Which::Without(name) => format!("without:{name}"),
        }
    }

    fn parse(id: &str) -> Option<Which> {
        let (kind, rest) = id.split_once(':')?;
        match kind {
            "changes" => rest.parse().ok().map(Which::Prefix),
            "only" => Some(Which::Only(rest.split(',').map(str::to_owned).collect())),
            "without" => Some(Which::Without(rest.to_owned())),
            _ => None,
        }
    }
}

/// What the report says of the answer.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Answer {
    /// The option whose change turns the repro bad, with where Kconfig
    /// defines it and what its help says.
    pub option: Option<Named>,
    /// The other changed options it goes with: those it depends on or is
    /// selected by, and those that depend on it or select it.
    pub related: Vec<Named>,
    pub commit: String,
    /// How many options differed (krepro's own left out), in the order
    /// searched.
    pub changes: Vec<Change>,
}

/// One option, explained.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Named {
    #[serde(flatten)]
    pub change: Change,
    /// `net/Kconfig:12`, where the tree defines it.
    pub kconfig: Option<String>,
    pub prompt: Option<String>,
    pub help: Option<String>,
    /// How it relates to the answer ("depends on it", "selects it", ...);
    /// empty for the answer itself.
    pub relation: String,
}

impl Answer {
    /// "CONFIG_X (n -> y), with CONFIG_Y it depends on".
    pub(crate) fn answer_line(&self) -> Option<String> {
        let o = self.option.as_ref()?;
        Some(format!("CONFIG_{} ({} -> {})", o.change.name, o.change.good, o.change.bad))
    }

    pub(crate) fn markdown_head(&self, found: &str) -> String {
        let Some(o) = &self.option else { return format!("## {found}") };
        let mut md = format!(
            "## {found}: CONFIG_{} ({} in --config-good, {} in --config-bad)\n",
            o.change.name, o.change.good, o.change.bad
        );
        let fact = |md: &mut String, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                md.push_str(&format!("\n- {k}: {v}"));
            }
        };
        fact(&mut md, "Kconfig", &o.kconfig);
        fact(&mut md, "prompt", &o.prompt);
        fact(&mut md, "help", &o.help);
        md.push_str(&format!("\n- at commit: {}", self.commit));
        md.push_str(&format!("\n- options that differ: {}", self.changes.len()));
        if !self.related.is_empty() {
            md.push_str("\n- changed with it:");
            for r in &self.related {
                md.push_str(&format!(
                    "\n  - CONFIG_{} ({} -> {}): {}{}",
                    r.change.name,
                    r.change.good,
                    r.change.bad,
                    r.relation,
                    r.kconfig.as_ref().map(|k| format!(", {k}")).unwrap_or_default()
                ));
            }
        }
        // The report's next lines follow ("- repro: ...").
        md.push('\n');
        md
    }
}

impl<'a> ConfigSpace<'a> {
    pub(crate) fn new(pair: Pair, commit: String, index: Index, build: &'a mut BuildStep<'a>) -> ConfigSpace<'a> {
        ConfigSpace { pair, commit, index, build }
    }

    fn n(&self) -> usize {
        self.pair.changes.len()
    }

    fn candidate(&self, which: &Which) -> Candidate {
        let label = match which {
            Which::Prefix(0) => "--config-good".to_owned(),
            Which::Prefix(n) if *n == self.n() => "--config-bad".to_owned(),
            Which::Prefix(n) => format!("{n} of {} changes, up to {}", self.n(), self.pair.changes[n - 1].describe()),
            Which::Only(names) => format!("--config-good plus {}", names.join(", ")),
            Which::Without(name) => format!("--config-bad without {name}"),
        };
        Candidate { id: which.id(), label }
    }

    fn index_of(&self, c: &Candidate) -> Option<usize> {
        match Which::parse(&c.id)? {
            Which::Prefix(n) => Some(n),
            _ => None,
        }
    }

    /// The newest old-side candidate below `hi`.
    fn lo(&self, old: &[&Candidate], hi: usize) -> usize {
        old.iter().filter_map(|c| self.index_of(c)).filter(|i| *i < hi).max().unwrap_or(0)
    }

    /// The options a candidate sets on the good config.
    fn options(&self, which: &Which) -> Vec<(String, Value)> {
        let bad = |c: &Change| (c.name.clone(), c.bad.clone());
        match which {
            Which::Prefix(n) => self.pair.changes[..*n].iter().map(bad).collect(),
            Which::Only(names) => self.pair.changes.iter().filter(|c| names.contains(&c.name)).map(bad).collect(),
            Which::Without(name) => self.pair.changes.iter().filter(|c| c.name != *name).map(bad).collect(),
        }
    }

    fn change(&self, name: &str) -> Option<&Change> {
        self.pair.changes.iter().find(|c| c.name == name)
    }

    fn named(&self, change: &Change, relation: &str) -> Named {
        let e = self.index.entries.get(&change.name);
        Named {
            change: change.clone(),
            kconfig: e.map(|e| format!("{}:{}", e.file.display(), e.line)),
            prompt: e.and_then(|e| e.prompt.clone()),
            help: e.and_then(|e| e.help.clone()),
            relation: relation.to_owned(),
        }
    }

    /// The changed options `name` needs to take effect: those it depends
    /// on, or is selected by, that differ too (in the bad config's value).
    fn needs(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .index
            .entries
            .get(name)
            .map(|e| e.depends_on().into_iter().filter(|d| d != name && self.change(d).is_some()).collect())
            .unwrap_or_default();
        out.retain(|d| self.change(d).is_some_and(|c| c.bad != Value::N));
        out
    }

    /// The changed options related to `name`, and how.
    fn related(&self, name: &str) -> Vec<Named> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([name.to_owned()]);
        let mut add = |n: &str, relation: &str, out: &mut Vec<Named>| {
            if let Some(c) = self.change(n) {
                if seen.insert(n.to_owned()) {
                    out.push(self.named(c, relation));
                }
            }
        };
        if let Some(e) = self.index.entries.get(name) {
            for d in e.depends_on() {
                add(&d, "it depends on this", &mut out);
            }
            for s in &e.selects {
                add(s, "it selects this", &mut out);
            }
        }
        for s in self.index.selected_by(name) {
            add(s, "this selects it", &mut out);
        }
        for d in self.index.dependents(name) {
            add(d, "this depends on it", &mut out);
        }
        out
    }
}

impl Space for ConfigSpace<'_> {
    fn words(&self) -> Words {
        Words { one: "config change", many: "config changes", about: "options", made: "build", compiled: true }
    }

    fn key(&self) -> String {
        let hash = |p: &Path| std::fs::read(p).map(|b| blake3::hash(&b).to_hex().to_string()).unwrap_or_default();
        format!("config\n{}\n{}\n{}", hash(&self.pair.good), hash(&self.pair.bad), self.commit)
    }

    fn ends(&self) -> (Candidate, Candidate) {
        (self.candidate(&Which::Prefix(0)), self.candidate(&Which::Prefix(self.n())))
    }

    fn open(&mut self, old: &[&Candidate], new: &Candidate) -> Result<Vec<Candidate>, BisectError> {
        let hi = self.index_of(new).unwrap_or(self.n());
        let lo = self.lo(old, hi);
        let mid = lo + (hi - lo) / 2;
        let mut open: Vec<usize> = (lo + 1..hi).collect();
        open.sort_by_key(|&i| (i.abs_diff(mid), i));
        Ok(open.into_iter().map(|i| self.candidate(&Which::Prefix(i))).collect())
    }

    fn before(&mut self, c: &Candidate, old: &[&Candidate]) -> Result<Option<Candidate>, BisectError> {
        Ok(self.index_of(c).map(|hi| self.candidate(&Which::Prefix(self.lo(old, hi)))))
    }

    fn kernel(&mut self, c: &Candidate, on: &mut dyn FnMut(BisectEvent<'_>)) -> Result<Made, BisectError> {
        let which = Which::parse(&c.id).expect("a candidate of this space");
        let options = self.options(&which);
        let started = Instant::now();
        let built = (self.build)(&options, on);
        let mut phases = Phases::default();
        match &built {
            Ok(BuildResult::Kernel { phases: b, .. }) => {
                phases.checkout = b.identify;
                phases.config = b.toolchain + b.config;
                phases.compile = b.compile;
                phases.link = b.link;
                phases.image = b.image;
                phases.ccache = b.ccache;
            }
            _ => phases.compile = started.elapsed().as_secs_f64(),
        }
        match built {
            Ok(BuildResult::Kernel { kernel, toolchain, code_hash, .. }) => {
                Ok(Made::Kernel { kernel, toolchain, fixes: Vec::new(), phases, code_hash })
            }
            // A config that does not build is split again by the search
            // (a skip), never counted as bad.
            Ok(BuildResult::Failed { why, toolchain, .. }) => {
                Ok(Made::Untestable { why, toolchain, fixes: Vec::new(), phases })
            }
            Err(message) => Err(BisectError::Infrastructure { commit: c.id.clone(), message }),
        }
    }

    /// The answer alone: the good config plus it (and the changed options
    /// it needs) fails; the bad config without it passes.
    fn extra_checks(&mut self, culprit: &Candidate, _: &Candidate) -> Result<Vec<ExtraCheck>, BisectError> {
        let Some(i) = self.index_of(culprit).filter(|i| *i > 0) else { return Ok(Vec::new()) };
        let name = self.pair.changes[i - 1].name.clone();
        let mut only = self.needs(&name);
        only.push(name.clone());
        let plus = Which::Only(only.clone());
        let without = Which::Without(name.clone());
        let with_needs = if only.len() > 1 {
            format!(" (with {}, which it depends on)", only[..only.len() - 1].join(", "))
        } else {
            String::new()
        };
        Ok(vec![
            ExtraCheck {
                what: format!("--config-good plus CONFIG_{name}{with_needs} fails"),
                tested: plus.id(),
                expected: Side::New,
                candidate: Ok(self.candidate(&plus)),
            },
            ExtraCheck {
                what: format!("--config-bad without CONFIG_{name} passes"),
                tested: without.id(),
                expected: Side::Old,
                candidate: Ok(self.candidate(&without)),
            },
        ])
    }

    fn check_words(&self, culprit: &Candidate, before: &Candidate, _: bool) -> (String, String) {
        let n = |c: &Candidate| self.index_of(c).unwrap_or(0);
        (format!("the first {} changes fail again", n(culprit)), format!("the first {} changes pass again", n(before)))
    }

    fn detail(&mut self, first: Option<&Candidate>, _: Option<&Candidate>) -> Result<Detail, BisectError> {
        let culprit = first.and_then(|c| self.index_of(c)).filter(|i| *i > 0).map(|i| self.pair.changes[i - 1].clone());
        Ok(Detail::Config(Answer {
            option: culprit.as_ref().map(|c| self.named(c, "")),
            related: culprit.as_ref().map(|c| self.related(&c.name)).unwrap_or_default(),
            commit: self.commit.clone(),
            changes: self.pair.changes.clone(),
        }))
    }

    fn log(&self, _: &[Tested], _: Option<&Candidate>, _: bool) -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(lines: &[&str]) -> BTreeMap<String, Value> {
        parse_config(&lines.join("\n"))
    }

    #[test]
    fn the_difference_leaves_krepros_own_options_out() {
        let good = cfg(&["CONFIG_X86_64=y", "CONFIG_A=y", "# CONFIG_B is not set", "CONFIG_S=\"x\"", "CONFIG_TTY=y"]);
        let bad = cfg(&["CONFIG_X86_64=y", "CONFIG_B=m", "CONFIG_S=\"y\"", "CONFIG_C=n"]);
        let pinned = BTreeSet::from(["TTY".to_owned()]);
        let d = diff(&good, &bad, &pinned);
        let got: Vec<String> = d.iter().map(Change::describe).collect();
        assert_eq!(got, ["CONFIG_A y -> n", "CONFIG_B n -> m", "CONFIG_S \"x\" -> \"y\""]);
    }

    #[test]
    fn bad_pairs_are_refused_before_anything() {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let x86 = w("x86", "CONFIG_X86_64=y\nCONFIG_A=y\n");
        let x86b = w("x86b", "CONFIG_X86_64=y\n# CONFIG_A is not set\nCONFIG_TTY=y\n");
        let arm = w("arm", "CONFIG_ARM64=y\nCONFIG_A=y\n");
        let text = w("text", "hello\n");
        let none = BTreeSet::new();
        let err = |g: &Path, b: &Path, pinned: &BTreeSet<String>| match Pair::read(g, b, pinned, None) {
            Err(BisectError::BadInput(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(err(&text, &x86, &none).contains("not a kernel config"));
        assert!(err(&x86, &arm, &none).contains("is an x86_64 config but --config-bad"));
        assert!(err(&x86, &x86, &none).contains("are the same config"));
        // Only krepro's own option and A differ; A pinned too: the same.
        let pinned = BTreeSet::from(["A".to_owned(), "TTY".to_owned()]);
        assert!(err(&x86, &x86b, &pinned).contains("the same options (besides what krepro sets itself)"));
        let p = Pair::read(&x86, &x86b, &BTreeSet::from(["TTY".to_owned()]), None).unwrap();
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.arch, Arch::X86_64);
    }

    /// A fake tree: a build writes a "kernel" holding `bad` when the
    /// options make the planted bug (PLANTED=y with its dependency DEP=y:
    /// olddefconfig drops PLANTED without DEP), `good` otherwise; a boot
    /// reads it.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl crate::bisect::Booter for Fake {
        fn boot(
            &mut self,
            k: &crate::image::kernel::Kernel,
            _: u32,
            _: &mut dyn FnMut(BisectEvent<'_>),
        ) -> Result<crate::bisect::BootSummary, crate::boot::BootError> {
            let outcome = match std::fs::read_to_string(&k.path).unwrap().as_str() {
                "bad" => crate::boot::outcome::Outcome::Fail,
                _ => crate::boot::outcome::Outcome::Pass,
            };
            Ok(crate::bisect::BootSummary {
                outcome,
                message: String::new(),
                crash_title: None,
                console_log: k.path.clone(),
                prepare_secs: 0.0,
            })
        }
    }

    /// PLANTED depends on DEP.
    fn index() -> Index {
        let mut index = Index::default();
        index.add(Path::new("init/Kconfig"), "config DEP\n\tbool \"dep\"\n\nconfig PLANTED\n\tbool \"planted\"\n\tdepends on DEP\n\thelp\n\t  The planted bug.\n");
        index
    }

    fn pair(dir: &Path, others: usize) -> Pair {
        let good = dir.join("good.config");
        let bad = dir.join("bad.config");
        std::fs::write(&good, "CONFIG_X86_64=y\n").unwrap();
        let mut b = String::from("CONFIG_X86_64=y\nCONFIG_PLANTED=y\nCONFIG_DEP=y\n");
        for i in 0..others {
            b.push_str(&format!("CONFIG_OTHER_{i:02}=y\n"));
        }
        std::fs::write(&bad, b).unwrap();
        Pair::read(&good, &bad, &BTreeSet::new(), Some(&index())).unwrap()
    }

    #[test]
    fn a_search_names_the_option_and_what_it_depends_on_and_verifies_both_alone() {
        let (dir, cache) =
            (tempfile::tempdir().unwrap(), crate::host::cache::Cache::at(tempfile::tempdir().unwrap().keep()));
        let mut fake = Fake { dir: tempfile::tempdir().unwrap() };
        let p = pair(dir.path(), 30);
        // Dependencies first: DEP before PLANTED, whatever the names' order.
        let names: Vec<&str> = p.changes.iter().map(|c| c.name.as_str()).collect();
        let (d, pl) = (names.iter().position(|n| *n == "DEP"), names.iter().position(|n| *n == "PLANTED"));
        assert!(d < pl, "{names:?}");
        let index = index();
        let out = fake.dir.path().to_owned();
        let mut builds = 0;
        let mut step = |options: &[(String, Value)], _: &mut dyn FnMut(BisectEvent<'_>)| {
            builds += 1;
            let on = |n: &str| options.iter().any(|(o, v)| o == n && *v == Value::Y);
            let path = out.join(format!("k{builds}"));
            std::fs::write(&path, if on("PLANTED") && on("DEP") { "bad" } else { "good" }).unwrap();
            let kernel = crate::image::kernel::Kernel { path, release: None, arch: Arch::X86_64 };
            Ok(BuildResult::Kernel {
                kernel,
                toolchain: "fake".into(),
                phases: crate::builder::BuildPhases::default(),
                code_hash: None,
            })
        };
        let mut space = ConfigSpace::new(p, "abc123".into(), index, &mut step);
        let o = crate::bisect::Options {
            restart: false,
            repro: "planted".into(),
            description: String::new(),
            runs: 1,
            remap: crate::boot::outcome::Remap::default(),
            find_fix: false,
            key_extra: String::new(),
            check_endpoints: true,
            verify: true,
            same_crash: false,
            crash_title: None,
            min_bad: 1,
            parallel: 1,
            seed: Vec::new(),
        };
        let never = || false;
        let r = crate::bisect::bisect(&o, &mut space, &mut fake, &cache, &never, &mut |_| {}).unwrap();
        drop(space);
        assert_eq!(r.found, "first bad config change");
        let Detail::Config(a) = &r.detail else { panic!("{:?}", r.detail) };
        let option = a.option.as_ref().unwrap();
        assert_eq!((option.change.name.as_str(), option.kconfig.as_deref()), ("PLANTED", Some("init/Kconfig:4")));
        assert_eq!(option.help.as_deref(), Some("The planted bug."));
        let related: Vec<(&str, &str)> =
            a.related.iter().map(|r| (r.change.name.as_str(), r.relation.as_str())).collect();
        assert_eq!(related, [("DEP", "it depends on this")]);
        assert_eq!(a.changes.len(), 32);
        let v = r.verification.as_ref().unwrap();
        assert_eq!(v.status, crate::bisect::verify::VerifyStatus::Verified, "{}", v.summary);
        assert!(
            v.summary.contains("--config-good plus CONFIG_PLANTED (with DEP, which it depends on) fails"),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("--config-bad without CONFIG_PLANTED passes"), "{}", v.summary);
        // Two ends, about log2(32) steps, four checks.
        let steps = r.steps.iter().filter(|s| s.kind == crate::bisect::TestKind::Bisect).count();
        assert!(steps <= 6, "{steps} steps");
        // Each step built once; verification built its four.
        assert_eq!(builds, r.steps.len() + 4);
        assert_eq!(r.answer_line().as_deref(), Some("CONFIG_PLANTED (n -> y)"));
        let md = r.markdown(None);
        assert!(md.starts_with("## first bad config change: CONFIG_PLANTED (n in --config-good, y in --config-bad)\n\n- Kconfig: init/Kconfig:4\n- prompt: planted\n- help: The planted bug.\n- at commit: abc123\n- options that differ: 32\n- changed with it:\n  - CONFIG_DEP (n -> y): it depends on this, init/Kconfig:1\n"), "{md}");
    }

    #[test]
    fn candidates_are_prefixes_of_the_ordered_changes() {
        for w in [Which::Prefix(3), Which::Only(vec!["A".into(), "B".into()]), Which::Without("C".into())] {
            assert_eq!(Which::parse(&w.id()), Some(w));
        }
        assert_eq!(Which::parse("nonsense"), None);
    }
}
