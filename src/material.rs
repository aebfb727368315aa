//! The at-rest form of a case's review material: the protobuf encoding of `IdentityPayload`, built
//! from checked values only (so unknown fields a client sent are never stored), and the same bytes a
//! reviewer console receives re-sealed. Buffers are wiped on drop.
//!
//! Biometrics are kept apart (GB/T 35273-2020 §6.3): a pending case's identity material (name, ID
//! number, phone, ID card images, handheld photo) is sealed under field [`PII_FIELD_IDENTITY`] with
//! one data key, and its face image under field [`PII_FIELD_FACE`] with another, so the face can be
//! destroyed alone. A record written before this split holds the face inside its identity material;
//! [`open_for_review`] reads both shapes.
//!
//! Depends on the generated message type only for its encoding (opened material is decoded by the
//! one-copy decoder in `wire`, for review as for sealing); nothing here knows gRPC. Must never keep a
//! face in the identity material it seals, nor decode with prost's decoder (it leaves unwiped copies
//! of every field in freed memory).

use prost::Message;
use zeroize::{Zeroize, Zeroizing};

mod wire;

use crate::crypto::envelope::{EnvelopeError, KekRing};
use crate::domain::{Applicant, IdentityFields};
use crate::pb::IdentityPayload;
use crate::store::{PiiPart, SealedPii, SealedValue};

/// The `field` name under which a case's identity material is sealed at rest (bound into the
/// envelope: material sealed under another field name does not open as a case's identity).
pub const PII_FIELD_IDENTITY: &str = "identity";

/// The `field` name under which a case's face image is sealed at rest, under a data key of its own.
/// The body is the image bytes as the client sent them (checked).
pub const PII_FIELD_FACE: &str = "face";

/// The envelope field name of a sealed part.
pub fn field(part: PiiPart) -> &'static str {
    match part {
        PiiPart::Identity => PII_FIELD_IDENTITY,
        PiiPart::Face => PII_FIELD_FACE,
    }
}

impl Drop for IdentityPayload {
    fn drop(&mut self) {
        self.name.zeroize();
        self.id_number.zeroize();
        self.phone.zeroize();
        self.face_image.zeroize();
        self.id_card_front.zeroize();
        self.id_card_back.zeroize();
        self.handheld_id_photo.zeroize();
    }
}

impl std::fmt::Debug for IdentityPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityPayload(***)")
    }
}

/// Decodes an opened payload into plaintext fields, each copied once and never through an unwiped
/// buffer (see [`wire`]). `None` if the bytes are not an `IdentityPayload`.
pub fn decode(plaintext: &[u8]) -> Option<IdentityFields> {
    wire::decode_identity(plaintext)
}

/// Encodes plaintext fields as an `IdentityPayload` (what a client seals).
pub fn encode_fields(fields: &IdentityFields) -> Zeroizing<Vec<u8>> {
    let payload = IdentityPayload {
        name: fields.name.clone(),
        id_number: fields.id_number.clone(),
        phone: fields.phone.clone(),
        face_image: fields.face_image.clone(),
        id_card_front: fields.id_card_front.clone(),
        id_card_back: fields.id_card_back.clone(),
        handheld_id_photo: fields.handheld_id_photo.clone(),
    };
    Zeroizing::new(payload.encode_to_vec())
}

/// Encodes a checked applicant's identity material for sealing at rest: every field but the face.
pub fn encode_identity(applicant: &Applicant) -> Zeroizing<Vec<u8>> {
    let image = |i: Option<&crate::domain::Image>| i.map(|i| i.as_bytes().to_vec()).unwrap_or_default();
    let payload = IdentityPayload {
        name: applicant.name().as_str().to_owned(),
        id_number: applicant.id_number().as_str().to_owned(),
        phone: applicant.phone().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        face_image: Vec::new(),
        id_card_front: image(applicant.id_card_front()),
        id_card_back: image(applicant.id_card_back()),
        handheld_id_photo: image(applicant.handheld_id_photo()),
    };
    Zeroizing::new(payload.encode_to_vec())
}

