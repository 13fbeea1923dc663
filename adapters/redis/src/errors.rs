//! Errors as the ports know them: a Redis error becomes a [`StoreError`] here and nowhere
//! else (`redis_error`), and a stored value that does not read is `corrupt`.

use application::ports::{StoreError, Unavailability};

/// A record or reply that does not read as this adapter writes it: a broken invariant.
pub(crate) fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("corrupt record in Redis: {err}"))
}

/// Translates a Redis error at the boundary: anything that means "Redis cannot serve this
/// now" is `Unavailable` with its [`Unavailability`] (the client gets 503 + `Retry-After`,
/// never 500); the rest is unexpected.
///
/// Unavailable: a connection refused, dropped or timed out; a server refusing the command
/// for now: `OOM` (full under `maxmemory` with `noeviction`), `BUSY` (a long script),
/// `LOADING`, `READONLY` / `MASTERDOWN` / `NOREPLICAS` (a replica, a demoted master),
/// `TRYAGAIN` / `CLUSTERDOWN` / `MOVED` / `ASK` that outlived the client's retries, or a
/// slot without a reachable node.
pub(crate) fn redis_error(err: redis::RedisError) -> StoreError {
    match classify(&err) {
        Some(reason) => StoreError::unavailable(reason, err),
        None => StoreError::Unexpected(err.into()),
    }
}

/// Why Redis could not serve, when it is a reason to retry later.
fn classify(err: &redis::RedisError) -> Option<Unavailability> {
    use redis::{ErrorKind, ServerErrorKind};
    // Codes redis-rs has no kind for arrive as extension errors; a script whose write was
    // refused reports the code in its message.
    let code = err.code().unwrap_or_default();
    let detail = err.detail().unwrap_or_default();
    if code == "OOM" || detail.contains("OOM command not allowed") {
        return Some(Unavailability::OutOfMemory);
    }
    if code == "BUSY" {
        return Some(Unavailability::Busy);
    }
    if code == "NOREPLICAS" {
        return Some(Unavailability::ReadOnly);
    }
    Some(match err.kind() {
        ErrorKind::Server(ServerErrorKind::BusyLoading) => Unavailability::Loading,
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown) => {
            Unavailability::ReadOnly
        }
        ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Server(
            ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask,
        ) => Unavailability::ClusterDown,
        ErrorKind::MasterNameNotFoundBySentinel | ErrorKind::NoValidReplicasFoundBySentinel => {
            Unavailability::Unreachable
        }
        _ if err.is_timeout() => Unavailability::TimedOut,
        _ if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() => {
            Unavailability::Unreachable
        }
        _ => return None,
    })
}

/// Element `at` of a script's reply (its default when absent): the outcome's name at 0,
/// its count at 1, as the account and phone scripts answer.
pub(crate) fn reply_at<T: redis::FromRedisValue + Default>(
    reply: &[redis::Value],
    at: usize,
) -> Result<T, StoreError> {
    reply
        .get(at)
        .map(redis::from_redis_value_ref)
        .transpose()
        .map_err(corrupt)
        .map(Option::unwrap_or_default)
}
