//! Decoding an opened `IdentityPayload` into [`IdentityFields`] with exactly one copy of each field,
//! straight from the wiped plaintext buffer into the field's own buffer.
//!
//! Why not `IdentityPayload::decode`: prost decodes a `bytes` or `string` field from a `&[u8]` by
//! first copying it into a fresh `Bytes` (`Buf::copy_to_bytes`) and then copying that into the
//! field's `Vec`. That is two copies of a 200 KB face per call, and the intermediate `Bytes` is
//! freed **without being wiped**: a copy of the biometric left in freed heap memory.
//!
//! Why not `Bytes` for the plaintext fields (prost-build's `.bytes()`): a `Bytes` is immutable and
//! shared; nothing can wipe it, and whoever holds a clone keeps the plaintext alive. Plaintext stays
//! in owned `Vec`/`String` buffers that [`IdentityFields`] wipes on drop. (The *ciphertext* is a
//! `Bytes` slice of tonic's decode buffer: it needs no wiping.)
//!
//! Accepts and refuses exactly what prost's generated decoder does (a test and the `material` fuzz
//! target compare the two): unknown fields are skipped, a repeated field keeps its last value, a
//! known field with another wire type, a truncated field or a string that is not UTF-8 is refused.
//! Must never keep a copy of a field that is not wiped on drop.

use prost::bytes::Buf;
use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};
use zeroize::Zeroize;

use crate::domain::IdentityFields;

/// `IdentityPayload`'s field numbers (`proto/idgate/v1/idgate.proto`).
const NAME: u32 = 1;
const ID_NUMBER: u32 = 2;
const PHONE: u32 = 3;
const FACE_IMAGE: u32 = 4;
const ID_CARD_FRONT: u32 = 5;
const ID_CARD_BACK: u32 = 6;
const HANDHELD_ID_PHOTO: u32 = 7;

/// The fields of an `IdentityPayload` encoding, each copied once. `None` if prost would refuse it.
pub(super) fn decode_identity(plaintext: &[u8]) -> Option<IdentityFields> {
    // Wiped on drop, also when a later field is refused.
    let mut fields = IdentityFields::default();
    let mut buf = plaintext;
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf).ok()?;
        if !(NAME..=HANDHELD_ID_PHOTO).contains(&tag) {
            skip_field(wire_type, tag, &mut buf, DecodeContext::default()).ok()?;
            continue;
        }
        if wire_type != WireType::LengthDelimited {
            return None;
        }
        let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
        if len > buf.len() {
            return None;
        }
        let (value, rest) = buf.split_at(len);
        buf = rest;
        match tag {
            NAME => replace_text(&mut fields.name, value)?,
            ID_NUMBER => replace_text(&mut fields.id_number, value)?,
            PHONE => replace_text(&mut fields.phone, value)?,
            FACE_IMAGE => replace_bytes(&mut fields.face_image, value),
            ID_CARD_FRONT => replace_bytes(&mut fields.id_card_front, value),
            ID_CARD_BACK => replace_bytes(&mut fields.id_card_back, value),
            _ => replace_bytes(&mut fields.handheld_id_photo, value),
        }
    }
    Some(fields)
}

/// A later occurrence replaces an earlier one (protobuf's rule for a singular field); the earlier
/// value is wiped first.
fn replace_bytes(target: &mut Vec<u8>, value: &[u8]) {
    target.zeroize();
    *target = value.to_vec();
}

