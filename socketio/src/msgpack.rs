//! The workspace's one MessagePack codec: MessagePack as notepack.io writes
//! and reads it, mapped to and from the JSON values of this crate, whose
//! binary parts are placeholders into a list of attachments.
//!
//! Two users share it: the msgpack [`Parser`](crate::Parser) (what
//! `socket.io-msgpack-parser` 3.x, built on notepack.io 2.2, puts in each
//! Engine.IO message) and the `socketio-redis` adapter (what
//! `@socket.io/redis-adapter` publishes with notepack.io 3.0).
//!
//! Pure: no I/O. Encoding follows notepack byte for byte: str-keyed maps in
//! insertion order, the smallest integer width, every non-integer number as
//! float64, strings as `str`, attachments as `bin`, [`undefined`] as the
//! fixext `d4 00 00`. Decoding accepts any valid MessagePack:
//! - `bin`, and ext type 0 in its `ext 8/16/32` forms (how notepack 2 writes
//!   an `ArrayBuffer` or typed array, `lib/encode.js`), become a placeholder
//!   and an attachment;
//! - fixext 1 type 0 (`d4 00 xx`, notepack's `undefined`) becomes `null`, or
//!   the [`undefined`] marker with [`DecodeOptions::keep_undefined`];
//! - a timestamp (ext −1) and notepack 2's Date (fixext 8 type 0, a signed
//!   64-bit millisecond count, `lib/decode.js` case `0xd7`) become ISO-8601
//!   text (what `JSON.stringify` makes of a Date);
//! - other extensions `null`, non-finite floats `null`, non-string map keys
//!   their text (as a JavaScript property name);
//! - a map spelled like a placeholder (`{"_placeholder": true, "num": n}`)
//!   keeps `n` as a float, so that it stays the peer's plain map (written
//!   back as the same bytes) instead of naming one of the attachments.
//!
//! # Limits
//! Input is untrusted: every declared length (string, binary, extension,
//! array or map count) is checked against the bytes left before anything is
//! allocated, so decoding allocates at most a small multiple of the input
//! size; nesting is bounded by [`MAX_DEPTH`] (or
//! [`DecodeOptions::max_depth`]); trailing bytes are an error.

use std::fmt;

use bytes::Bytes;
use rmp::Marker;
use rmp::decode::RmpRead;
use serde_json::{Map, Number, Value};

/// The deepest nesting of arrays and maps accepted, as serde_json's own limit.
pub const MAX_DEPTH: usize = 128;

/// The key of the [`undefined`] marker.
pub const UNDEFINED_KEY: &str = "_undefined";

/// The marker `{"_undefined": true}` that stands for JavaScript's `undefined`
/// where a decoder was asked to keep it ([`DecodeOptions::keep_undefined`]),
/// and that [`encode`] writes as notepack's `undefined` (`d4 00 00`), so an
/// `undefined` argument a client sends comes back as `undefined`.
///
/// [`from_value`](crate::packet::from_value) reads it as `null` / `None`.
///
/// ```
/// let v = socketio::msgpack::undefined();
/// assert_eq!(socketio::msgpack::encode(&v, &[]).unwrap(), [0xd4, 0x00, 0x00]);
/// assert!(socketio::msgpack::is_undefined(&v));
/// ```
pub fn undefined() -> Value {
    let mut m = Map::new();
    m.insert(UNDEFINED_KEY.to_owned(), Value::Bool(true));
    Value::Object(m)
}

/// Whether `v` is the [`undefined`] marker.
pub fn is_undefined(v: &Value) -> bool {
    matches!(v, Value::Object(m) if is_undefined_map(m))
}

pub(crate) fn is_undefined_map(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.get(UNDEFINED_KEY) == Some(&Value::Bool(true))
}

