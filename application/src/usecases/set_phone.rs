//! SetPhone: the caller sets their phone number, unverified, and a six-digit code is
//! texted to it through the outbox; [`VerifyPhone`](super::VerifyPhone) confirms it.
//!
//! Texting a code costs money and reaches someone else's phone if the number is not the
//! caller's, so a request is admitted first: the per-user cooldown, then the SMS caps per
//! user and per number, counted in the store. Over a limit nothing changes and nothing is
//! sent. Then, in this order: the code's keyed digest is stored with the number (one
//! atomic step that also marks the number unverified and replaces any earlier code), and
//! the SMS is queued. A failure between the two leaves a stored code nobody received,
//! which expires; never an SMS whose code was not stored.
//!
//! The code comes from the random ids (a CSPRNG) and exists in clear only in the queued
//! SMS: the store keeps its HMAC, and no log, `Debug` output or response shows it.

use std::sync::Arc;
use std::time::Duration;

use domain::{Notification, NotificationId, NotificationKind, PhoneCode, PhoneNumber, Sms};
use tracing::instrument;

use super::sms::SmsGate;
use super::{Principal, store_failures};
use crate::Ports;
use crate::ports::{
    Clock, CodeHasher, IdGenerator, PendingCode, PhoneVerifications, SmsAdmission, SmsLimit,
};

#[derive(Debug, Clone)]
pub struct SetPhoneRequest {
    pub phone: String,
}

/// A code is on its way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSent {
    /// The number it goes to, now the user's (unverified).
    pub phone: PhoneNumber,
    /// How long the code works.
    pub expires_in: Duration,
    /// How long until another code may be requested.
    pub resend_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SetPhoneError {
    #[error("invalid phone: {0}")]
    InvalidPhone(#[source] domain::PhoneNumberError),
    /// The country allow-list excludes the number.
    #[error("{}", super::sms::COUNTRY_NOT_ALLOWED)]
    CountryNotAllowed,
    /// The cooldown or a cap: nothing changed, nothing was sent.
    #[error("too many SMS ({limit:?}); retry in {retry_after:?}")]
    TooManyRequests {
        limit: SmsLimit,
        retry_after: Duration,
    },
    /// The session is alive but its user was deleted.
    #[error("user no longer exists")]
    UserGone,
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("setting the phone failed")]
    Unexpected(#[source] anyhow::Error),
}
store_failures!(SetPhoneError);

pub struct SetPhone {
    codes: Arc<dyn PhoneVerifications>,
    hasher: Arc<dyn CodeHasher>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    sms: SmsGate,
}

impl std::fmt::Debug for SetPhone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPhone").finish_non_exhaustive()
    }
}

impl SetPhone {
    pub(crate) fn new(ports: &Ports, sms: SmsGate) -> Self {
        Self {
            codes: ports.phone_codes.clone(),
            hasher: ports.code_hasher.clone(),
            clock: ports.clock.clone(),
            ids: ports.ids.clone(),
            sms,
        }
    }

