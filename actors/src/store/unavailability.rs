//! Why Redis cannot do an operation now though it may shortly, told from its error codes:
//! what the store's error mapping, its metrics and the key check's script all read.

/// Why Redis cannot do an operation now though it may shortly: a request meeting one answers
/// 503 `api_error` with `Stripe-Should-Retry: true` rather than a 500 that says "do not
/// retry". Each is a `kind` of `calmony_redis_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailability {
    /// `OOM`: `maxmemory` reached under `noeviction`; writes are refused, reads served.
    OutOfMemory,
    /// `LOADING`: the dataset is being loaded (an AOF replayed after a restart).
    Loading,
    /// `BUSY`: a script or function is running past `busy-reply-threshold`.
    Busy,
    /// `READONLY`: a replica (a failover demoted this node); writes are refused.
    ReadOnly,
    /// `MASTERDOWN`: a replica that lost its master and serves no stale data.
    MasterDown,
    /// `NOREPLICAS` (`min-replicas-to-write` unmet) or `MISCONF` (persistence failing, writes
    /// stopped): writes refused until the operator's side recovers.
    WritesStopped,
    /// `TRYAGAIN` or `CLUSTERDOWN`: a cluster resharding or without quorum.
    Cluster,
    /// The connection was refused, reset or dropped.
    Connection,
    /// No answer within the operation timeout.
    Timeout,
}

impl Unavailability {
    pub const ALL: [Self; 9] = [
        Self::OutOfMemory,
        Self::Loading,
        Self::Busy,
        Self::ReadOnly,
        Self::MasterDown,
        Self::WritesStopped,
        Self::Cluster,
        Self::Connection,
        Self::Timeout,
    ];

    /// Redis's error codes, each with its kind: what [`Unavailability::of_code`] reads and
    /// what the key check's script lets through uncharged ([`Unavailability::write_refusals`]).
    const CODES: [(&'static str, Self); 9] = [
        ("OOM", Self::OutOfMemory),
        ("LOADING", Self::Loading),
        ("BUSY", Self::Busy),
        ("READONLY", Self::ReadOnly),
        ("MASTERDOWN", Self::MasterDown),
        ("NOREPLICAS", Self::WritesStopped),
        ("MISCONF", Self::WritesStopped),
        ("TRYAGAIN", Self::Cluster),
        ("CLUSTERDOWN", Self::Cluster),
    ];

    /// The kind of an error Redis answered with, from its code (the reply's first word, kept
    /// when the command ran inside a script); `None`: a fault a retry will not mend.
    pub fn of_code(code: &str) -> Option<Self> {
        Self::CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, kind)| *kind)
    }

    /// Whether Redis failing so still serves reads: only writes are refused (memory full, a
    /// replica, persistence failing, too few replicas). A read then must not fail for the
    /// bookkeeping write that goes with it.
    pub fn refuses_only_writes(self) -> bool {
        matches!(
            self,
            Self::OutOfMemory | Self::ReadOnly | Self::WritesStopped
        )
    }

    /// The codes of the kinds that refuse only writes.
    pub fn write_refusals() -> impl Iterator<Item = &'static str> {
        Self::CODES
            .into_iter()
            .filter(|(_, kind)| kind.refuses_only_writes())
            .map(|(code, _)| code)
    }

    /// The kind of a client error, if it is one a retry may mend.
    pub fn of(e: &redis::RedisError) -> Option<Self> {
        if e.is_timeout() {
            Some(Self::Timeout)
        } else if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            Some(Self::Connection)
        } else {
            e.code().and_then(Self::of_code)
        }
    }

    /// Its `kind` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::OutOfMemory => "oom",
            Self::Loading => "loading",
            Self::Busy => "busy",
            Self::ReadOnly => "readonly",
            Self::MasterDown => "masterdown",
            Self::WritesStopped => "writes_stopped",
            Self::Cluster => "cluster",
            Self::Connection => "connection",
            Self::Timeout => "timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_errors_a_retry_may_mend_are_unavailability() {
        use Unavailability::*;
        for (code, kind) in [
            ("OOM", Some(OutOfMemory)),
            ("LOADING", Some(Loading)),
            ("BUSY", Some(Busy)),
            ("READONLY", Some(ReadOnly)),
            ("MASTERDOWN", Some(MasterDown)),
            ("NOREPLICAS", Some(WritesStopped)),
            ("MISCONF", Some(WritesStopped)),
            ("TRYAGAIN", Some(Cluster)),
            ("CLUSTERDOWN", Some(Cluster)),
            ("ERR", None),
            ("WRONGTYPE", None),
            ("NOSCRIPT", None),
            ("NOPERM", None),
            ("oom", None),
        ] {
            assert_eq!(Unavailability::of_code(code), kind, "{code}");
        }
        let io = |kind| redis::RedisError::from(std::io::Error::new(kind, "x"));
        for (e, kind) in [
            (io(std::io::ErrorKind::ConnectionReset), Some(Connection)),
            (io(std::io::ErrorKind::ConnectionRefused), Some(Connection)),
            (io(std::io::ErrorKind::BrokenPipe), Some(Connection)),
            (io(std::io::ErrorKind::TimedOut), Some(Timeout)),
            (
                redis::RedisError::from((redis::ErrorKind::Io, "closed")),
                Some(Connection),
            ),
            (
                redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "type")),
                None,
            ),
            // As a script's `redis.call` answers it: the code kept, the script named after.
            (
                redis::make_extension_error(
                    "OOM".into(),
                    Some("command not allowed when used memory > 'maxmemory'. script: 5b6".into()),
                ),
                Some(OutOfMemory),
            ),
            (
                redis::make_extension_error("ERR".into(), Some("user_script:1: bug".into())),
                None,
            ),
        ] {
            assert_eq!(Unavailability::of(&e), kind, "{e}");
        }
        // Reads go on under these, and only these.
        let only_writes: Vec<_> = Unavailability::write_refusals().collect();
        assert_eq!(only_writes, ["OOM", "READONLY", "NOREPLICAS", "MISCONF"]);
        for kind in Unavailability::ALL {
            assert_eq!(
                kind.refuses_only_writes(),
                matches!(kind, OutOfMemory | ReadOnly | WritesStopped),
                "{kind:?}"
            );
        }
    }
}
