//! `smoke`: /proc is mounted and a TCP connection over 127.0.0.1 works.

use crate::prelude::*;
use rustix::net::{self, AddressFamily, Ipv4Addr, RecvFlags, SendFlags, SocketAddrV4, SocketType};

pub const REPRO: Repro = Repro {
    name: "smoke",
    description: "/proc is mounted and a TCP connection over 127.0.0.1 works",
    config: &["PROC_FS", "NET", "INET"],
    run,
};

fn run(cx: &mut Cx) -> Result {
    if let Err(e) = cx.read_to_string("/proc/self/stat") {
        return Ok(Verdict::Fail(format!(
            "/proc is not mounted: read /proc/self/stat: {}",
            Error { step: "open", errno: e }
        )));
    }
    Ok(match tcp_round_trip() {
        Ok(()) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!("TCP over 127.0.0.1: {e}")),
    })
}

/// Listens on 127.0.0.1, connects, accepts and echoes a few bytes.
fn tcp_round_trip() -> Result<()> {
    const HELLO: &[u8] = b"krepro smoke";
    let listener = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    net::bind(&listener, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).step("bind 127.0.0.1:0")?;
    net::listen(&listener, 1).step("listen")?;
    let addr = SocketAddrV4::try_from(net::getsockname(&listener).step("getsockname")?)
        .map_err(|_| Error { step: "getsockname is not IPv4", errno: Errno::AFNOSUPPORT })?;
    let client = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    for dir in [net::sockopt::Timeout::Send, net::sockopt::Timeout::Recv] {
        net::sockopt::set_socket_timeout(&client, dir, Some(Duration::from_secs(3))).step("set timeout")?;
    }
    net::connect(&client, &addr).step("connect")?;
    let server = net::accept(&listener).step("accept")?;
    net::send(&client, HELLO, SendFlags::empty()).step("send")?;
    let mut buf = [0u8; HELLO.len()];
    let (got, _) = net::recv(&server, &mut buf, RecvFlags::WAITALL).step("recv")?;
    if &buf[..got] != HELLO {
        return Err(Error { step: "recv returned other bytes than were sent", errno: Errno::IO });
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
