//! The stable codes a case is stored with: why it ended refused ([`CaseRefusal`]) and why it went
//! to manual review ([`ReviewReason`]).
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

stable_codes! {
    /// Why a case went to manual review, for the reviewer (no score, no provider detail). Which
    /// provider outcome gives which reason is the decision policy's (`decision::review_reason`).
    pub enum ReviewReason {
        /// No provider answered in time (down, failing, or too slow).
        ProvidersUnavailable => "PROVIDERS_UNAVAILABLE",
        /// A provider answered that it cannot decide: no record, no photo on file, its source down.
        ProviderCannotDecide => "PROVIDER_CANNOT_DECIDE",
        /// The face was compared and the similarity fell in the grey zone.
        SimilarityGreyZone => "SIMILARITY_GREY_ZONE",
        /// Name and ID number match, but the face was not compared.
        FaceNotCompared => "FACE_NOT_COMPARED",
        /// The applicant chose document review instead of face recognition: a reviewer decides
        /// from the ID card front, back and handheld-ID photo.
        DocumentReviewRequested => "DOCUMENT_REVIEW_REQUESTED",
    }
}

impl ReviewReason {
    /// In words, for a reviewer.
    pub fn words(self) -> &'static str {
        match self {
            ReviewReason::ProvidersUnavailable => "no provider answered in time",
            ReviewReason::ProviderCannotDecide => {
                "the provider could not decide (no record or no photo on file, or its source was down)"
            }
            ReviewReason::SimilarityGreyZone => "the face resembles the photo on file, but not clearly enough",
            ReviewReason::FaceNotCompared => "name and ID number match; the face was not compared",
            ReviewReason::DocumentReviewRequested => {
                "the applicant chose document review instead of face recognition; decide from the ID card photos"
            }
        }
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

    #[test]
    fn review_reasons_are_the_stored_strings_and_say_why_in_words() {
        // What records already in a store hold and consoles show: never change these.
        let stored = [
            (ReviewReason::ProvidersUnavailable, "PROVIDERS_UNAVAILABLE"),
            (ReviewReason::ProviderCannotDecide, "PROVIDER_CANNOT_DECIDE"),
            (ReviewReason::SimilarityGreyZone, "SIMILARITY_GREY_ZONE"),
            (ReviewReason::FaceNotCompared, "FACE_NOT_COMPARED"),
            (ReviewReason::DocumentReviewRequested, "DOCUMENT_REVIEW_REQUESTED"),
        ];
        assert_eq!(stored.len(), ReviewReason::ALL.len());
        for (reason, code) in stored {
            assert_eq!(reason.code(), code);
            assert_eq!(ReviewReason::from_code(code), Some(reason));
            assert!(!reason.words().is_empty());
        }
        assert_eq!(ReviewReason::from_code("GREY_ZONE"), None);
    }
}
