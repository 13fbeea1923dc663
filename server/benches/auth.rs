//! The per-request auth path over the embedded store: `cargo bench -p server`.
//!
//! - `auth/authenticate_embedded`: the `Authenticate` use case (JwtCodec + MemoryStore +
//!   SystemClock) on a valid access token: signature and claim checks, then the session
//!   lookup.
//! - `auth/http_get_me_embedded`: `GET /me` through the whole HTTP application in process
//!   (middleware, routing, bearer extraction, authentication, the profile lookup, JSON),
//!   without sockets: what the server adds on top of the use case.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use adapter_argon2::{Argon2Hasher, HmacCodeHasher};
use adapter_jwt::{JwtCodec, JwtConfig};
use adapter_memory::{MemoryStore, RandomIds, SystemClock};
use adapter_vonage::LogNotifier;
use application::ports::{Clock, ThrottleLimits};
use application::usecases::{LoginRequest, RegisterRequest};
use application::{Limits, Ports, Services, SmsPolicy, TokenPolicy};
use criterion::{Criterion, criterion_group, criterion_main};
use poem::test::TestClient;
use secrecy::SecretSlice;

const USERNAME: &str = "bench_user";
const PASSWORD: &str = "bench-password-4711";

/// The server's wiring over the embedded store, with one registered user logged in.
fn services(rt: &tokio::runtime::Runtime) -> (Arc<Services>, String) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemoryStore::new(clock.clone()));
    let tokens = JwtCodec::new(JwtConfig::new(
        SecretSlice::from(b"bench-access-secret-0123456789abcdef".to_vec()),
        SecretSlice::from(b"bench-refresh-secret-0123456789abcdef".to_vec()),
        "jwt-todo",
        "jwt-todo",
    ))
    .expect("valid JWT configuration");
    let ports = Ports {
        users: store.clone(),
        todos: store.clone(),
        sessions: store.clone(),
        tokens: Arc::new(tokens),
        hasher: Arc::new(Argon2Hasher::new().expect("hasher")),
        clock,
        ids: Arc::new(RandomIds),
        outbox: store.clone(),
        notifier: Arc::new(LogNotifier),
        throttle: store.clone(),
        rate_limiter: store.clone(),
        idempotency: store.clone(),
        phone_codes: store.clone(),
        sms_quota: store,
        code_hasher: Arc::new(HmacCodeHasher::derive(b"bench-code-secret")),
    };
    let services = Arc::new(Services::new(
        &ports,
        TokenPolicy::default(),
        ThrottleLimits::default(),
        Limits::default(),
        SmsPolicy::default(),
    ));
    let access_token = rt.block_on(async {
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
            .pair
            .access_token
    });
    (services, access_token)
}

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (services, token) = services(&rt);
    let bearer = format!("Bearer {token}");
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
        b.iter(|| {
            rt.block_on(async {
                let response = client
                    .get("/me")
                    .header("Authorization", bearer.as_str())
                    .send()
                    .await;
                response.assert_status_is_ok();
                response.0.into_body().into_bytes().await.expect("body")
            })
        });
    });
    group.finish();
}

criterion_group!(benches, auth);
criterion_main!(benches);
