//! The generated client: `jwt-todo-client` (progenitor over the committed
//! `openapi/openapi.json`) drives the real server. A spec that cannot generate a client
//! fails the build; one whose shapes differ from what the server sends fails here, because
//! every body (success and problem alike) is parsed into the generated types.

use std::fmt::Debug;

use jwt_todo_client::{Client, Error, ProblemDocument, ResponseValue, types};
use reqwest::StatusCode;

use crate::helpers::*;

/// A client without credentials.
fn anonymous(app: &TestApp) -> Client {
    Client::new(&app.base)
}

/// A client sending `Authorization: Bearer <access_token>`.
fn authed(app: &TestApp, access_token: &str) -> Client {
    jwt_todo_client::with_bearer(&app.base, access_token).expect("token is a header value")
}

fn credentials(username: &str, password: &str) -> types::LoginRequest {
    types::LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
    }
}

/// The token pair of a login without a second factor.
fn pair(answer: types::LoginAnswer) -> types::TokenResponse {
    match answer {
        types::LoginAnswer::TokenResponse(tokens) => tokens,
        types::LoginAnswer::SecondFactorChallenge(_) => panic!("a challenge, not tokens"),
    }
}

/// Logs in as the test user, registered first if need be.
async fn login_user(app: &TestApp, client: &Client) -> types::TokenResponse {
    app.register_user().await;
    let response = client
        .login(None, &credentials(USER, PASSWORD))
        .await
        .expect("the test user logs in");
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = pair(response.into_inner());
    // JSON mode, the default: the refresh token in the body, no cookie-mode fields.
    assert!(tokens.refresh_token.is_some());
    assert!(tokens.csrf_token.is_none());
    tokens
}

fn new_todo(title: &str) -> types::CreateTodoRequest {
    types::CreateTodoRequest {
        title: title.parse().expect("title fits the schema"),
    }
}

/// The call failed with a documented error status, and its body parsed as the
/// operation's generated problem type (whose `type_` admits only the kinds the operation
/// documents).
fn problem<T: Debug, P: ProblemDocument>(
    result: Result<ResponseValue<T>, Error<P>>,
    status: StatusCode,
) -> ResponseValue<P> {
    match result {
        Err(Error::ErrorResponse(response)) => {
            assert_eq!(response.status(), status);
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            assert!(
                content_type.starts_with("application/problem+json"),
                "{content_type}"
            );
            assert_eq!(response.status(), status.as_u16());
            assert!(
                response.type_uri().starts_with("urn:jwt-todo:problem:"),
                "{response:?}"
            );
            response
        }
        other => panic!("expected a {status} problem document, got {other:?}"),
    }
}

