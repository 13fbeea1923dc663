//! The second factor (TOTP): a login's second step, and enrolling, confirming and
//! disabling the caller's factor, telling where it stands, and renewing its recovery
//! codes.

use std::sync::Arc;

use application::usecases::{CompleteLoginRequest, ENROLMENT_TTL, RecoveryCodes};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::common::{Answer, Svc, Tag, deliver, failed, logged_in_counted, origin};
use crate::auth::BearerAuth;
use crate::client::TrustedProxies;
use crate::contract::{
    CompleteLogin, ConfirmTotp, DisableTotp, EnrolTotp, MfaStatus, RenewRecoveryCodes,
};
use crate::csrf::CsrfKeys;
use crate::dto;

#[derive(ApiResponse)]
enum CompleteLoginResponse {
    /// Logged in: a new session, whose tokens say it used a second factor (`amr`).
    #[oai(status = 200)]
    Ok(
        Json<dto::TokenResponse>,
        /// Cookie mode only: the refresh token as an `HttpOnly` cookie.
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
enum EnrolTotpResponse {
    /// A new secret, pending until its first code confirms it.
    #[oai(status = 201)]
    Created(Json<dto::TotpEnrolmentResponse>),
}

#[derive(ApiResponse)]
enum ConfirmTotpResponse {
    /// The second factor is on: every password login needs a code from now on.
    #[oai(status = 200)]
    Ok(Json<dto::RecoveryCodesResponse>),
}

#[derive(ApiResponse)]
enum DisableTotpResponse {
    /// The second factor and its recovery codes are gone; the password alone logs in.
    #[oai(status = 204)]
    Disabled,
}

#[derive(ApiResponse)]
enum RenewRecoveryCodesResponse {
    /// New recovery codes: the earlier ones no longer work.
    #[oai(status = 200)]
    Ok(Json<dto::RecoveryCodesResponse>),
}

#[derive(ApiResponse)]
enum MfaStatusResponse {
    /// Where the caller's second factor stands.
    #[oai(status = 200)]
    Ok(Json<dto::MfaStatusResponse>),
}

/// Recovery codes as the user reads them, for the one answer that shows them.
fn shown(codes: &RecoveryCodes) -> Json<dto::RecoveryCodesResponse> {
    Json(dto::RecoveryCodesResponse {
        recovery_codes: codes.0.iter().map(domain::RecoveryCode::display).collect(),
    })
}

/// The second-factor operations (tags `Auth` and `Users`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MfaApi;

#[OpenApi]
impl MfaApi {
    /// Complete a login with its second factor
    ///
    /// For an account with a second factor, `POST /login` answers a `challenge` instead
    /// of tokens; send it here with the 6 digits of the authenticator app, or with one of
    /// the recovery codes. A challenge works once, for 5 minutes; a TOTP code works once
    /// (the next login waits for the next code). A wrong code leaves the challenge usable;
    /// codes tried for one account are limited per window (5 per 15 minutes by default,
    /// then 429). Pass `cookie=true` as at `POST /login` for cookie mode.
    #[oai(
        path = "/login/mfa",
        method = "post",
        tag = "Tag::Auth",
        operation_id = "login_mfa"
    )]
    async fn login_mfa(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        csrf: Data<&Arc<CsrfKeys>>,
        req: &Request,
        body: Json<dto::CompleteLoginRequest>,
        /// `true`: cookie mode, as at `POST /login`.
        cookie: Query<Option<bool>>,
    ) -> Answer<CompleteLoginResponse, CompleteLogin> {
        let body = body.0;
        let logged_in = services
            .complete_login
            .execute(CompleteLoginRequest {
                challenge: body.challenge.0,
                code: body.code.0,
                origin: origin(&proxies, req),
            })
            .await
            .map_err(failed)?;
        let logged_in = logged_in_counted(logged_in);
        let (body, set_cookie) = deliver(logged_in.pair, cookie.0.unwrap_or(false), &csrf);
        Ok(CompleteLoginResponse::Ok(body, set_cookie))
    }

