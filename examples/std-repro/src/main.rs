//! A repro that uses Rust's std: a thread accepts on 127.0.0.1 while the
//! main thread connects and echoes. Built as a static executable and run
//! by krepro's init with `--exec`:
//!
//! ```text
//! RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
//!     -p std-repro --target x86_64-unknown-linux-gnu
//! cargo xtask run --exec target/x86_64-unknown-linux-gnu/release/std-repro
//! ```
//!
//! Exit status: 0 pass, 1 fail, 4 skip (as kselftests).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            println!("std-repro: no loopback TCP ({e}): skip");
            return ExitCode::from(4);
        }
    };
    let addr = listener.local_addr().expect("bound");
    let server = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0; 5];
        s.read_exact(&mut buf)?;
        s.write_all(&buf)?;
        Ok(buf)
    });
    let result = (|| -> std::io::Result<Vec<u8>> {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        c.set_read_timeout(Some(Duration::from_secs(3)))?;
        c.write_all(b"hello")?;
        let mut back = vec![0; 5];
        c.read_exact(&mut back)?;
        Ok(back)
    })();
    match (result, server.join()) {
        (Ok(back), Ok(Ok(_))) if back == b"hello" => {
            println!("std-repro: echo over {addr} from a second thread: ok");
            ExitCode::SUCCESS
        }
        (r, s) => {
            println!("std-repro: echo failed: client {r:?}, server {s:?}");
            ExitCode::FAILURE
        }
    }
}
