//! The name of every key this adapter writes (the crate docs' table lists them), and the
//! tests that the keys of each atomic step share one cluster slot.

use application::ports::{LoginAttempt, RateKey};
use domain::{IdempotencyKey, NotificationId, PhoneNumber, SessionId, UserId, Username};

/// Every key of one account, for an operator who must delete it by hand (the server names
/// them when it refuses to start): the username index key, and a `SCAN` pattern matching
/// all of the user's own keys, which share its hash tag.
pub fn account_keys(user: UserId, username: &Username) -> (String, String) {
    (username_key(username), format!("{{u:{user}}}:*"))
}

pub(crate) fn user_key(user: UserId) -> String {
    format!("{{u:{user}}}:user")
}

pub(crate) fn username_key(username: &Username) -> String {
    format!("username:{username}")
}

pub(crate) fn todos_key(user: UserId) -> String {
    format!("{{u:{user}}}:todos")
}

pub(crate) fn todo_seq_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_seq")
}

pub(crate) fn todo_order_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_order")
}

pub(crate) fn todo_creations_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_creations")
}

/// The record of an idempotency key of a todo creation. The key is visible ASCII of
/// bounded length; the user's hash tag comes first, so it decides the slot whatever the
/// key holds.
pub(crate) fn todo_idempotency_key(user: UserId, key: &IdempotencyKey) -> String {
    todo_idempotency_key_of(user, key.as_str())
}

/// [`todo_idempotency_key`] for a key as stored in the user's index (`todo_keys_key`).
pub(crate) fn todo_idempotency_key_of(user: UserId, key: &str) -> String {
    format!("{{u:{user}}}:todo_key:{key}")
}

/// The index of the user's todo idempotency records: key -> when the record expires (ms),
/// so that deleting the account finds them all.
pub(crate) fn todo_keys_key(user: UserId) -> String {
    format!("{{u:{user}}}:todo_keys")
}

/// Every key of a user whose name is fixed, but the record and the session index: what
/// deleting the account deletes with them. Sessions and idempotency records are found
/// through their indexes.
pub(crate) fn account_fixed_keys(user: UserId) -> Vec<String> {
    let mut keys = vec![
        todos_key(user),
        todo_seq_key(user),
        todo_order_key(user),
        todo_creations_key(user),
        phone_code_key(user),
        reset_code_key(user),
        reset_codes_key(user),
        events_key(user),
        audit_noise_key(user),
        totp_key(user),
        recovery_codes_key(user),
        challenges_key(user),
        mfa_codes_key(user),
    ];
    keys.extend(sms_user_keys(user, true));
    keys
}

/// The record of an idempotency key of a registration.
pub(crate) fn registration_idempotency_key(key: &IdempotencyKey) -> String {
    format!("register_key:{}", key.as_str())
}

/// A [`RateKey`]'s counter; a client's counters share its hash tag.
pub(crate) fn rate_key(key: &RateKey) -> String {
    match key {
        RateKey::Registration(client) => format!("{{rate:{client}}}:register"),
        RateKey::PasswordReset(client) => format!("{{rate:{client}}}:reset"),
        RateKey::ResetCodes(user) => reset_codes_key(*user),
        RateKey::MfaCodes(user) => mfa_codes_key(*user),
    }
}

/// The user's TOTP factor (hash: sealed secret, state, last step).
pub(crate) fn totp_key(user: UserId) -> String {
    format!("{{u:{user}}}:totp")
}

/// The digests of the user's unused recovery codes (set).
pub(crate) fn recovery_codes_key(user: UserId) -> String {
    format!("{{u:{user}}}:recovery_codes")
}

/// The user's pending login challenges (hash: digest -> expiry and user agent).
pub(crate) fn challenges_key(user: UserId) -> String {
    format!("{{u:{user}}}:mfa_challenges")
}

/// Second-factor codes tried for the user in the current window.
pub(crate) fn mfa_codes_key(user: UserId) -> String {
    format!("{{u:{user}}}:mfa_codes")
}

pub(crate) fn session_key(user: UserId, session: SessionId) -> String {
    format!("{{u:{user}}}:session:{session}")
}

/// [`session_key`] for a session id as stored in the user's set.
pub(crate) fn session_key_of(user: UserId, session: &str) -> String {
    format!("{{u:{user}}}:session:{session}")
}

/// Length of a session key: `{u:` + UUID + `}:session:` + UUID.
const SESSION_KEY_LEN: usize = 3 + 36 + 10 + 36;

/// [`session_key`] in a stack buffer, for the per-request check: no `String` formatted.
pub(crate) fn session_key_bytes(user: UserId, session: SessionId) -> [u8; SESSION_KEY_LEN] {
    let mut key = [0u8; SESSION_KEY_LEN];
    key[..3].copy_from_slice(b"{u:");
    user.as_uuid().hyphenated().encode_lower(&mut key[3..39]);
    key[39..49].copy_from_slice(b"}:session:");
    session.as_uuid().hyphenated().encode_lower(&mut key[49..]);
    key
}

