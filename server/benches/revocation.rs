//! Revocation latency across two replicas, and what a cut invalidation link does to the
//! session cache (issue 16). Started by `bench/run.sh`, against two servers (A and B) on
//! one Redis that run.sh started, while wrk keeps both busy; under `cargo bench` (which
//! passes `--bench` and no subcommand) it prints a note and exits.
//!
//! ```text
//! revocation sessions --a URL --b URL --count N --out FILE   # log in N times (Argon2 each)
//! revocation measure  --a URL --b URL --tokens FILE --redis HOST:PORT --redis-pid PID …
//! ```
//!
//! `measure` runs three parts, each on sessions of its own from the token file:
//!
//! 1. **Trials** (`--trials`, default 1000). Per trial: warm B (`GET /me` with the token on
//!    B until it is answered 200, then once more, so a cache holds it), `POST /logout` on A,
//!    and from the arrival of A's 200 poll `GET /me` on B back to back until the first 401.
//!    Latency = arrival of that 401 minus arrival of A's 200; also recorded: when the
//!    request that got the 401 was sent, and when the last request answered 200 after the
//!    logout was sent (a stale serve), both relative to A's 200.
//! 2. **Pause** (`--cuts`): B serves a warm token back to back; Redis gets SIGSTOP at a
//!    random moment. Recorded: send time of the first request not answered 200 (once the
//!    cache may no longer answer, a request waits REDIS_COMMAND_TIMEOUT and gets 503) and of
//!    the last one answered 200, relative to the pause; then SIGCONT, and the time to the
//!    next 200.
//! 3. **Kill** (`--cuts`): `CLIENT KILL ID` of every client named `jwt-todo-tracking`;
//!    B's `/metrics` polled back to back: time from the kill to
//!    `jwt_todo_session_cache_entries` 0 and `jwt_todo_session_cache_live` 0, and to `live` 1
//!    again. Skipped, saying so, when B has no cache metrics or Redis no such client.
//!
//! Besides the human-readable report, each result is one `REVOCATION key=value …` line on
//! stdout that run.sh parses into its summary (times in microseconds).

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Args as ClapArgs, Parser, Subcommand};
use rand::Rng;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

#[derive(Parser, Debug)]
#[command(about = "Revocation latency across two replicas, and cache behaviour on a cut link")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true, global = true)]
    bench: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in COUNT times (spread over A and B) and write one access token per line.
    Sessions {
        #[command(flatten)]
        replicas: Replicas,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: std::path::PathBuf,
        /// Logins in flight at once (each is an Argon2 hash on the server).
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
    },
    /// The trials, the pauses and the kills (see the crate docs).
    Measure(Measure),
}

#[derive(ClapArgs, Debug, Clone)]
struct Replicas {
    /// Base URL of replica A (logouts go here).
    #[arg(long)]
    a: String,
    /// Base URL of replica B (the reads that must see the logout).
    #[arg(long)]
    b: String,
    #[arg(long, default_value = "username")]
    username: String,
    #[arg(long, default_value = "password")]
    password: String,
}

#[derive(ClapArgs, Debug)]
struct Measure {
    #[command(flatten)]
    replicas: Replicas,
    /// Access tokens of live sessions, one a line (from `sessions`): trials + 2 × cuts.
    #[arg(long)]
    tokens: std::path::PathBuf,
    /// The Redis both replicas use (for CLIENT LIST / CLIENT KILL).
    #[arg(long)]
    redis: String,
    /// The redis-server process (SIGSTOP / SIGCONT).
    #[arg(long)]
    redis_pid: i32,
    #[arg(long, default_value_t = 1000)]
    trials: usize,
    /// Pauses and kills, each.
    #[arg(long, default_value_t = 20)]
    cuts: usize,
    /// The replicas' SESSION_CACHE_STALENESS: the bound the figures are checked against
    /// (heartbeat interval = staleness / 4).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    staleness: Duration,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let Some(command) = cli.command else {
        println!(
            "revocation: started by bench/run.sh (sessions | measure); nothing to measure here"
        );
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        match command {
            Command::Sessions {
                replicas,
                count,
                out,
                in_flight,
            } => sessions(&replicas, count, &out, in_flight).await,
            Command::Measure(measure) => run_measure(measure).await,
        }
    })
}

