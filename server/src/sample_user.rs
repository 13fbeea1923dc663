//! The seed tutorial's sample user, `username` / `password`, so that its curl walkthrough
//! works unchanged against a development server; and, in production, the refusal to start
//! on a store that holds it.
//!
//! Not part of [`Application::build`]: `server serve` asks for it through [`prepare`]
//! ([`crate::launch`]), while tests build the application alone and register their own
//! users through the API.

use std::time::Duration;

use anyhow::Context;
use application::Ports;
use application::ports::InsertUserError;
use domain::{PasswordInput, User, UserId, Username};

use crate::config::Environment;
use crate::startup::Application;

/// The seed tutorial's sample user, created in development only.
pub const SAMPLE_USERNAME: &str = "username";
pub const SAMPLE_PASSWORD: &str = "password";

/// In development, creates the sample user (at once if the store answers, else in the
/// background as soon as it does). In production, makes sure the store does not hold it.
///
/// # Errors
/// Production only: the store holds the sample user, or cannot say whether it does.
pub async fn prepare(app: &Application) -> anyhow::Result<()> {
    let ports = app.ports();
    match app.environment() {
        Environment::Development => {
            if let Err(e) = ensure_sample_user(ports).await {
                tracing::warn!(error = %e, "cannot create the sample user yet; retrying in the background");
                spawn_sample_user(ports.clone());
            }
            Ok(())
        }
        Environment::Production => refuse_sample_user(ports, app.on_redis()).await,
    }
}

/// Creates the sample user as soon as the store is reachable.
fn spawn_sample_user(ports: Ports) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            if ensure_sample_user(&ports).await.is_ok() {
                break;
            }
        }
    });
}

/// Creates the seed tutorial's `username` / `password` user so its curl walkthrough works
/// unchanged. Development only: its password would never pass the registration policy.
async fn ensure_sample_user(ports: &Ports) -> anyhow::Result<()> {
    let username = Username::parse(SAMPLE_USERNAME).context("sample username")?;
    if ports.users.find_by_username(&username).await?.is_some() {
        return Ok(());
    }
    let password = PasswordInput::new(SAMPLE_PASSWORD).context("sample password")?;
    let user = User {
        id: UserId::from_uuid(ports.ids.new_uuid()),
        username,
        password_hash: ports.hasher.hash(&password).await?,
        phone: None,
        phone_verified: false,
        password_changed_at: None,
        created_at: ports.clock.now(),
    };
    match ports.users.insert(&user).await {
        Ok(()) | Err(InsertUserError::UsernameTaken) => {
            tracing::info!(
                "development: sample user '{SAMPLE_USERNAME}' / '{SAMPLE_PASSWORD}' is available"
            );
            Ok(())
        }
        Err(InsertUserError::Store(e)) => Err(e.into()),
    }
}

/// Production never accepts the published sample credentials. A production server on a
/// store a development server has used (one Redis for both, or data copied over) would
/// find the sample user there, so it refuses to start, naming the account and how to
/// delete it. Precisely the account that *accepts* `username` / `password`: a real user
/// who happens to be called `username`, with a password of their own, is left alone.
///
/// A store that cannot answer is not a store without the sample user: the server does not
/// start then either (rather than skip the check), and a restart policy (compose's
/// `restart: unless-stopped`, Kubernetes') brings it up once the store answers.
async fn refuse_sample_user(ports: &Ports, redis: bool) -> anyhow::Result<()> {
    const UNCHECKED: &str = "APP_ENV=production: cannot check whether the store holds the \
        development sample user, and will not start unchecked; make sure the store answers";
    let username = Username::parse(SAMPLE_USERNAME).context("sample username")?;
    let Some(user) = ports
        .users
        .find_by_username(&username)
        .await
        .context(UNCHECKED)?
    else {
        return Ok(());
    };
    let password = PasswordInput::new(SAMPLE_PASSWORD).context("sample password")?;
    if !ports
        .hasher
        .verify(&password, Some(user.password_hash.clone()))
        .await
        .context(UNCHECKED)?
    {
        return Ok(());
    }
    let how = if redis {
        let (index, pattern) = adapter_redis::account_keys(user.id, &user.username);
        format!(
            "in Redis, delete the key '{index}' and every key matching '{pattern}', e.g. \
             `redis-cli --scan --pattern '{pattern}' | xargs redis-cli DEL` then \
             `redis-cli DEL {index}`"
        )
    } else {
        "delete it from the store".to_owned()
    };
    anyhow::bail!(
        "APP_ENV=production, but the store holds the development sample account \
         '{SAMPLE_USERNAME}' (user id {id}), which accepts the published password \
         '{SAMPLE_PASSWORD}': anyone could log in as it. Delete that account, then start \
         again: {how}",
        id = user.id,
    )
}
