//! Wire types. They stay in this adapter; conversions to and from the domain live here.
//! Field names follow the seed tutorial (`access_token`, `refresh_token`, `user_id`,
//! `title`) so its clients keep working; everything else is additive.

use application::ports::{AuditCursor, SessionCursor, TodoCursor};
use application::usecases::{CodeSent, LogoutScope, SecondFactorState, SessionView};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::{AuditEvent, Session, SessionId, Timestamp, Todo, TokenPair, User};
use poem_openapi::registry::MetaSchemaRef;
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use poem_openapi::{Enum, Object, Union};
use serde_json::Value;
use uuid::Uuid;

/// A JSON string, and only a string. poem-openapi's `String` also accepts numbers and
/// booleans (`{"password": 12345678}` would become `"12345678"`); an auth API should
/// answer a wrong type with 422, not guess. In a form every value is a string, so there
/// it is read as one (`Deserialize`).
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Request fields include passwords and tokens; never print them.
        f.write_str("Text(..)")
    }
}

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> std::borrow::Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// Credentials, as the seed's clients send them.
// Request-only types mark no field `write_only`: poem-openapi leaves such fields out of
// the schema's example, and an example without its password is useless in Swagger UI's
// "Try it out" and to generated clients.
#[derive(Object, serde::Deserialize)]
#[oai(example)]
pub struct LoginRequest {
    pub username: Text,
    pub password: Text,
}

impl poem_openapi::types::Example for LoginRequest {
    fn example() -> Self {
        Self {
            username: Text("username".into()),
            password: Text("password".into()),
        }
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A new token pair.
#[derive(Debug, Object)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Spend at `POST /token/refresh` for a new pair; single use. Absent in cookie mode
    /// (`?cookie=true`), where it is set as the `__Secure-refresh_token` cookie instead.
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The session both tokens belong to.
    pub session_id: Uuid,
    /// Cookie mode only: send as `X-CSRF-Token` with every refresh or revoke that the
    /// cookie authenticates. Bound to the session; keep it for the session's life.
    #[oai(skip_serializing_if_is_none)]
    pub csrf_token: Option<String>,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        let now = pair.issued_at.unix_seconds();
        Self {
            expires_in: pair.access_expires_at.unix_seconds() - now,
            refresh_expires_in: pair.refresh_expires_at.unix_seconds() - now,
            access_token: pair.access_token,
            refresh_token: Some(pair.refresh_token),
            token_type: "Bearer".into(),
            session_id: *pair.session_id.as_uuid(),
            csrf_token: None,
        }
    }
}

/// What `POST /login` answers: a token pair, or, for an account with a second factor, a
/// challenge to complete at `POST /login/mfa`. Tell them apart by `challenge`.
#[derive(Debug, Union)]
#[oai(one_of)]
pub enum LoginAnswer {
    Tokens(TokenResponse),
    SecondFactor(SecondFactorChallenge),
}

/// The password was right; the account has a second factor. No session exists yet.
#[derive(Debug, Object)]
pub struct SecondFactorChallenge {
    /// Send to `POST /login/mfa` with a code. Single use, for this login only; it is no
    /// token and opens nothing by itself.
    pub challenge: String,
    /// Seconds until the challenge expires (log in again then).
    pub expires_in: i64,
    /// What `code` may be: `totp` (the 6 digits of the authenticator app) or
    /// `recovery_code` (one of the codes handed out when the factor was confirmed).
    pub methods: Vec<String>,
}

/// A login's second step.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CompleteLoginRequest {
    /// The `challenge` of the `POST /login` answer.
    #[oai(validator(max_length = 128))]
    pub challenge: Text,
    /// The 6 digits of the authenticator app, or a recovery code.
    #[oai(validator(max_length = 64))]
    pub code: Text,
}

impl poem_openapi::types::Example for CompleteLoginRequest {
    fn example() -> Self {
        Self {
            challenge: Text(
                "0f8e5a3c2b1d4e6f8a9b0c1d2e3f4a5b.7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f".into(),
            ),
            code: Text("123456".into()),
        }
    }
}

