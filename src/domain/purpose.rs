//! What the applicant is being verified for. The purpose decides which fields are required and
//! whether the adult-only rule applies; it carries no personal data.

/// Why the identity is being verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Posting short videos: name and ID number required.
    ShortVideo,
    /// Audio live rooms: name and ID number required.
    Radio,
    /// Opening a live-streaming (anchor) account: adults only, every field and a face image required.
    Anchor,
}

impl Purpose {
    /// Whether a face image must be supplied (and, for the gateway, compared against the photo on
    /// file).
    pub fn requires_face(self) -> bool {
        matches!(self, Purpose::Anchor)
    }

    /// Whether a phone number must be supplied.
    pub fn requires_phone(self) -> bool {
        matches!(self, Purpose::Anchor)
    }

    /// Minimum age in whole years on the day of the request, if any.
    pub fn minimum_age(self) -> Option<u32> {
        match self {
            Purpose::Anchor => Some(18),
            Purpose::ShortVideo | Purpose::Radio => None,
        }
    }

    /// Stable lower-case name, as used in logs, metrics and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::ShortVideo => "short_video",
            Purpose::Radio => "radio",
            Purpose::Anchor => "anchor",
        }
    }

    /// Inverse of [`as_str`](Purpose::as_str). Exact match only: no case folding, no trimming, so
    /// that one purpose has exactly one spelling in logs and in the audit trail.
    pub fn from_str_name(s: &str) -> Option<Self> {
        match s {
            "short_video" => Some(Purpose::ShortVideo),
            "radio" => Some(Purpose::Radio),
            "anchor" => Some(Purpose::Anchor),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Purpose; 3] = [Purpose::ShortVideo, Purpose::Radio, Purpose::Anchor];

    #[test]
    fn round_trips() {
        for p in ALL {
            assert_eq!(Purpose::from_str_name(p.as_str()), Some(p));
        }
    }

    #[test]
    fn rejects_other_spellings() {
        for s in [
            "",
            "ANCHOR",
            "Anchor",
            " anchor",
            "anchor ",
            "short-video",
            "PURPOSE_ANCHOR",
        ] {
            assert_eq!(Purpose::from_str_name(s), None, "{s:?}");
        }
    }

    #[test]
    fn only_anchor_is_strict() {
        assert!(Purpose::Anchor.requires_face());
        assert!(Purpose::Anchor.requires_phone());
        assert_eq!(Purpose::Anchor.minimum_age(), Some(18));
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            assert!(!p.requires_face());
            assert!(!p.requires_phone());
            assert_eq!(p.minimum_age(), None);
        }
    }
}
