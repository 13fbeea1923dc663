//! The SMS gate: every SMS the use cases queue passes here, so the rules hold in one place.
//!
//! - Todo SMS go only to a **verified** number (one the user proved with a texted code);
//!   a user with an unverified number gets no SMS, which ends SMS pumping through numbers
//!   nobody proved.
//! - Only to numbers in the **country allow-list**, when one is configured.
//! - Within the **caps** per user and per number, per hour and per day, counted in the
//!   store when the SMS is queued (so every replica shares them). Codes count too.
//!
//! A todo SMS that a rule stops is skipped, never an error: the todo is created all the
//! same. Every decision is counted in [`SmsStats`] for the metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::{
    CountryCode, Notification, NotificationId, NotificationKind, PhoneNumber, Sms, Timestamp,
    TodoId, User, UserId,
};

use crate::ports::Ports;
use crate::ports::{IdGenerator, Outbox, SmsAdmission, SmsCaps, SmsLimit, SmsQuota, StoreError};

/// Why a number outside the country allow-list is refused, wherever it is.
pub(crate) const COUNTRY_NOT_ALLOWED: &str = "SMS cannot be sent to numbers of this country here";

/// How SMS are limited, and how phone codes behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsPolicy {
    pub caps: SmsCaps,
    /// Country codes SMS may go to; empty: every country.
    pub allowed_countries: Vec<CountryCode>,
    /// How long a texted code is valid.
    pub code_ttl: Duration,
    /// Wrong codes tried before a code is dead.
    pub code_max_attempts: u32,
    /// Least time between two code requests of one user.
    pub code_cooldown: Duration,
}

/// Ten SMS an hour and fifty a day per user and per number; codes valid ten minutes, five
/// tries each, one request a minute.
///
/// Ten an hour is a busy person's todo list; fifty a day bounds what one account (or one
/// number, whoever sends to it) can cost. A code is six digits: five tries give an attacker
/// a one-in-200,000 chance per code, and the cooldown and caps bound the codes.
impl Default for SmsPolicy {
    fn default() -> Self {
        Self {
            caps: SmsCaps {
                user_hourly: 10,
                user_daily: 50,
                number_hourly: 10,
                number_daily: 50,
            },
            allowed_countries: Vec::new(),
            code_ttl: Duration::from_secs(10 * 60),
            code_max_attempts: 5,
            code_cooldown: Duration::from_secs(60),
        }
    }
}

impl SmsPolicy {
    /// Whether SMS may go to `phone` at all (the country allow-list).
    pub fn allows(&self, phone: &PhoneNumber) -> bool {
        self.allowed_countries.is_empty() || self.allowed_countries.iter().any(|c| phone.is_in(c))
    }
}

/// Why an SMS was queued or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsKind {
    TodoCreated,
    PhoneCode,
    /// A password-reset code.
    PasswordReset,
}

impl SmsKind {
    pub const ALL: [SmsKind; 3] = [
        SmsKind::TodoCreated,
        SmsKind::PhoneCode,
        SmsKind::PasswordReset,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::TodoCreated => "todo_created",
            SmsKind::PhoneCode => "phone_code",
            SmsKind::PasswordReset => "password_reset",
        }
    }
}

/// What became of an SMS at the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsOutcome {
    /// Queued for delivery.
    Queued,
    /// Skipped: the number is not verified.
    Unverified,
    /// Skipped or refused: the number is outside the country allow-list.
    Country,
    /// Refused: a code was requested again too soon.
    Cooldown,
    /// Skipped or refused: the user's cap.
    UserCap,
    /// Skipped or refused: the number's cap.
    NumberCap,
}

impl SmsOutcome {
    pub const ALL: [SmsOutcome; 6] = [
        SmsOutcome::Queued,
        SmsOutcome::Unverified,
        SmsOutcome::Country,
        SmsOutcome::Cooldown,
        SmsOutcome::UserCap,
        SmsOutcome::NumberCap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SmsOutcome::Queued => "queued",
            SmsOutcome::Unverified => "unverified",
            SmsOutcome::Country => "country",
            SmsOutcome::Cooldown => "cooldown",
            SmsOutcome::UserCap => "user_cap",
            SmsOutcome::NumberCap => "number_cap",
        }
    }

    fn refused_by(limit: SmsLimit) -> Self {
        match limit {
            SmsLimit::Cooldown => SmsOutcome::Cooldown,
            SmsLimit::User => SmsOutcome::UserCap,
            SmsLimit::Number => SmsOutcome::NumberCap,
        }
    }
}

