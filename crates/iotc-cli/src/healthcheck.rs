//! `iotc healthcheck`: the container health check without a shell or curl. It sends
//! `GET /healthz` to a service on the container's loopback and succeeds on status 200.

use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest answer read: the status line is all that matters.
const MAX_ANSWER: u64 = 4096;

#[derive(clap::Args)]
pub struct Args {
    /// Port of the service's /healthz, unless the variable --port-env names is set.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Environment variable holding the service's port (e.g. IOTC_API_PORT), so a service
    /// moved to another port stays healthy.
    #[arg(long)]
    port_env: Option<String>,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let port = port(&args)?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let status = get_status(SocketAddr::from(([127, 0, 0, 1], port)), timeout)?;
    if status != 200 {
        bail!("GET /healthz on port {port}: status {status}");
    }
    Ok(())
}

fn port(args: &Args) -> anyhow::Result<u16> {
    let Some(name) = &args.port_env else {
        return Ok(args.port);
    };
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse()
            .with_context(|| format!("{name}={value} is not a port")),
        _ => Ok(args.port),
    }
}

/// The status code of `GET /healthz` at `addr`.
fn get_status(addr: SocketAddr, timeout: Duration) -> anyhow::Result<u16> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connect {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer)?;
    parse_status(&answer).with_context(|| format!("no HTTP status line from {addr}"))
}

/// `200` from `HTTP/1.1 200 OK\r\n...`.
fn parse_status(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-shot server answering with `answer`; returns its address.
    fn serve(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 512];
            let _ = conn.read(&mut request);
            conn.write_all(answer.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn reads_the_status() {
        let ok = serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        assert_eq!(get_status(ok, Duration::from_secs(5)).unwrap(), 200);
        let down = serve("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert_eq!(get_status(down, Duration::from_secs(5)).unwrap(), 503);
    }

    #[test]
    fn refuses_what_is_not_http() {
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b""), None);
        let garbage = serve("hello\r\n");
        assert!(get_status(garbage, Duration::from_secs(5)).is_err());
    }

    #[test]
    fn a_closed_port_is_unhealthy() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(get_status(addr, Duration::from_secs(5)).is_err());
    }
}