// --- HTTP ------------------------------------------------------------------------------------

fn client() -> Result<reqwest::Client> {
    // reqwest has no TLS provider of its own in this workspace (see adapters/vonage); an
    // error here means one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")
}

/// `GET /me` with `token`; the status, once the body is read (so the connection is free).
async fn get_me(http: &reqwest::Client, base: &str, token: &str) -> Result<u16> {
    let response = http
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("GET {base}/me"))?;
    let status = response.status().as_u16();
    response.bytes().await.context("GET /me body")?;
    Ok(status)
}

async fn logout(http: &reqwest::Client, base: &str, token: &str) -> Result<u16> {
    let response = http
        .post(format!("{base}/logout"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("POST {base}/logout"))?;
    let status = response.status().as_u16();
    response.bytes().await.context("POST /logout body")?;
    Ok(status)
}

async fn login(http: &reqwest::Client, base: &str, replicas: &Replicas) -> Result<String> {
    let response = http
        .post(format!("{base}/login"))
        .json(&serde_json::json!({
            "username": replicas.username,
            "password": replicas.password,
        }))
        .send()
        .await
        .with_context(|| format!("POST {base}/login"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("login body")?;
    ensure!(status.is_success(), "POST {base}/login: {status} {body}");
    body.get("access_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("login answer without access_token: {body}"))
}

/// The metrics B reports about its session cache; `None` where the series is absent.
#[derive(Debug, Default, Clone, Copy)]
struct CacheMetrics {
    hits: Option<f64>,
    misses: Option<f64>,
    entries: Option<f64>,
    live: Option<f64>,
    /// Sum of `jwt_todo_http_requests_total` (every route and status).
    requests: f64,
}

/// Sum of a series' samples (any labels) in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())?;
        *found.get_or_insert(0.0) += value;
    }
    found
}

async fn metrics(http: &reqwest::Client, base: &str) -> Result<CacheMetrics> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .with_context(|| format!("GET {base}/metrics"))?
        .text()
        .await
        .context("metrics body")?;
    Ok(CacheMetrics {
        hits: sample(&text, "jwt_todo_session_cache_hits_total"),
        misses: sample(&text, "jwt_todo_session_cache_misses_total"),
        entries: sample(&text, "jwt_todo_session_cache_entries"),
        live: sample(&text, "jwt_todo_session_cache_live"),
        requests: sample(&text, "jwt_todo_http_requests_total").unwrap_or(0.0),
    })
}

impl CacheMetrics {
    fn present(&self) -> bool {
        self.entries.is_some() && self.live.is_some()
    }
}

// --- sessions --------------------------------------------------------------------------------

async fn sessions(
    replicas: &Replicas,
    count: usize,
    out: &std::path::Path,
    in_flight: usize,
) -> Result<()> {
    let http = client()?;
    let permits = Arc::new(Semaphore::new(in_flight.max(1)));
    let replicas = Arc::new(replicas.clone());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (http, permits, replicas) = (http.clone(), permits.clone(), replicas.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.context("semaphore closed")?;
            let base = if i % 2 == 0 { &replicas.a } else { &replicas.b };
            login(&http, base, &replicas).await
        });
    }
    let mut tokens = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        tokens.push(joined.context("login task")??);
    }
    std::fs::write(out, tokens.join("\n") + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    let took = started.elapsed();
    println!(
        "sessions: {count} logins in {:.1} s ({:.0}/s, {in_flight} in flight)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );
    Ok(())
}

// --- measure ---------------------------------------------------------------------------------

async fn run_measure(m: Measure) -> Result<()> {
    let text = std::fs::read_to_string(&m.tokens)
        .with_context(|| format!("reading {}", m.tokens.display()))?;
    let mut tokens: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let needed = m.trials + 2 * m.cuts;
    ensure!(
        tokens.len() >= needed,
        "{} tokens for {needed} sessions",
        tokens.len()
    );
    let http = client()?;
    let a = m.replicas.a.as_str();
    let b = m.replicas.b.as_str();
    let heartbeat = m.staleness / 4;
    let bound = m.staleness + heartbeat;

    let before = metrics(&http, b).await?;
    let cache = before.present();
    println!(
        "staleness bound {} + heartbeat interval {} = {}; B {}",
        ms(m.staleness),
        ms(heartbeat),
        ms(bound),
        if cache {
            "reports its session cache"
        } else {
            "has no session cache (cache metrics absent): every request goes to Redis, so these figures are the no-cache baseline"
        }
    );
    println!(
        "REVOCATION kind=config staleness_us={} heartbeat_us={} bound_us={} cache={}",
        us(m.staleness),
        us(heartbeat),
        us(bound),
        u8::from(cache)
    );

    let cut_tokens = tokens.split_off(m.trials);
    trials(&http, a, b, &tokens, bound, cache).await?;
    pauses(&http, b, &cut_tokens[..m.cuts], m.redis_pid, bound).await?;
    kills(&http, b, &cut_tokens[m.cuts..], &m.redis, m.cuts).await?;
    Ok(())
}

#[derive(Debug)]
struct Trial {
    /// Arrival of B's first 401 after the arrival of A's 200.
    latency: Duration,
    /// Send time of the request that got that 401, after A's 200 (zero: the first poll).
    first_401_sent: Duration,
    /// Send time of the last request answered 200 after A's 200, if any.
    last_200_sent: Option<Duration>,
    polls: usize,
}

async fn trial(http: &reqwest::Client, a: &str, b: &str, token: &str) -> Result<Trial> {
    // Warm B until it answers the token (a cache then holds it), and once more.
    let mut tries = 0;
    while get_me(http, b, token).await? != 200 {
        tries += 1;
        ensure!(tries < 100, "B never answered the fresh token 200");
    }
    get_me(http, b, token).await?;

    let status = logout(http, a, token).await?;
    ensure!(status == 200, "POST /logout on A answered {status}");
    let logged_out = Instant::now();
    let mut last_200_sent = None;
    let mut polls = 0;
    loop {
        let sent = Instant::now();
        let status = get_me(http, b, token).await?;
        let arrived = Instant::now();
        polls += 1;
        match status {
            401 => {
                return Ok(Trial {
                    latency: arrived - logged_out,
                    first_401_sent: sent - logged_out,
                    last_200_sent,
                    polls,
                });
            }
            200 => last_200_sent = Some(sent - logged_out),
            other => bail!("GET /me on B after the logout answered {other}"),
        }
        ensure!(
            arrived - logged_out < Duration::from_secs(5),
            "B still answers a logged-out token 5 s after the logout"
        );
    }
}

async fn trials(
    http: &reqwest::Client,
    a: &str,
    b: &str,
    tokens: &[String],
    bound: Duration,
    cache: bool,
) -> Result<()> {
    let (a0, b0) = (metrics(http, a).await?, metrics(http, b).await?);
    let started = Instant::now();
    let mut results = Vec::with_capacity(tokens.len());
    for token in tokens {
        results.push(trial(http, a, b, token).await?);
    }
    let took = started.elapsed().as_secs_f64();
    let (a1, b1) = (metrics(http, a).await?, metrics(http, b).await?);

    let n = results.len();
    let mut latency: Vec<Duration> = results.iter().map(|t| t.latency).collect();
    let mut sent: Vec<Duration> = results.iter().map(|t| t.first_401_sent).collect();
    let stale: Vec<Duration> = results.iter().filter_map(|t| t.last_200_sent).collect();
    let late = latency.iter().filter(|l| **l > bound).count();
    let stale_late = stale.iter().filter(|s| **s > bound).count();
    let polls: usize = results.iter().map(|t| t.polls).sum();
    latency.sort();
    sent.sort();

    println!();
    println!(
        "revocation across replicas: {n} trials in {took:.1} s; background load during them: A {:.0} req/s, B {:.0} req/s (from their /metrics)",
        (a1.requests - a0.requests) / took,
        (b1.requests - b0.requests) / took,
    );
    println!("  latency = arrival of B's first 401 - arrival of A's logout 200");
    print_percentiles("  latency           ", &latency);
    print_percentiles("  first-401 sent at ", &sent);
    println!(
        "  {} of {n} trials got a 200 from B after A's 200 (stale serves){}; {} polls in all",
        stale.len(),
        stale
            .iter()
            .max()
            .map(|m| format!(", the last sent {} after it", ms(*m)))
            .unwrap_or_default(),
        polls
    );
    println!(
        "  later than the bound ({}): {late} trials by the 401's arrival, {stale_late} by a 200 for a request sent after it",
        ms(bound)
    );
    histogram(&latency);
    if let (true, Some(h0), Some(h1), Some(m0), Some(m1)) =
        (cache, b0.hits, b1.hits, b0.misses, b1.misses)
    {
        println!(
            "  B's cache during the trials: {:.0} hits, {:.0} misses",
            h1 - h0,
            m1 - m0
        );
    }
    println!(
        "REVOCATION kind=trials n={n} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} sent_p50_us={} sent_p99_us={} sent_max_us={} late={late} stale={} stale_late={stale_late} stale_max_us={} load_a={:.0} load_b={:.0}",
        us(pct(&latency, 50.0)),
        us(pct(&latency, 90.0)),
        us(pct(&latency, 99.0)),
        us(pct(&latency, 99.9)),
        us(pct(&latency, 100.0)),
        us(pct(&sent, 50.0)),
        us(pct(&sent, 99.0)),
        us(pct(&sent, 100.0)),
        stale.len(),
        stale.iter().max().map_or(0, |d| us(*d)),
        (a1.requests - a0.requests) / took,
        (b1.requests - b0.requests) / took,
    );
    Ok(())
}

/// Sends SIGCONT to the paused Redis when dropped, whatever happened in between.
#[derive(Debug)]
struct Paused(rustix::process::Pid);

impl Paused {
    fn pause(pid: i32) -> Result<(Self, Instant)> {
        let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| anyhow!("bad pid {pid}"))?;
        rustix::process::kill_process(pid, rustix::process::Signal::STOP)
            .context("SIGSTOP redis-server")?;
        Ok((Self(pid), Instant::now()))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.0, rustix::process::Signal::CONT);
    }
}

