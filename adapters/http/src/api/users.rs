//! Registration and the caller's profile and phone number.

use std::sync::Arc;

use application::usecases::{
    ChangePasswordRequest, DeleteAccountRequest, RegisterRequest, ResetPasswordRequest,
    SetPhoneRequest, VerifyPhoneRequest,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::common::{
    Answer, Svc, Tag, cursor, failed, idempotency_key, origin, replayed, user_agent,
};
use crate::auth::BearerAuth;
use crate::client::TrustedProxies;
use crate::contract::{
    ChangePassword, DeleteAccount, ListEvents, Me, Register, RequestPasswordReset, ResetPassword,
    SetPhone, VerifyPhone,
};
use crate::dto;

#[derive(ApiResponse)]
enum RegisterResponse {
    /// The account exists; log in with it.
    #[oai(status = 201)]
    Created(
        Json<dto::UserResponse>,
        /// `true` when this is the answer of an earlier request with the same
        /// `Idempotency-Key`, given again: no second account was made.
        #[oai(header = "Idempotent-Replayed")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum MeResponse {
    #[oai(status = 200)]
    Ok(Json<dto::UserResponse>),
}

#[derive(ApiResponse)]
enum SetPhoneResponse {
    /// The number is the caller's now, unverified, and a code is on its way by SMS.
    #[oai(status = 202)]
    Accepted(Json<dto::PhoneCodeResponse>),
}

#[derive(ApiResponse)]
enum VerifyPhoneResponse {
    /// The number is verified: todo SMS go to it from now on.
    #[oai(status = 200)]
    Ok(Json<dto::UserResponse>),
}

#[derive(ApiResponse)]
enum ChangePasswordResponse {
    /// The password is the new one; every other session of the caller has ended, and the
    /// caller's own goes on.
    #[oai(status = 204)]
    Changed,
}

#[derive(ApiResponse)]
enum DeleteAccountResponse {
    /// The account and everything of it are gone; its username is free.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
enum PasswordResetResponse {
    /// Taken: if the account exists and has a verified number, a code is on its way to
    /// it. The answer is the same whether or not it does.
    #[oai(status = 202)]
    Accepted(Json<dto::PasswordResetAccepted>),
}

#[derive(ApiResponse)]
enum ResetPasswordResponse {
    /// The password is the new one and every session of the account has ended: log in.
    #[oai(status = 204)]
    Reset,
}

#[derive(ApiResponse)]
enum ListEventsResponse {
    #[oai(status = 200)]
    Ok(Json<dto::EventPage>),
}

/// The one answer to a reset request.
const RESET_ACCEPTED: &str =
    "If the account exists and has a verified phone number, a code is on its way to it";

/// The operations of the `Users` tag.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersApi;

#[OpenApi]
impl UsersApi {
    /// Register
    ///
    /// Registrations are counted per client address; over the limit the answer is 429
    /// without any work. A taken name is 409 at once (no password is hashed for it).
    ///
    /// Send an `Idempotency-Key` to make a retry safe: the same key with the same body
    /// within 24 hours gets the first answer again (`Idempotent-Replayed: true`), and the
    /// same key with a different body 422.
    #[oai(
        path = "/users",
        method = "post",
        tag = "Tag::Users",
        operation_id = "register"
    )]
    async fn register(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: Json<dto::RegisterRequest>,
        /// A unique key for this registration (a UUID), to retry it safely.
        #[oai(name = "Idempotency-Key")]
        idempotency: Header<Option<String>>,
    ) -> Answer<RegisterResponse, Register> {
        let body = body.0;
        let registered = services
            .register
            .execute(RegisterRequest {
                username: body.username.0,
                password: body.password.0,
                phone: body.phone.map(|p| p.0),
                client: proxies.client_of(req),
                idempotency_key: idempotency_key(idempotency).map_err(failed)?,
            })
            .await
            .map_err(failed)?;
        Ok(RegisterResponse::Created(
            Json(registered.user.into()),
            replayed(registered.replayed),
        ))
    }

    /// The caller's profile
    #[oai(path = "/me", method = "get", tag = "Tag::Users", operation_id = "me")]
    async fn me(&self, services: Svc<'_>, auth: BearerAuth) -> Answer<MeResponse, Me> {
        // The session check reads the profile in the same store round trip.
        let caller = auth.caller(&services).await.map_err(failed)?;
        Ok(MeResponse::Ok(Json(caller.user.into())))
    }

    /// Set the phone number
    ///
    /// Sets the caller's number, unverified, and texts it a 6-digit code to confirm with
    /// `POST /me/phone/verify` (valid 10 minutes by default). Todo SMS go only to a
    /// verified number. Send the same number again to get a new code (the number is
    /// unverified until it is confirmed); a new code replaces the previous one. Code
    /// requests are limited per user (one a minute by default) and count against the SMS
    /// caps per user and per number; over a limit the answer is 429 and nothing changes.
    #[oai(
        path = "/me/phone",
        method = "post",
        tag = "Tag::Users",
        operation_id = "set_phone"
    )]
    async fn set_phone(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        body: Json<dto::SetPhoneRequest>,
    ) -> Answer<SetPhoneResponse, SetPhone> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let sent = services
            .set_phone
            .execute(
                caller.principal,
                SetPhoneRequest {
                    phone: body.0.phone.0,
                },
            )
            .await
            .map_err(failed)?;
        Ok(SetPhoneResponse::Accepted(Json(sent.into())))
    }

    /// Verify the phone number
    ///
    /// Confirms the caller's number with the code texted to it. A code works once, for
    /// the number it was sent to, until it expires, and only until 5 wrong codes were
    /// tried (then ask for a new one).
    #[oai(
        path = "/me/phone/verify",
        method = "post",
        tag = "Tag::Users",
        operation_id = "verify_phone"
    )]
    async fn verify_phone(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::VerifyPhoneRequest>,
    ) -> Answer<VerifyPhoneResponse, VerifyPhone> {
        // The number the code must match comes with the session check.
        let caller = auth.caller(&services).await.map_err(failed)?;
        let user = services
            .verify_phone
            .execute(
                &caller,
                VerifyPhoneRequest {
                    code: body.0.code.0,
                },
                Some(&origin(&proxies, req)),
            )
            .await
            .map_err(failed)?;
        Ok(VerifyPhoneResponse::Ok(Json(user.into())))
    }

    /// Change the password
    ///
    /// Confirms with the current password, then sets the new one (the registration
    /// policy applies) and ends every other session of the caller at once; the caller's
    /// session goes on. The check counts with failed logins: 5 wrong passwords per 15
    /// minutes per client by default, then 429.
    ///
    /// Safe to retry: a retry of a change whose answer was lost (the new password is set
    /// already) gets 204 again, changing nothing more.
    #[oai(
        path = "/me/password",
        method = "post",
        tag = "Tag::Users",
        operation_id = "change_password"
    )]
    async fn change_password(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::ChangePasswordRequest>,
    ) -> Answer<ChangePasswordResponse, ChangePassword> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let body = body.0;
        services
            .change_password
            .execute(
                caller.principal,
                ChangePasswordRequest {
                    current_password: body.current_password.0,
                    new_password: body.new_password.0,
                    client: proxies.client_of(req),
                    user_agent: user_agent(req),
                },
            )
            .await
            .map_err(failed)?;
        Ok(ChangePasswordResponse::Changed)
    }

    /// Delete the account
    ///
    /// Confirms with the password, then deletes the caller's account and everything of
    /// it: todos, sessions, pending codes and SMS, counters. Every token of the account
    /// stops working at once, on every replica, and the username is free to register
    /// again. The check counts with failed logins, as for `POST /me/password`.
    #[oai(
        path = "/me",
        method = "delete",
        tag = "Tag::Users",
        operation_id = "delete_account"
    )]
    async fn delete_account(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::DeleteAccountRequest>,
    ) -> Answer<DeleteAccountResponse, DeleteAccount> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        services
            .delete_account
            .execute(
                caller.principal,
                DeleteAccountRequest {
                    password: body.0.password.0,
                    client: proxies.client_of(req),
                },
            )
            .await
            .map_err(failed)?;
        Ok(DeleteAccountResponse::Deleted)
    }

    /// Ask for a password reset
    ///
    /// Texts a 6-digit code to the account's verified phone number, for
    /// `POST /password/reset/confirm` (valid 10 minutes and 5 tries by default). The answer
    /// is the same whether the account exists, has a verified number or not, and is sent
    /// before any of that is looked up. Requests share the per-user cooldown and SMS caps of
    /// phone codes, and count per client address with confirmations (10 an hour by
    /// default); over that the answer is 429 without any work.
    #[oai(
        path = "/password/reset",
        method = "post",
        tag = "Tag::Users",
        operation_id = "request_password_reset"
    )]
    async fn request_password_reset(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: Json<dto::PasswordResetRequest>,
    ) -> Answer<PasswordResetResponse, RequestPasswordReset> {
        let slot = services
            .request_password_reset
            .admit(proxies.client_of(req))
            .await
            .map_err(failed)?;
        let services = Arc::clone(&services);
        let username = body.0.username.0;
        // After the answer: its time is not the answer's.
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = services.request_password_reset.execute(&username).await {
                tracing::warn!(error = %e, "a password reset request failed after its answer");
            }
        });
        Ok(PasswordResetResponse::Accepted(Json(
            dto::PasswordResetAccepted {
                message: RESET_ACCEPTED.to_owned(),
            },
        )))
    }

    /// Reset the password
    ///
    /// Sets a new password with the code texted by `POST /password/reset` and ends every
    /// session of the account. A code works once; any way it fails (no such account, no
    /// code, an expired, spent or wrong one) is one answer, `wrong-code`. The new password
    /// is hashed before the account is looked up, so every answer costs the same.
    #[oai(
        path = "/password/reset/confirm",
        method = "post",
        tag = "Tag::Users",
        operation_id = "reset_password"
    )]
    async fn reset_password(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        body: Json<dto::ResetPasswordRequest>,
    ) -> Answer<ResetPasswordResponse, ResetPassword> {
        let body = body.0;
        services
            .reset_password
            .execute(ResetPasswordRequest {
                username: body.username.0,
                code: body.code.0,
                new_password: body.new_password.0,
                client: proxies.client_of(req),
                user_agent: user_agent(req),
            })
            .await
            .map_err(failed)?;
        Ok(ResetPasswordResponse::Reset)
    }

    /// The caller's audit trail
    ///
    /// What happened to the account's security, newest first: logins (succeeded, and
    /// failed with a wrong password), refreshes, reuse of a spent refresh token, logouts,
    /// sessions revoked, password changes and resets, phone verification; each with its
    /// time, session, client address and user agent. Kept `AUDIT_RETENTION` (90 days) and
    /// at most `AUDIT_MAX_EVENTS` (1000) events; failed logins at most 20 an hour.
    #[oai(
        path = "/me/events",
        method = "get",
        tag = "Tag::Users",
        operation_id = "list_events"
    )]
    async fn list_events(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
        /// Events per page: 1 to 1000, default 100.
        #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
        limit: Query<Option<u32>>,
        /// Where the page starts: the `next` of the previous page; absent for the newest.
        #[oai(name = "cursor")]
        before: Query<Option<String>>,
    ) -> Answer<ListEventsResponse, ListEvents> {
        let before = cursor(before.0.as_deref(), dto::cursor::parse_event).map_err(failed)?;
        let caller = auth.caller(&services).await.map_err(failed)?;
        let page = services
            .list_events
            .execute(caller.principal, before, limit.0)
            .await
            .map_err(failed)?;
        Ok(ListEventsResponse::Ok(Json(dto::EventPage {
            items: page.items.into_iter().map(Into::into).collect(),
            next: page.next.map(dto::cursor::event),
        })))
    }
}
