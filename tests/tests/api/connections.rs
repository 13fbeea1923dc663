//! Connection limits over real sockets: slow heads, slow bodies, idle and unread
//! connections are cut within their deadlines, the cap holds new clients in the backlog
//! instead of exhausting the process, and `/healthz` keeps answering through a flood.
//!
//! Timeouts are short here (1-3 s) and every bound asserted is generous: these tests
//! prove "cut, and not starved", not a latency.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::*;

/// Slack on every "cut within" bound: this machine's cores are shared.
const SLACK: Duration = Duration::from_secs(5);

fn addr(app: &TestApp) -> SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("the base URL is http://ip:port")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(addr(app)).await.expect("connect")
}

/// A head cut in the middle of its headers.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\nUser-Agent: slow";

/// A whole login head announcing a 100-byte body, and 50 bytes of it.
fn half_body() -> Vec<u8> {
    let mut request =
        b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            .to_vec();
    request.extend_from_slice(&[b' '; 50]);
    request
}

/// Reads until the server ends the connection (EOF or reset); `None` if it is still
/// open after `within`. Returns what was read.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_elapsed) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One response from a raw connection: status, lower-cased head, body (by
/// `Content-Length`).
async fn read_response(stream: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = tokio::time::timeout(SLACK, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a response: {buffer:?}");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = tokio::time::timeout(SLACK, stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .expect("read");
        assert!(n > 0, "closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, head, body)
}

/// `GET /healthz` on a fresh connection; the time it took.
async fn healthz(app: &TestApp, within: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(within)
        .build()
        .expect("client");
    let response = client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(response.status(), StatusCode::OK);
    started.elapsed()
}

async fn metrics(app: &TestApp) -> String {
    app.client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text")
}

/// Opens `count` connections, each sending `bytes` and then nothing.
async fn flood(app: &TestApp, count: usize, bytes: &[u8]) -> Vec<TcpStream> {
    join_all((0..count).map(|_| async {
        let mut stream = connect(app).await;
        stream.write_all(bytes).await.expect("write");
        stream
    }))
    .await
}

/// Waits for every connection to be ended by the server; panics naming how many are
/// still open after `within`.
async fn all_closed(streams: Vec<TcpStream>, within: Duration) -> Vec<Vec<u8>> {
    let outcomes = join_all(
        streams
            .into_iter()
            .map(|mut stream| async move { until_closed(&mut stream, within).await }),
    )
    .await;
    let open = outcomes.iter().filter(|o| o.is_none()).count();
    assert_eq!(open, 0, "{open} connections still open after {within:?}");
    outcomes.into_iter().flatten().collect()
}

#[tokio::test]
async fn half_heads_and_half_bodies_are_cut_while_healthz_keeps_answering() {
    let app = spawn_app_with(&[("HTTP_HEADER_TIMEOUT", "1s"), ("HTTP_BODY_TIMEOUT", "1s")]).await;
    let started = Instant::now();
    let heads = flood(&app, 500, HALF_HEAD).await;
    let bodies = flood(&app, 500, &half_body()).await;

    // A fresh client is served during the flood, well before the slow ones are cut.
    for _ in 0..5 {
        healthz(&app, SLACK).await;
    }

    let bound = Duration::from_secs(1) + SLACK;
    let (heads, bodies) = tokio::join!(all_closed(heads, bound), all_closed(bodies, bound));
    assert!(heads.iter().all(Vec::is_empty), "a cut head gets no answer");
    assert!(
        bodies
            .iter()
            .all(|answer| answer.starts_with(b"HTTP/1.1 408 ")),
        "a cut body gets its 408 first"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "cut by the deadlines, not at once"
    );
    healthz(&app, SLACK).await;
    let text = metrics(&app).await;
    assert!(
        text.contains("jwt_todo_http_connections_cut_total{reason=\"header_timeout\"} 500"),
        "{text}"
    );
    assert!(
        text.contains(
            "jwt_todo_http_requests_total{method=\"POST\",route=\"/login\",status=\"408\"} 500"
        ),
        "the access log and metrics see every 408: {text}"
    );
}

#[tokio::test]
async fn at_the_cap_new_clients_wait_only_until_the_slow_ones_are_cut() {
    const CAP: usize = 50;
    const FLOOD: usize = 200;
    let app = spawn_app_with(&[
        ("HTTP_HEADER_TIMEOUT", "1s"),
        ("HTTP_MAX_CONNECTIONS", &CAP.to_string()),
    ])
    .await;
    let streams = flood(&app, FLOOD, HALF_HEAD).await;
    // Accepted 50 at a time, each held 1 s: the last wave (and a client queued behind
    // it) is served after about FLOOD / CAP seconds.
    let waves = u32::try_from(FLOOD / CAP + 1).expect("small");
    let bound = Duration::from_secs(1) * waves + SLACK;
    let (closed, waited) = tokio::join!(all_closed(streams, bound), healthz(&app, bound));
    assert_eq!(closed.len(), FLOOD);
    assert!(waited < bound, "healthz waited {waited:?}");

    let text = metrics(&app).await;
    assert!(
        text.contains(&format!("jwt_todo_http_connections_max {CAP}")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "jwt_todo_http_connections_cut_total{{reason=\"header_timeout\"}} {FLOOD}"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_cut_at_the_header_timeout() {
    let app = spawn_app_with(&[("HTTP_HEADER_TIMEOUT", "1s"), ("HTTP_IDLE_TIMEOUT", "1h")]).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    // One byte every 100 ms: the connection is never silent, and never done.
    let (mut reader, mut writer) = stream.split();
    let trickle = async {
        for byte in HALF_HEAD.iter().cycle() {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let closed = async {
        let mut chunk = [0u8; 64];
        let outcome =
            tokio::time::timeout(Duration::from_secs(1) + SLACK, reader.read(&mut chunk)).await;
        assert!(
            matches!(outcome, Ok(Ok(0) | Err(_))),
            "still open: {outcome:?}"
        );
        started.elapsed()
    };
    let elapsed = tokio::select! {
        elapsed = closed => elapsed,
        () = trickle => panic!("the trickle ended first"),
    };
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut after {elapsed:?}"
    );
}

#[tokio::test]
async fn idle_keep_alive_outlives_the_header_timeout_but_not_the_idle_timeout() {
    let app = spawn_app_with(&[("HTTP_HEADER_TIMEOUT", "1s"), ("HTTP_IDLE_TIMEOUT", "3s")]).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

    let mut idle = connect(&app).await;
    idle.write_all(request).await.expect("write");
    assert_eq!(read_response(&mut idle).await.0, 200);
    // Longer than the header timeout: an idle connection is not a slow head.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    idle.write_all(request).await.expect("write");
    assert_eq!(read_response(&mut idle).await.0, 200);
    let quiet = Instant::now();

    // Meanwhile an active keep-alive client: a request every 400 ms, 5 s long, on one
    // connection (longer than both timeouts together).
    let active = async {
        let mut active = connect(&app).await;
        for _ in 0..13 {
            active.write_all(request).await.expect("write");
            assert_eq!(read_response(&mut active).await.0, 200);
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    };
    let cut = async {
        let closed = until_closed(&mut idle, Duration::from_secs(3) + SLACK).await;
        assert_eq!(closed, Some(Vec::new()), "closed without a word");
        quiet.elapsed()
    };
    let ((), elapsed) = tokio::join!(active, cut);
    assert!(
        elapsed >= Duration::from_millis(2700),
        "idle cut after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_connection_closes_though_it_trickles_on() {
    let app = spawn_app_with(&[("HTTP_BODY_TIMEOUT", "1s")]).await;
    let mut stream = connect(&app).await;
    stream.write_all(&half_body()).await.expect("write");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.split();
    // The rest of the body, one byte every 100 ms: never silent, never in time.
    let trickle = async {
        for _ in 0..200 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let answered = async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout(Duration::from_secs(1) + SLACK, reader.read(&mut chunk))
                .await
            {
                Err(_) => panic!("still open: {}", String::from_utf8_lossy(&received)),
                Ok(Ok(0)) | Ok(Err(_)) => break received,
                Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let received = tokio::select! {
        received = answered => received,
        () = trickle => panic!("the trickle ended first"),
    };
    assert!(started.elapsed() >= Duration::from_millis(900));
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 408 "), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    assert!(
        text.contains("\r\ncontent-type: application/problem+json"),
        "{text}"
    );
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).expect("a body"))
        .expect("a problem document");
    assert_eq!(body["type"], "urn:jwt-todo:problem:request-timeout");
    assert_eq!(body["status"], 408);
}

#[tokio::test]
async fn prompt_requests_and_large_allowed_bodies_are_unaffected() {
    let app = spawn_app_with(&[
        ("HTTP_HEADER_TIMEOUT", "1s"),
        ("HTTP_BODY_TIMEOUT", "1s"),
        ("HTTP_IDLE_TIMEOUT", "1s"),
        ("HTTP_SEND_TIMEOUT", "1s"),
        ("MAX_BODY_BYTES", "1048576"),
    ])
    .await;
    let tokens = app.login_user().await;
    // A body just under the 1 MiB limit (valid JSON: the title, then whitespace), sent
    // at once: far more than a slow client sends, well within the deadline.
    let mut body = br#"{"title":"Buy milk""#.to_vec();
    body.resize(1024 * 1024 - 1, b' ');
    body.push(b'}');
    let response = app
        .client
        .post(app.url("/todo"))
        .bearer_auth(&tokens.access)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    // Keep-alive through the pooled client: more requests than one idle timeout.
    for _ in 0..5 {
        assert_eq!(app.me(&tokens.access).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A large response (Swagger UI, over 1.5 MB) read promptly arrives whole.
    let docs = app.client.get(app.url("/docs")).send().await.expect("sent");
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.bytes().await.expect("whole body").len() > 1_000_000);
}

#[tokio::test]
async fn a_client_that_does_not_read_its_responses_is_cut_after_the_send_timeout() {
    let app = spawn_app_with(&[("HTTP_SEND_TIMEOUT", "1s"), ("HTTP_IDLE_TIMEOUT", "1h")]).await;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small window");
    let mut stream = socket.connect(addr(&app)).await.expect("connect");
    // Twenty Swagger UIs (1.6 MB each), pipelined, and nothing read: far more than the
    // socket buffers hold, so the server's writes stall.
    let request = b"GET /docs HTTP/1.1\r\nHost: test\r\n\r\n".repeat(20);
    stream.write_all(&request).await.expect("write");
    tokio::time::sleep(Duration::from_secs(1) + SLACK).await;

    let text = metrics(&app).await;
    assert!(
        text.contains("jwt_todo_http_connections_cut_total{reason=\"send_timeout\"} 1"),
        "{text}"
    );
    let received = until_closed(&mut stream, SLACK).await.expect("closed");
    assert!(
        received.len() < 20 * 1_500_000,
        "cut before the end: {} bytes",
        received.len()
    );
}

#[tokio::test]
async fn a_head_over_16_kib_is_refused_with_431() {
    let app = spawn_app().await;
    for (size, status) in [(8 * 1024, 200), (20 * 1024, 431)] {
        let mut stream = connect(&app).await;
        let request = format!(
            "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\n\r\n",
            "a".repeat(size)
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        assert_eq!(read_response(&mut stream).await.0, status, "{size} bytes");
    }
}