/// The user a key of a user's belongs to (its hash tag), and the session for a session
/// key: how the session cache reads an invalidation Redis pushed. `None` for a key
/// outside any user's hash tag.
pub(crate) fn parse_user_key(key: &[u8]) -> Option<(UserId, Option<SessionId>)> {
    let rest = key.strip_prefix(b"{u:")?;
    let user = std::str::from_utf8(rest.get(..36)?).ok()?.parse().ok()?;
    let rest = rest.get(36..)?.strip_prefix(b"}:")?;
    let session = rest
        .strip_prefix(b"session:")
        .and_then(|sid| std::str::from_utf8(sid).ok()?.parse().ok());
    Some((user, session))
}

pub(crate) fn sessions_key(user: UserId) -> String {
    format!("{{u:{user}}}:sessions")
}

/// The keys of an attempt's throttle state: the pair's and the client's failure counters,
/// then their holds. `~` stands for a malformed name: it is no username character, so it
/// cannot collide with a real one; nor can `:holds`, `:` being none either.
pub(crate) fn login_keys(attempt: &LoginAttempt) -> [String; 4] {
    let client = attempt.client;
    let name = attempt.username.as_ref().map_or("~", |u| u.as_str());
    let pair = format!("{{login:{client}}}:pair:{name}");
    let whole = format!("{{login:{client}}}:client");
    let holds = [format!("{pair}:holds"), format!("{whole}:holds")];
    let [pair_holds, whole_holds] = holds;
    [pair, whole, pair_holds, whole_holds]
}

/// The user's audit trail (a stream).
pub(crate) fn events_key(user: UserId) -> String {
    format!("{{u:{user}}}:events")
}

/// Noise events stored in the user's trail in the current window.
pub(crate) fn audit_noise_key(user: UserId) -> String {
    format!("{{u:{user}}}:audit_noise")
}

/// Reset codes texted to the user in the current window.
pub(crate) fn reset_codes_key(user: UserId) -> String {
    format!("{{u:{user}}}:reset_codes")
}

/// The user's pending password-reset code.
pub(crate) fn reset_code_key(user: UserId) -> String {
    format!("{{u:{user}}}:reset_code")
}

/// The user's pending phone code.
pub(crate) fn phone_code_key(user: UserId) -> String {
    format!("{{u:{user}}}:phone_code")
}
fn sms_user_hour_key(user: UserId) -> String {
    format!("{{u:{user}}}:sms:hour")
}
fn sms_user_day_key(user: UserId) -> String {
    format!("{{u:{user}}}:sms:day")
}
fn sms_cooldown_key(user: UserId) -> String {
    format!("{{u:{user}}}:sms:cooldown")
}
/// A number's SMS counters, hour and day, under the number's own hash tag.
pub(crate) fn sms_number_keys(to: &PhoneNumber) -> [String; 2] {
    let digits = to.digits();
    [
        format!("{{sms:{digits}}}:hour"),
        format!("{{sms:{digits}}}:day"),
    ]
}

/// The user's SMS counter keys, with the cooldown first when there is one.
pub(crate) fn sms_user_keys(user: UserId, cooldown: bool) -> Vec<String> {
    let mut keys = Vec::with_capacity(3);
    if cooldown {
        keys.push(sms_cooldown_key(user));
    }
    keys.push(sms_user_hour_key(user));
    keys.push(sms_user_day_key(user));
    keys
}

/// The SMS outbox: every key under the one hash tag `{outbox}` (see `outbox`).
pub(crate) const OUTBOX_DUE: &str = "{outbox}:due";
pub(crate) const OUTBOX_READY: &str = "{outbox}:ready";
pub(crate) const OUTBOX_ROUNDS: &str = "{outbox}:rounds";
pub(crate) const OUTBOX_ROUND: &str = "{outbox}:round";
pub(crate) const OUTBOX_MESSAGES: &str = "{outbox}:messages";
pub(crate) const OUTBOX_DEAD: &str = "{outbox}:dead";
pub(crate) const OUTBOX_DEAD_AT: &str = "{outbox}:dead_at";

/// The provider's receipt of a delivered notification.
pub(crate) fn outbox_receipt_key(id: NotificationId) -> String {
    format!("{{outbox}}:sent:{id}")
}

#[cfg(test)]
mod tests {
    use domain::ids::Uuid;
    use redis::cluster_routing::Slot;

    use super::*;

