//! JSON read strictly: a key given twice in one object is an error.
//!
//! serde_json keeps the last of duplicate keys without a word, so a job spec
//! with `"timeout"` twice would run with whichever came last — and a reviewer
//! reading the first would be misled. Job specs (from a file, the spool or a
//! claim) are read with this instead. A UTF-8 byte order mark, which some
//! editors write, is accepted and skipped.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parse `bytes` as JSON, refusing duplicate keys (with their path).
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = strict(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A serde `deserialize_with` function: the value, refusing duplicate keys.
pub fn strict<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    deserializer.deserialize_any(Strict)
}

struct Strict;

/// One value, deserialized strictly (for the elements of arrays and objects).
struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "the key {key:?} is given twice in one object"
                )));
            }
            let value = map.next_value_seed(StrictSeed)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(from_slice(br#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        let e = from_slice(br#"{"timeout": "1s", "timeout": "9h"}"#).unwrap_err();
        assert!(e.to_string().contains("\"timeout\" is given twice"), "{e}");
        assert!(from_slice(br#"{"steps": [{"shell": "a", "shell": "b"}]}"#).is_err());
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_trailing_garbage_refused() {
        assert_eq!(from_slice(b"\xEF\xBB\xBF{\"a\":1}").unwrap()["a"], 1);
        assert!(from_slice(b"{} {}").is_err());
    }
}
