//! `smoke`: /proc is mounted and a TCP connection over 127.0.0.1 works.

use repros::prelude::*;
use rustix::net::{self, RecvFlags, SendFlags};

pub const REPRO: Repro = Repro {
    name: "smoke",
    description: "/proc is mounted and a TCP connection over 127.0.0.1 works",
    config: &["PROC_FS", "NET", "INET"],
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    if let Err(e) = cx.read_to_string("/proc/self/stat").step("read /proc/self/stat") {
        return Ok(Verdict::Fail(format!("/proc is not mounted: {e}")));
    }
    Ok(match tcp_round_trip() {
        Ok(()) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!("TCP over 127.0.0.1: {e}")),
    })
}

/// Listens on 127.0.0.1, connects, accepts and echoes a few bytes.
fn tcp_round_trip() -> Result<()> {
    const HELLO: &[u8] = b"krepro smoke";
    let (listener, addr) = listen_loopback(1)?;
    let client = tcp_client(Duration::from_secs(3))?;
    net::connect(&client, &addr).step("connect")?;
    let server = net::accept(&listener).step("accept")?;
    net::send(&client, HELLO, SendFlags::empty()).step("send")?;
    let mut buf = [0u8; HELLO.len()];
    let (got, _) = net::recv(&server, &mut buf, RecvFlags::WAITALL).step("recv")?;
    if &buf[..got] != HELLO {
        return Err(Error::Reason { step: "recv", reason: "got other bytes than were sent" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_on_the_host() {
        // The same code runs in the guest; the host has /proc and loopback too.
        assert_eq!(run(&mut Cx::new(String::new(), None)), Ok(Verdict::Pass));
    }
}
