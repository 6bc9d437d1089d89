//! krepro's command line: the `krepro` binary's whole interface, which
//! `cargo xtask` runs from the checkout too. Each command turns its flags
//! into a plain request ([`crate::request`]), hands it to the library and
//! shows what comes back: progress on stderr, one summary line, or
//! `--json` on stdout; the exit status says the verdict.

pub mod args;
mod bisect;
mod cache;
mod commands;
mod config;
pub mod progress;
mod run;
mod syz;

use std::path::PathBuf;

use crate::boot::outcome::Exit;
use crate::host::cache::Cache;

pub use args::BootArgs;

/// krepro: turn a kernel bug into a boot test that runs in seconds, and
/// find the commit that caused it.
///
/// `krepro run` boots a kernel in qemu with a tiny initrd whose PID 1 runs
/// the repro, and exits with its verdict: 0 pass, 1 fail, 2 crash, 3 hang,
/// 125 skip or no verdict, 128 could not run, 130 interrupted. In a kernel
/// tree it boots the tree's own image (`-b` builds it first); elsewhere a
/// distro kernel. Made for `git bisect run`, and `krepro bisect` does the
/// whole bisect itself.
#[derive(clap::Parser, Debug)]
#[command(name = "krepro", version)]
pub struct Krepro {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub global: Global,
}

/// Flags every command takes.
#[derive(clap::Args, Debug)]
pub struct Global {
    /// When another krepro holds what this one needs (a bisect's state, a
    /// worktree, a build dir), wait for it instead of stopping (exit 128)
    #[arg(long, global = true)]
    pub wait: bool,
}

impl Global {
    /// The user's cache, with these flags.
    pub fn cache(&self) -> Cache {
        Cache::from_env().waiting(self.wait)
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Boot a kernel with a repro and exit with its verdict
    ///
    /// The kernel: --kernel FILE; else with -b the kernel tree (the current
    /// directory or --source DIR), built first with krepro's minimal
    /// config plus what the repro declares (or --config FILE); else the
    /// tree's own image (arch/*/boot/bzImage or Image, in --build-dir for
    /// O= builds); outside a tree $KREPRO_KERNEL, the newest kernel in the
    /// cache, /boot/vmlinuz-$(uname -r), or the newest Debian cloud
    /// kernel, fetched. A tree that does not build exits 125, so `git
    /// bisect run` skips that commit.
    Run(Box<run::RunArgs>),
    /// Write NAME.rs, a repro to start from: it builds, passes on a kernel
    /// without the bug, and shows the SDK's main calls
    New {
        /// The repro's name: lower-case letters, digits and _
        name: String,
        /// Where to write it [default: the current directory]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List repros: name, what it checks, the kernel config it needs
    Repros {
        /// A directory of .rs repros, or one file [default: krepro's own]
        dir: Option<PathBuf>,
    },
    /// Build init with a repro and pack the initrd (gzip'd newc cpio); prints its path
    Initrd(Box<commands::InitrdArgs>),
    /// Fetch a distro kernel, or build the smallest kernel for a repro from source
    Kernel {
        #[command(subcommand)]
        command: commands::KernelCommand,
    },
    /// Configs: shrink one that reproduces (`config minimize`)
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
    },
    /// Find the commit (or the config option) that caused a bug
    ///
    /// Commit bisect (--good, --bad): runs in a worktree of krepro's own
    /// (your checkout, index and stash are never touched), building each
    /// commit with the kernel builder (or --build-cmd) and booting it with
    /// the repro; with --find-fix, the commit that fixed it. A commit that
    /// does not build is skipped; an infrastructure failure stops the
    /// bisect; the same command resumes it. With --kernels or --debian it
    /// bisects prebuilt kernels instead, nothing built, and names the
    /// upstream range to bisect in git next. Config bisect (--config-good,
    /// --config-bad): at one commit, the option whose change from one
    /// config to the other makes the repro fail, with its Kconfig entry
    /// and the changed options that go with it. Prints a Markdown report. Exit: 0
    /// found (and verified), 2 found but not verified, 125 only untestable
    /// commits left, 128 error, 130 interrupted
    Bisect(Box<bisect::BisectArgs>),
    /// Run a syzbot report's C reproducer on a kernel, and find its cause
    ///
    /// SOURCE is a directory of the report's files or a syzbot bug URL or
    /// extid. The kernel is --kernel FILE, or the kernel tree (here, or
    /// --source DIR) built at the report's commit with the report's
    /// config and compiler. The reproducer runs as syzbot runs it: looping
    /// on 2 CPUs for --duration seconds, with cgroup2 and tmpfs mounted,
    /// panic_on_warn=1 and oops=panic. It says "reproduced: TITLE" (exit
    /// 1, 2 when the kernel died of it), "other crash: TITLE (the report
    /// says TITLE2)" (exit 2) or "no crash in N s" (exit 0). With --bisect
    /// it finds the commit that caused it, chasing the report's crash only
    Syz(Box<syz::SyzArgs>),
    /// Show what krepro's cache holds, part by part; trim it (`gc`) or
    /// empty parts of it (`clean`)
    Cache(cache::CacheArgs),
}

/// A command that did not do its job: the exit status, and the message
/// for the user (one line, or a compiler's lines). With `json`, the
/// message also goes to stdout as `{"outcome":"error",...}`.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    pub json: bool,
}

