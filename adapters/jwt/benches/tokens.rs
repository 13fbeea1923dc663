//! Token issue and verify, the CPU cost of every login/refresh (issue) and every
//! authenticated request (verify): `cargo bench -p adapter-jwt`.

use std::hint::black_box;
use std::time::Duration;

use adapter_jwt::{JwtCodec, JwtConfig};
use application::ports::TokenCodec;
use criterion::{Criterion, criterion_group, criterion_main};
use domain::ids::Uuid;
use domain::{AccessClaims, AuthMethods, RefreshClaims, SessionId, Timestamp, TokenId, UserId};
use secrecy::SecretSlice;

const NOW: i64 = 1_700_000_000;

fn codec() -> JwtCodec {
    JwtCodec::new(JwtConfig::new(
        SecretSlice::from(b"bench-access-secret-0123456789abcdef".to_vec()),
        SecretSlice::from(b"bench-refresh-secret-0123456789abcdef".to_vec()),
        "jwt-todo",
        "jwt-todo",
    ))
    .expect("valid configuration")
}

fn access_claims() -> AccessClaims {
    AccessClaims {
        user_id: UserId::from_uuid(Uuid::from_u128(0x0b0c_0d0e_0000_4000_8000_0000_0000_0001)),
        session_id: SessionId::from_uuid(Uuid::from_u128(
            0x0b0c_0d0e_0000_4000_8000_0000_0000_0002,
        )),
        token_id: TokenId::from_uuid(Uuid::from_u128(0x0b0c_0d0e_0000_4000_8000_0000_0000_0003)),
        issued_at: Timestamp::from_unix_seconds(NOW),
        expires_at: Timestamp::from_unix_seconds(NOW + 900),
        auth_time: Timestamp::from_unix_seconds(NOW),
        client: None,
        amr: AuthMethods::Password,
    }
}

fn refresh_claims() -> RefreshClaims {
    let a = access_claims();
    RefreshClaims {
        user_id: a.user_id,
        session_id: a.session_id,
        token_id: TokenId::from_uuid(Uuid::from_u128(0x0b0c_0d0e_0000_4000_8000_0000_0000_0004)),
        issued_at: a.issued_at,
        expires_at: Timestamp::from_unix_seconds(NOW + 7 * 24 * 3600),
        auth_time: a.auth_time,
        client: None,
        amr: AuthMethods::Password,
    }
}

fn tokens(c: &mut Criterion) {
    let codec = codec();
    let now = Timestamp::from_unix_seconds(NOW + 1);
    let (access, refresh) = (access_claims(), refresh_claims());
    let access_token = codec.issue_access(&access).expect("issued");
    let refresh_token = codec.issue_refresh(&refresh).expect("issued");

    let mut group = c.benchmark_group("tokens");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("issue_access", |b| {
        b.iter(|| codec.issue_access(black_box(&access)).expect("issued"));
    });
    group.bench_function("verify_access", |b| {
        b.iter(|| {
            codec
                .verify_access(black_box(&access_token), now)
                .expect("valid")
        });
    });
    group.bench_function("issue_refresh", |b| {
        b.iter(|| codec.issue_refresh(black_box(&refresh)).expect("issued"));
    });
    group.bench_function("verify_refresh", |b| {
        b.iter(|| {
            codec
                .verify_refresh(black_box(&refresh_token), now)
                .expect("valid")
        });
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