/// A new TOTP secret: add it to an authenticator app, then confirm with its first code.
#[derive(Debug, Object)]
pub struct TotpEnrolmentResponse {
    /// The secret in base32, to type into the app. Shown once; keep it nowhere else.
    pub secret: String,
    /// The same as an `otpauth://totp/...` URI, to show as a QR code.
    pub otpauth_uri: String,
    /// Seconds left to confirm it with `POST /me/mfa/totp/confirm`.
    pub expires_in: i64,
}

/// Where the caller's TOTP factor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum TotpStatus {
    /// No factor: the password alone logs in.
    Off,
    /// Enrolled, waiting for its first code at `POST /me/mfa/totp/confirm`.
    Pending,
    /// On: every password login needs a code.
    On,
}

/// The caller's second factor.
#[derive(Debug, Object)]
pub struct MfaStatusResponse {
    pub totp: TotpStatus,
    /// Recovery codes not used yet (0 unless `on`). Renew them at
    /// `POST /me/mfa/recovery-codes` before they run out.
    pub recovery_codes_left: u32,
}

impl From<SecondFactorState> for MfaStatusResponse {
    fn from(state: SecondFactorState) -> Self {
        let (totp, recovery_codes_left) = match state {
            SecondFactorState::Off => (TotpStatus::Off, 0),
            SecondFactorState::Pending => (TotpStatus::Pending, 0),
            SecondFactorState::On {
                recovery_codes_left,
            } => (TotpStatus::On, recovery_codes_left),
        };
        Self {
            totp,
            recovery_codes_left,
        }
    }
}

/// A code of the second factor.
#[derive(Debug, Object)]
#[oai(example)]
pub struct MfaCodeRequest {
    /// The 6 digits the authenticator app shows (to disable: or a recovery code).
    #[oai(validator(max_length = 64))]
    pub code: Text,
}

impl poem_openapi::types::Example for MfaCodeRequest {
    fn example() -> Self {
        Self {
            code: Text("123456".into()),
        }
    }
}

/// The second factor is on; these codes each stand in for one code of the app, once.
#[derive(Debug, Object)]
pub struct RecoveryCodesResponse {
    /// Shown only now: store them somewhere safe, apart from the device.
    pub recovery_codes: Vec<String>,
}

/// The refresh token to spend. In cookie mode send `{}`: the token comes from the
/// `__Secure-refresh_token` cookie, with the `X-CSRF-Token` header. A token in the body
/// wins over the cookie.
#[derive(Object, serde::Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: Option<Text>,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { .. }")
    }
}

/// Which sessions a logout ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This session only (default).
    #[default]
    Local,
    /// All other sessions of the user; this one stays.
    Others,
    /// All sessions of the user.
    Global,
}

impl From<Scope> for LogoutScope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Local => LogoutScope::Local,
            Scope::Others => LogoutScope::Others,
            Scope::Global => LogoutScope::Global,
        }
    }
}

/// Revoke by refresh token: for a client whose access token has already expired.
/// `scope` defaults to `local`. In cookie mode leave `refresh_token` out: the cookie
/// (with the `X-CSRF-Token` header) names the session. A token in the body wins.
#[derive(Object, serde::Deserialize)]
pub struct RevokeRequest {
    pub refresh_token: Option<Text>,
    // No doc comment and no `#[oai(default)]` here: either makes poem-openapi wrap the
    // enum's `$ref` in an `allOf`, which generated clients (openapi-python-client) refuse.
    pub scope: Option<Scope>,
}

