//! The per-request auth path over the embedded store: `cargo bench -p server`.
//!
//! - `auth/authenticate_embedded`: the `Authenticate` use case (JwtCodec + MemoryStore +
//!   SystemClock) on a valid access token: signature and claim checks, then the session
//!   lookup.
//! - `auth/http_get_me_embedded`: `GET /me` through the whole HTTP application in process
//!   (middleware, routing, bearer extraction, authentication, the profile lookup, JSON),
//!   without sockets: what the server adds on top of the use case.
//! - `stack/bare_poem_openapi/get_me` and `stack/jwt_todo/get_me`, side by side: a
//!   minimal poem-openapi API (one `GET /me` operation with a bearer scheme that verifies
//!   the same kind of HS256 access token with the same `JwtCodec`, no store call, no
//!   middleware) against the whole application answering `GET /me` over the embedded
//!   store. Both run in process through `TestClient`, so their ratio is the cost of
//!   jwt-todo's own stack (middleware, the session and profile lookup, the problem
//!   contract) measured in one run; it is printed at the end as `stack ratio`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapter_argon2::{Argon2Hasher, HmacCodeHasher, SealedTotpEngine};
use adapter_jwt::{JwtCodec, JwtConfig};
use adapter_memory::{MemoryStore, RandomIds, SystemClock};
use adapter_vonage::LogNotifier;
use application::ports::{Clock, ThrottleLimits};
use application::usecases::{LoginOutcome, LoginRequest, RegisterRequest};
use application::{Limits, Ports, Services, SmsPolicy, TokenPolicy};
use criterion::{Criterion, criterion_group};
use poem::test::TestClient;
use poem::{Endpoint, IntoEndpoint};
use secrecy::SecretSlice;

#[path = "common/bare.rs"]
mod bare;

const USERNAME: &str = "bench_user";
const PASSWORD: &str = "bench-password-4711";

/// The token codec both the bare API and the application verify with.
fn codec() -> Arc<JwtCodec> {
    Arc::new(
        JwtCodec::new(JwtConfig::new(
            SecretSlice::from(b"bench-access-secret-0123456789abcdef".to_vec()),
            SecretSlice::from(b"bench-refresh-secret-0123456789abcdef".to_vec()),
            "jwt-todo",
            "jwt-todo",
        ))
        .expect("valid JWT configuration"),
    )
}

/// The server's wiring over the embedded store, with one registered user logged in.
fn services(rt: &tokio::runtime::Runtime, tokens: Arc<JwtCodec>) -> (Arc<Services>, String) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let ports = Ports {
        users: store.clone(),
        todos: store.clone(),
        sessions: store.clone(),
        accounts: store.clone(),
        resets: store.clone(),
        audit: store.clone(),
        tokens,
        hasher: Arc::new(Argon2Hasher::new().expect("hasher")),
        clock,
        ids: Arc::new(RandomIds),
        outbox: store.clone(),
        notifier: Arc::new(LogNotifier),
        throttle: store.clone(),
        rate_limiter: store.clone(),
        idempotency: store.clone(),
        phone_codes: store.clone(),
        sms_quota: store.clone(),
        second_factors: store,
        totp: Arc::new(
            SealedTotpEngine::derive(b"bench-code-secret", &[], "jwt-todo").expect("totp"),
        ),
        code_hasher: Arc::new(HmacCodeHasher::derive(b"bench-code-secret")),
    };
    let services = Arc::new(Services::new(
        &ports,
        TokenPolicy::default(),
        ThrottleLimits::default(),
        Limits::default(),
        SmsPolicy::default(),
    ));
    let logged_in = rt.block_on(async {
        services
            .register
            .execute(RegisterRequest {
                username: USERNAME.to_owned(),
                password: PASSWORD.to_owned(),
                phone: None,
                client: std::net::IpAddr::from([127, 0, 0, 1]),
                idempotency_key: None,
            })
            .await
            .expect("registered");
        services
            .login
            .execute(LoginRequest {
                username: USERNAME.to_owned(),
                password: PASSWORD.to_owned(),
                user_agent: None,
                client: std::net::IpAddr::from([127, 0, 0, 1]),
                oauth_client: None,
            })
            .await
            .expect("logged in")
    });
    let LoginOutcome::LoggedIn(logged_in) = logged_in else {
        panic!("the bench's user has no second factor");
    };
    (services, logged_in.pair.access_token)
}