    /// The caller's second factor
    ///
    /// Whether TOTP is off, pending its first code, or on, and how many recovery codes are
    /// left: the cue to renew them at `POST /me/mfa/recovery-codes`.
    #[oai(
        path = "/me/mfa",
        method = "get",
        tag = "Tag::Users",
        operation_id = "mfa_status"
    )]
    async fn status(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
    ) -> Answer<MfaStatusResponse, MfaStatus> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let state = services.mfa_status.execute(&caller).await.map_err(failed)?;
        Ok(MfaStatusResponse::Ok(Json(state.into())))
    }

    /// Enrol a TOTP second factor
    ///
    /// Makes a new secret for an authenticator app (RFC 6238: 6 digits, 30 seconds,
    /// SHA-1), as base32 and as an `otpauth://` URI for a QR code. It is pending until
    /// `POST /me/mfa/totp/confirm` confirms it with a first code, within 15 minutes;
    /// enrolling again replaces a pending secret. The secret is stored encrypted.
    #[oai(
        path = "/me/mfa/totp",
        method = "post",
        tag = "Tag::Users",
        operation_id = "enrol_totp"
    )]
    async fn enrol(
        &self,
        services: Svc<'_>,
        auth: BearerAuth,
    ) -> Answer<EnrolTotpResponse, EnrolTotp> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let enrolment = services.enrol_totp.execute(&caller).await.map_err(failed)?;
        Ok(EnrolTotpResponse::Created(Json(
            dto::TotpEnrolmentResponse {
                secret: enrolment.secret.secret,
                otpauth_uri: enrolment.secret.uri,
                expires_in: i64::try_from(ENROLMENT_TTL.as_secs()).unwrap_or(i64::MAX),
            },
        )))
    }

    /// Confirm the TOTP second factor
    ///
    /// The first code of the app turns the factor on and returns 10 single-use recovery
    /// codes, shown only now (stored as keyed digests). From now on a password login
    /// answers a challenge to complete with a code at `POST /login/mfa`; the sessions
    /// already open go on.
    #[oai(
        path = "/me/mfa/totp/confirm",
        method = "post",
        tag = "Tag::Users",
        operation_id = "confirm_totp"
    )]
    async fn confirm(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::MfaCodeRequest>,
    ) -> Answer<ConfirmTotpResponse, ConfirmTotp> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let codes = services
            .confirm_totp
            .execute(&caller, &body.0.code.0, Some(&origin(&proxies, req)))
            .await
            .map_err(failed)?;
        Ok(ConfirmTotpResponse::Ok(shown(&codes)))
    }

    /// Renew the recovery codes
    ///
    /// Replaces the recovery codes of the caller's second factor with 10 new ones, shown
    /// only now; every earlier one stops working in the same step. Needs a fresh code of
    /// the app (one not used before), or one of the current recovery codes, as disabling
    /// does. For when most codes are used up or lost, or when the answer to
    /// `POST /me/mfa/totp/confirm` never arrived. If this answer is lost, renew again with
    /// the next code: the codes of the last answer received are the ones that work.
    #[oai(
        path = "/me/mfa/recovery-codes",
        method = "post",
        tag = "Tag::Users",
        operation_id = "renew_recovery_codes"
    )]
    async fn renew_recovery_codes(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::MfaCodeRequest>,
    ) -> Answer<RenewRecoveryCodesResponse, RenewRecoveryCodes> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        let codes = services
            .renew_recovery_codes
            .execute(&caller, &body.0.code.0, Some(&origin(&proxies, req)))
            .await
            .map_err(failed)?;
        Ok(RenewRecoveryCodesResponse::Ok(shown(&codes)))
    }

    /// Disable the second factor
    ///
    /// Needs a fresh code of the app (one not used before), or a recovery code: a stolen
    /// session alone cannot remove the factor. The recovery codes go with it.
    #[oai(
        path = "/me/mfa/totp",
        method = "delete",
        tag = "Tag::Users",
        operation_id = "disable_totp"
    )]
    async fn disable(
        &self,
        services: Svc<'_>,
        proxies: Data<&Arc<TrustedProxies>>,
        req: &Request,
        auth: BearerAuth,
        body: Json<dto::MfaCodeRequest>,
    ) -> Answer<DisableTotpResponse, DisableTotp> {
        let caller = auth.caller(&services).await.map_err(failed)?;
        services
            .disable_totp
            .execute(&caller, &body.0.code.0, Some(&origin(&proxies, req)))
            .await
            .map_err(failed)?;
        Ok(DisableTotpResponse::Disabled)
    }
}
