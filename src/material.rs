//! The at-rest form of a case's review material: the protobuf encoding of `IdentityPayload`, built
//! from checked values only (so unknown fields a client sent are never stored), and the same bytes a
//! reviewer console receives re-sealed. Buffers are wiped on drop.
//!
//! Depends on the generated message type only for its encoding; nothing here knows gRPC.

use prost::Message;
use zeroize::{Zeroize, Zeroizing};

mod wire;

use crate::domain::{Applicant, IdentityFields};
use crate::pb::IdentityPayload;

/// The `field` name under which a case's identity material is sealed at rest (bound into the
/// envelope: material sealed under another field name does not open as a case's identity).
pub const PII_FIELD_IDENTITY: &str = "identity";

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

/// Encodes a checked applicant for sealing at rest.
pub fn encode_applicant(applicant: &Applicant) -> Zeroizing<Vec<u8>> {
    let image = |i: Option<&crate::domain::Image>| i.map(|i| i.as_bytes().to_vec()).unwrap_or_default();
    let payload = IdentityPayload {
        name: applicant.name().as_str().to_owned(),
        id_number: applicant.id_number().as_str().to_owned(),
        phone: applicant.phone().map(|p| p.as_str().to_owned()).unwrap_or_default(),
        face_image: image(applicant.face_image()),
        id_card_front: image(applicant.id_card_front()),
        id_card_back: image(applicant.id_card_back()),
        handheld_id_photo: image(applicant.handheld_id_photo()),
    };
    Zeroizing::new(payload.encode_to_vec())
}
