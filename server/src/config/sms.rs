//! SMS caps per user and per number, the country allow-list, and phone codes (README,
//! "SMS and phone numbers").

use std::time::Duration;

use application::SmsPolicy;
use application::ports::SmsCaps;
use clap::Args;
use domain::CountryCode;

use super::error::{ConfigError, err};
use super::values::{Span, count, entries, span_in};
use super::vars::{
    PHONE_CODE_COOLDOWN, PHONE_CODE_MAX_ATTEMPTS, PHONE_CODE_TTL, SMS_ALLOWED_COUNTRIES,
    SMS_NUMBER_DAILY_CAP, SMS_NUMBER_HOURLY_CAP, SMS_USER_DAILY_CAP, SMS_USER_HOURLY_CAP,
};

/// Largest value of an SMS cap.
pub const MAX_SMS_CAP: u32 = 100_000;

const CAP: u64 = MAX_SMS_CAP as u64;

/// 1s to 1h: how long a code lives, and the least time between two code requests.
fn code_span(raw: &str) -> Result<Span, String> {
    span_in(
        Duration::from_secs(1),
        Duration::from_secs(3600),
        "1s and 1h",
    )(raw)
}

#[derive(Args, Clone, Debug)]
pub struct SmsArgs {
    /// SMS (todo SMS and codes) per user per hour (1 to 100000).
    #[arg(long, env = SMS_USER_HOURLY_CAP, value_name = "N",
        default_value_t = SmsPolicy::default().caps.user_hourly, value_parser = count::<u32, 1, CAP>)]
    pub sms_user_hourly_cap: u32,

    /// SMS per user per day (1 to 100000; not below SMS_USER_HOURLY_CAP).
    #[arg(long, env = SMS_USER_DAILY_CAP, value_name = "N",
        default_value_t = SmsPolicy::default().caps.user_daily, value_parser = count::<u32, 1, CAP>)]
    pub sms_user_daily_cap: u32,

    /// SMS to one number per hour, from all accounts (1 to 100000).
    #[arg(long, env = SMS_NUMBER_HOURLY_CAP, value_name = "N",
        default_value_t = SmsPolicy::default().caps.number_hourly, value_parser = count::<u32, 1, CAP>)]
    pub sms_number_hourly_cap: u32,

    /// SMS to one number per day, from all accounts (1 to 100000; not below
    /// SMS_NUMBER_HOURLY_CAP).
    #[arg(long, env = SMS_NUMBER_DAILY_CAP, value_name = "N",
        default_value_t = SmsPolicy::default().caps.number_daily, value_parser = count::<u32, 1, CAP>)]
    pub sms_number_daily_cap: u32,

    /// Comma-separated E.164 country codes SMS may go to (`+49,+43`); unset: all.
    #[arg(long, env = SMS_ALLOWED_COUNTRIES, value_name = "CODES")]
    pub sms_allowed_countries: Option<String>,

    /// How long a texted phone code is valid (1s to 1h).
    #[arg(long, env = PHONE_CODE_TTL, value_name = "DURATION",
        default_value_t = Span(SmsPolicy::default().code_ttl), value_parser = code_span)]
    pub phone_code_ttl: Span,

    /// Wrong codes tried before a code is dead (1 to 10).
    #[arg(long, env = PHONE_CODE_MAX_ATTEMPTS, value_name = "N",
        default_value_t = SmsPolicy::default().code_max_attempts, value_parser = count::<u32, 1, 10>)]
    pub phone_code_max_attempts: u32,

    /// Least time between two code requests of one user (1s to 1h).
    #[arg(long, env = PHONE_CODE_COOLDOWN, value_name = "DURATION",
        default_value_t = Span(SmsPolicy::default().code_cooldown), value_parser = code_span)]
    pub phone_code_cooldown: Span,
}

impl SmsArgs {
    /// # Errors
    /// A daily cap below its hourly one, or a bad country code.
    pub fn build(self) -> Result<SmsPolicy, ConfigError> {
        let caps = SmsCaps {
            user_hourly: self.sms_user_hourly_cap,
            user_daily: self.sms_user_daily_cap,
            number_hourly: self.sms_number_hourly_cap,
            number_daily: self.sms_number_daily_cap,
        };
        if caps.user_daily < caps.user_hourly {
            return Err(err(
                SMS_USER_DAILY_CAP,
                "must not be smaller than SMS_USER_HOURLY_CAP",
            ));
        }
        if caps.number_daily < caps.number_hourly {
            return Err(err(
                SMS_NUMBER_DAILY_CAP,
                "must not be smaller than SMS_NUMBER_HOURLY_CAP",
            ));
        }
        let allowed_countries = match &self.sms_allowed_countries {
            None => Vec::new(),
            Some(raw) => entries(raw)
                .map(|entry| {
                    CountryCode::parse(entry)
                        .map_err(|e| err(SMS_ALLOWED_COUNTRIES, format!("'{entry}': {e}")))
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(SmsPolicy {
            caps,
            allowed_countries,
            code_ttl: self.phone_code_ttl.0,
            code_max_attempts: self.phone_code_max_attempts,
            code_cooldown: self.phone_code_cooldown.0,
        })
    }
}