    /// # Errors
    /// See [`SetPhoneError`]. Validation and the limits come before anything changes.
    #[instrument(name = "set_phone", skip_all, fields(user_id = %principal.user_id))]
    pub async fn execute(
        &self,
        principal: Principal,
        request: SetPhoneRequest,
    ) -> Result<CodeSent, SetPhoneError> {
        let phone = PhoneNumber::parse(&request.phone).map_err(SetPhoneError::InvalidPhone)?;
        let policy = Arc::clone(&self.sms.policy);
        if !policy.allows(&phone) {
            self.sms
                .stats
                .count(super::SmsKind::PhoneCode, super::SmsOutcome::Country);
            return Err(SetPhoneError::CountryNotAllowed);
        }
        let user = principal.user_id;
        if let SmsAdmission::Refused { limit, retry_after } =
            self.sms.admit_code(user, &phone).await?
        {
            tracing::info!(?limit, "phone code refused: over a limit");
            return Err(SetPhoneError::TooManyRequests { limit, retry_after });
        }

        let now = self.clock.now();
        let code = PhoneCode::from_random(self.ids.new_uuid().as_u128());
        let expires_at = now.plus(policy.code_ttl);
        let pending = PendingCode {
            user_id: user,
            phone: phone.clone(),
            digest: self.hasher.digest(user, &phone, &code),
            expires_at,
            max_attempts: policy.code_max_attempts,
        };
        match self.codes.start(&pending).await {
            Ok(true) => {}
            Ok(false) => {
                self.sms.give_back(user, &phone, true).await;
                return Err(SetPhoneError::UserGone);
            }
            Err(e) => {
                // Nothing was queued: the request may be retried at once.
                self.sms.give_back(user, &phone, true).await;
                return Err(e.into());
            }
        }
        let notification = Notification {
            id: NotificationId::from_uuid(self.ids.new_uuid()),
            user_id: user,
            kind: NotificationKind::PhoneCode { expires_at },
            sms: Sms::phone_code(&code, phone.clone(), policy.code_ttl),
            attempts: 0,
            created_at: now,
        };
        self.sms.queue_code(&notification).await?;
        tracing::info!(notification_id = %notification.id, "phone code queued");
        Ok(CodeSent {
            phone,
            expires_in: policy.code_ttl,
            resend_after: policy.code_cooldown,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::CountryCode;

    use super::*;
    use crate::ports::{CodeDigest, MockCodeHasher, SmsCaps};
    use crate::usecases::sms::{SmsKind, SmsOutcome, SmsPolicy, SmsStats};
    use crate::usecases::testkit::*;

    const PHONE: &str = "+4915112345678";
    const DIGEST: CodeDigest = CodeDigest([7; 32]);

    fn phone() -> PhoneNumber {
        PhoneNumber::parse(PHONE).expect("valid")
    }

    fn policy() -> SmsPolicy {
        SmsPolicy {
            caps: SmsCaps {
                user_hourly: 3,
                user_daily: 9,
                number_hourly: 4,
                number_daily: 12,
            },
            allowed_countries: vec![CountryCode::parse("+49").expect("valid")],
            code_ttl: Duration::from_secs(600),
            code_max_attempts: 5,
            code_cooldown: Duration::from_secs(60),
        }
    }

    fn set_phone(mocks: Mocks) -> (SetPhone, Arc<SmsStats>) {
        let stats = Arc::new(SmsStats::default());
        let ports = mocks.into_ports();
        let gate = SmsGate::new(&ports, policy(), Arc::clone(&stats));
        (SetPhone::new(&ports, gate), stats)
    }

    fn request(phone: &str) -> SetPhoneRequest {
        SetPhoneRequest {
            phone: phone.into(),
        }
    }

    /// The hasher is asked once, for the sample user, the number and the code `000001`
    /// (the first sequential id).
    fn hashes(mocks: &mut Mocks) {
        let mut hasher = MockCodeHasher::new();
        hasher
            .expect_digest()
            .withf(|user, to, code| *user == USER_ID && *to == phone() && code.expose() == "000001")
            .times(1)
            .return_const(DIGEST);
        mocks.code_hasher = hasher;
    }

    fn admits(mocks: &mut Mocks, seq: &mut mockall::Sequence, answer: SmsAdmission) {
        mocks
            .sms_quota
            .expect_admit()
            .withf(|user, to, caps, cooldown| {
                *user == USER_ID
                    && *to == phone()
                    && *caps == policy().caps
                    && *cooldown == Some(Duration::from_secs(60))
            })
            .times(1)
            .in_sequence(seq)
            .returning(move |_, _, _, _| Ok(answer));
    }

    fn pending() -> PendingCode {
        PendingCode {
            user_id: USER_ID,
            phone: phone(),
            digest: DIGEST,
            expires_at: NOW.plus(Duration::from_secs(600)),
            max_attempts: 5,
        }
    }

    fn expect_nothing_changed(mocks: &mut Mocks) {
        mocks.phone_codes.expect_start().never();
        mocks.outbox.expect_enqueue().never();
        mocks.sms_quota.expect_give_back().never();
    }

    #[tokio::test]
    async fn admits_then_stores_the_digest_then_queues_the_code() {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        hashes(&mut mocks);
        admits(&mut mocks, &mut order, SmsAdmission::Admitted);
        mocks
            .phone_codes
            .expect_start()
            .withf(|code| *code == pending())
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Ok(true));
        let queued = Captured::new();
        let record = queued.clone();
        mocks
            .outbox
            .expect_enqueue()
            .times(1)
            .in_sequence(&mut order)
            .returning(move |n| {
                record.set(n);
                Ok(())
            });
        mocks.sms_quota.expect_give_back().never();
        let (use_case, stats) = set_phone(mocks);

        let sent = use_case
            .execute(principal(), request(PHONE))
            .await
            .expect("code sent");

        assert_eq!(
            sent,
            CodeSent {
                phone: phone(),
                expires_in: Duration::from_secs(600),
                resend_after: Duration::from_secs(60),
            }
        );
        let code = PhoneCode::parse("000001").expect("valid");
        assert_eq!(
            queued.get(),
            Notification {
                id: NotificationId::from_uuid(seq(2)),
                user_id: USER_ID,
                kind: NotificationKind::PhoneCode {
                    expires_at: NOW.plus(Duration::from_secs(600)),
                },
                sms: Sms::phone_code(&code, phone(), Duration::from_secs(600)),
                attempts: 0,
                created_at: NOW,
            }
        );
        assert!(queued.get().sms.secret, "the code is marked secret");
        assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 1);
    }

    #[tokio::test]
    async fn an_invalid_number_changes_nothing_and_costs_nothing() {
        for bad in ["4915112345678", "+49 151", "", "+0151123456"] {
            let mut mocks = Mocks::new();
            mocks.sms_quota.expect_admit().never();
            expect_nothing_changed(&mut mocks);
            mocks.ids = no_ids();

            let result = set_phone(mocks).0.execute(principal(), request(bad)).await;

            assert!(
                matches!(result, Err(SetPhoneError::InvalidPhone(_))),
                "{bad:?}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_number_outside_the_allow_list_is_refused_before_anything_is_counted() {
        let mut mocks = Mocks::new();
        mocks.sms_quota.expect_admit().never();
        expect_nothing_changed(&mut mocks);
        mocks.ids = no_ids();
        let (use_case, stats) = set_phone(mocks);

        let result = use_case.execute(principal(), request("+19005550123")).await;

        assert!(
            matches!(result, Err(SetPhoneError::CountryNotAllowed)),
            "{result:?}"
        );
        assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Country), 1);
    }

    #[tokio::test]
    async fn over_a_limit_nothing_changes_and_nothing_is_sent() {
        for (limit, outcome) in [
            (SmsLimit::Cooldown, SmsOutcome::Cooldown),
            (SmsLimit::User, SmsOutcome::UserCap),
            (SmsLimit::Number, SmsOutcome::NumberCap),
        ] {
            let mut mocks = Mocks::new();
            let mut order = mockall::Sequence::new();
            let retry_after = Duration::from_secs(42);
            admits(
                &mut mocks,
                &mut order,
                SmsAdmission::Refused { limit, retry_after },
            );
            expect_nothing_changed(&mut mocks);
            mocks.ids = no_ids();
            let (use_case, stats) = set_phone(mocks);

            let result = use_case.execute(principal(), request(PHONE)).await;

            match result {
                Err(SetPhoneError::TooManyRequests {
                    limit: refused,
                    retry_after: wait,
                }) => {
                    assert_eq!((refused, wait), (limit, retry_after));
                }
                other => panic!("{limit:?}: expected TooManyRequests, got {other:?}"),
            }
            assert_eq!(stats.get(SmsKind::PhoneCode, outcome), 1, "{limit:?}");
            assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 0);
        }
    }