/// Counters of the gate's decisions, by kind and outcome, for logs and metrics.
#[derive(Debug, Default)]
pub struct SmsStats {
    counts: [[AtomicU64; SmsOutcome::ALL.len()]; SmsKind::ALL.len()],
}

impl SmsStats {
    pub fn get(&self, kind: SmsKind, outcome: SmsOutcome) -> u64 {
        self.cell(kind, outcome).load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self, kind: SmsKind, outcome: SmsOutcome) {
        self.cell(kind, outcome).fetch_add(1, Ordering::Relaxed);
    }

    fn cell(&self, kind: SmsKind, outcome: SmsOutcome) -> &AtomicU64 {
        // Fieldless enums: their discriminants are their positions in `ALL`.
        &self.counts[kind as usize][outcome as usize]
    }
}

/// The one way the use cases queue an SMS. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SmsGate {
    quota: Arc<dyn SmsQuota>,
    outbox: Arc<dyn Outbox>,
    ids: Arc<dyn IdGenerator>,
    pub policy: Arc<SmsPolicy>,
    pub stats: Arc<SmsStats>,
}

impl SmsGate {
    pub fn new(ports: &Ports, policy: SmsPolicy, stats: Arc<SmsStats>) -> Self {
        Self {
            quota: ports.sms_quota.clone(),
            outbox: ports.outbox.clone(),
            ids: ports.ids.clone(),
            policy: Arc::new(policy),
            stats,
        }
    }

    /// Queues the seed's "a todo was created" SMS for `todo`, if the rules let it go.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot count or queue it: fail closed, before the
    /// todo exists. A skipped SMS is not an error.
    pub async fn todo_created(
        &self,
        user: &User,
        todo: TodoId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // A user without a phone gets no SMS, and that is not worth counting.
        let Some(phone) = user.phone.clone() else {
            return Ok(());
        };
        let kind = SmsKind::TodoCreated;
        if !user.phone_verified {
            self.stats.count(kind, SmsOutcome::Unverified);
            tracing::debug!(todo_id = %todo, "sms skipped: phone not verified");
            return Ok(());
        }
        if !self.policy.allows(&phone) {
            self.stats.count(kind, SmsOutcome::Country);
            tracing::info!(todo_id = %todo, "sms skipped: country not allowed");
            return Ok(());
        }
        if let SmsAdmission::Refused { limit, .. } = self
            .quota
            .admit(user.id, &phone, &self.policy.caps, None)
            .await?
        {
            self.stats.count(kind, SmsOutcome::refused_by(limit));
            tracing::info!(todo_id = %todo, ?limit, "sms skipped: over the cap");
            return Ok(());
        }
        let notification = Notification {
            id: NotificationId::from_uuid(self.ids.new_uuid()),
            user_id: user.id,
            kind: NotificationKind::TodoCreated { todo_id: todo },
            sms: Sms::todo_created(&user.username, phone),
            attempts: 0,
            created_at: now,
        };
        // A failed enqueue keeps its count: the SMS may be queued all the same.
        self.outbox.enqueue(&notification).await?;
        self.stats.count(kind, SmsOutcome::Queued);
        tracing::debug!(notification_id = %notification.id, todo_id = %todo, "sms queued");
        Ok(())
    }

    /// Admits a code request: the cooldown, then the caps.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot count it.
    pub async fn admit_code(
        &self,
        kind: SmsKind,
        user: UserId,
        phone: &PhoneNumber,
    ) -> Result<SmsAdmission, StoreError> {
        let admission = self
            .quota
            .admit(
                user,
                phone,
                &self.policy.caps,
                Some(self.policy.code_cooldown),
            )
            .await?;
        if let SmsAdmission::Refused { limit, .. } = admission {
            self.stats.count(kind, SmsOutcome::refused_by(limit));
        }
        Ok(admission)
    }

    /// Queues an admitted code SMS.
    ///
    /// # Errors
    /// [`StoreError`] when it could not be queued. Its counts stay: the SMS may have been
    /// queued all the same (a lost reply), and the caps must never be passed.
    pub async fn queue_code(
        &self,
        kind: SmsKind,
        notification: &Notification,
    ) -> Result<(), StoreError> {
        self.outbox.enqueue(notification).await?;
        self.stats.count(kind, SmsOutcome::Queued);
        Ok(())
    }

    /// Gives back an admitted SMS that was certainly not queued; best effort (the counts
    /// lapse with their windows anyway).
    pub async fn give_back(&self, user: UserId, phone: &PhoneNumber, cooldown: bool) {
        if let Err(e) = self.quota.give_back(user, phone, cooldown).await {
            tracing::warn!(error = %e, "could not give back an SMS count; it lapses with its window");
        }
    }
}
