//! Tests of the serde bridge in `value.rs`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::value::validate_placeholders;
use super::{Binary, ParseError, from_value, to_value};

fn bin(b: &'static [u8]) -> Binary {
    Binary(Bytes::from_static(b))
}

fn ph(num: usize) -> Value {
    json!({"_placeholder": true, "num": num})
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    label: String,
    blob: Binary,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(Binary),
    Tuple(u8, Binary),
    Struct { blob: Binary },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    name: String,
    blob: Binary,
    list: Vec<Binary>,
    maybe: Option<Binary>,
    none: Option<Binary>,
    inner: Inner,
    map: BTreeMap<String, Binary>,
    pair: (String, Binary),
    shapes: Vec<Shape>,
    numbers: Vec<u8>,
}

#[test]
fn to_value_numbers_placeholders_in_order() {
    let args = ("hello", bin(&[1, 2]), vec![bin(b"a"), bin(b"b")]);
    let (value, attachments) = to_value(&args).unwrap();
    assert_eq!(value, json!(["hello", ph(0), [ph(1), ph(2)]]));
    assert_eq!(
        attachments,
        vec![
            Bytes::from_static(&[1, 2]),
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b")
        ]
    );
}

#[test]
fn to_value_matches_serde_json_without_binary() {
    #[derive(Serialize)]
    struct S {
        a: u8,
        b: i64,
        c: f64,
        d: Option<&'static str>,
        e: char,
        f: (),
        g: Vec<u8>,
        h: HashMap<u32, bool>,
        i: Shape,
        j: Shape,
        k: f32,
        l: u128,
        m: i128,
    }
    let s = S {
        a: 1,
        b: -2,
        c: 0.5,
        d: None,
        e: 'x',
        f: (),
        g: vec![1, 2],
        h: HashMap::from([(7, true)]),
        i: Shape::Unit,
        j: Shape::Tuple(1, Binary::default()),
        k: f32::NAN,
        l: 5,
        m: -5,
    };
    let (ours, attachments) = to_value(&s).unwrap();
    let mut expected = serde_json::to_value(&s).unwrap();
    // serde_json writes the empty binary as an empty array; we write a placeholder.
    expected["j"]["Tuple"][1] = ph(0);
    assert_eq!(ours, expected);
    assert_eq!(attachments, vec![Bytes::new()]);
}

#[test]
fn to_value_errors_like_serde_json() {
    assert!(to_value(&u128::MAX).is_err());
    assert!(to_value(&i128::MIN).is_err());
    let bad_key = BTreeMap::from([(vec![1u8], 1)]);
    assert!(to_value(&bad_key).is_err());
    assert!(serde_json::to_value(&bad_key).is_err());
}

#[test]
fn everything_round_trips() {
    let original = Everything {
        name: "n".to_owned(),
        blob: bin(&[0, 255]),
        list: vec![bin(b"x"), bin(b"")],
        maybe: Some(bin(b"m")),
        none: None,
        inner: Inner {
            label: "l".to_owned(),
            blob: bin(b"inner"),
        },
        map: BTreeMap::from([("k".to_owned(), bin(b"v"))]),
        pair: ("p".to_owned(), bin(b"q")),
        shapes: vec![
            Shape::Unit,
            Shape::New(bin(b"1")),
            Shape::Tuple(2, bin(b"2")),
            Shape::Struct { blob: bin(b"3") },
        ],
        numbers: vec![1, 2, 3],
    };
    let (value, attachments) = to_value(&original).unwrap();
    assert_eq!(attachments.len(), 10);
    assert_eq!(value["numbers"], json!([1, 2, 3]));
    validate_placeholders(&value, attachments.len()).unwrap();
    let back: Everything = from_value(value, &attachments).unwrap();
    assert_eq!(back, original);
}

#[test]
fn from_value_reads_placeholders_from_the_wire_shape() {
    // §3.2 case 11: `452-["message",{placeholder 0},{placeholder 1}]`.
    let args = json!([ph(0), ph(1)]);
    let attachments = [
        Bytes::from_static(&[1, 2, 3]),
        Bytes::from_static(&[4, 5, 6]),
    ];
    let (a, b): (Binary, Binary) = from_value(args.clone(), &attachments).unwrap();
    assert_eq!((a.as_ref(), b.as_ref()), (&[1, 2, 3][..], &[4, 5, 6][..]));
    let list: Vec<Binary> = from_value(args.clone(), &attachments).unwrap();
    assert_eq!(list.len(), 2);
    let tuple: (String, Binary) = from_value(json!(["s", ph(1)]), &attachments).unwrap();
    assert_eq!(tuple.1, bin(&[4, 5, 6]));
    let opt: Option<Binary> = from_value(ph(0), &attachments).unwrap();
    assert_eq!(opt, Some(bin(&[1, 2, 3])));
    let none: Option<Binary> = from_value(Value::Null, &attachments).unwrap();
    assert_eq!(none, None);
    let map: HashMap<String, Vec<Binary>> =
        from_value(json!({"a": [ph(1), ph(0)]}), &attachments).unwrap();
    assert_eq!(map["a"], vec![bin(&[4, 5, 6]), bin(&[1, 2, 3])]);
}

