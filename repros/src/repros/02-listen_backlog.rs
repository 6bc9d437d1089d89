//! `listen_backlog`: with syncookies off, `listen(fd, 0)` still accepts one
//! connection (Linux 4.4, "tcp: remove max_qlen_log", changed this).

use repros::prelude::*;
use rustix::net;

pub const REPRO: Repro = Repro {
    name: "listen_backlog",
    description: "with tcp_syncookies=0, a TCP connect to a listen(fd, 0) socket is established within 3 s",
    config: &["PROC_FS", "PROC_SYSCTL", "NET", "INET"],
    run,
    ..Repro::DEFAULT
};

fn run(cx: &mut Cx) -> Result {
    // Without CONFIG_SYN_COOKIES the sysctl does not exist: cookies are off.
    match cx.set_sysctl("net.ipv4.tcp_syncookies", "0") {
        Err(e) if e.errno() != Some(Errno::NOENT) => return Err(e.in_step("sysctl net.ipv4.tcp_syncookies=0")),
        _ => {}
    }
    let (_listener, addr) = listen_loopback(0)?;
    let client = tcp_client(Duration::from_secs(3))?;
    let started = cx.uptime();
    Ok(match net::connect(&client, &addr) {
        Ok(()) => Verdict::Pass,
        Err(errno) => Verdict::Fail(format!(
            "connect to a listen(fd, 0) socket was not established after {} ms: {}",
            (cx.uptime() - started).as_millis() as u64,
            Error::Errno { step: "connect", errno }
        )),
    })
}
