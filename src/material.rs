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
//! Depends on the generated message type only for its encoding; nothing here knows gRPC. Must never
//! keep a face in the identity material it seals.

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
    let mut payload = IdentityPayload::decode(plaintext.as_slice()).map_err(|_| EnvelopeError::Open)?;
    let face = match (&pii.face, with_face) {
        (_, false) => {
            payload.face_image.zeroize();
            None
        }
        // A record written before the split: its face is in the identity material.
        (None, true) => return Ok((plaintext, !payload.face_image.is_empty())),
        (Some(face), true) => Some(keks.open(case_id, PII_FIELD_FACE, &face.wrapped_key, &face.body)?),
    };
    drop(plaintext);
    let has_face = face.is_some();
    if let Some(face) = face {
        payload.face_image = face.to_vec();
    }
    Ok((Zeroizing::new(payload.encode_to_vec()), has_face))
}