/// How [`decode_with`] reads its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// The deepest nesting of arrays and maps accepted (at most [`MAX_DEPTH`]
    /// is useful: serde_json refuses deeper values). Default [`MAX_DEPTH`].
    pub max_depth: usize,
    /// Whether notepack's `undefined` becomes the [`undefined`] marker
    /// (`true`) or `null` (`false`, the default: what `JSON.stringify` makes
    /// of it in an array).
    pub keep_undefined: bool,
}

impl DecodeOptions {
    /// Sets [`keep_undefined`](Self::keep_undefined).
    ///
    /// ```
    /// use socketio::msgpack::{DecodeOptions, decode_with, undefined};
    /// let keep = DecodeOptions::default().keep_undefined(true);
    /// assert_eq!(decode_with(&[0xd4, 0, 0], &keep).unwrap().0, undefined());
    /// ```
    pub fn keep_undefined(mut self, yes: bool) -> Self {
        self.keep_undefined = yes;
        self
    }

    /// Sets [`max_depth`](Self::max_depth).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_depth: MAX_DEPTH,
            keep_undefined: false,
        }
    }
}

/// Why a MessagePack value could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MsgpackError {
    /// The input ended inside a value.
    Truncated,
    /// Bytes were left after the value.
    TrailingBytes(usize),
    /// A marker that MessagePack reserves (0xc1).
    Reserved,
    /// Arrays or maps nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A placeholder names an attachment that does not exist.
    BadPlaceholder(u64),
    /// A length that does not fit MessagePack's 32 bits.
    TooLong,
}

impl fmt::Display for MsgpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsgpackError::Truncated => f.write_str("msgpack: truncated input"),
            MsgpackError::TrailingBytes(n) => write!(f, "msgpack: {n} trailing bytes"),
            MsgpackError::Reserved => f.write_str("msgpack: reserved marker 0xc1"),
            MsgpackError::TooDeep => write!(f, "msgpack: nested deeper than {MAX_DEPTH}"),
            MsgpackError::BadPlaceholder(n) => write!(f, "msgpack: no attachment #{n}"),
            MsgpackError::TooLong => f.write_str("msgpack: length over 2^32"),
        }
    }
}

impl std::error::Error for MsgpackError {}

// ----- encoding ------------------------------------------------------------

/// Encodes `value`, whose placeholders `{"_placeholder":true,"num":n}` name
/// `attachments[n]` (written as `bin`).
///
/// # Errors
/// A placeholder without its attachment, or a length over 2^32.
pub fn encode(value: &Value, attachments: &[Bytes]) -> Result<Vec<u8>, MsgpackError> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, value, attachments)?;
    Ok(out)
}

/// [`encode`], appending to `out`.
///
/// # Errors
/// A placeholder without its attachment, or a length over 2^32.
pub fn encode_into(
    out: &mut Vec<u8>,
    value: &Value,
    attachments: &[Bytes],
) -> Result<(), MsgpackError> {
    write_value(out, value, attachments)
}

/// The attachment a placeholder names, if `v` is one.
pub fn placeholder(v: &Map<String, Value>) -> Option<u64> {
    if v.len() == 2 && v.get("_placeholder") == Some(&Value::Bool(true)) {
        v.get("num").and_then(Value::as_u64)
    } else {
        None
    }
}

fn len32(n: usize) -> Result<u32, MsgpackError> {
    u32::try_from(n).map_err(|_| MsgpackError::TooLong)
}

fn write_value(out: &mut Vec<u8>, v: &Value, bins: &[Bytes]) -> Result<(), MsgpackError> {
    // Writing into a Vec cannot fail; the results are io::Result<()> of a Vec.
    match v {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s)?,
        Value::Array(a) => {
            let _ = rmp::encode::write_array_len(out, len32(a.len())?);
            for item in a {
                write_value(out, item, bins)?;
            }
        }
        Value::Object(m) => {
            if let Some(num) = placeholder(m) {
                let data = usize::try_from(num)
                    .ok()
                    .and_then(|i| bins.get(i))
                    .ok_or(MsgpackError::BadPlaceholder(num))?;
                let _ = rmp::encode::write_bin_len(out, len32(data.len())?);
                out.extend_from_slice(data);
                return Ok(());
            }
            if is_undefined_map(m) {
                // notepack's `undefined`: fixext 1, type 0, one zero byte.
                out.extend_from_slice(&[0xd4, 0x00, 0x00]);
                return Ok(());
            }
            let _ = rmp::encode::write_map_len(out, len32(m.len())?);
            for (k, item) in m {
                write_str(out, k)?;
                write_value(out, item, bins)?;
            }
        }
    }
    Ok(())
}