/// Seals a checked applicant for a pending case: the identity material under one data key and the
/// face (if the applicant gave one) under another.
pub fn seal_applicant(keks: &KekRing, case_id: &str, applicant: &Applicant) -> Result<SealedPii, EnvelopeError> {
    let (wrapped_key, body) = keks.seal(case_id, PII_FIELD_IDENTITY, &encode_identity(applicant))?;
    let face = match applicant.face_image() {
        Some(face) => {
            let (wrapped_key, body) = keks.seal(case_id, PII_FIELD_FACE, face.as_bytes())?;
            Some(SealedValue { wrapped_key, body })
        }
        None => None,
    };
    Ok(SealedPii {
        wrapped_key,
        body,
        face,
    })
}

/// Opens a case's identity material and decodes it (in a record written before faces were kept
/// apart, the face is in it too).
pub fn open_identity(keks: &KekRing, case_id: &str, pii: &SealedPii) -> Result<IdentityFields, EnvelopeError> {
    let plaintext = keks.open(case_id, PII_FIELD_IDENTITY, &pii.wrapped_key, &pii.body)?;
    decode(&plaintext).ok_or(EnvelopeError::Open)
}

/// The review material of a case as one `IdentityPayload` encoding (what a reviewer receives): the
/// identity material with the face put back in while the case still holds one — unless `with_face`
/// is false (a document-review case: the applicant chose it or withdrew biometric consent), when no
/// face is handed out at all, not even one inside a record written before the split (one envelope
/// holding everything; both shapes are read). Whether the result holds a face is returned with it.
pub fn open_for_review(
    keks: &KekRing,
    case_id: &str,
    pii: &SealedPii,
    with_face: bool,
) -> Result<(Zeroizing<Vec<u8>>, bool), EnvelopeError> {
    let plaintext = keks.open(case_id, PII_FIELD_IDENTITY, &pii.wrapped_key, &pii.body)?;
    // The one-copy decoder (see `wire`): prost's would leave unwiped copies of the ID card images.
    let mut fields = decode(&plaintext).ok_or(EnvelopeError::Open)?;
    let has_face = match (&pii.face, with_face) {
        (_, false) => {
            fields.face_image.zeroize();
            false
        }
        // A record written before the split: its face is in the identity material.
        (None, true) => return Ok((plaintext, !fields.face_image.is_empty())),
        (Some(face), true) => {
            let mut opened = keks.open(case_id, PII_FIELD_FACE, &face.wrapped_key, &face.body)?;
            fields.face_image.zeroize();
            // Moved, not copied: the opened buffer is left empty.
            fields.face_image = std::mem::take(&mut *opened);
            true
        }
    };
    drop(plaintext);
    Ok((encode_owned(fields), has_face))
}

