//! The stable codes a case is stored with: why it ended refused ([`CaseRefusal`]).
//!
//! These codes are written into stored records (and, on Redis, covered by a record's integrity tag)
//! and answered to clients: a code is never renamed or reused, or stored records change meaning.

use super::codes::stable_codes;

stable_codes! {
    /// Why a well-formed request ended refused after the gateway looked at it (unlike a
    /// [`Reason`](super::Reason), which refuses the input before any provider is asked). Stored in
    /// the case, so a retry of the same request gets the same refusal.
    pub enum CaseRefusal {
        /// The provider could not use the face photo: the applicant takes a new one (new
        /// `request_id`).
        FaceImageUnusable => "FACE_IMAGE_UNUSABLE",
        /// This ID number already verified the allowed number of anchor accounts.
        IdAccountLimit => "ID_ACCOUNT_LIMIT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_the_stored_strings() {
        for r in CaseRefusal::ALL {
            assert_eq!(CaseRefusal::from_code(r.code()), Some(*r));
        }
        // What records already in a store hold: never change these.
        assert_eq!(CaseRefusal::FaceImageUnusable.code(), "FACE_IMAGE_UNUSABLE");
        assert_eq!(CaseRefusal::IdAccountLimit.code(), "ID_ACCOUNT_LIMIT");
        assert_eq!(CaseRefusal::from_code("face_image_unusable"), None);
    }
}