fn write_str(out: &mut Vec<u8>, s: &str) -> Result<(), MsgpackError> {
    let _ = rmp::encode::write_str_len(out, len32(s.len())?);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(u) = n.as_u64() {
        let _ = rmp::encode::write_uint(out, u);
    } else if let Some(i) = n.as_i64() {
        let _ = rmp::encode::write_sint(out, i);
    } else {
        let f = n.as_f64().unwrap_or(0.0);
        // JavaScript has one number type: notepack writes an integral value
        // as an integer whatever it was parsed from.
        if f.is_finite() && f.fract() == 0.0 {
            if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                let _ = rmp::encode::write_uint(out, f as u64);
                return;
            }
            if (-9_223_372_036_854_775_808.0..0.0).contains(&f) {
                let _ = rmp::encode::write_sint(out, f as i64);
                return;
            }
        }
        let _ = rmp::encode::write_f64(out, f);
    }
}

// ----- decoding ------------------------------------------------------------

/// Decodes one value that spans all of `input`; `bin` parts become
/// placeholders into the returned attachments.
///
/// # Errors
/// Any malformed, truncated or too deep input; trailing bytes.
pub fn decode(input: &[u8]) -> Result<(Value, Vec<Bytes>), MsgpackError> {
    decode_with(input, &DecodeOptions::default())
}

/// [`decode`] with [`DecodeOptions`].
///
/// # Errors
/// Any malformed, truncated or too deep input; trailing bytes.
pub fn decode_with(
    input: &[u8],
    options: &DecodeOptions,
) -> Result<(Value, Vec<Bytes>), MsgpackError> {
    let mut rd = Reader {
        buf: rmp::decode::Bytes::new(input),
        bins: Vec::new(),
        replaced: false,
        options: *options,
    };
    let mut v = rd.value(0)?;
    let left = rd.buf.remaining_slice().len();
    if left != 0 {
        return Err(MsgpackError::TrailingBytes(left));
    }
    if rd.replaced && !rd.bins.is_empty() {
        // A repeated map key dropped a value (the last one wins, as in
        // JavaScript), or a key was turned into text: keep only the
        // attachments still referenced.
        let mut keep = Vec::new();
        renumber(&mut v, &rd.bins, &mut keep);
        return Ok((v, keep));
    }
    Ok((v, rd.bins))
}

/// The attachments that the placeholders of `v` name, in order of appearance,
/// with the placeholders renumbered to match: binary values that were decoded
/// outside `v` (in parts of a message that are then ignored) are left out.
pub fn keep_referenced(v: &mut Value, bins: &[Bytes]) -> Vec<Bytes> {
    let mut keep = Vec::new();
    renumber(v, bins, &mut keep);
    keep
}

/// Renumbers the placeholders of `v` in order of appearance, moving the
/// attachments they name from `bins` to `keep`.
fn renumber(v: &mut Value, bins: &[Bytes], keep: &mut Vec<Bytes>) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| renumber(x, bins, keep)),
        Value::Object(m) => {
            if let Some(num) = placeholder(m) {
                let data = usize::try_from(num).ok().and_then(|i| bins.get(i));
                if let Some(data) = data {
                    m.insert("num".to_owned(), Value::from(keep.len()));
                    keep.push(data.clone());
                }
                return;
            }
            m.values_mut().for_each(|x| renumber(x, bins, keep));
        }
        _ => {}
    }
}

