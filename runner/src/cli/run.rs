//! `krepro run`: its flags, the progress while booting, the summary line
//! or `--json`, and the exit status.

use std::path::PathBuf;

use serde::Serialize;

use super::args::{BootArgs, ConfigArgs, GuestArgs, TreeArgs, VerdictArgs};
use super::progress::Progress;
use super::Failure;
use crate::boot::outcome::{self, Exit, Outcome};
use crate::boot::parallel;
use crate::boot::run::{self, Bootable, RunEvent, RunResult};
use crate::host::cache::Cache;
use crate::request;
use crate::session::{self, RunError};

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// Kernel to boot: an x86 bzImage or an arm64 Image (also gzip'd)
    /// [default: see above]
    #[arg(long, value_name = "FILE", conflicts_with_all = ["build", "build_dir"])]
    pub(crate) kernel: Option<PathBuf>,

    /// Build the kernel tree first (incrementally, out of tree; cached by
    /// source and config), then boot it
    #[arg(short = 'b', long)]
    pub(crate) build: bool,

    /// Where the tree's own build put its output (make O=DIR): boot
    /// DIR/arch/*/boot/... [default: the tree]
    #[arg(long, value_name = "DIR", conflicts_with = "build")]
    pub(crate) build_dir: Option<PathBuf>,

    /// Print one JSON object on stdout instead of the summary
    #[arg(long)]
    pub(crate) json: bool,

    /// Stream the console (and the qemu command) to stderr
    #[arg(short, long)]
    pub(crate) verbose: bool,

    #[command(flatten)]
    pub(crate) guest: GuestArgs,

    #[command(flatten)]
    pub(crate) boot: BootArgs,

    #[command(flatten)]
    pub(crate) verdict: VerdictArgs,

    #[command(flatten)]
    pub(crate) tree: TreeArgs,

    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

impl RunArgs {
    /// The request: which kernel (--kernel, -b, --source, $KREPRO_KERNEL,
    /// the current tree, else krepro's default), what runs, how it boots.
    pub(crate) fn request(&self) -> Result<request::Run, RunError> {
        let env_kernel = std::env::var_os("KREPRO_KERNEL").is_some_and(|v| !v.is_empty());
        let kernel = match (&self.kernel, self.build, &self.tree.source) {
            (Some(k), _, _) => request::Kernel::File(k.clone()),
            (None, true, _) => match self.tree.tree() {
                Some(dir) => request::Kernel::Build(self.config.request(dir)),
                None => {
                    return Err(RunError::BadFlag(
                        "--build: the current directory is not a kernel tree (give --source DIR)".into(),
                    ))
                }
            },
            (None, false, Some(dir)) => request::Kernel::Tree { dir: dir.clone(), build_dir: self.build_dir.clone() },
            (None, false, None) if env_kernel => request::Kernel::Default,
            (None, false, None) => match self.tree.tree() {
                Some(dir) => request::Kernel::Tree { dir, build_dir: self.build_dir.clone() },
                None if self.build_dir.is_some() => {
                    return Err(RunError::BadFlag("--build-dir needs a kernel tree (--source DIR)".into()))
                }
                None => request::Kernel::Default,
            },
        };
        Ok(request::Run {
            kernel,
            guest: self.guest.request(),
            boot: self.boot.request(),
            verdicts: self.verdict.request(),
        })
    }
}

/// Runs the whole command: checks, kernel, qemu, N boots, report.
pub(crate) fn run(args: &RunArgs, cache: &Cache) -> Result<Exit, Failure> {
    let mut ui = Ui::new(args);
    let result = execute(args, cache, &mut ui);
    ui.progress.clear();
    result.map_err(|e| Failure { json: args.json, ..Failure::from(e) })
}

