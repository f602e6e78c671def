//! Basic auth of the admin namespace: a username and a bcrypt hash, checked
//! as the reference does (`bcryptjs.compare`), and the session ids handed to
//! a UI that logged in (its later connections may show one instead of the
//! password; the reference's `InMemoryStore`, here bounded and expiring).

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Whether `hash` is a bcrypt hash the verifier reads:
/// `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost from 4 to 31, then 53
/// characters of bcrypt's base64 alphabet (60 characters in all).
pub(crate) fn is_bcrypt_hash(hash: &str) -> bool {
    let b = hash.as_bytes();
    let (Some(head), Some(cost), Some(rest)) = (b.get(..4), hash.get(4..6), b.get(6..)) else {
        return false;
    };
    let variant_ok = matches!(head, b"$2a$" | b"$2b$" | b"$2x$" | b"$2y$");
    let cost_ok = cost.bytes().all(|c| c.is_ascii_digit())
        && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
    let body_ok = rest.len() == 54
        && rest.first() == Some(&b'$')
        && rest
            .iter()
            .skip(1)
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/');
    b.len() == 60 && variant_ok && cost_ok && body_ok
}

/// Checks a password against a bcrypt hash (CPU-bound: run it off the
/// async workers).
pub(crate) fn verify(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

/// Session ids issued to logged-in UIs, oldest first; at most `max`, each
/// valid for `ttl`.
#[derive(Debug)]
pub(crate) struct Sessions {
    max: usize,
    ttl: Duration,
    list: Mutex<VecDeque<(String, Instant)>>,
}

impl Sessions {
    pub(crate) fn new(max: usize, ttl: Duration) -> Self {
        Sessions {
            max,
            ttl,
            list: Mutex::new(VecDeque::new()),
        }
    }

    /// Keeps a new session id (the oldest goes if `max` are kept).
    pub(crate) fn insert(&self, id: String, now: Instant) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        while list.len() >= self.max.max(1) {
            list.pop_front();
        }
        list.push_back((id, now + self.ttl));
    }

    /// Whether `id` was issued and has not expired.
    pub(crate) fn contains(&self, id: &str, now: Instant) -> bool {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        while list.front().is_some_and(|(_, until)| *until <= now) {
            list.pop_front();
        }
        list.iter().any(|(s, _)| s == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bcryptjs.hashSync("s3cret!", 4)`, as the reference's users make them.
    const HASH: &str = "$2a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5my";

    #[test]
    fn reads_bcryptjs_hashes() {
        assert!(is_bcrypt_hash(HASH));
        assert!(verify("s3cret!", HASH));
        assert!(!verify("s3cret", HASH));
        assert!(!verify("", HASH));
    }

    #[test]
    fn refuses_what_is_not_a_hash() {
        for bad in [
            "",
            "s3cret!",
            "$2a$04$short",
            "$3a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5my",
            "$2a$99$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5my",
            "$2a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5m!",
            "$2a$04$juCd38YOBoYh1zI1qygTseaWBkIqtx.DMl79dohswhGjlEF53m5myé",
        ] {
            assert!(!is_bcrypt_hash(bad), "{bad}");
        }
    }

    #[test]
    fn sessions_are_bounded_and_expire() {
        let t0 = Instant::now();
        let s = Sessions::new(2, Duration::from_secs(10));
        s.insert("a".into(), t0);
        s.insert("b".into(), t0);
        assert!(s.contains("a", t0) && s.contains("b", t0));
        s.insert("c".into(), t0 + Duration::from_secs(1));
        assert!(!s.contains("a", t0), "the oldest goes past the bound");
        assert!(s.contains("c", t0 + Duration::from_secs(2)));
        assert!(!s.contains("b", t0 + Duration::from_secs(10)));
        assert!(s.contains("c", t0 + Duration::from_secs(10)));
        assert!(!s.contains("c", t0 + Duration::from_secs(11)));
        assert!(!s.contains("zz", t0));
    }
}