struct Reader<'a> {
    buf: rmp::decode::Bytes<'a>,
    bins: Vec<Bytes>,
    /// A map repeated a key (its earlier value was dropped), or had a key
    /// that is not a string (turned into text): attachments may be orphaned.
    replaced: bool,
    options: DecodeOptions,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.buf.remaining_slice().len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgpackError> {
        let rest = self.buf.remaining_slice();
        let (head, tail) = rest.split_at_checked(n).ok_or(MsgpackError::Truncated)?;
        self.buf = rmp::decode::Bytes::new(tail);
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MsgpackError> {
        let mut b = [0u8; N];
        self.buf
            .read_exact_buf(&mut b)
            .map_err(|_| MsgpackError::Truncated)?;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, MsgpackError> {
        Ok(u8::from_be_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, MsgpackError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, MsgpackError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn len(&mut self, n: u32) -> Result<usize, MsgpackError> {
        usize::try_from(n).map_err(|_| MsgpackError::TooLong)
    }

    fn value(&mut self, depth: usize) -> Result<Value, MsgpackError> {
        let marker =
            rmp::decode::read_marker(&mut self.buf).map_err(|_| MsgpackError::Truncated)?;
        Ok(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::FixPos(n) => Value::from(n),
            Marker::FixNeg(n) => Value::from(n),
            Marker::U8 => Value::from(self.u8()?),
            Marker::U16 => Value::from(self.u16()?),
            Marker::U32 => Value::from(self.u32()?),
            Marker::U64 => Value::from(u64::from_be_bytes(self.array()?)),
            Marker::I8 => Value::from(i8::from_be_bytes(self.array()?)),
            Marker::I16 => Value::from(i16::from_be_bytes(self.array()?)),
            Marker::I32 => Value::from(i32::from_be_bytes(self.array()?)),
            Marker::I64 => Value::from(i64::from_be_bytes(self.array()?)),
            Marker::F32 => float(f64::from(f32::from_be_bytes(self.array()?))),
            Marker::F64 => float(f64::from_be_bytes(self.array()?)),
            Marker::FixStr(n) => self.string(usize::from(n))?,
            Marker::Str8 => {
                let n = self.u8()?;
                self.string(usize::from(n))?
            }
            Marker::Str16 => {
                let n = self.u16()?;
                self.string(usize::from(n))?
            }
            Marker::Str32 => {
                let n = self.u32()?;
                let n = self.len(n)?;
                self.string(n)?
            }
            Marker::Bin8 => {
                let n = self.u8()?;
                self.bin(usize::from(n))?
            }
            Marker::Bin16 => {
                let n = self.u16()?;
                self.bin(usize::from(n))?
            }
            Marker::Bin32 => {
                let n = self.u32()?;
                let n = self.len(n)?;
                self.bin(n)?
            }
            Marker::FixArray(n) => self.seq(usize::from(n), depth)?,
            Marker::Array16 => {
                let n = self.u16()?;
                self.seq(usize::from(n), depth)?
            }
            Marker::Array32 => {
                let n = self.u32()?;
                let n = self.len(n)?;
                self.seq(n, depth)?
            }
            Marker::FixMap(n) => self.map(usize::from(n), depth)?,
            Marker::Map16 => {
                let n = self.u16()?;
                self.map(usize::from(n), depth)?
            }
            Marker::Map32 => {
                let n = self.u32()?;
                let n = self.len(n)?;
                self.map(n, depth)?
            }
            Marker::FixExt1 => self.ext(1, true)?,
            Marker::FixExt2 => self.ext(2, true)?,
            Marker::FixExt4 => self.ext(4, true)?,
            Marker::FixExt8 => self.ext(8, true)?,
            Marker::FixExt16 => self.ext(16, true)?,
            Marker::Ext8 => {
                let n = self.u8()?;
                self.ext(usize::from(n), false)?
            }
            Marker::Ext16 => {
                let n = self.u16()?;
                self.ext(usize::from(n), false)?
            }
            Marker::Ext32 => {
                let n = self.u32()?;
                let n = self.len(n)?;
                self.ext(n, false)?
            }
            Marker::Reserved => return Err(MsgpackError::Reserved),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let raw = self.take(n)?;
        Ok(Value::String(String::from_utf8_lossy(raw).into_owned()))
    }

    fn bin(&mut self, n: usize) -> Result<Value, MsgpackError> {
        let raw = self.take(n)?;
        let num = self.bins.len();
        self.bins.push(Bytes::copy_from_slice(raw));
        let mut m = Map::new();
        m.insert("_placeholder".to_owned(), Value::Bool(true));
        m.insert("num".to_owned(), Value::from(num));
        Ok(Value::Object(m))
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if depth >= self.options.max_depth {
            return Err(MsgpackError::TooDeep);
        }
        // Every element takes at least one byte: no allocation beyond the input.
        if n > self.left() {
            return Err(MsgpackError::Truncated);
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, MsgpackError> {
        if depth >= self.options.max_depth {
            return Err(MsgpackError::TooDeep);
        }
        if n.saturating_mul(2) > self.left() {
            return Err(MsgpackError::Truncated);
        }
        let mut out = Map::new();
        for _ in 0..n {
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                other => {
                    // Attachments inside a key are dropped with it.
                    self.replaced = true;
                    let mut key = String::new();
                    js_key(&other, &mut key);
                    key
                }
            };
            let v = self.value(depth + 1)?;
            if out.insert(key, v).is_some() {
                self.replaced = true;
            }
        }
        if let Some(num) = placeholder(&out) {
            // A peer's own map spelled like a placeholder: it stays a plain map.
            // Its `num` becomes a float, which JavaScript reads as the same number
            // (and `encode` writes as the same integer) but which names no
            // attachment here, so it is never taken for one of ours.
            out.insert("num".to_owned(), Value::from(num as f64));
        }
        Ok(Value::Object(out))
    }

    /// An extension of `n` data bytes; `fixed` for the fixext markers.
    fn ext(&mut self, n: usize, fixed: bool) -> Result<Value, MsgpackError> {
        let ty = i8::from_be_bytes(self.array()?);
        if ty == 0 && !fixed {
            // notepack 2 writes an ArrayBuffer / typed array as ext type 0
            // (notepack 3 still reads it that way): binary data.
            return self.bin(n);
        }
        let data = self.take(n)?;
        match (ty, fixed, data) {
            (0, true, [_]) if self.options.keep_undefined => return Ok(undefined()),
            (0, true, &[a, b, c, d, e, f, g, h]) => {
                // notepack 2's Date: milliseconds since the epoch, signed.
                let ms = i64::from_be_bytes([a, b, c, d, e, f, g, h]);
                let iso = u64::try_from(ms).ok().and_then(iso_of_ms);
                return Ok(iso.map_or(Value::Null, Value::String));
            }
            (-1, ..) => {}
            _ => return Ok(Value::Null),
        }
        let (secs, nanos): (i64, u32) = match data.len() {
            4 => {
                let s: [u8; 4] = data.try_into().map_err(|_| MsgpackError::Truncated)?;
                (i64::from(u32::from_be_bytes(s)), 0)
            }
            8 => {
                let s: [u8; 8] = data.try_into().map_err(|_| MsgpackError::Truncated)?;
                let v = u64::from_be_bytes(s);
                ((v & 0x3_ffff_ffff) as i64, (v >> 34) as u32)
            }
            12 => {
                let (n, s) = data.split_at(4);
                let n: [u8; 4] = n.try_into().map_err(|_| MsgpackError::Truncated)?;
                let s: [u8; 8] = s.try_into().map_err(|_| MsgpackError::Truncated)?;
                (i64::from_be_bytes(s), u32::from_be_bytes(n))
            }
            _ => return Ok(Value::Null),
        };
        Ok(iso8601(secs, nanos).map_or(Value::Null, Value::String))
    }
}

/// The property name JavaScript makes of a non-string map key (`String(key)`):
/// linear in the key's size (never its JSON text, whose escaping would double
/// at each level of nesting).
fn js_key(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // Inside an array, null becomes the empty string.
                if !item.is_null() {
                    js_key(item, out);
                }
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
    }
}

fn float(f: f64) -> Value {
    // JSON.stringify writes NaN and ±Infinity as null.
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `Date.prototype.toJSON` of a timestamp (`None` before 1970 or past the
/// range of a JavaScript `Date`).
fn iso8601(secs: i64, nanos: u32) -> Option<String> {
    let ms = u64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(u64::from(nanos / 1_000_000))?;
    iso_of_ms(ms)
}

/// `Date.prototype.toJSON` of a millisecond count.
fn iso_of_ms(ms: u64) -> Option<String> {
    crate::Handshake::iso_date(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round(v: Value, bins: Vec<Bytes>) -> (Value, Vec<Bytes>) {
        decode(&encode(&v, &bins).unwrap()).unwrap()
    }

    #[test]
    fn notepack_bytes() {
        // Byte sequences notepack.io 3.0.1 writes for the same JS values.
        let cases: Vec<(Value, &[u8])> = vec![
            (json!(0), &[0x00]),
            (json!(127), &[0x7f]),
            (json!(128), &[0xcc, 0x80]),
            (json!(65536), &[0xce, 0x00, 0x01, 0x00, 0x00]),
            (json!(-1), &[0xff]),
            (json!(-33), &[0xd0, 0xdf]),
            (json!(1.5), &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
            (json!(2.0), &[0x02]),
            (json!("a"), &[0xa1, b'a']),
            (json!(null), &[0xc0]),
            (json!([true, false]), &[0x92, 0xc3, 0xc2]),
            (json!({"a": 1}), &[0x81, 0xa1, b'a', 0x01]),
        ];
        for (v, bytes) in cases {
            assert_eq!(encode(&v, &[]).unwrap(), bytes, "{v}");
            let back = decode(bytes).unwrap().0;
            if v != json!(2.0) {
                assert_eq!(back, v);
            }
        }
        let s = "x".repeat(40);
        assert_eq!(encode(&json!(s), &[]).unwrap()[..2], [0xd9, 40]);
    }

    #[test]
    fn placeholders_are_bin() {
        let v = json!(["e", {"file": {"_placeholder": true, "num": 0}}]);
        let bins = vec![Bytes::from_static(&[1, 2, 3])];
        let enc = encode(&v, &bins).unwrap();
        assert_eq!(
            enc,
            [
                0x92, 0xa1, b'e', 0x81, 0xa4, b'f', b'i', b'l', b'e', 0xc4, 3, 1, 2, 3
            ]
        );
        assert_eq!(round(v.clone(), bins.clone()), (v, bins));
        assert_eq!(
            encode(&json!({"_placeholder": true, "num": 1}), &[]),
            Err(MsgpackError::BadPlaceholder(1))
        );
    }

    #[test]
    fn hostile_input_is_a_clean_error() {
        // An array claiming 4 billion elements in 5 bytes.
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(
            decode(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1]),
            Err(MsgpackError::Truncated)
        );
        assert_eq!(decode(&[0xc1]), Err(MsgpackError::Reserved));
        assert_eq!(decode(&[0xc0, 0xc0]), Err(MsgpackError::TrailingBytes(1)));
        assert_eq!(decode(&[]), Err(MsgpackError::Truncated));
        let deep = vec![0x91u8; 200];
        assert_eq!(decode(&deep), Err(MsgpackError::TooDeep));
    }

    #[test]
    fn repeated_keys_keep_attachments_consistent() {
        // {"a": bin[1], "b": bin[2], "a": 3}: the first "a" is dropped, and its attachment with it.
        let bytes = [
            0x83, 0xa1, b'a', 0xc4, 1, 1, 0xa1, b'b', 0xc4, 1, 2, 0xa1, b'a', 0x03,
        ];
        let (v, bins) = decode(&bytes).unwrap();
        assert_eq!(v, json!({"a": 3, "b": {"_placeholder": true, "num": 0}}));
        assert_eq!(bins, [Bytes::from_static(&[2])]);
    }

    #[test]
    fn nested_map_keys_cost_linear_time() {
        // A map whose key is a map whose key is a map...: 2^depth bytes if each
        // level were turned into escaped JSON text (found by the fuzzer).
        let mut bytes = vec![0x81u8; 100];
        bytes.push(0xc0);
        bytes.extend(std::iter::repeat_n(0xc0, 100));
        let started = std::time::Instant::now();
        let (v, _) = decode(&bytes).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(v, json!({"[object Object]": null}));
        assert_eq!(
            decode(&[0x81, 0x93, 0x01, 0xc0, 0xa1, b'x', 0x02])
                .unwrap()
                .0,
            json!({"1,,x": 2})
        );
    }

    #[test]
    fn odd_values() {
        // NaN → null, non-string keys → text, ext 0 → null, timestamp → ISO.
        assert_eq!(
            decode(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]).unwrap().0,
            json!(null)
        );
        assert_eq!(decode(&[0x81, 0x01, 0x02]).unwrap().0, json!({"1": 2}));
        assert_eq!(decode(&[0xd4, 0x00, 0x00]).unwrap().0, json!(null));
        let ts = [0xd6, 0xff, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(decode(&ts).unwrap().0, json!("1970-01-01T00:00:00.000Z"));
        assert_eq!(
            iso8601(1_700_000_000, 123_000_000).unwrap(),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn notepack_2_extensions() {
        // undefined: null by default, the marker when asked, written back as d4 00 00.
        let undef = [0x92, 0xd4, 0x00, 0x00, 0x01];
        assert_eq!(decode(&undef).unwrap().0, json!([null, 1]));
        let keep = DecodeOptions {
            keep_undefined: true,
            ..DecodeOptions::default()
        };
        let (v, _) = decode_with(&undef, &keep).unwrap();
        assert_eq!(v, json!([undefined(), 1]));
        assert_eq!(encode(&v, &[]).unwrap(), undef);
        // ArrayBuffer (ext 8, type 0) → binary; a fixext of type 0 is not.
        let (v, bins) = decode(&[0x91, 0xc7, 0x02, 0x00, 0x05, 0x06]).unwrap();
        assert_eq!(v, json!([{"_placeholder": true, "num": 0}]));
        assert_eq!(bins, [Bytes::from_static(&[5, 6])]);
        assert_eq!(decode(&[0xd5, 0x00, 0x01, 0x02]).unwrap().0, json!(null));
        // Date: fixext 8 type 0, signed milliseconds.
        let date = [0xd7, 0x00, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x7b];
        assert_eq!(decode(&date).unwrap().0, json!("2023-11-14T22:13:20.123Z"));
        // A peer's placeholder-shaped map stays a map, written back the same.
        let fake = [
            0x82, 0xac, b'_', b'p', b'l', b'a', b'c', b'e', b'h', b'o', b'l', b'd', b'e', b'r',
            0xc3, 0xa3, b'n', b'u', b'm', 0x00,
        ];
        let (v, bins) = decode(&fake).unwrap();
        assert!(bins.is_empty());
        assert_eq!(placeholder(v.as_object().unwrap()), None);
        assert_eq!(encode(&v, &[]).unwrap(), fake);
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn strings_and_ints_round_trip(s in ".{0,40}", n in proptest::num::i64::ANY) {
            let v = json!({"s": s, "n": n, "a": [n, s]});
            proptest::prop_assert_eq!(round(v.clone(), vec![]).0, v);
        }
    }
}