fn execute(args: &RunArgs, cache: &Cache, ui: &mut Ui) -> Result<Exit, RunError> {
    let req = args.request()?;
    let session = session::prepare(&req, cache, &mut |p| match p {
        session::Progress::Say(m) => ui.progress.say(m),
        session::Progress::Build(ev) => ui.progress.build_event(ev),
    })?;
    let runs = session.verdicts.runs;
    let at_once = session::boots_at_once(session.verdicts.parallel, args.verbose, runs, &session.plan)?;
    let mut results = Vec::new();
    if at_once == 1 {
        for i in 1..=runs {
            ui.start_run(i, runs, &session.target, &session.guest.label);
            let result = run::run(&session.plan, &session.target, i, &mut |ev| ui.event(ev))?;
            ui.finish_run(&result);
            results.push(result);
        }
    } else {
        let (plan, target) = (&session.plan, &session.target);
        ui.start_parallel(runs, at_once, target, &session.guest.label);
        let boot = |i: u32, on: &mut dyn FnMut(RunEvent<'_>)| run::run(plan, target, i + 1, on);
        // A boot that could not run stops the others from starting.
        for r in parallel::boot_all(runs, at_once, &boot, &parallel::after_an_error, &mut |p| ui.parallel(p)) {
            results.push(r?);
        }
    }
    let outcome = outcome::combine(results.iter().map(|r| r.outcome)).expect("at least one run");
    let code = session.verdicts.remap.exit_code(outcome);
    ui.report(&results, outcome, code);
    Ok(code)
}

/// The JSON object `--json` prints.
#[derive(Serialize)]
struct JsonReport<'a> {
    #[serde(flatten)]
    decisive: &'a RunResult,
    exit_code: u8,
    /// The crash's title in syzbot's form (also in `crash.title`).
    crash_title: Option<&'a str>,
    /// Whether the runs disagreed (a flaky repro).
    flaky: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<&'a [RunResult]>,
}

/// The terminal side: progress while booting, then one summary line, or
/// JSON on stdout.
struct Ui {
    json: bool,
    verbose: bool,
    progress: Progress,
    label: String,
    /// What runs, as the summary names it: the repro, or the program's file.
    what: String,
    init_ms: Option<u64>,
    /// With boots at once: (runs, done, the runs booting now).
    runs: (u32, u32, Vec<u32>),
}

impl Ui {
    fn new(args: &RunArgs) -> Ui {
        let progress = Progress::new();
        Ui {
            json: args.json,
            verbose: args.verbose,
            progress: if args.verbose { progress.without_live_line() } else { progress },
            label: String::new(),
            what: String::new(),
            init_ms: None,
            runs: (0, 0, Vec::new()),
        }
    }

    fn start_run(&mut self, i: u32, n: u32, target: &Bootable, what: &str) {
        self.what = what.to_owned();
        let k = &target.kernel;
        let name = k.release.clone().unwrap_or_else(|| k.path.display().to_string());
        self.label = if n > 1 { format!("run {i}/{n}: booting {name}") } else { format!("booting {name}") };
        self.init_ms = None;
        self.progress.restart();
        self.progress.status(&self.label.clone());
    }

