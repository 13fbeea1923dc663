//! The real binary under a low file limit (`ulimit -n 256`), flooded with connections
//! that send half a request head: the connection cap is clamped below the limit, so the
//! process never runs out of descriptors; the slow connections are cut at the header
//! timeout, and `/healthz` from a fresh client is answered once they are.
//!
//! A test of its own (not in `tests/`) because it needs the binary, with a file limit
//! of its own, and only a package's own integration tests get `CARGO_BIN_EXE_server`.
#![cfg(unix)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const FILE_LIMIT: u64 = 256;
/// `server::serve::FD_RESERVE`: descriptors kept out of the cap.
const RESERVE: u64 = 128;
const FLOOD: usize = 400;

struct Server {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::Receiver<String>,
    /// What it logged before it listened.
    startup: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `ulimit -n FILE_LIMIT` (soft and hard) and a 1 s header
/// timeout; returns once it logs its address.
fn start() -> Server {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FILE_LIMIT} && exec \"$0\""))
        .arg(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("HTTP_HEADER_TIMEOUT", "1s")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the server binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut logged = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no 'jwt-todo listening' within 30 s: {logged:?}"));
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if value["message"] == "jwt-todo listening" {
            break value["addr"]
                .as_str()
                .expect("addr field")
                .parse()
                .expect("a socket address");
        }
        logged.push(line);
    };
    Server {
        child,
        addr,
        lines,
        startup: logged,
    }
}

#[test]
fn under_a_low_file_limit_a_flood_of_half_heads_is_cut_and_healthz_answers() {
    let mut server = start();
    let started = Instant::now();
    let mut flood: Vec<TcpStream> = (0..FLOOD)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).expect("connect");
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nUser-Agent: slow")
                .expect("write");
            stream
        })
        .collect();

    // Accepted 128 at a time and each held 1 s: a client queued behind the flood is
    // served after about FLOOD / 128 seconds; the bound is generous.
    let bound = Duration::from_secs(4 + 10);
    let mut probe = TcpStream::connect(server.addr).expect("connect");
    probe.set_read_timeout(Some(bound)).expect("timeout");
    write!(
        probe,
        "GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    let read = probe.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200 "),
        "no answer to /healthz within {bound:?} ({read:?}): {answer:?}"
    );

    for stream in &mut flood {
        stream
            .set_read_timeout(Some(
                bound
                    .saturating_sub(started.elapsed())
                    .max(Duration::from_millis(10)),
            ))
            .expect("timeout");
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "a cut head gets no answer"),
            Err(e) => assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "a slow connection still open after {:?}",
                started.elapsed()
            ),
        }
    }
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "the server is still running"
    );
    let logged: Vec<String> = server.lines.try_iter().collect();
    assert!(
        !logged.iter().any(|line| line.contains("accept failed")),
        "the cap kept accept from failing: {logged:?}"
    );
    let cap = server
        .startup
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value["message"] == "connection limits")
        .and_then(|value| value["max_connections"].as_u64());
    assert_eq!(
        cap,
        Some(FILE_LIMIT - RESERVE),
        "the cap is clamped below the file limit: {:?}",
        server.startup
    );
}
