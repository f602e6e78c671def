//! Session ids: 20 URL-safe characters from 15 bytes of the operating system's
//! CSPRNG, so they cannot be guessed from one another.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An Engine.IO session id: 20 characters of URL-safe base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; 20]);

impl Sid {
    /// A fresh random id. Falls back to mixing the clock and a counter only if
    /// the OS random source is unavailable (logged as an error).
    pub fn generate() -> Sid {
        let mut raw = [0u8; 15];
        if let Err(e) = getrandom::fill(&mut raw) {
            tracing::error!(error = %e, "OS random source failed; session id falls back to a weaker source");
            fallback_fill(&mut raw);
        }
        let mut out = [0u8; 20];
        // 15 bytes encode to exactly 20 base64 characters.
        let _ = URL_SAFE_NO_PAD.encode_slice(raw, &mut out);
        Sid(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only base64 URL-safe ASCII is ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Parses a client-supplied id; `None` unless it has the exact shape of one
    /// of ours (so unknown ids are cheap to reject).
    pub fn parse(s: &str) -> Option<Sid> {
        let bytes: [u8; 20] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .then_some(Sid(bytes))
    }
}

fn fallback_fill(buf: &mut [u8]) {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for chunk in buf.chunks_mut(8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            h.write_u128(d.as_nanos());
        }
        let v = h.finish().to_le_bytes();
        for (dst, src) in chunk.iter_mut().zip(v) {
            *dst = src;
        }
    }
}

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_uniqueness() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = Sid::generate();
            assert_eq!(s.as_str().len(), 20);
            assert_eq!(Sid::parse(s.as_str()), Some(s));
            assert!(seen.insert(s));
        }
        assert_eq!(Sid::parse("abc"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa!"), None);
    }
}