impl std::fmt::Debug for RevokeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeRequest")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Object)]
pub struct LogoutResponse {
    /// `Successfully logged out`, as the seed says.
    pub message: String,
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// A new account.
#[derive(Object)]
#[oai(example)]
pub struct RegisterRequest {
    /// 3-64 characters: letters, digits, `_`, `.`, `-`; case-insensitive.
    #[oai(validator(min_length = 3, max_length = 64))]
    pub username: Text,
    /// 8-128 characters counted after Unicode NFKC normalization, at least one of them
    /// visible (not only spaces or invisible characters), not one of the most common
    /// passwords.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: Text,
    /// E.164, e.g. `+4915112345678`. Stored unverified: confirm it with
    /// `POST /me/phone` and `POST /me/phone/verify` to get an SMS when a todo is created.
    #[oai(validator(max_length = 16))]
    pub phone: Option<Text>,
}

impl poem_openapi::types::Example for RegisterRequest {
    fn example() -> Self {
        Self {
            username: Text("alice".into()),
            password: Text("correct horse battery staple".into()),
            phone: Some(Text("+4915112345678".into())),
        }
    }
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A user as shown to themselves.
#[derive(Debug, Object)]
pub struct UserResponse {
    pub id: Uuid,
    pub username: String,
    #[oai(skip_serializing_if_is_none)]
    pub phone: Option<String>,
    /// Whether `phone` was proven with a texted code; SMS go only to a verified number.
    pub phone_verified: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        Self {
            id: *user.id.as_uuid(),
            username: user.username.to_string(),
            phone: user.phone.map(|p| p.as_str().to_owned()),
            phone_verified: user.phone_verified,
            created_at: user.created_at.unix_seconds(),
        }
    }
}

/// The number to text a verification code to.
#[derive(Object)]
#[oai(example)]
pub struct SetPhoneRequest {
    /// E.164, e.g. `+4915112345678`.
    #[oai(validator(max_length = 16))]
    pub phone: Text,
}

impl poem_openapi::types::Example for SetPhoneRequest {
    fn example() -> Self {
        Self {
            phone: Text("+4915112345678".into()),
        }
    }
}

impl std::fmt::Debug for SetPhoneRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPhoneRequest { .. }")
    }
}

/// A code is on its way by SMS.
#[derive(Debug, Object)]
pub struct PhoneCodeResponse {
    /// The caller's number now, unverified until the code is confirmed.
    pub phone: String,
    /// Always `false` here: send the code to `POST /me/phone/verify`.
    pub phone_verified: bool,
    /// Seconds the code stays valid.
    pub expires_in: i64,
    /// Seconds until another code may be requested.
    pub resend_in: i64,
}

impl From<CodeSent> for PhoneCodeResponse {
    fn from(sent: CodeSent) -> Self {
        let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            phone: sent.phone.as_str().to_owned(),
            phone_verified: false,
            expires_in: seconds(sent.expires_in),
            resend_in: seconds(sent.resend_after),
        }
    }
}

/// A new password, confirmed with the current one.
#[derive(Object)]
#[oai(example)]
pub struct ChangePasswordRequest {
    /// The password the caller has now.
    #[oai(validator(max_length = 1024))]
    pub current_password: Text,
    /// The policy of registration's `password`: 8-128 characters after Unicode NFKC
    /// normalization, at least one visible, not one of the most common passwords.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: Text,
}

impl poem_openapi::types::Example for ChangePasswordRequest {
    fn example() -> Self {
        Self {
            current_password: Text("correct horse battery staple".into()),
            new_password: Text("a brand new passphrase".into()),
        }
    }
}

impl std::fmt::Debug for ChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePasswordRequest { .. }")
    }
}

/// The caller's password, to confirm the account's deletion.
#[derive(Object)]
#[oai(example)]
pub struct DeleteAccountRequest {
    #[oai(validator(max_length = 1024))]
    pub password: Text,
}

impl poem_openapi::types::Example for DeleteAccountRequest {
    fn example() -> Self {
        Self {
            password: Text("correct horse battery staple".into()),
        }
    }
}

impl std::fmt::Debug for DeleteAccountRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeleteAccountRequest { .. }")
    }
}

/// Whose password to reset.
#[derive(Object)]
#[oai(example)]
pub struct PasswordResetRequest {
    #[oai(validator(max_length = 64))]
    pub username: Text,
}

impl poem_openapi::types::Example for PasswordResetRequest {
    fn example() -> Self {
        Self {
            username: Text("alice".into()),
        }
    }
}

impl std::fmt::Debug for PasswordResetRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordResetRequest { .. }")
    }
}

/// The one answer to a reset request, whoever it names.
#[derive(Debug, Object)]
pub struct PasswordResetAccepted {
    pub message: String,
}