    #[tokio::test]
    async fn a_store_failure_before_the_code_is_stored_gives_the_counts_back() {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        hashes(&mut mocks);
        admits(&mut mocks, &mut order, SmsAdmission::Admitted);
        mocks
            .phone_codes
            .expect_start()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Err(unavailable()));
        mocks
            .sms_quota
            .expect_give_back()
            .withf(|user, to, cooldown| *user == USER_ID && *to == phone() && *cooldown)
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _| Ok(()));
        mocks.outbox.expect_enqueue().never();

        let result = set_phone(mocks)
            .0
            .execute(principal(), request(PHONE))
            .await;

        assert!(
            matches!(result, Err(SetPhoneError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_deleted_user_gets_nothing_and_gives_the_counts_back() {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        hashes(&mut mocks);
        admits(&mut mocks, &mut order, SmsAdmission::Admitted);
        mocks
            .phone_codes
            .expect_start()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Ok(false));
        mocks
            .sms_quota
            .expect_give_back()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_, _, _| Err(unavailable()));
        mocks.outbox.expect_enqueue().never();

        let result = set_phone(mocks)
            .0
            .execute(principal(), request(PHONE))
            .await;

        assert!(matches!(result, Err(SetPhoneError::UserGone)), "{result:?}");
    }

    #[tokio::test]
    async fn a_failed_enqueue_keeps_the_counts_since_the_sms_may_be_queued_after_all() {
        let mut mocks = Mocks::new();
        let mut order = mockall::Sequence::new();
        hashes(&mut mocks);
        admits(&mut mocks, &mut order, SmsAdmission::Admitted);
        mocks
            .phone_codes
            .expect_start()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Ok(true));
        mocks
            .outbox
            .expect_enqueue()
            .times(1)
            .in_sequence(&mut order)
            .returning(|_| Err(unexpected()));
        mocks.sms_quota.expect_give_back().never();
        let (use_case, stats) = set_phone(mocks);

        let result = use_case.execute(principal(), request(PHONE)).await;

        assert!(
            matches!(result, Err(SetPhoneError::Unexpected(_))),
            "{result:?}"
        );
        assert_eq!(stats.get(SmsKind::PhoneCode, SmsOutcome::Queued), 0);
    }

    #[tokio::test]
    async fn an_unavailable_quota_fails_closed() {
        let mut mocks = Mocks::new();
        mocks
            .sms_quota
            .expect_admit()
            .times(1)
            .returning(|_, _, _, _| Err(unavailable()));
        expect_nothing_changed(&mut mocks);
        mocks.ids = no_ids();

        let result = set_phone(mocks)
            .0
            .execute(principal(), request(PHONE))
            .await;

        assert!(
            matches!(result, Err(SetPhoneError::Unavailable(_))),
            "{result:?}"
        );
    }
}