/// A 401 problem carrying an RFC 6750 `invalid_token` challenge.
fn invalid_token<T: Debug, P: ProblemDocument>(result: Result<ResponseValue<T>, Error<P>>) -> P {
    let response = problem(result, StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("401 carries WWW-Authenticate");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    response.into_inner()
}

#[tokio::test]
async fn generated_client_manages_todos() {
    let app = spawn_app().await;
    let tokens = login_user(&app, &anonymous(&app)).await;
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in > 0 && tokens.refresh_expires_in > tokens.expires_in);
    let client = authed(&app, &tokens.access_token);

    let created = client
        .create_todo(None, &new_todo("Buy milk"))
        .await
        .expect("todo created");
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = created.into_inner();
    assert_eq!(created.title, "Buy milk");
    assert!(!created.completed);

    let listed = client
        .list_todos(None, None)
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, created.id);
    assert_eq!(listed.next, None, "one page");

    let fetched = client.get_todo(&created.id).await.expect("fetched");
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.into_inner().user_id, created.user_id);

    let updated = client
        .update_todo(
            &created.id,
            &types::UpdateTodoRequest {
                title: Some("Buy oat milk".parse().expect("title fits the schema")),
                completed: Some(true),
            },
        )
        .await
        .expect("updated")
        .into_inner();
    assert_eq!(updated.title, "Buy oat milk");
    assert!(updated.completed);
    assert!(updated.updated_at >= created.updated_at);

    // A title the schema allows but the rules refuse (blank after trimming): 422 naming
    // the field.
    let blank = problem(
        client.create_todo(None, &new_todo("   ")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(
        blank.type_,
        types::CreateTodoProblemType::UrnJwtTodoProblemInvalidField
    );
    assert_eq!(blank.field.as_deref(), Some("title"));

    let deleted = client.delete_todo(&created.id).await.expect("deleted");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = problem(client.get_todo(&created.id).await, StatusCode::NOT_FOUND);
    assert_eq!(
        gone.type_,
        types::TodoProblemType::UrnJwtTodoProblemNotFound
    );
    assert!(
        client
            .list_todos(None, None)
            .await
            .expect("listed")
            .into_inner()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn generated_client_refreshes_and_a_replay_is_refused_as_a_problem() {
    let app = spawn_app().await;
    let anonymous = anonymous(&app);
    let first = login_user(&app, &anonymous).await;

    let rotated = anonymous
        .refresh_token(
            None,
            &types::RefreshRequest {
                refresh_token: first.refresh_token.clone(),
            },
        )
        .await
        .expect("refreshed");
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated = rotated.into_inner();
    assert_eq!(rotated.session_id, first.session_id);
    assert_ne!(rotated.refresh_token, first.refresh_token);
    let fresh = authed(&app, &rotated.access_token);
    assert_eq!(fresh.me().await.expect("new token works").username, USER);

    // The spent refresh token again: refused, as a typed problem document ...
    let replay = invalid_token(
        anonymous
            .refresh_token(
                None,
                &types::RefreshRequest {
                    refresh_token: first.refresh_token.clone(),
                },
            )
            .await,
    );
    assert_eq!(
        replay.type_,
        types::RefreshProblemType::UrnJwtTodoProblemInvalidToken
    );
    assert_eq!(replay.title, "Invalid token");
    assert!(replay.detail.is_some());
    // ... and the whole session is gone, the fresh pair with it.
    invalid_token(fresh.me().await);
    invalid_token(
        anonymous
            .refresh_token(
                None,
                &types::RefreshRequest {
                    refresh_token: rotated.refresh_token,
                },
            )
            .await,
    );
}

#[tokio::test]
async fn generated_client_logs_out_and_the_token_is_refused_afterwards() {
    let app = spawn_app().await;
    let anonymous = anonymous(&app);
    let tokens = login_user(&app, &anonymous).await;
    let client = authed(&app, &tokens.access_token);

    let ended = client.logout(None, None).await.expect("logged out");
    assert_eq!(ended.status(), StatusCode::OK);
    let ended = ended.into_inner();
    assert_eq!(ended.message, "Successfully logged out");
    assert_eq!(ended.sessions_ended, 1);

    let refused = invalid_token(client.create_todo(None, &new_todo("too late")).await);
    assert_eq!(refused.status, 401);
    invalid_token(client.me().await);
    invalid_token(
        anonymous
            .refresh_token(
                None,
                &types::RefreshRequest {
                    refresh_token: tokens.refresh_token,
                },
            )
            .await,
    );

    // No token at all: 401 with a bare challenge, still a problem document.
    let missing = problem(anonymous.me().await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.type_,
        types::MeProblemType::UrnJwtTodoProblemMissingToken
    );

    // Wrong credentials: the same typed problem.
    let wrong = problem(
        anonymous
            .login(None, &credentials(USER, "not the password"))
            .await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(
        wrong.type_,
        types::LoginProblemType::UrnJwtTodoProblemInvalidCredentials
    );
}

#[tokio::test]
async fn generated_client_registers_and_manages_sessions() {
    let app = spawn_app().await;
    let anonymous = anonymous(&app);
    let password = "a fine long passphrase";
    let registration = types::RegisterRequest {
        username: "client_user".parse().expect("username fits the schema"),
        password: password.parse().expect("password fits the schema"),
        phone: None,
    };

    let user = anonymous
        .register(None, &registration)
        .await
        .expect("registered");
    assert_eq!(user.status(), StatusCode::CREATED);
    let user = user.into_inner();
    assert_eq!(user.username, "client_user");
    let taken = problem(
        anonymous.register(None, &registration).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(
        taken.type_,
        types::RegisterProblemType::UrnJwtTodoProblemUsernameTaken
    );
    assert_eq!(taken.field.as_deref(), Some("username"));

    let laptop = anonymous
        .login(None, &credentials("client_user", password))
        .await
        .map(|r| pair(r.into_inner()))
        .expect("logged in");
    let phone = anonymous
        .login(None, &credentials("client_user", password))
        .await
        .map(|r| pair(r.into_inner()))
        .expect("logged in");
    let client = authed(&app, &laptop.access_token);

    let me = client.me().await.expect("profile").into_inner();
    assert_eq!(me.id, user.id);
    assert_eq!(me.username, "client_user");

    let sessions = client
        .list_sessions(None, None)
        .await
        .expect("sessions")
        .into_inner();
    assert_eq!(sessions.items.len(), 2);
    let current: Vec<_> = sessions.items.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, laptop.session_id);

    let revoked = client
        .revoke_session(&phone.session_id)
        .await
        .expect("session revoked");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    invalid_token(authed(&app, &phone.access_token).me().await);
    problem(
        client.revoke_session(&phone.session_id).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        client
            .list_sessions(None, None)
            .await
            .expect("sessions")
            .into_inner()
            .items
            .len(),
        1
    );

    // Log out by refresh token, for a client whose access token expired.
    let ended = anonymous
        .revoke_token(&types::RevokeRequest {
            refresh_token: laptop.refresh_token,
            scope: Some(types::Scope::Global),
        })
        .await
        .expect("revoked")
        .into_inner();
    assert_eq!(ended.sessions_ended, 1);
    invalid_token(client.list_sessions(None, None).await);
}

#[tokio::test]
async fn generated_client_reads_health() {
    let app = spawn_app().await;
    let client = anonymous(&app);
    assert_eq!(client.healthz().await.expect("live").status, "ok");
    assert_eq!(client.readyz().await.expect("ready").status, "ready");
}

#[tokio::test]
async fn generated_client_reads_the_jwks() {
    let app = spawn_app_with(&[("ACCESS_SIGNING", "eddsa")]).await;
    let jwks = anonymous(&app).jwks().await.expect("jwks").into_inner();
    assert_eq!(jwks.keys.len(), 1);
    let key = &jwks.keys[0];
    assert_eq!((key.kty.as_str(), key.crv.as_str()), ("OKP", "Ed25519"));
    assert_eq!((key.use_.as_str(), key.alg.as_str()), ("sig", "EdDSA"));
}

#[tokio::test]
async fn generated_client_asks_for_a_phone_code_and_is_told_when_to_retry() {
    // Without Vonage the code only goes to the log (withheld), so this checks the shapes:
    // 202 with the code's lifetime, the typed 429, the typed 422 of a wrong code.
    let app = spawn_app().await;
    let tokens = login_user(&app, &anonymous(&app)).await;
    let client = authed(&app, &tokens.access_token);
    let phone = types::SetPhoneRequest {
        phone: "+4915112345678".parse().expect("phone fits the schema"),
    };

    let sent = client.set_phone(&phone).await.expect("code requested");
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let sent = sent.into_inner();
    assert_eq!(sent.phone, "+4915112345678");
    assert!(!sent.phone_verified);
    assert_eq!((sent.expires_in, sent.resend_in), (600, 60));
    let me = client.me().await.expect("profile").into_inner();
    assert_eq!(me.phone.as_deref(), Some("+4915112345678"));
    assert!(!me.phone_verified);

    let again = problem(
        client.set_phone(&phone).await,
        StatusCode::TOO_MANY_REQUESTS,
    );
    assert_eq!(
        again.type_,
        types::SetPhoneProblemType::UrnJwtTodoProblemTooManySms
    );

    let code = types::VerifyPhoneRequest {
        code: "000000".parse().expect("code fits the schema"),
    };
    let refused = problem(
        client.verify_phone(&code).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(
        refused.type_,
        types::VerifyPhoneProblemType::UrnJwtTodoProblemWrongCode
    );
    assert_eq!(refused.field.as_deref(), Some("code"));
}

#[tokio::test]
async fn the_generated_client_speaks_to_the_oauth_endpoints() {
    let app = crate::oauth::spawn_oauth_app(&[]).await;
    app.register_user().await;
    let client = anonymous(&app);

    let metadata = client
        .oauth_metadata()
        .await
        .expect("metadata")
        .into_inner();
    assert!(metadata.token_endpoint.ends_with("/oauth/token"));

    let grant = |password: &str| types::OAuthTokenRequest {
        grant_type: "password".into(),
        username: Some(USER.into()),
        password: Some(password.into()),
        refresh_token: None,
        scope: None,
        client_id: Some("cli".into()),
        client_secret: None,
    };
    let token = client
        .oauth_token(&grant(PASSWORD))
        .await
        .expect("password grant")
        .into_inner();
    assert_eq!(token.token_type, "Bearer");
    let me = authed(&app, &token.access_token)
        .me()
        .await
        .expect("the token works");
    assert_eq!(me.into_inner().username, USER);

    match client.oauth_token(&grant("not the password")).await {
        Err(Error::ErrorResponse(error)) => {
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
            assert_eq!(error.error, types::OAuthErrorCode::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }

    let revoked = client
        .oauth_revoke(&types::OAuthRevocationRequest {
            token: token.refresh_token,
            token_type_hint: Some("refresh_token".into()),
            client_id: Some("cli".into()),
            client_secret: None,
        })
        .await
        .expect("revoked");
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_unauthorized(app.me(&token.access_token).await, Some("invalid_token")).await;
}

#[tokio::test]
async fn generated_client_changes_the_password_and_deletes_the_account() {
    let app = spawn_app().await;
    let anonymous = anonymous(&app);
    let tokens = app.new_user("client_account").await;
    let other = app.login_ok("client_account", PASSWORD).await;
    let client = authed(&app, &tokens.access);
    let new_password = "another fine passphrase";

    let wrong = problem(
        client
            .change_password(&types::ChangePasswordRequest {
                current_password: "not it".parse().expect("fits"),
                new_password: new_password.parse().expect("fits"),
            })
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(
        wrong.type_,
        types::ChangePasswordProblemType::UrnJwtTodoProblemWrongPassword
    );
    let changed = client
        .change_password(&types::ChangePasswordRequest {
            current_password: PASSWORD.parse().expect("fits"),
            new_password: new_password.parse().expect("fits"),
        })
        .await
        .expect("changed");
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    invalid_token(authed(&app, &other.access).me().await);
    client.me().await.expect("the caller's session goes on");

    let deleted = client
        .delete_account(&types::DeleteAccountRequest {
            password: new_password.parse().expect("fits"),
        })
        .await
        .expect("deleted");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    invalid_token(client.me().await);
    problem(
        anonymous
            .login(None, &credentials("client_account", new_password))
            .await,
        StatusCode::UNAUTHORIZED,
    );
}

#[tokio::test]
async fn generated_client_reads_the_audit_trail() {
    let app = spawn_app().await;
    let tokens = app.new_user("client_audited").await;
    let other = app.login_ok("client_audited", PASSWORD).await;
    let client = authed(&app, &tokens.access);
    client
        .revoke_session(
            &uuid::Uuid::parse_str(other.body["session_id"].as_str().expect("sid")).expect("uuid"),
        )
        .await
        .expect("revoked");

    let page = client
        .list_events(None, Some(std::num::NonZeroU32::new(1).expect("one")))
        .await
        .expect("events")
        .into_inner();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].kind, "session_revoked");
    let next = page.next.expect("more pages");
    let rest = client
        .list_events(Some(&next), None)
        .await
        .expect("events")
        .into_inner();
    let kinds: Vec<&str> = rest.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["login_succeeded", "login_succeeded"]);
    problem(
        client.list_events(Some("forged"), None).await,
        StatusCode::BAD_REQUEST,
    );
}

#[tokio::test]
async fn generated_client_enrols_totp_and_logs_in_with_it() {
    let app = spawn_app().await;
    let anonymous = anonymous(&app);
    let password = "a generated second factor";
    anonymous
        .register(
            None,
            &types::RegisterRequest {
                username: "client_totp".parse().expect("fits"),
                password: password.parse().expect("fits"),
                phone: None,
            },
        )
        .await
        .expect("registered");
    let tokens = anonymous
        .login(None, &credentials("client_totp", password))
        .await
        .map(|r| pair(r.into_inner()))
        .expect("logged in");
    let caller = authed(&app, &tokens.access_token);

    let enrolment = caller.enrol_totp().await.expect("enrolled").into_inner();
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    let code = |offset| crate::mfa::app_code(&enrolment.secret, offset);
    let codes = caller
        .confirm_totp(&types::MfaCodeRequest {
            code: code(0).parse().expect("fits"),
        })
        .await
        .expect("confirmed")
        .into_inner();
    assert_eq!(codes.recovery_codes.len(), 10);
    let status = caller.mfa_status().await.expect("status").into_inner();
    assert_eq!(
        (status.totp, status.recovery_codes_left),
        (types::TotpStatus::On, 10)
    );

    let challenge = match anonymous
        .login(None, &credentials("client_totp", password))
        .await
        .expect("password accepted")
        .into_inner()
    {
        types::LoginAnswer::SecondFactorChallenge(challenge) => challenge,
        types::LoginAnswer::TokenResponse(_) => panic!("tokens without a second factor"),
    };
    assert_eq!(challenge.methods, ["totp", "recovery_code"]);
    problem(
        anonymous
            .login_mfa(
                None,
                &types::CompleteLoginRequest {
                    challenge: challenge.challenge.parse().expect("fits"),
                    code: code(0).parse().expect("fits"),
                },
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let second = anonymous
        .login_mfa(
            None,
            &types::CompleteLoginRequest {
                challenge: challenge.challenge.parse().expect("fits"),
                code: code(30).parse().expect("fits"),
            },
        )
        .await
        .expect("logged in with the code")
        .into_inner();
    let owner = authed(&app, &second.access_token);
    let renewed = owner
        .renew_recovery_codes(&types::MfaCodeRequest {
            code: codes.recovery_codes[0].parse().expect("fits"),
        })
        .await
        .expect("renewed")
        .into_inner();
    assert_eq!(renewed.recovery_codes.len(), 10);
    problem(
        owner
            .disable_totp(&types::MfaCodeRequest {
                code: codes.recovery_codes[1].parse().expect("fits"),
            })
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let disabled = owner
        .disable_totp(&types::MfaCodeRequest {
            code: renewed.recovery_codes[0].parse().expect("fits"),
        })
        .await
        .expect("disabled");
    assert_eq!(disabled.status(), StatusCode::NO_CONTENT);
}