/// A new password, with the code texted by `POST /password/reset`.
#[derive(Object)]
#[oai(example)]
pub struct ResetPasswordRequest {
    #[oai(validator(max_length = 64))]
    pub username: Text,
    /// The 6 digits texted to the account's verified number.
    #[oai(validator(max_length = 16))]
    pub code: Text,
    /// The policy of registration's `password`.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: Text,
}

impl poem_openapi::types::Example for ResetPasswordRequest {
    fn example() -> Self {
        Self {
            username: Text("alice".into()),
            code: Text("123456".into()),
            new_password: Text("a brand new passphrase".into()),
        }
    }
}

impl std::fmt::Debug for ResetPasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetPasswordRequest { .. }")
    }
}

/// The code from the SMS.
#[derive(Object)]
#[oai(example)]
pub struct VerifyPhoneRequest {
    /// The 6 digits texted by `POST /me/phone`.
    #[oai(validator(max_length = 16))]
    pub code: Text,
}

impl poem_openapi::types::Example for VerifyPhoneRequest {
    fn example() -> Self {
        Self {
            code: Text("123456".into()),
        }
    }
}

impl std::fmt::Debug for VerifyPhoneRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyPhoneRequest { .. }")
    }
}

/// A new todo. Other fields the seed's clients send (such as `user_id`) are ignored: the
/// owner is always the caller.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CreateTodoRequest {
    /// 1-200 characters after trimming.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub title: Text,
}

impl poem_openapi::types::Example for CreateTodoRequest {
    fn example() -> Self {
        Self {
            title: Text("Buy milk".into()),
        }
    }
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct UpdateTodoRequest {
    #[oai(validator(min_length = 1, max_length = 200))]
    pub title: Option<Text>,
    pub completed: Option<bool>,
}

#[derive(Debug, Object)]
pub struct TodoResponse {
    pub id: Uuid,
    /// The owner: always the caller.
    pub user_id: Uuid,
    pub title: String,
    pub completed: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl From<Todo> for TodoResponse {
    fn from(todo: Todo) -> Self {
        Self {
            id: *todo.id.as_uuid(),
            user_id: *todo.user_id.as_uuid(),
            title: todo.title.as_str().to_owned(),
            completed: todo.completed,
            created_at: todo.created_at.unix_seconds(),
            updated_at: todo.updated_at.unix_seconds(),
        }
    }
}

/// One page of the caller's todos, oldest first.
#[derive(Debug, Object)]
pub struct TodoPage {
    pub items: Vec<TodoResponse>,
    /// Pass as `cursor` for the next page; absent on the last page. Opaque: its form may
    /// change between versions.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// One page of the caller's live sessions, oldest first.
#[derive(Debug, Object)]
pub struct SessionPage {
    pub items: Vec<SessionResponse>,
    /// Pass as `cursor` for the next page; absent on the last page. Opaque: its form may
    /// change between versions.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// One event of the caller's audit trail.
#[derive(Debug, Object)]
pub struct EventResponse {
    /// What happened: `login_succeeded`, `login_failed`, `refreshed`, `reuse_detected`,
    /// `logged_out`, `session_revoked`, `password_changed`, `password_reset`,
    /// `phone_verified`, `mfa_challenged`, `mfa_enabled`, `mfa_disabled`, `mfa_failed`,
    /// `recovery_codes_renewed`.
    pub kind: String,
    /// Unix seconds.
    pub at: i64,
    /// The session it happened in or to.
    #[oai(skip_serializing_if_is_none)]
    pub session_id: Option<Uuid>,
    /// The client's address.
    #[oai(skip_serializing_if_is_none)]
    pub client: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// More about it, e.g. `scope=others ended=2`.
    #[oai(skip_serializing_if_is_none)]
    pub detail: Option<String>,
}

impl From<AuditEvent> for EventResponse {
    fn from(event: AuditEvent) -> Self {
        Self {
            kind: event.kind.as_str().to_owned(),
            at: event.at.unix_seconds(),
            session_id: event.session_id.map(|s| *s.as_uuid()),
            client: event.client,
            user_agent: event.user_agent,
            detail: event.detail,
        }
    }
}

/// One page of the caller's audit trail, newest first.
#[derive(Debug, Object)]
pub struct EventPage {
    pub items: Vec<EventResponse>,
    /// Pass as `cursor` for the next (older) page; absent on the last page. Opaque.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

/// Page cursors on the wire: opaque to clients (base64url of a tagged position), so the
/// stores' positions can change without breaking them. A cursor names a position only in
/// the caller's own listing, so one that was tampered with moves within that listing at
/// most; it grants nothing.
pub mod cursor {
    use super::*;