#[derive(Debug, Clone, Copy)]
struct Poll {
    sent: Instant,
    status: u16,
    /// Whether the answer arrived after Redis was paused.
    paused: bool,
}

async fn pauses(
    http: &reqwest::Client,
    b: &str,
    tokens: &[String],
    redis_pid: i32,
    bound: Duration,
) -> Result<()> {
    let mut first_not_ok = Vec::new(); // send time of the first non-200 after the pause
    let mut last_ok = Vec::new(); // send time of the last 200, relative to the pause (may be < 0)
    let mut answered = Vec::new(); // arrival of that non-200, after the pause
    let mut recovered = Vec::new(); // SIGCONT -> next 200's arrival
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut early_not_ok = 0;
    for token in tokens {
        let mut tries = 0;
        while get_me(http, b, token).await? != 200 {
            tries += 1;
            ensure!(tries < 100, "B never answered the fresh token 200");
        }
        get_me(http, b, token).await?;
        let paused_at: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
        // The poller: back to back until, once Redis is paused, an answer is not 200.
        let poller = {
            let (http, b, token, paused_at) =
                (http.clone(), b.to_owned(), token.clone(), paused_at.clone());
            tokio::spawn(async move {
                let mut polls = Vec::new();
                loop {
                    let sent = Instant::now();
                    let status = get_me(&http, &b, &token).await.unwrap_or(0);
                    let arrived = Instant::now();
                    let paused = paused_at.get().is_some();
                    polls.push(Poll {
                        sent,
                        status,
                        paused,
                    });
                    if status != 200 && paused {
                        return (polls, arrived);
                    }
                    if polls.len() > 1_000_000 {
                        return (polls, arrived);
                    }
                }
            })
        };
        let wait = rand::thread_rng().gen_range(10..40);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let (guard, at) = Paused::pause(redis_pid)?;
        paused_at.set(at).map_err(|_| anyhow!("paused twice"))?;
        let (polls, arrived) = tokio::time::timeout(Duration::from_secs(30), poller)
            .await
            .context("B kept answering 200 for 30 s with Redis paused")?
            .context("poller task")?;
        drop(guard);
        let resumed = Instant::now();

        // The first request not answered 200 is the last poll; it may have been sent just
        // before the pause (in flight when Redis stopped: not served from a cache either).
        let last = polls.last().ok_or_else(|| anyhow!("no poll"))?;
        *statuses.entry(last.status).or_default() += 1;
        first_not_ok.push(signed_us(last.sent, at));
        answered.push(signed_us(arrived, at));
        let ok = polls
            .iter()
            .filter(|p| p.status == 200)
            .map(|p| signed_us(p.sent, at))
            .max();
        last_ok.push(ok.unwrap_or(i64::MIN));
        // Answers other than 200 before the pause (an overloaded replica?): counted.
        early_not_ok += polls
            .iter()
            .filter(|p| p.status != 200 && !p.paused)
            .count();
        loop {
            if get_me(http, b, token).await? == 200 {
                recovered.push(signed_us(Instant::now(), resumed));
                break;
            }
            ensure!(
                resumed.elapsed() < Duration::from_secs(30),
                "B did not answer 200 again within 30 s of SIGCONT"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let n = tokens.len();
    let beyond = last_ok
        .iter()
        .filter(|l| **l > i64::try_from(bound.as_micros()).unwrap_or(i64::MAX))
        .count();
    println!();
    println!(
        "link cut by pausing Redis (SIGSTOP), {n} times, B polled back to back with a warm token:"
    );
    print_signed(
        "  first request not answered 200, sent after the pause",
        &first_not_ok,
    );
    println!("    (< 0: it was in flight when Redis stopped, and waited for the command timeout)");
    print_signed(
        "  ... its answer arrived after the pause               ",
        &answered,
    );
    print_signed(
        "  last request answered 200, sent after the pause      ",
        &last_ok,
    );
    print_signed(
        "  SIGCONT -> B answers 200 again                        ",
        &recovered,
    );
    println!(
        "  statuses of those first non-200s: {}; {early_not_ok} answers other than 200 arrived before a pause; 200s for requests sent later than the bound ({}) after the pause: {beyond} cuts",
        statuses
            .iter()
            .map(|(s, c)| format!("{s}: {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        ms(bound)
    );
    let (f, l, r) = (
        summary(&first_not_ok),
        summary(&last_ok),
        summary(&recovered),
    );
    println!(
        "REVOCATION kind=pause n={n} first_not_ok_min_us={} first_not_ok_median_us={} first_not_ok_max_us={} last_ok_min_us={} last_ok_median_us={} last_ok_max_us={} recover_min_us={} recover_median_us={} recover_max_us={} beyond_bound={beyond}",
        f.0, f.1, f.2, l.0, l.1, l.2, r.0, r.1, r.2
    );
    Ok(())
}

// --- Redis, just enough RESP for CLIENT LIST / CLIENT KILL -----------------------------------

struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    async fn connect(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to Redis at {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    /// One command; the reply as text (simple, bulk or integer), or an error.
    async fn command(&mut self, args: &[&str]) -> Result<String> {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.reader
            .get_mut()
            .write_all(out.as_bytes())
            .await
            .context("writing to Redis")?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .await
            .context("reading from Redis")?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("+" | ":", rest)) => Ok(rest.to_owned()),
            Some(("-", rest)) => bail!("Redis: {rest}"),
            Some(("$", len)) => {
                let len: usize = len.parse().context("bulk length")?;
                let mut body = vec![0; len + 2];
                self.reader
                    .read_exact(&mut body)
                    .await
                    .context("reading a bulk reply")?;
                body.truncate(len);
                String::from_utf8(body).context("bulk reply not UTF-8")
            }
            _ => bail!("unexpected Redis reply {line:?}"),
        }
    }

    async fn tracking_clients(&mut self) -> Result<Vec<String>> {
        let list = self.command(&["CLIENT", "LIST"]).await?;
        Ok(list
            .lines()
            .filter(|l| l.split(' ').any(|f| f == "name=jwt-todo-tracking"))
            .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .map(str::to_owned)
            .collect())
    }
}

async fn kills(
    http: &reqwest::Client,
    b: &str,
    tokens: &[String],
    redis: &str,
    cuts: usize,
) -> Result<()> {
    println!();
    println!(
        "link cut by CLIENT KILL of jwt-todo-tracking, {cuts} times, B's /metrics polled back to back:"
    );
    if !metrics(http, b).await?.present() {
        println!("  skipped: cache metrics absent on B (jwt_todo_session_cache_entries / _live)");
        println!("REVOCATION kind=kill n=0 skipped=no-cache-metrics");
        return Ok(());
    }
    let mut redis = Resp::connect(redis).await?;
    let mut emptied = Vec::new();
    let mut dead = Vec::new();
    let mut back = Vec::new();
    let mut killed_conns = 0;
    let (mut never_empty, mut never_dead, mut never_back) = (0, 0, 0);
    for token in tokens.iter().take(cuts) {
        // A warm entry, and a link proven live, before each cut.
        let ready = Instant::now();
        loop {
            get_me(http, b, token).await?;
            let m = metrics(http, b).await?;
            if m.live == Some(1.0) && m.entries.unwrap_or(0.0) >= 1.0 {
                break;
            }
            ensure!(
                ready.elapsed() < Duration::from_secs(10),
                "B's cache not live with an entry 10 s after the previous cut: {m:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ids = redis.tracking_clients().await?;
        if ids.is_empty() {
            println!("  skipped: no client named jwt-todo-tracking in CLIENT LIST");
            println!("REVOCATION kind=kill n=0 skipped=no-tracking-client");
            return Ok(());
        }
        let killed_at = Instant::now();
        for id in &ids {
            redis.command(&["CLIENT", "KILL", "ID", id]).await?;
        }
        killed_conns += ids.len();
        // Until the cut shows (entries 0 or live 0) and the link is live again. A relink
        // faster than one /metrics poll may hide `live 0`: counted as not seen.
        let (mut empty_at, mut dead_at) = (None, None);
        loop {
            let m = metrics(http, b).await?;
            let now = Instant::now();
            if empty_at.is_none() && m.entries == Some(0.0) {
                empty_at = Some(now);
            }
            if dead_at.is_none() && m.live == Some(0.0) {
                dead_at = Some(now);
            }
            if (empty_at.is_some() || dead_at.is_some()) && m.live == Some(1.0) {
                back.push(signed_us(now, killed_at));
                break;
            }
            if killed_at.elapsed() > Duration::from_secs(10) {
                println!(
                    "  10 s after CLIENT KILL: entries {:?}, live {:?}, entries 0 seen: {}, live 0 seen: {}",
                    m.entries,
                    m.live,
                    empty_at.is_some(),
                    dead_at.is_some()
                );
                never_back += 1;
                break;
            }
        }
        match empty_at {
            Some(e) => emptied.push(signed_us(e, killed_at)),
            None => never_empty += 1,
        }
        match dead_at {
            Some(d) => dead.push(signed_us(d, killed_at)),
            None => never_dead += 1,
        }
    }
    let n = tokens.len().min(cuts);
    println!(
        "  {killed_conns} tracking connections killed in all (both replicas' links each time); entries 0 never seen after {never_empty} cuts, live 0 never seen after {never_dead}, live 1 not back within 10 s after {never_back}"
    );
    print_signed("  kill -> entries 0 on B's /metrics", &emptied);
    print_signed("  kill -> live 0                   ", &dead);
    print_signed("  kill -> live 1 again             ", &back);
    let (e, d, l) = (summary(&emptied), summary(&dead), summary(&back));
    println!(
        "REVOCATION kind=kill n={n} empty_min_us={} empty_median_us={} empty_max_us={} dead_min_us={} dead_median_us={} dead_max_us={} live_min_us={} live_median_us={} live_max_us={} never_empty={never_empty} never_dead={never_dead} never_back={never_back}",
        e.0, e.1, e.2, d.0, d.1, d.2, l.0, l.1, l.2
    );
    Ok(())
}

// --- statistics ------------------------------------------------------------------------------

/// Nearest-rank percentile of a sorted slice.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // The epsilon keeps 0.999 × 1000 (999.000…1 in floating point) at rank 999.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> u128 {
    d.as_micros()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn signed_us(t: Instant, origin: Instant) -> i64 {
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    if t >= origin {
        micros(t - origin)
    } else {
        -micros(origin - t)
    }
}

/// (min, median, max) in microseconds, `-` each when nothing was observed (`i64::MIN`
/// stands for "none" and is left out).
fn summary(values: &[i64]) -> (String, String, String) {
    let mut v: Vec<i64> = values.iter().copied().filter(|v| *v != i64::MIN).collect();
    v.sort_unstable();
    match (v.first(), v.get(v.len() / 2), v.last()) {
        (Some(min), Some(median), Some(max)) => {
            (min.to_string(), median.to_string(), max.to_string())
        }
        _ => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
    }
}

fn print_signed(label: &str, values: &[i64]) {
    let (min, median, max) = summary(values);
    let f = |v: String| match v.parse::<f64>() {
        Ok(micros) => format!("{:.2} ms", micros / 1e3),
        Err(_) => "none observed".to_owned(),
    };
    println!(
        "{label}: min {}, median {}, max {}",
        f(min),
        f(median),
        f(max)
    );
}

fn print_percentiles(label: &str, sorted: &[Duration]) {
    println!(
        "{label}: p50 {}, p90 {}, p99 {}, p99.9 {}, max {}",
        ms(pct(sorted, 50.0)),
        ms(pct(sorted, 90.0)),
        ms(pct(sorted, 99.0)),
        ms(pct(sorted, 99.9)),
        ms(pct(sorted, 100.0))
    );
}

fn histogram(sorted: &[Duration]) {
    const EDGES_US: [u64; 10] = [
        250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000,
    ];
    let mut counts = [0usize; EDGES_US.len() + 1];
    for d in sorted {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = EDGES_US
            .iter()
            .position(|e| micros < *e)
            .unwrap_or(EDGES_US.len());
        counts[i] += 1;
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    println!("  histogram of the latency:");
    for (i, count) in counts.iter().enumerate() {
        let label = match i {
            0 => format!("       < {:>7}", human_us(EDGES_US[0])),
            i if i == EDGES_US.len() => format!("      >= {:>7}", human_us(EDGES_US[i - 1])),
            i => format!(
                "{:>7} - {:>7}",
                human_us(EDGES_US[i - 1]),
                human_us(EDGES_US[i])
            ),
        };
        let bar = "#".repeat((count * 50).div_ceil(most));
        println!("    {label} {count:>6} {bar}");
    }
}

fn human_us(micros: u64) -> String {
    if micros >= 1_000 {
        format!("{} ms", micros / 1_000)
    } else {
        format!("{micros} us")
    }
}
