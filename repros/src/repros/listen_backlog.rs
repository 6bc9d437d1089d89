//! `listen_backlog`: with syncookies off, `listen(fd, 0)` still accepts one
//! connection (Linux 4.4, "tcp: remove max_qlen_log", changed this).

use crate::prelude::*;
use rustix::net::{self, AddressFamily, Ipv4Addr, SocketAddrV4, SocketType};

pub const REPRO: Repro = Repro {
    name: "listen_backlog",
    description: "with tcp_syncookies=0, a TCP connect to a listen(fd, 0) socket is established within 3 s",
    config: &["PROC_FS", "PROC_SYSCTL", "NET", "INET"],
    run,
};

fn run(cx: &mut Cx) -> Result {
    // Without CONFIG_SYN_COOKIES the sysctl does not exist: cookies are off.
    match cx.set_sysctl("net.ipv4.tcp_syncookies", "0") {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(Error { step: "sysctl net.ipv4.tcp_syncookies=0", errno: e }),
    }
    let listener = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    net::bind(&listener, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)).step("bind 127.0.0.1:0")?;
    net::listen(&listener, 0).step("listen(fd, 0)")?;
    let addr = SocketAddrV4::try_from(net::getsockname(&listener).step("getsockname")?)
        .map_err(|_| Error { step: "getsockname is not IPv4", errno: Errno::AFNOSUPPORT })?;

    let client = net::socket(AddressFamily::INET, SocketType::STREAM, None).step("socket")?;
    // connect(2) gives up after SO_SNDTIMEO with EINPROGRESS.
    net::sockopt::set_socket_timeout(&client, net::sockopt::Timeout::Send, Some(Duration::from_secs(3)))
        .step("setsockopt SO_SNDTIMEO")?;
    let started = cx.uptime();
    Ok(match net::connect(&client, &addr) {
        Ok(()) => Verdict::Pass,
        Err(e) => Verdict::Fail(format!(
            "connect to a listen(fd, 0) socket was not established after {} ms: {}",
            (cx.uptime() - started).as_millis() as u64,
            Error { step: "connect", errno: e }
        )),
    })
}