fn replace_text(target: &mut String, value: &[u8]) -> Option<()> {
    let text = std::str::from_utf8(value).ok()?;
    target.zeroize();
    *target = text.to_owned();
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::pb::IdentityPayload;
    use prost::Message;

    /// Every field of a decoded payload, in field order.
    fn parts(f: &IdentityFields) -> [Vec<u8>; 7] {
        let text = |t: &String| t.as_bytes().to_vec();
        let bytes = |b: &Vec<u8>| b.clone();
        [
            text(&f.name),
            text(&f.id_number),
            text(&f.phone),
            bytes(&f.face_image),
            bytes(&f.id_card_front),
            bytes(&f.id_card_back),
            bytes(&f.handheld_id_photo),
        ]
    }

    /// prost's generated decoder, the reference this one must agree with.
    fn by_prost(bytes: &[u8]) -> Option<[Vec<u8>; 7]> {
        let mut p = IdentityPayload::decode(bytes).ok()?;
        Some(parts(&IdentityFields {
            name: std::mem::take(&mut p.name),
            id_number: std::mem::take(&mut p.id_number),
            phone: std::mem::take(&mut p.phone),
            face_image: std::mem::take(&mut p.face_image),
            id_card_front: std::mem::take(&mut p.id_card_front),
            id_card_back: std::mem::take(&mut p.id_card_back),
            handheld_id_photo: std::mem::take(&mut p.handheld_id_photo),
        }))
    }

    fn by_hand(bytes: &[u8]) -> Option<[Vec<u8>; 7]> {
        decode_identity(bytes).as_ref().map(parts)
    }

    fn full() -> Vec<u8> {
        IdentityPayload {
            name: "王小明".into(),
            id_number: "11010519491231002X".into(),
            phone: "13800138000".into(),
            face_image: vec![0xff, 0xd8, 1, 2, 3],
            id_card_front: vec![4; 300],
            id_card_back: vec![5],
            handheld_id_photo: vec![6, 7],
        }
        .encode_to_vec()
    }

    #[test]
    fn agrees_with_prost_on_valid_odd_and_malformed_encodings() {
        let mut unknown_fields = full();
        // Field 9 varint, field 10 fixed64, field 11 length-delimited, field 12 fixed32.
        unknown_fields.extend_from_slice(&[0x48, 0x96, 0x01]);
        unknown_fields.extend_from_slice(&[0x51, 1, 2, 3, 4, 5, 6, 7, 8]);
        unknown_fields.extend_from_slice(&[0x5a, 0x02, 0xaa, 0xbb]);
        unknown_fields.extend_from_slice(&[0x65, 1, 2, 3, 4]);
        let mut repeated = full();
        repeated.extend_from_slice(&[0x0a, 0x01, b'Z', 0x22, 0x01, 0x09]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("full", full()),
            ("unknown fields skipped", unknown_fields),
            ("a repeated field keeps its last value", repeated),
            ("bad UTF-8 in a string", vec![0x0a, 0x02, 0xc3, 0x28]),
            ("wrong wire type for a known field", vec![0x20, 0x01]),
            ("truncated length", vec![0x22, 0x05, 1, 2]),
            ("truncated varint", vec![0x22, 0xff]),
            ("tag zero", vec![0x02, 0x00]),
            ("unknown field truncated", vec![0x5a, 0x05, 1]),
            ("end group without start", vec![0x4c]),
        ];
        for (what, bytes) in cases {
            let expected = by_prost(&bytes);
            assert_eq!(by_hand(&bytes), expected, "{what}");
            let accepted = !matches!(
                what,
                "bad UTF-8 in a string"
                    | "wrong wire type for a known field"
                    | "truncated length"
                    | "truncated varint"
                    | "tag zero"
                    | "unknown field truncated"
                    | "end group without start"
            );
            assert_eq!(expected.is_some(), accepted, "{what}: the case means what it says");
        }
    }

    #[test]
    fn every_field_lands_in_its_own_place() {
        let fields = decode_identity(&full()).unwrap();
        assert_eq!(fields.name, "王小明");
        assert_eq!(fields.id_number, "11010519491231002X");
        assert_eq!(fields.phone, "13800138000");
        assert_eq!(fields.face_image, [0xff, 0xd8, 1, 2, 3]);
        assert_eq!(fields.id_card_front, [4; 300]);
        assert_eq!(fields.id_card_back, [5]);
        assert_eq!(fields.handheld_id_photo, [6, 7]);
    }
}
