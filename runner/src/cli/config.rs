//! `krepro config minimize`: the flags, the builds and boots of each
//! trial, progress and the answer.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use super::args::{BootArgs, ConfigArgs, GuestArgs, TreeArgs, VerdictArgs};
use super::bisect::{bisect_failure, config_commit, kconfig_index, Ui};
use super::Failure;
use crate::bisect::git::BuildResult;
use crate::bisect::minimize::{self, Tester, Trial};
use crate::bisect::verdict::{Rules, Shows};
use crate::bisect::{BisectEvent, Booter, PlanBooter};
use crate::boot::outcome::{Exit, Outcome};
use crate::builder::kconfig::Value;
use crate::builder::{BuildOptions, ConfigStep};
use crate::host::cache::Cache;
use crate::image::config::parse_config;
use crate::request;
use crate::session::{self, What};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Shrink a config that reproduces into a small one that still does
    ///
    /// The options --config BIG sets beyond krepro's minimal config (for
    /// the repro) are cut, within --max-builds builds of the tree (at
    /// --commit, default HEAD): first the sanitizers and debug options the
    /// crash does not need, then halves, each kept half with what its
    /// options depend on, as long as the rest still reproduces as often as
    /// BIG did (--runs). One half is built a halving (the other is taken
    /// when it does not reproduce, and checked by a later build), so the
    /// default 8 builds cut some 750 options to about 25. Prints the kept options as a fragment (or writes
    /// it to -o FILE) that `--config-add FILE` takes. Exit: 0 minimized,
    /// 1 BIG does not reproduce, 128 error, 130 interrupted
    Minimize(Box<MinimizeArgs>),
}

#[derive(clap::Args, Debug)]
pub struct MinimizeArgs {
    /// At most this many builds (each one boot, or --runs boots)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..))]
    max_builds: u32,
    /// Write the fragment here instead of printing it
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The commit to build [default: HEAD]
    #[arg(long, value_name = "REV")]
    commit: Option<String>,
    /// Print the search as JSON (the kept options, each trial)
    #[arg(long)]
    json: bool,
    /// Stream every boot's console to stderr
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    guest: GuestArgs,
    #[command(flatten)]
    boot: BootArgs,
    #[command(flatten)]
    verdict: VerdictArgs,
    #[command(flatten)]
    tree: TreeArgs,
    /// --config BIG is the config to shrink; --base the minimal one
    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run(command: ConfigCommand, cache: &Cache) -> Result<Exit, Failure> {
    match command {
        ConfigCommand::Minimize(args) => {
            let mut ui = Ui::new(args.verbose);
            let result = minimize(&args, cache, &mut ui);
            ui.progress.clear();
            result.map_err(|f| Failure { json: args.json, ..f })
        }
    }
}

/// Builds and boots each trial.
struct RealTester<'a> {
    base: BuildOptions,
    tag: String,
    cache: &'a Cache,
    booter: PlanBooter<'a>,
    rules: Rules<'a>,
    runs: u32,
    /// The outcome and crash title of the first run that showed the bug
    /// (the big config's): later runs show the bug only the same way. A
    /// trial config that hangs or crashes (it lacks a timer, say) while
    /// the big config's repro failed has not reproduced it.
    reference: Option<(Outcome, Option<String>)>,
    ui: &'a mut Ui,
    interrupted: &'a dyn Fn() -> bool,
    /// The last build's final .config.
    config: Option<PathBuf>,
}

impl Tester for RealTester<'_> {
    fn test(&mut self, options: &[(String, Value)], what: &str) -> Result<Trial, String> {
        if (self.interrupted)() {
            return Err("interrupted".into());
        }
        self.ui.progress.say(&format!("trying {what}: {} options beyond the minimal config", options.len()));
        let opts = BuildOptions {
            step: Some(ConfigStep { tag: self.tag.clone(), options: options.to_vec() }),
            ..self.base.clone()
        };
        let ui = &mut *self.ui;
        let built = crate::builder::build(&opts, self.cache, &mut |ev| ui.event(BisectEvent::Build(ev)));
        self.config = built.as_ref().ok().map(|b| b.config.clone());
        let kernel = match crate::bisect::git::build_result(built, self.cache)? {
            BuildResult::Kernel { kernel, .. } => kernel,
            BuildResult::Failed { why, .. } => {
                ui.progress.say(&format!("  -> does not build: {why}"));
                return Ok(Trial { bug: 0, runs: 0, built: false });
            }
        };
        let mut bug = 0;
        for run in 1..=self.runs {
            let b = self.booter.boot(&kernel, run, &mut |ev| ui.event(ev)).map_err(|e| e.to_string())?;
            if self.rules.shows(b.outcome, b.crash_title.as_deref())? != Shows::Bug {
                continue;
            }
            match &self.reference {
                None => self.reference = Some((b.outcome, b.crash_title.clone())),
                Some((outcome, title))
                    if !same_way(*outcome, title.as_deref(), b.outcome, b.crash_title.as_deref()) =>
                {
                    let seen = b.crash_title.as_deref().map_or_else(|| b.outcome.to_string(), str::to_owned);
                    ui.progress.say(&format!("  -> {seen}: not the big config's {outcome}, so not the bug"));
                    continue;
                }
                Some(_) => {}
            }
            bug += 1;
        }
        ui.progress.say(&format!("  -> the bug in {bug} of {} runs", self.runs));
        Ok(Trial { bug, runs: self.runs, built: true })
    }

    fn crash_title(&self) -> Option<String> {
        self.reference.as_ref().and_then(|(_, t)| t.clone())
    }
}