impl Failure {
    pub fn new(exit: Exit, message: impl std::fmt::Display) -> Failure {
        Failure { exit, message: message.to_string(), json: false }
    }

    /// Exit 128: could not run.
    pub fn error(message: impl std::fmt::Display) -> Failure {
        Failure::new(Exit::Error, message)
    }
}

impl From<crate::RunError> for Failure {
    fn from(e: crate::RunError) -> Failure {
        Failure::new(e.exit(), e)
    }
}

/// The JSON object `--json` prints for a command that could not run.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    outcome: &'static str,
    exit_code: u8,
    message: &'a str,
}

/// Prints a failure (`error: ...` on stderr; with `--json`, the object on
/// stdout too) and gives the process its exit status.
pub fn finish(result: Result<Exit, Failure>) -> std::process::ExitCode {
    match result {
        Ok(exit) => exit.into(),
        Err(f) => {
            if f.json {
                let e = JsonError { outcome: "error", exit_code: f.exit.code(), message: &f.message };
                println!("{}", serde_json::to_string(&e).expect("plain data serialises"));
            }
            eprintln!("error: {}", f.message);
            f.exit.into()
        }
    }
}

/// Runs one command with the user's cache.
pub fn execute(command: Command, cache: &Cache) -> Result<Exit, Failure> {
    match command {
        Command::Run(args) => run::run(&args, cache),
        Command::New { name, dir } => commands::new(&name, dir),
        Command::Repros { dir } => commands::repros(dir.as_deref()),
        Command::Initrd(args) => commands::initrd(&args, cache),
        Command::Kernel { command } => commands::kernel(command, cache),
        Command::Config { command } => config::run(command, cache),
        Command::Bisect(args) => bisect::run(&args, cache),
        Command::Syz(args) => syz::run(&args, cache),
        Command::Cache(args) => cache::run(&args, cache),
    }
}

/// Runs one command, then trims the cache to its limit (see
/// [`crate::host::usage::auto_gc`]); `cache` itself trims only when asked.
pub fn execute_and_trim(command: Command, cache: &Cache) -> Result<Exit, Failure> {
    let trims = !matches!(command, Command::Cache(_));
    let result = execute(command, cache);
    if trims {
        crate::host::usage::auto_gc(cache, &mut |m| eprintln!("krepro: {m}"));
    }
    result
}

/// The `krepro` binary.
pub fn main() -> std::process::ExitCode {
    let krepro = parse_or_exit::<Krepro>();
    until_the_reader_goes(|| finish(execute_and_trim(krepro.command, &krepro.global.cache())))
}

/// Runs `f`; should krepro's reader go away (`krepro bisect ... | head`),
/// the first print to the broken pipe panics in std, and the unwinding
/// stops make and qemu and removes temp dirs on its way out (their
/// `Drop`s). Then krepro exits as interrupted, saying nothing: no one
/// reads it. Any other panic stays a panic.
pub fn until_the_reader_goes(f: impl FnOnce() -> std::process::ExitCode) -> std::process::ExitCode {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            hook(info)
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(code) => code,
        Err(payload) => {
            if is_broken_pipe(&*payload) {
                Exit::Interrupted.into()
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// Whether a panic is std's on a failed `println!` or `eprintln!` to a
/// closed pipe.
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
    message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe"))
}

/// Parses the command line; usage errors exit 128 (not clap's 2, which
/// would read as "crash" to `git bisect run`), --help and --version exit 0.
pub fn parse_or_exit<T: clap::Parser>() -> T {
    match T::try_parse() {
        Ok(t) => t,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Error.code() } else { 0 };
            let _ = e.print();
            std::process::exit(code.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Krepro::command().debug_assert();
    }

    #[test]
    fn usage_errors_are_not_a_crash_to_git_bisect() {
        use clap::Parser;
        let e = Krepro::try_parse_from(["krepro", "run", "--timeout", "0"]).unwrap_err();
        assert!(e.use_stderr());
        assert_eq!(Exit::Error.code(), 128);
    }
}
