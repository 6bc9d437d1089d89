//! `krepro`: boot a kernel with a krepro initrd and exit with the verdict.

use std::path::PathBuf;

use clap::Parser;
use krepro_runner::cli::{self, RunArgs};
use krepro_runner::host::cache::Cache;

/// Boot a kernel in qemu with krepro's initrd and exit with the repro's
/// verdict: 0 pass, 1 fail, 2 crash, 3 hang, 125 skip or no verdict, 128
/// could not run. Made for `git bisect run krepro run ...`.
#[derive(Parser)]
#[command(name = "krepro", version)]
enum Krepro {
    /// Boot once (or --runs N times) and report the verdict
    Run {
        /// The initrd to boot (`cargo xtask initrd -o FILE` builds one)
        #[arg(long, value_name = "FILE")]
        initrd: PathBuf,
        #[command(flatten)]
        args: Box<RunArgs>,
    },
    /// List the repros compiled into krepro's init
    Repros,
}

fn main() -> std::process::ExitCode {
    match cli::parse_or_exit::<Krepro>() {
        Krepro::Run { initrd, args } => cli::execute(&args, &initrd, &Cache::from_env()).into(),
        Krepro::Repros => {
            for r in repros::REPROS {
                println!("{:<22} {}", r.name, r.description);
            }
            std::process::ExitCode::SUCCESS
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Krepro::command().debug_assert();
    }
}
