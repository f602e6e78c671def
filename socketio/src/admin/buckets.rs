//! The aggregated events of `server_stats`: counts per second and per kind
//! (`rawConnection`, `rawDisconnection` by close reason, `packetsIn`,
//! `bytesIn`, `packetsOut`, `bytesOut`), kept in atomics so that counting is
//! a couple of relaxed additions on the hot path, with no allocation and no
//! lock. Pure: the caller gives the time.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

/// Seconds kept before a slot is reused: the stats interval is at most
/// [`MAX_INTERVAL_SECS`], so every slot is drained well before that.
const SLOTS: usize = 32;

/// The longest stats interval the ring is sized for.
pub(crate) const MAX_INTERVAL_SECS: u64 = 10;

/// What is counted, in the order `drain` lists them within a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    RawConnection,
    PacketsIn,
    BytesIn,
    PacketsOut,
    BytesOut,
    /// `rawDisconnection` with this close reason (Engine.IO's strings).
    RawDisconnection(Reason),
}

/// The close reasons the engine reports (`subType` of `rawDisconnection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    TransportClose,
    TransportError,
    PingTimeout,
    ForcedClose,
    ParseError,
    ServerShuttingDown,
}

const REASONS: [Reason; 6] = [
    Reason::TransportClose,
    Reason::TransportError,
    Reason::PingTimeout,
    Reason::ForcedClose,
    Reason::ParseError,
    Reason::ServerShuttingDown,
];

const KINDS: usize = 5 + REASONS.len();

impl Reason {
    pub(crate) fn from_engine(r: engineio::CloseReason) -> Reason {
        use engineio::CloseReason as C;
        match r {
            C::TransportClose => Reason::TransportClose,
            C::PingTimeout => Reason::PingTimeout,
            C::ForcedClose => Reason::ForcedClose,
            C::ParseError => Reason::ParseError,
            C::ServerShutdown => Reason::ServerShuttingDown,
            _ => Reason::TransportError,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Reason::TransportClose => "transport close",
            Reason::TransportError => "transport error",
            Reason::PingTimeout => "ping timeout",
            Reason::ForcedClose => "forced close",
            Reason::ParseError => "parse error",
            Reason::ServerShuttingDown => "server shutting down",
        }
    }

    fn index(self) -> usize {
        REASONS.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::RawConnection => 0,
            Kind::PacketsIn => 1,
            Kind::BytesIn => 2,
            Kind::PacketsOut => 3,
            Kind::BytesOut => 4,
            Kind::RawDisconnection(r) => 5 + r.index(),
        }
    }

    fn from_index(i: usize) -> Option<Kind> {
        Some(match i {
            0 => Kind::RawConnection,
            1 => Kind::PacketsIn,
            2 => Kind::BytesIn,
            3 => Kind::PacketsOut,
            4 => Kind::BytesOut,
            _ => Kind::RawDisconnection(*REASONS.get(i.checked_sub(5)?)?),
        })
    }

    fn type_name(self) -> &'static str {
        match self {
            Kind::RawConnection => "rawConnection",
            Kind::PacketsIn => "packetsIn",
            Kind::BytesIn => "bytesIn",
            Kind::PacketsOut => "packetsOut",
            Kind::BytesOut => "bytesOut",
            Kind::RawDisconnection(_) => "rawDisconnection",
        }
    }
}

#[derive(Default)]
struct Slot {
    /// The second (since the Unix epoch) these counts belong to.
    second: AtomicU64,
    counts: [AtomicU64; KINDS],
}

/// Counts per second for the last [`SLOTS`] seconds, drained by each
/// `server_stats`. A slot is taken over by a later second once its counts
/// were drained; if a drain came later than [`SLOTS`] seconds, the stale
/// counts would be attributed to the newer second (never lost).
pub(crate) struct EventBuckets {
    slots: [Slot; SLOTS],
}

impl std::fmt::Debug for EventBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBuckets").finish_non_exhaustive()
    }
}

impl Default for EventBuckets {
    fn default() -> Self {
        EventBuckets {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }
}

impl EventBuckets {
    /// Adds `n` to `kind` in the second `second`.
    pub(crate) fn add(&self, second: u64, kind: Kind, n: u64) {
        let at = usize::try_from(second % SLOTS as u64).unwrap_or(0);
        let Some(slot) = self.slots.get(at) else {
            return;
        };
        if slot.second.load(Ordering::Relaxed) != second {
            slot.second.store(second, Ordering::Relaxed);
        }
        if let Some(c) = slot.counts.get(kind.index()) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Takes every count (they restart from zero): the reference's
    /// `aggregatedEvents`, `[{timestamp, type, subType?, count}]` with the
    /// timestamp in milliseconds at the start of the second, oldest second
    /// first; kinds with no count are left out.
    pub(crate) fn drain(&self) -> Vec<Value> {
        let mut taken: Vec<(u64, Kind, u64)> = Vec::new();
        for slot in &self.slots {
            let second = slot.second.load(Ordering::Relaxed);
            for (i, c) in slot.counts.iter().enumerate() {
                let n = c.swap(0, Ordering::Relaxed);
                if let (true, Some(kind)) = (n > 0, Kind::from_index(i)) {
                    taken.push((second, kind, n));
                }
            }
        }
        taken.sort_by_key(|(second, kind, _)| (*second, kind.index()));
        taken
            .into_iter()
            .map(|(second, kind, count)| {
                let mut m = Map::new();
                m.insert(
                    "timestamp".to_owned(),
                    Value::from(second.saturating_mul(1000)),
                );
                m.insert("type".to_owned(), Value::from(kind.type_name()));
                if let Kind::RawDisconnection(r) = kind {
                    m.insert("subType".to_owned(), Value::from(r.as_str()));
                }
                m.insert("count".to_owned(), Value::from(count));
                Value::Object(m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_per_second_and_kind_then_restart() {
        let b = EventBuckets::default();
        b.add(1_000, Kind::RawConnection, 1);
        b.add(1_000, Kind::PacketsIn, 1);
        b.add(1_000, Kind::BytesIn, 8);
        b.add(1_000, Kind::PacketsIn, 1);
        b.add(1_001, Kind::BytesOut, 100);
        b.add(
            1_001,
            Kind::RawDisconnection(Reason::from_engine(engineio::CloseReason::ForcedClose)),
            1,
        );
        assert_eq!(
            Value::Array(b.drain()),
            json!([
                {"timestamp": 1_000_000, "type": "rawConnection", "count": 1},
                {"timestamp": 1_000_000, "type": "packetsIn", "count": 2},
                {"timestamp": 1_000_000, "type": "bytesIn", "count": 8},
                {"timestamp": 1_001_000, "type": "bytesOut", "count": 100},
                {"timestamp": 1_001_000, "type": "rawDisconnection", "subType": "forced close", "count": 1},
            ])
        );
        assert!(b.drain().is_empty());
        // A slot drained is taken over by a later second.
        b.add(1_000 + SLOTS as u64, Kind::PacketsOut, 3);
        assert_eq!(
            Value::Array(b.drain()),
            json!([{"timestamp": (1_000 + SLOTS as u64) * 1000, "type": "packetsOut", "count": 3}])
        );
    }

    #[test]
    fn every_kind_round_trips_its_index() {
        for i in 0..KINDS {
            assert_eq!(Kind::from_index(i).map(Kind::index), Some(i));
        }
        assert_eq!(Kind::from_index(KINDS), None);
        assert_eq!(
            Reason::from_engine(engineio::CloseReason::QueueFull),
            Reason::TransportError
        );
    }
}
