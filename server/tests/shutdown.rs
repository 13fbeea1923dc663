//! Graceful shutdown of the real binary on SIGTERM: the listener closes at once, a request
//! in flight still completes, and the process exits 0 within `SHUTDOWN_GRACE`.
//!
//! A test of its own (not in `tests/`) because only a package's own integration tests get
//! `CARGO_BIN_EXE_server`, the path of the binary cargo built for them.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: SocketAddr,
    /// Every stdout line, as the server writes them.
    lines: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(grace: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_server"))
        .env_clear()
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SHUTDOWN_GRACE", grace)
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
    let addr = loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server logs that it listens within 30 s");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if value["message"] == "jwt-todo listening" {
            break value["addr"]
                .as_str()
                .expect("addr field")
                .parse()
                .expect("a socket address");
        }
    };
    Server { child, addr, lines }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads one HTTP/1.1 response with a `content-length` body.
fn read_response(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("response line");
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("length");
        }
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    head + &String::from_utf8_lossy(&body)
}

/// A keep-alive connection on which the server has already answered, so it was
/// accepted before the signal (a connection still in the kernel backlog is not in flight).
fn accepted_connection(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").expect("write");
    assert!(read_response(&mut stream).starts_with("HTTP/1.1 200"));
    stream
}

const LOGIN: &str = r#"{"username":"username","password":"password"}"#;

/// Sends a login's head and part of its body, and returns once the handler is reading
/// the body (`Expect: 100-continue` is answered then): the request is in flight.
fn send_partial_login(stream: &mut TcpStream) {
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        LOGIN.len(),
    )
    .expect("write");
    let mut continued = [0u8; 25];
    stream.read_exact(&mut continued).expect("100 Continue");
    assert_eq!(&continued, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(&LOGIN.as_bytes()[..10]).expect("write");
    stream.flush().expect("flush");
}

#[test]
fn sigterm_refuses_new_connections_and_finishes_the_request_in_flight() {
    let mut server = start("10s");
    let mut stream = accepted_connection(server.addr);
    send_partial_login(&mut stream);

    let signalled = Instant::now();
    sigterm(&server.child);
    // The listener closes: new connections are refused (polled, not slept on).
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "exited with a request in flight"
    );

    // The request in flight completes normally.
    stream
        .write_all(&LOGIN.as_bytes()[10..])
        .expect("rest of the body");
    let response = read_response(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"access_token\""), "{response}");

    let status = wait_exit(&mut server.child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let logged: Vec<String> = server.lines.try_iter().collect();
    assert!(
        logged.iter().any(|l| l.contains("\"stopped\"")),
        "{logged:?}"
    );
}

#[test]
fn a_request_that_outlasts_the_grace_period_does_not_hold_the_process() {
    let mut server = start("1s");
    let mut stream = accepted_connection(server.addr);
    // Never finished: the client stalls forever.
    send_partial_login(&mut stream);

    let signalled = Instant::now();
    sigterm(&server.child);
    let status = wait_exit(&mut server.child, Duration::from_secs(6));
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() >= Duration::from_millis(900),
        "the stalled request got its grace period"
    );
}
