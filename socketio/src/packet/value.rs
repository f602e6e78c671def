//! The serde bridge between user types holding binary data and JSON with placeholders
//! (PROTOCOL.md §2.2: "each Buffer in the payload becomes `{"_placeholder":true,"num":i}`").
//!
//! # The rules
//! - [`to_value`] serializes like `serde_json::to_value`, except that every `serialize_bytes`
//!   call (made by [`Binary`], and by `serde_bytes`-style types) becomes a placeholder whose
//!   `num` counts from 0 in order of appearance, and the bytes go to the attachment list.
//!   A plain `Vec<u8>` or `&[u8]` serializes as an array of numbers, as serde does everywhere:
//!   wrap binary data in [`Binary`].
//! - [`from_value`] deserializes like `serde_json::from_value`, except that a placeholder
//!   object is handed to the visitor as bytes when the target asks for bytes
//!   (`deserialize_bytes` / `deserialize_byte_buf`, which is what [`Binary`] does). Any other
//!   target sees the placeholder as the plain object it is, so a `serde_json::Value` keeps it.
//! - The msgpack parser's [`undefined`](crate::msgpack::undefined) marker reads as `null`
//!   (`None` for an `Option`, `Value::Null` for a `serde_json::Value`).
//! - Because serde buffers `#[serde(flatten)]` fields and untagged / internally tagged enums
//!   through `deserialize_any`, a [`Binary`] inside those does not see its placeholder.
//! - serde hands bytes over as `&[u8]`, so each attachment is copied once each way.

mod deserializer;
mod serializer;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Error, Map, Value};

use self::deserializer::ValueDeserializer;
use self::serializer::ValueSerializer;
use super::ParseError;

/// Binary data that travels as a Socket.IO attachment.
///
/// Serializes with `serialize_bytes`, so [`to_value`] turns it into a placeholder (and
/// `serde_json::to_value` into an array of numbers). Deserializes from bytes, a byte buffer or
/// a sequence of `u8`, so [`from_value`] fills it from a placeholder's attachment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Binary(pub Bytes);

impl From<Bytes> for Binary {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Bytes::from(bytes))
    }
}

impl From<Binary> for Bytes {
    fn from(binary: Binary) -> Self {
        binary.0
    }
}

impl AsRef<[u8]> for Binary {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_byte_buf(BinaryVisitor)
    }
}

struct BinaryVisitor;

impl<'de> Visitor<'de> for BinaryVisitor {
    type Value = Binary;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("binary data")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(Binary(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        // The hint comes from the peer's input, so cap what is reserved up front.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Binary(Bytes::from(out)))
    }
}

/// Serializes `value` to JSON, replacing each binary field by a placeholder and returning the
/// attachments in placeholder order (see the module rules).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<(Value, Vec<Bytes>), Error> {
    let mut attachments = Vec::new();
    let json = value.serialize(ValueSerializer {
        attachments: &mut attachments,
    })?;
    Ok((json, attachments))
}

/// Deserializes `T` from `value`, filling binary fields from `attachments` by placeholder
/// `num` (see the module rules). A placeholder read as bytes whose `num` is not an index into
/// `attachments` is an error.
pub fn from_value<T: DeserializeOwned>(value: Value, attachments: &[Bytes]) -> Result<T, Error> {
    T::deserialize(ValueDeserializer { value, attachments })
}

/// The placeholder object for attachment `num`.
fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".to_owned(), Value::Bool(true));
    map.insert("num".to_owned(), Value::from(num));
    Value::Object(map)
}

/// `None` if `map` is not a placeholder (`"_placeholder": true`), else its `num` if that is a
/// non-negative integer.
fn placeholder_num(map: &Map<String, Value>) -> Option<Option<usize>> {
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(
        map.get("num")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok()),
    )
}

/// Checks that every placeholder in `value` names one of `attachments` attachments.
pub(crate) fn validate_placeholders(value: &Value, attachments: usize) -> Result<(), ParseError> {
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| validate_placeholders(v, attachments)),
        Value::Object(map) => match placeholder_num(map) {
            Some(Some(num)) if num < attachments => Ok(()),
            Some(_) => Err(ParseError::InvalidPlaceholder),
            None => map
                .values()
                .try_for_each(|v| validate_placeholders(v, attachments)),
        },
        _ => Ok(()),
    }
}