#[test]
fn value_targets_keep_the_placeholder_object() {
    let args = json!(["x", ph(0), {"deep": [ph(1)]}]);
    let attachments = [Bytes::from_static(b"a"), Bytes::from_static(b"b")];
    let back: Value = from_value(args.clone(), &attachments).unwrap();
    assert_eq!(back, args);
    let mixed: (String, Binary, Value) = from_value(args.clone(), &attachments).unwrap();
    assert_eq!(mixed.1, bin(b"a"));
    assert_eq!(mixed.2, json!({"deep": [ph(1)]}));
}

#[test]
fn binary_also_reads_plain_json() {
    // From a number array, as `serde_json::to_value(&Binary)` writes it.
    let b: Binary = from_value(json!([1, 2, 3]), &[]).unwrap();
    assert_eq!(b, bin(&[1, 2, 3]));
    let b: Binary = serde_json::from_value(json!([4, 5])).unwrap();
    assert_eq!(b, bin(&[4, 5]));
    let b: Binary = serde_json::from_str("[6]").unwrap();
    assert_eq!(b, bin(&[6]));
    assert_eq!(serde_json::to_value(bin(&[7])).unwrap(), json!([7]));
    assert!(from_value::<Binary>(json!([256]), &[]).is_err());
    assert!(from_value::<Binary>(json!({"a": 1}), &[]).is_err());
}

#[test]
fn bad_placeholders_are_errors() {
    let one = [Bytes::from_static(b"a")];
    assert!(from_value::<Binary>(ph(1), &one).is_err());
    assert!(from_value::<Binary>(ph(0), &[]).is_err());
    assert!(from_value::<Binary>(json!({"_placeholder": true}), &one).is_err());
    assert!(from_value::<Binary>(json!({"_placeholder": true, "num": -1}), &one).is_err());
    assert_eq!(
        validate_placeholders(&json!([ph(1)]), 1),
        Err(ParseError::InvalidPlaceholder)
    );
    assert_eq!(
        validate_placeholders(&json!([ph(0), {"a": ph(1)}]), 2),
        Ok(())
    );
}

#[test]
fn from_value_matches_serde_json_for_plain_types() {
    #[derive(Debug, PartialEq, Deserialize)]
    struct Plain {
        a: u8,
        b: i64,
        c: f64,
        d: Option<String>,
        e: char,
        f: (),
        g: Vec<u8>,
        h: HashMap<u32, bool>,
        i: BTreeMap<bool, i8>,
        j: Value,
    }
    let value = json!({
        "a": 1, "b": -2, "c": 0.5, "d": "s", "e": "x", "f": null, "g": [1, 2],
        "h": {"7": true}, "i": {"true": -1}, "j": {"any": [1, null]}, "extra": 1
    });
    let ours: Plain = from_value(value.clone(), &[]).unwrap();
    let theirs: Plain = serde_json::from_value(value).unwrap();
    assert_eq!(ours, theirs);

    // Errors where serde_json errors.
    assert!(from_value::<(u8, u8)>(json!([1, 2, 3]), &[]).is_err());
    assert!(serde_json::from_value::<(u8, u8)>(json!([1, 2, 3])).is_err());
    for v in [json!({"Unit": 1, "New": 2}), json!(7), json!({})] {
        assert!(from_value::<Shape>(v.clone(), &[]).is_err(), "{v}");
        assert!(serde_json::from_value::<Shape>(v.clone()).is_err(), "{v}");
    }
    assert!(from_value::<u8>(json!(300), &[]).is_err());
    assert!(from_value::<HashMap<u32, u8>>(json!({"x": 1}), &[]).is_err());
    assert_eq!(
        from_value::<Shape>(json!("Unit"), &[]).unwrap(),
        Shape::Unit
    );
    assert!(from_value::<Shape>(json!("New"), &[]).is_err());
    assert!(from_value::<Shape>(json!({"Unit": [1]}), &[]).is_err());
}

proptest! {
    #[test]
    fn structs_with_binary_round_trip(
        name in ".{0,8}",
        blob in prop::collection::vec(any::<u8>(), 0..32),
        list in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..8), 0..4),
        maybe in prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        keys in prop::collection::btree_set("[a-z]{1,4}", 0..3),
        numbers in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let map: BTreeMap<String, Binary> = keys
            .into_iter()
            .map(|k| (k.clone(), Binary::from(k.into_bytes())))
            .collect();
        let original = Everything {
            name: name.clone(),
            blob: Binary::from(blob.clone()),
            list: list.into_iter().map(Binary::from).collect(),
            maybe: maybe.map(Binary::from),
            none: None,
            inner: Inner { label: name, blob: Binary::from(blob) },
            map,
            pair: ("p".to_owned(), Binary::default()),
            shapes: vec![Shape::New(Binary::from(numbers.clone()))],
            numbers,
        };
        let (value, attachments) = to_value(&original).unwrap();
        prop_assert!(validate_placeholders(&value, attachments.len()).is_ok());
        // Same shape as the packet would carry: through text and back.
        let text = value.to_string();
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        let back: Everything = from_value(reparsed, &attachments).unwrap();
        prop_assert_eq!(back, original);
    }
}
