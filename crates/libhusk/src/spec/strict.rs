//! A deserializer that takes a JSON object, and only an object, for a struct.
//!
//! serde's derived structs (oci-spec's among them) also take an array of
//! their fields in order, so `"root": ["rootfs", true]` would pass as
//! `{"path": "rootfs", "readonly": true}`. Go's encoding/json (runc) and crun
//! refuse it, and a config that means something else than it says must not
//! run. [`Strict`] wraps any deserializer, and every visitor, seed and access
//! it hands out, so that the rule holds at every depth; nothing else changes.

use serde::de::{self, DeserializeSeed, Deserializer, Unexpected, Visitor};
use std::fmt;

/// The wrapped deserializer: see the module's comment.
pub struct Strict<D>(pub D);

/// A visitor, refusing an array where `object_only` is set (a struct).
struct Wrap<V> {
    inner: V,
    object_only: bool,
}

fn wrap<V>(inner: V) -> Wrap<V> {
    Wrap {
        inner,
        object_only: false,
    }
}

struct Seed<S>(S);
struct Seq<A>(A);
struct Map<A>(A);
struct Enum<A>(A);
struct Variant<A>(A);

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, wrap(visitor))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = Wrap {
            inner: visitor,
            object_only: true,
        };
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char)
        visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
        visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(Unexpected::Seq, &ObjectFor(&self.inner)));
        }
        self.inner.visit_seq(Seq(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_map(Map(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(Enum(data))
    }
}

/// "an object (struct Root)": what a struct takes, and which struct.
struct ObjectFor<'a, V>(&'a V);

impl<'de, V: Visitor<'de>> de::Expected for ObjectFor<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (")?;
        self.0.expecting(f)?;
        f.write_str(")")
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Seq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Map<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Variant<A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Seed(seed))?;
        Ok((value, Variant(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Variant<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, wrap(visitor))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(
            fields,
            Wrap {
                inner: visitor,
                object_only: true,
            },
        )
    }
}

/// Deserializes `T` from JSON text, an object only for a struct at any
/// depth; an error carries the JSON path of the field at fault.
pub fn from_str<T: de::DeserializeOwned>(text: &str) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(Strict(&mut *de))?;
    // As serde_json::from_str: nothing but whitespace may follow.
    de.end()
        .map_err(|e| serde_path_to_error::Error::new(serde_path_to_error::Track::new().path(), e))?;
    Ok(value)
}

/// As [`from_str`], from a JSON value.
pub fn from_value<T: de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(Strict(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxResources, Process, Spec};

    fn spec_with(field: &str, value: &str) -> String {
        format!(r#"{{"ociVersion": "1.0.2", "{field}": {value}}}"#)
    }

    #[test]
    fn an_array_for_a_struct_is_refused_at_any_depth_naming_its_path() {
        let e = from_str::<Spec>(&spec_with("root", r#"["rootfs", true]"#)).unwrap_err();
        assert_eq!(e.path().to_string(), "root");
        assert!(e.inner().to_string().contains("expected a JSON object"), "{e}");

        let deep = r#"{"resources": {"memory": [1, 2]}}"#;
        let e = from_str::<Spec>(&spec_with("linux", deep)).unwrap_err();
        assert_eq!(e.path().to_string(), "linux.resources.memory");

        let e = from_str::<Spec>(&spec_with("mounts", r#"[["/proc", "proc"]]"#)).unwrap_err();
        assert_eq!(e.path().to_string(), "mounts[0]");

        let e = from_str::<Spec>(r#"["1.0.2"]"#).unwrap_err();
        assert!(e.inner().to_string().contains("expected a JSON object"), "{e}");

        let e = from_str::<Process>(r#"{"cwd": "/", "user": [0, 0], "args": ["sh"]}"#).unwrap_err();
        assert_eq!(e.path().to_string(), "user");

        let r = serde_json::json!({"pids": [5]});
        let e = from_value::<LinuxResources>(r).unwrap_err();
        assert_eq!(e.path().to_string(), "pids");
    }

    #[test]
    fn what_serde_json_takes_otherwise_is_taken_the_same() {
        let text = crate::spec::template::default_config(false).to_string();
        let strict: Spec = from_str(&text).unwrap();
        let plain: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(strict, plain);

        let arrays = spec_with(
            "process",
            r#"{"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["a", "b"], "env": []}"#,
        );
        let spec: Spec = from_str(&arrays).unwrap();
        assert_eq!(spec.process().as_ref().unwrap().args().as_ref().unwrap(), &["a", "b"]);

        let e = from_str::<Spec>(&format!("{} x", spec_with("hostname", "\"h\""))).unwrap_err();
        assert!(e.inner().is_syntax(), "{e}");
        let e = from_str::<Spec>(&spec_with("hostname", "7")).unwrap_err();
        assert_eq!(e.path().to_string(), "hostname");
    }
}
