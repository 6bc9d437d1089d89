//! `krepro`: turn a kernel bug into a boot test that runs in seconds, and
//! find the commit that caused it. The whole interface is the library's
//! [`krepro_runner::cli`]; `cargo xtask` runs the same code.

fn main() -> std::process::ExitCode {
    krepro_runner::cli::main()
}