    const TODO: &str = "todo:";
    const SESSION: &str = "session:";
    const EVENT: &str = "event:";

    pub fn event(cursor: AuditCursor) -> String {
        URL_SAFE_NO_PAD.encode(format!("{EVENT}{}", cursor.0))
    }

    /// `None` for anything [`event`] did not make (a store position: digits and `-`).
    pub fn parse_event(raw: &str) -> Option<AuditCursor> {
        let position = decode(raw, EVENT)?;
        (!position.is_empty()
            && position.len() <= 40
            && position.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
        .then_some(AuditCursor(position))
    }

    pub fn todo(cursor: TodoCursor) -> String {
        URL_SAFE_NO_PAD.encode(format!("{TODO}{}", cursor.0))
    }

    pub fn session(cursor: SessionCursor) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{SESSION}{}:{}",
            cursor.created_at.unix_seconds(),
            cursor.id
        ))
    }

    fn decode(raw: &str, tag: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        String::from_utf8(bytes)
            .ok()?
            .strip_prefix(tag)
            .map(str::to_owned)
    }

    /// `None` for anything [`todo`] did not make.
    pub fn parse_todo(raw: &str) -> Option<TodoCursor> {
        decode(raw, TODO)?.parse().ok().map(TodoCursor)
    }

    /// `None` for anything [`session`] did not make.
    pub fn parse_session(raw: &str) -> Option<SessionCursor> {
        let position = decode(raw, SESSION)?;
        let (created, id) = position.split_once(':')?;
        Some(SessionCursor {
            created_at: Timestamp::from_unix_seconds(created.parse().ok()?),
            id: id.parse::<SessionId>().ok()?,
        })
    }
}

#[derive(Debug, Object)]
pub struct SessionResponse {
    pub id: Uuid,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last refresh.
    pub refreshed_at: i64,
    /// Unix seconds; the session ends then unless refreshed.
    pub expires_at: i64,
    #[oai(skip_serializing_if_is_none)]
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl From<SessionView> for SessionResponse {
    fn from(view: SessionView) -> Self {
        let Session {
            id,
            created_at,
            refreshed_at,
            expires_at,
            user_agent,
            ..
        } = view.session;
        Self {
            id: *id.as_uuid(),
            created_at: created_at.unix_seconds(),
            refreshed_at: refreshed_at.unix_seconds(),
            expires_at: expires_at.unix_seconds(),
            user_agent,
            current: view.current,
        }
    }
}

#[derive(Debug, Object)]
pub struct HealthResponse {
    /// `ok`
    pub status: String,
}

/// A public key that verifies access tokens (RFC 7517), an Ed25519 key as RFC 8037 spells
/// it. Never anything secret: HMAC keys are not published.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url (RFC 8037 §2).
    pub x: String,
    /// Key id: the key's RFC 7638 thumbprint, the `kid` header of tokens it signed.
    pub kid: String,
    /// `sig`: the key verifies signatures.
    #[oai(rename = "use")]
    pub key_use: String,
    /// `EdDSA`: the only algorithm the key is for.
    pub alg: String,
}

impl Jwk {
    /// An Ed25519 signature key with its id and base64url public key.
    pub fn ed25519(kid: impl Into<String>, x: impl Into<String>) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: x.into(),
            kid: kid.into(),
            key_use: "sig".into(),
            alg: "EdDSA".into(),
        }
    }
}

/// The public keys that verify access tokens (RFC 7517 §5): the signing key first, then
/// keys still accepted after a rotation. Empty when access tokens are HS256-signed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Object)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}