    fn event(&mut self, ev: RunEvent<'_>) {
        show_run_event(&mut self.progress, self.verbose, &ev);
        if let RunEvent::InitStarted { boot_ms } = ev {
            self.init_ms = Some(boot_ms);
        }
        let init = self.init_ms.map(|ms| format!(", init at {:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
        self.progress.tick(&format!("{}{init}", self.label));
    }

    /// Boots at once: the live line counts them; each finished run gets
    /// its line, in order.
    fn start_parallel(&mut self, n: u32, at_once: u32, target: &Bootable, what: &str) {
        self.what = what.to_owned();
        let k = &target.kernel;
        let name = k.release.clone().unwrap_or_else(|| k.path.display().to_string());
        self.label = format!("{n} runs, {at_once} at a time: booting {name}");
        self.runs = (n, 0, Vec::new());
        self.progress.restart();
        self.progress.status(&self.label.clone());
    }

    fn parallel(&mut self, p: parallel::Progress<'_, Result<RunResult, crate::boot::BootError>>) {
        let (n, _, booting) = &mut self.runs;
        let n = *n;
        match p {
            parallel::Progress::Started(i) => booting.push(i + 1),
            parallel::Progress::Event(i, ev) => match ev.as_run_event() {
                RunEvent::Fallback { reason } => self.progress.say(&format!("run {}: {reason}", i + 1)),
                // --verbose with runs at once: each line says whose it is.
                RunEvent::QemuStarted { command, .. } if self.verbose => eprintln!("[run {}] $ {command}", i + 1),
                RunEvent::Console(l) | RunEvent::Output(l) if self.verbose => eprintln!("[run {}] {l}", i + 1),
                RunEvent::QemuStderr(l) if self.verbose => eprintln!("[run {}] qemu: {l}", i + 1),
                _ => {}
            },
            parallel::Progress::Done(i, r) => {
                booting.retain(|b| *b != i + 1);
                self.runs.1 += 1;
                if let Ok(r) = r {
                    self.progress.clear();
                    self.finish_run(r);
                }
            }
        }
        let (_, done, booting) = &self.runs;
        let now: Vec<String> = booting.iter().map(u32::to_string).collect();
        self.progress.tick(&format!("{}: {done} of {n} done, booting run {}", self.label, now.join(", ")));
    }

    fn finish_run(&mut self, r: &RunResult) {
        self.progress.clear();
        if self.json {
            return;
        }
        let release = r.kernel_release.clone().unwrap_or_else(|| r.kernel.display().to_string());
        let mut line = format!(
            "{}: {} on {release} ({}, {:.1} s)",
            r.outcome,
            self.what,
            r.accel.name(),
            r.wall_ms as f64 / 1000.0
        );
        if !r.message.is_empty() {
            line.push_str(&format!(": {}", r.message));
        }
        eprintln!("{line}");
        if r.outcome != Outcome::Pass {
            eprintln!("  console log: {}", r.console_log.display());
        }
    }

    fn report(&mut self, results: &[RunResult], outcome: Outcome, code: Exit) {
        let flaky = results.iter().any(|r| r.outcome != results[0].outcome);
        if self.json {
            let decisive = results.iter().find(|r| r.outcome == outcome).expect("combined from these");
            let crash_title = decisive.crash.as_ref().and_then(|c| c.title.as_deref());
            let report = JsonReport {
                decisive,
                exit_code: code.code(),
                crash_title,
                flaky,
                runs: (results.len() > 1).then_some(results),
            };
            println!("{}", serde_json::to_string(&report).expect("plain data serialises"));
        } else if results.len() > 1 {
            let list: Vec<&str> = results.iter().map(|r| r.outcome.name()).collect();
            let flaky = if flaky { " (runs disagree: flaky repro)" } else { "" };
            eprintln!("{outcome} over {} runs: {}{flaky}", results.len(), list.join(", "));
        }
    }
}

/// What every command shows of a boot as it happens: fallbacks always
/// (they explain a slower boot), with `verbose` the qemu command line, the
/// console and qemu's stderr.
pub(crate) fn show_run_event(progress: &mut Progress, verbose: bool, ev: &RunEvent<'_>) {
    match ev {
        RunEvent::Fallback { reason } => progress.say(reason),
        RunEvent::QemuStarted { command, .. } if verbose => eprintln!("$ {command}"),
        RunEvent::Console(line) | RunEvent::Output(line) if verbose => eprintln!("{line}"),
        RunEvent::QemuStderr(line) if verbose => eprintln!("qemu: {line}"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    fn request(words: &[&str]) -> Result<request::Run, String> {
        let args =
            Run::try_parse_from(std::iter::once("run").chain(words.iter().copied())).map_err(|e| e.to_string())?;
        args.args.request().map_err(|e| e.to_string())
    }

    #[test]
    fn the_kernel_is_named_built_the_trees_or_the_default() {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().to_str().unwrap();
        assert_eq!(request(&["--kernel", "/k"]).unwrap().kernel, request::Kernel::File("/k".into()));
        assert_eq!(
            request(&["--source", tree, "--build-dir", "/o"]).unwrap().kernel,
            request::Kernel::Tree { dir: tree.into(), build_dir: Some("/o".into()) }
        );
        let built = request(&["-b", "--source", tree, "--config", "/c"]).unwrap().kernel;
        let request::Kernel::Build(b) = built else { panic!("{built:?}") };
        assert_eq!((b.source.as_path(), &b.base), (d.path(), &crate::builder::Base::File("/c".into())));
        // The test runs in krepro's checkout, not a kernel tree.
        assert_eq!(request(&[]).unwrap().kernel, request::Kernel::Default);
        assert!(request(&["-b"]).unwrap_err().contains("not a kernel tree"));
        assert!(request(&["--kernel", "/k", "-b"]).unwrap_err().contains("cannot be used with"));
    }
}