/// Encodes plaintext fields as an `IdentityPayload`, moving each into the payload (which wipes it on
/// drop) rather than copying it.
fn encode_owned(mut fields: IdentityFields) -> Zeroizing<Vec<u8>> {
    let take = std::mem::take::<Vec<u8>>;
    let payload = IdentityPayload {
        name: std::mem::take(&mut fields.name),
        id_number: std::mem::take(&mut fields.id_number),
        phone: std::mem::take(&mut fields.phone),
        face_image: take(&mut fields.face_image),
        id_card_front: take(&mut fields.id_card_front),
        id_card_back: take(&mut fields.id_card_back),
        handheld_id_photo: take(&mut fields.handheld_id_photo),
    };
    Zeroizing::new(payload.encode_to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::verify::test_support::test_keks;

    /// `open_for_review` as it was, with prost's decoder: the reference the one-copy path must
    /// agree with byte for byte.
    fn by_prost(keks: &KekRing, case_id: &str, pii: &SealedPii, with_face: bool) -> (Vec<u8>, bool) {
        let plaintext = keks
            .open(case_id, PII_FIELD_IDENTITY, &pii.wrapped_key, &pii.body)
            .unwrap();
        let mut payload = IdentityPayload::decode(plaintext.as_slice()).unwrap();
        let face = match (&pii.face, with_face) {
            (_, false) => {
                payload.face_image.zeroize();
                None
            }
            (None, true) => return (plaintext.to_vec(), !payload.face_image.is_empty()),
            (Some(face), true) => Some(
                keks.open(case_id, PII_FIELD_FACE, &face.wrapped_key, &face.body)
                    .unwrap(),
            ),
        };
        let has_face = face.is_some();
        if let Some(face) = face {
            payload.face_image = face.to_vec();
        }
        (payload.encode_to_vec(), has_face)
    }

    fn fields(face: &[u8]) -> IdentityFields {
        let mut fields = IdentityFields::default();
        fields.name = "王小明".into();
        fields.id_number = "11010519491231002X".into();
        fields.phone = "13800138000".into();
        fields.face_image = face.to_vec();
        fields.id_card_front = vec![4; 300];
        fields.id_card_back = vec![5; 20];
        fields.handheld_id_photo = vec![6; 7];
        fields
    }

    /// Identity material sealed as `plaintext` (with a face apart, or none).
    fn sealed(keks: &KekRing, case_id: &str, plaintext: &[u8], face: Option<&[u8]>) -> SealedPii {
        let (wrapped_key, body) = keks.seal(case_id, PII_FIELD_IDENTITY, plaintext).unwrap();
        let face = face.map(|face| {
            let (wrapped_key, body) = keks.seal(case_id, PII_FIELD_FACE, face).unwrap();
            SealedValue { wrapped_key, body }
        });
        SealedPii {
            wrapped_key,
            body,
            face,
        }
    }

    #[test]
    fn review_material_is_what_the_prost_path_made() {
        let keks = test_keks();
        let id = "vf_review";
        let mut unknown = encode_fields(&fields(b"")).to_vec();
        // An unknown field (as a newer client might have sent): dropped by both.
        unknown.extend_from_slice(&[0x5a, 0x02, 0xaa, 0xbb]);
        let shapes = [
            (
                "split, face apart",
                sealed(&keks, id, &encode_fields(&fields(b"")), Some(b"face-1")),
            ),
            ("split, no face", sealed(&keks, id, &encode_fields(&fields(b"")), None)),
            (
                "one envelope with its face",
                sealed(&keks, id, &encode_fields(&fields(b"old-face")), None),
            ),
            ("unknown field", sealed(&keks, id, &unknown, Some(b"face-2"))),
            (
                "empty face apart",
                sealed(&keks, id, &encode_fields(&fields(b"")), Some(b"")),
            ),
        ];
        for (what, pii) in &shapes {
            for with_face in [true, false] {
                let (material, has_face) = open_for_review(&keks, id, pii, with_face).unwrap();
                assert_eq!(
                    (material.to_vec(), has_face),
                    by_prost(&keks, id, pii, with_face),
                    "{what}, with_face {with_face}"
                );
            }
        }
        let (material, has_face) = open_for_review(&keks, id, &shapes[0].1, true).unwrap();
        assert!(has_face);
        let seen = decode(&material).unwrap();
        assert_eq!(
            (seen.face_image.as_slice(), seen.id_card_front.as_slice()),
            (&b"face-1"[..], &[4u8; 300][..])
        );
        // Material that is not an `IdentityPayload` is refused, whatever its shape.
        let garbage = sealed(&keks, id, &[0x22, 0x05, 1], None);
        for face in [None, shapes[0].1.face.clone()] {
            let pii = SealedPii {
                face,
                ..garbage.clone()
            };
            assert!(matches!(
                open_for_review(&keks, id, &pii, true),
                Err(EnvelopeError::Open)
            ));
        }
    }

    /// Every decoding of review material goes through the one-copy decoder: the prost decoder (which
    /// leaves unwiped copies of every image in freed memory) is not called outside these tests.
    #[test]
    fn the_prost_decoder_is_not_used_for_review_material() {
        let source = include_str!("material.rs");
        let code = source.split("#[cfg(test)]").next().unwrap();
        for call in ["::decode(", "decode_length_delimited", "merge("] {
            assert!(!code.contains(call), "{call} outside the tests");
        }
    }
}