/// Whether a run (`outcome`, `title`) shows the bug the way the reference
/// run did: the same outcome, and for a crash the same crash.
fn same_way(reference: Outcome, ref_title: Option<&str>, outcome: Outcome, title: Option<&str>) -> bool {
    reference == outcome
        && match (ref_title, title) {
            (Some(a), Some(b)) => crate::boot::title::same_bug(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
}

fn minimize(args: &MinimizeArgs, cache: &Cache, ui: &mut Ui) -> Result<Exit, Failure> {
    let interrupt = crate::boot::interrupt::install();
    let interrupted = || interrupt.load(Ordering::SeqCst);
    let big_path = args.config.config.clone().ok_or_else(|| Failure::error("--config BIG: the config to minimize"))?;
    let (big_text, big_arch) =
        crate::image::config::read_kernel_config("--config", &big_path).map_err(Failure::error)?;
    let source = args
        .tree
        .tree()
        .ok_or_else(|| Failure::error("config minimize needs a kernel tree: run it in one, or give --source DIR"))?;
    let commit = config_commit(&source, args.commit.as_deref()).map_err(bisect_failure)?;
    let arch = session::arch(&args.boot.request(), None)?;
    if arch != big_arch {
        return Err(Failure::error(format!(
            "--config {} is an {big_arch} config, but the guest is {arch}",
            big_path.display()
        )));
    }
    let guest_req = args.guest.request();
    let what = What::resolve(&guest_req.program)?;
    let boot = request::Boot { arch: Some(arch), ..args.boot.request() };
    let guest = session::guest(&what, &guest_req, &boot, arch, cache, &mut |m| ui.progress.say(m))?;
    let plan = session::plan(&boot, &guest, cache, &mut |m| ui.progress.say(m))?;
    let verdicts = args.verdict.request();
    // The minimal config: --base (tinyconfig) with krepro's and the repro's options.
    let build = request::Build { base: args.config.base.clone(), ..args.config.request(source.clone()) };
    let base = BuildOptions {
        commit: commit.clone(),
        ..guest.build_options(&build, source.clone(), session::boots_vmlinux(&boot))
    };
    let pinned = crate::builder::requests(&base).map_err(Failure::error)?.into_iter().map(|r| r.name).collect();
    let index = kconfig_index(&source, commit.as_deref(), arch, cache, &mut |m| ui.progress.say(m))?;
    let rules = Rules { remap: &verdicts.remap, min_bad: 1, same_crash: false, title: None };
    let tag = format!("config-minimize {}", blake3::hash(format!("{big_path:?} {commit:?}").as_bytes()).to_hex());
    let booter = PlanBooter::new(&plan);
    let mut tester = RealTester {
        base,
        tag,
        cache,
        booter,
        rules,
        runs: verdicts.runs,
        reference: None,
        ui,
        interrupted: &interrupted,
        config: None,
    };
    let failed = |e: String| match interrupted() {
        true => Failure::new(Exit::Interrupted, "interrupted"),
        false => Failure::error(e),
    };

    // The minimal config alone: what it sets is not a candidate, and if
    // it reproduces there is nothing to keep.
    let alone = tester.test(&[], "the minimal config").map_err(failed)?;
    let base_config = tester
        .config
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_config(&t))
        .ok_or_else(|| Failure::error("the minimal config does not build"))?;
    let big = parse_config(&big_text);
    let (candidates, beyond) = minimize::candidates(&big, &base_config, &pinned, &index);
    let result = if alone.bug > 0 {
        minimize::Minimized {
            kept: Vec::new(),
            of: candidates.len(),
            steps: Vec::new(),
            builds: 1,
            stopped: "the minimal config reproduces alone".into(),
        }
    } else {
        match minimize::minimize(&big, candidates, &index, (args.max_builds as usize, 1), &mut tester) {
            Ok(m) => m,
            Err(e) if e.contains("does not reproduce") => {
                eprintln!("krepro: --config {}: {e}", big_path.display());
                return Ok(Exit::Bad);
            }
            Err(e) => return Err(failed(e)),
        }
    };
    let builds = result.builds;
    let fragment = result.fragment();
    if let Some(out) = &args.output {
        std::fs::write(out, &fragment).map_err(|e| Failure::error(format!("write {}: {e}", out.display())))?;
    }
    if args.json {
        let j = serde_json::json!({
            "kept": result.kept.iter().map(|(n, v)| format!("CONFIG_{n}={v}")).collect::<Vec<_>>(),
            "of": result.of,
            "beyond_minimal": beyond,
            "builds": builds,
            "stopped": result.stopped,
            "steps": result.steps,
            "output": args.output,
        });
        println!("{j}");
    } else if args.output.is_none() {
        print!("{fragment}");
    }
    let to = args.output.as_ref().map(|o| format!(": {}", o.display())).unwrap_or_default();
    eprintln!(
        "krepro: kept {} of {} options beyond the minimal config ({beyond} with those they decide), in {builds} \
         builds ({}){to}",
        result.kept.len(),
        result.of,
        result.stopped
    );
    Ok(Exit::Good)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trial_shows_the_bug_only_the_way_the_big_config_did() {
        use Outcome::{Crash, Fail, Hang};
        assert!(same_way(Fail, None, Fail, None));
        // A config that lost its timer hangs: not the failing repro.
        assert!(!same_way(Fail, None, Hang, None));
        assert!(!same_way(Fail, None, Crash, Some("BUG: kernel NULL pointer dereference in f")));
        let warn = Some("WARNING in __do_sys_prctl");
        assert!(same_way(Crash, warn, Crash, Some("WARNING in prctl")));
        assert!(!same_way(Crash, warn, Crash, Some("KASAN: use-after-free Read in g")));
    }
}