/// The ceiling: what poem-openapi itself costs for an authenticated read, served as the
/// ceiling server of `bench/run.sh` serves it (its own router, no other around it: the
/// app does not nest its API under another router either).
fn bare_app(tokens: Arc<JwtCodec>) -> impl Endpoint {
    bare::bare_api(tokens).into_endpoint()
}

/// What both sides of the comparison need: a runtime, the codec, the wiring with one user
/// logged in, that user's access token and its `Authorization` value.
struct Fixture {
    rt: tokio::runtime::Runtime,
    tokens: Arc<JwtCodec>,
    services: Arc<Services>,
    token: String,
    bearer: String,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tokens = codec();
    let (services, token) = services(&rt, Arc::clone(&tokens));
    let bearer = format!("Bearer {token}");
    Fixture {
        rt,
        tokens,
        services,
        token,
        bearer,
    }
}

/// One `GET /me` with `bearer`, answered 200, its body read.
async fn get_me<E: Endpoint>(client: &TestClient<E>, bearer: &str) -> usize {
    let response = client
        .get("/me")
        .header("Authorization", bearer)
        .send()
        .await;
    response.assert_status_is_ok();
    response
        .0
        .into_body()
        .into_bytes()
        .await
        .expect("body")
        .len()
}

/// Mean time per call of `f` over `iterations` (after a warm-up), for the printed ratio.
fn mean_per_call(iterations: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iterations / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..iterations {
        f();
    }
    started.elapsed() / iterations
}

fn auth(c: &mut Criterion) {
    let Fixture {
        rt,
        tokens,
        services,
        token,
        bearer,
    } = fixture();
    let client = TestClient::new(adapter_http::app(
        services.clone(),
        adapter_http::HttpConfig::default(),
    ));

    let mut group = c.benchmark_group("auth");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("authenticate_embedded", |b| {
        b.iter(|| {
            rt.block_on(services.authenticate.execute(black_box(&token)))
                .expect("authenticated")
        });
    });
    group.bench_function("http_get_me_embedded", |b| {
        b.iter(|| rt.block_on(get_me(&client, &bearer)));
    });
    group.finish();

    let bare = TestClient::new(bare_app(tokens));
    let mut group = c.benchmark_group("stack");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("bare_poem_openapi/get_me", |b| {
        b.iter(|| rt.block_on(get_me(&bare, &bearer)));
    });
    group.bench_function("jwt_todo/get_me", |b| {
        b.iter(|| rt.block_on(get_me(&client, &bearer)));
    });
    group.finish();

    // The ratio in one line, from interleaved rounds so that a busy neighbour on the
    // machine slows both sides alike: the full application's throughput as a fraction of
    // the bare handler's (1.0 = the stack costs nothing).
    let mut ratios = Vec::new();
    let (mut bare_total, mut full_total) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let bare_time = mean_per_call(20_000, || {
            black_box(rt.block_on(get_me(&bare, &bearer)));
        });
        let full_time = mean_per_call(20_000, || {
            black_box(rt.block_on(get_me(&client, &bearer)));
        });
        bare_total += bare_time;
        full_total += full_time;
        ratios.push(bare_time.as_secs_f64() / full_time.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "stack ratio (jwt_todo/get_me throughput / bare_poem_openapi/get_me throughput): \
         median {:.3} of 5 interleaved rounds [{}]; mean per request: bare {:?}, jwt_todo {:?}",
        ratios[2],
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        bare_total / 5,
        full_total / 5,
    );
}

/// `STACK_ONLY=bare|full STACK_REQUESTS=n`: only `n` requests of one side, no criterion,
/// for instruction counts that the other processes on the machine cannot disturb:
/// `valgrind --tool=callgrind` at two values of `n`, and the difference of the totals
/// divided by the difference of `n` is the instructions per request.
fn count_only(side: &str, requests: u32) {
    let Fixture {
        rt,
        tokens,
        services,
        bearer,
        ..
    } = fixture();
    let full = TestClient::new(adapter_http::app(
        services,
        adapter_http::HttpConfig::default(),
    ));
    let bare = TestClient::new(bare_app(tokens));
    for _ in 0..requests {
        match side {
            "bare" => black_box(rt.block_on(get_me(&bare, &bearer))),
            "full" => black_box(rt.block_on(get_me(&full, &bearer))),
            other => panic!("STACK_ONLY must be bare or full, not {other}"),
        };
    }
}

criterion_group!(benches, auth);

fn main() {
    if let Ok(side) = std::env::var("STACK_ONLY") {
        let requests = std::env::var("STACK_REQUESTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        count_only(&side, requests);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
