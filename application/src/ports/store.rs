//! How a store port fails: [`StoreError`], and why a store could not serve
//! ([`Unavailability`]).

/// Failure of a store port.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot serve now: unreachable, no answer in time, or refusing the command
    /// (out of memory, busy, loading, read-only, failing over). Nothing was changed that
    /// the caller was told about; retrying later may succeed. Adapters build it with
    /// [`StoreError::unavailable`], so [`unavailability`] can tell why.
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: corrupt records, protocol errors, a broken invariant. Not retryable
    /// by the client.
    #[error("store failure")]
    Unexpected(#[source] anyhow::Error),
}

impl StoreError {
    /// [`StoreError::Unavailable`] for `reason`, keeping the driver's error as the source.
    pub fn unavailable(reason: Unavailability, source: impl Into<anyhow::Error>) -> Self {
        StoreError::Unavailable(anyhow::Error::new(Unavailable {
            reason,
            source: source.into(),
        }))
    }
}

/// Why a store could not serve: for metrics, logs and readiness, never for control flow
/// (every kind is answered alike: 503, retry later).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unavailability {
    /// Cannot connect, or the connection broke.
    Unreachable,
    /// No answer within the command timeout (the command may still run).
    TimedOut,
    /// The store refuses writes because it is full (Redis `OOM` under `maxmemory` with
    /// `noeviction`).
    OutOfMemory,
    /// The store is busy running a long script (`BUSY`).
    Busy,
    /// The store is loading its data set (`LOADING`).
    Loading,
    /// The node refuses writes: a replica, or a demoted master (`READONLY`, `MASTERDOWN`,
    /// `NOREPLICAS`).
    ReadOnly,
    /// The cluster is reconfiguring (`TRYAGAIN`, `CLUSTERDOWN`, a slot without a node).
    ClusterDown,
}

impl Unavailability {
    /// A stable label: `unreachable`, `timeout`, `oom`, `busy`, `loading`, `readonly`,
    /// `clusterdown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unavailability::Unreachable => "unreachable",
            Unavailability::TimedOut => "timeout",
            Unavailability::OutOfMemory => "oom",
            Unavailability::Busy => "busy",
            Unavailability::Loading => "loading",
            Unavailability::ReadOnly => "readonly",
            Unavailability::ClusterDown => "clusterdown",
        }
    }

    /// Whether the store answered but refused to write (it is up, and reads may work).
    pub fn refuses_writes(self) -> bool {
        matches!(
            self,
            Unavailability::OutOfMemory | Unavailability::ReadOnly | Unavailability::Loading
        )
    }
}

/// The cause carried by [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
#[error("store unavailable ({})", reason.as_str())]
pub struct Unavailable {
    pub reason: Unavailability,
    #[source]
    pub source: anyhow::Error,
}

/// Why the store behind `cause` (the payload of some `Unavailable` error) could not
/// serve; [`Unavailability::Unreachable`] when the adapter did not say.
pub fn unavailability(cause: &anyhow::Error) -> Unavailability {
    cause
        .downcast_ref::<Unavailable>()
        .map_or(Unavailability::Unreachable, |u| u.reason)
}