    #[test]
    fn invalidated_keys_name_their_user_and_session() {
        let user = UserId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef));
        let session = SessionId::from_uuid(Uuid::from_u128(42));
        assert_eq!(
            parse_user_key(&session_key_bytes(user, session)),
            Some((user, Some(session)))
        );
        assert_eq!(
            parse_user_key(session_key(user, session).as_bytes()),
            Some((user, Some(session)))
        );
        assert_eq!(
            parse_user_key(user_key(user).as_bytes()),
            Some((user, None))
        );
        assert_eq!(
            parse_user_key(todos_key(user).as_bytes()),
            Some((user, None))
        );
        assert_eq!(parse_user_key(b"username:alice"), None);
        assert_eq!(parse_user_key(b"{u:not-a-uuid}:user"), None);
        assert_eq!(parse_user_key(b"{u:"), None);
    }

    /// Redis Cluster runs a script or a MULTI/EXEC only when all its keys share a slot.
    #[test]
    fn every_multi_key_step_stays_in_one_cluster_slot() {
        use redis::cluster_routing::Slot;
        let user = UserId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef));
        let session = SessionId::from_uuid(Uuid::from_u128(42));
        let user_keys = [
            user_key(user),
            todos_key(user),
            todo_seq_key(user),
            sessions_key(user),
            session_key(user, session),
            session_key_of(user, &session.to_string()),
        ];
        let slot = Slot::for_key(&user_keys[0]);
        for key in &user_keys {
            assert_eq!(Slot::for_key(key), slot, "{key}");
        }
        let other = UserId::from_uuid(Uuid::from_u128(7));
        assert_ne!(
            Slot::for_key(user_key(other)),
            slot,
            "users spread over slots"
        );
    }

    #[test]
    fn a_clients_login_counters_and_holds_share_one_slot() {
        use redis::cluster_routing::Slot;
        for (ip, name) in [("203.0.113.7", Some("alice")), ("2001:db8:1:2::9", None)] {
            let attempt = LoginAttempt {
                id: Uuid::from_u128(1),
                username: name.map(|n| Username::parse(n).expect("valid")),
                client: domain::ClientAddress::from_ip(ip.parse().expect("ip")),
            };
            let keys = login_keys(&attempt);
            let slot = Slot::for_key(&keys[0]);
            for key in &keys {
                assert_eq!(Slot::for_key(key), slot, "{key}");
            }
            assert!(keys[2].ends_with(":holds") && keys[3].ends_with(":holds"));
        }
    }

    #[test]
    fn every_new_per_user_key_shares_the_users_slot() {
        use redis::cluster_routing::Slot;
        let user = UserId::from_uuid(Uuid::from_u128(0xfeed));
        // A key that holds braces of its own must not move the record to another slot.
        let key = IdempotencyKey::parse("{other}-key").expect("valid");
        let slot = Slot::for_key(user_key(user));
        for k in [
            todo_order_key(user),
            todo_creations_key(user),
            todo_idempotency_key(user, &key),
            todo_keys_key(user),
        ]
        .into_iter()
        .chain(account_fixed_keys(user))
        {
            assert_eq!(Slot::for_key(&k), slot, "{k}");
        }
    }

    #[test]
    fn the_stack_session_key_is_the_formatted_one() {
        let user = UserId::from_uuid(Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8));
        let session = SessionId::from_uuid(Uuid::from_u128(u128::MAX - 7));
        assert_eq!(
            &session_key_bytes(user, session)[..],
            session_key(user, session).as_bytes()
        );
    }

    /// Redis Cluster runs a script or a MULTI/EXEC only when all its keys share a slot.
    #[test]
    fn every_outbox_key_shares_one_slot() {
        let outbox = [
            OUTBOX_DUE.to_owned(),
            OUTBOX_READY.to_owned(),
            OUTBOX_ROUNDS.to_owned(),
            OUTBOX_ROUND.to_owned(),
            OUTBOX_MESSAGES.to_owned(),
            OUTBOX_DEAD.to_owned(),
            OUTBOX_DEAD_AT.to_owned(),
            outbox_receipt_key(NotificationId::from_uuid(Uuid::from_u128(9))),
        ];
        for key in &outbox {
            assert_eq!(Slot::for_key(key), Slot::for_key(OUTBOX_DUE), "{key}");
        }
    }

    /// Each script's keys share one slot: a user's with the user record, a number's with
    /// each other.
    #[test]
    fn every_phone_step_stays_in_one_cluster_slot() {
        let user = UserId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_4def_8123_4567_89ab_cdef));
        let slot = Slot::for_key(user_key(user));
        for key in [phone_code_key(user)]
            .into_iter()
            .chain(sms_user_keys(user, true))
        {
            assert_eq!(Slot::for_key(&key), slot, "{key}");
        }
        let number = PhoneNumber::parse("+4915112345678").expect("valid");
        let [hour, day] = sms_number_keys(&number);
        assert_eq!(Slot::for_key(&hour), Slot::for_key(&day));
        assert_eq!(hour, "{sms:4915112345678}:hour");
        let other = PhoneNumber::parse("+4915112345679").expect("valid");
        assert_ne!(
            Slot::for_key(&sms_number_keys(&other)[0]),
            Slot::for_key(&hour),
            "numbers spread over slots"
        );
    }
}
