//! Synthetic applicants and the sealed requests built from them, prepared ahead of the calls.
//!
//! Every request gets its own account and its own valid GB 11643 ID number, so that the gateway's abuse
//! limits are not what a run measures; the ID number's sequence code (characters 15–17) picks the
//! simulator's answer (docs/api.md §5) according to the `--mix`. Faces are JPEGs whose header the gateway
//! reads for real (SOI, JFIF, SOF0 with the dimensions), padded with comment segments to the size asked.
//!
//! The identities are synthetic but look real: they must never be logged, printed or put in an error.
//! Nothing here has `Debug` output that shows them.

use prost::Message as _;

use crate::client::sealed_verify_request;
use crate::crypto::sealing::SealError;
use crate::pb;

/// The simulator outcome a request is built to get (docs/api.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Verified,
    NotVerified,
    Review,
}

impl Outcome {
    /// The sequence codes (characters 15–17 of the ID number) that give this outcome: first and count.
    fn sequence_codes(self) -> (u64, u64) {
        match self {
            Outcome::Verified => (0, 900),
            Outcome::NotVerified => (900, 40),
            Outcome::Review => (940, 20),
        }
    }
}

/// Weights of the outcomes, `--mix verified:not_verified:review` (for example `90:5:5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub verified: u32,
    pub not_verified: u32,
    pub review: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self {
            verified: 90,
            not_verified: 5,
            review: 5,
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [v, n, r] = parts.as_slice() else {
            return Err("--mix is verified:not_verified:review, for example 90:5:5".into());
        };
        let num = |p: &str| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| format!("--mix: {p:?} is not a whole number"))
        };
        let mix = Mix {
            verified: num(v)?,
            not_verified: num(n)?,
            review: num(r)?,
        };
        if mix.total() == 0 {
            return Err("--mix: at least one weight must be above zero".into());
        }
        Ok(mix)
    }
}

impl Mix {
    fn total(&self) -> u64 {
        u64::from(self.verified) + u64::from(self.not_verified) + u64::from(self.review)
    }

    /// The outcome of request `index`: each block of `total` consecutive requests holds exactly the
    /// weights' share of each outcome.
    pub fn outcome(&self, index: u64) -> Outcome {
        let at = index % self.total();
        if at < u64::from(self.verified) {
            Outcome::Verified
        } else if at < u64::from(self.verified) + u64::from(self.not_verified) {
            Outcome::NotVerified
        } else {
            Outcome::Review
        }
    }
}

/// Region codes (first six characters) the synthetic ID numbers use.
const REGIONS: [&str; 8] = [
    "110105", "310104", "440305", "510107", "330106", "420102", "320102", "610113",
];
/// Birth dates span 1960-01-01 plus this many days (to 1999-12-31): all adults.
const BIRTH_DAYS: u64 = 14_610;
const SURNAMES: [char; 8] = ['王', '李', '张', '刘', '陈', '杨', '黄', '赵'];
const GIVEN: [char; 8] = ['伟', '芳', '娜', '敏', '静', '磊', '洋', '勇'];
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The GB 11643-1999 check character of 17 digits.
pub fn check_character(body: &str) -> Option<char> {
    if body.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in body.chars().zip(WEIGHTS) {
        sum += c.to_digit(10)? * w;
    }
    Some(b"10X98765432"[(sum % 11) as usize] as char)
}

/// A synthetic applicant. No `Debug`: it looks like a real person.
pub struct Synthetic {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

/// Builds the synthetic applicants of one run. `seed` moves the run to its own part of the number space
/// so that two runs against one gateway do not share ID numbers.
#[derive(Clone, Copy)]
pub struct Identities {
    pub mix: Mix,
    pub seed: u64,
}

impl Identities {
    /// The applicant of request `index`, and the outcome its ID number asks the simulator for. ID numbers
    /// are distinct for distinct indices (up to 14 610 × 8 × 20 requests of the rarest outcome).
    pub fn applicant(&self, index: u64) -> (Outcome, Synthetic) {
        let outcome = self.mix.outcome(index);
        let (first_code, codes) = outcome.sequence_codes();
        let k = self.seed.wrapping_add(index);
        let day = k % BIRTH_DAYS;
        let region = REGIONS[((k / BIRTH_DAYS) % REGIONS.len() as u64) as usize];
        let code = first_code + (k / (BIRTH_DAYS * REGIONS.len() as u64)) % codes;
        let birth = time::macros::date!(1960 - 01 - 01) + time::Duration::days(day as i64);
        let body = format!(
            "{region}{:04}{:02}{:02}{code:03}",
            birth.year(),
            u8::from(birth.month()),
            birth.day()
        );
        // Seventeen digits by construction, so the check character always exists.
        let check = check_character(&body).unwrap_or('0');
        let name: String = [
            SURNAMES[(k % 8) as usize],
            GIVEN[((k / 8) % 8) as usize],
            GIVEN[((k / 64) % 8) as usize],
        ]
        .into_iter()
        .collect();
        let synthetic = Synthetic {
            name,
            id_number: format!("{body}{check}"),
            phone: format!("13{:09}", k % 1_000_000_000),
        };
        (outcome, synthetic)
    }
}

/// A baseline JPEG of `width`×`height` exactly `size` bytes long (at least 64): SOI, a JFIF APP0, SOF0 with
/// the dimensions, comment segments as padding, EOI. Readers that take the size from the header (the
/// gateway, `imagesize`) see a real JPEG; there are no pixels.
pub fn jpeg(width: u16, height: u16, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size.max(64));
    out.extend_from_slice(&[0xff, 0xd8]);
    out.extend_from_slice(&[
        0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    out.extend_from_slice(&[0xff, 0xc0, 0x00, 0x11, 8]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    let end = size.max(64) - 2; // room for EOI
    let mut filler = 0u8;
    while out.len() < end {
        let mut segment = (end - out.len()).min(0xffff + 2);
        let left = end - out.len() - segment;
        if (1..4).contains(&left) {
            segment -= 4; // leave room for one more whole segment
        }
        out.extend_from_slice(&[0xff, 0xfe]);
        out.extend_from_slice(&((segment - 2) as u16).to_be_bytes());
        for _ in 0..segment - 4 {
            out.push(filler);
            filler = filler.wrapping_add(1) & 0x7f;
        }
    }
    out.extend_from_slice(&[0xff, 0xd9]);
    out
}

/// Builds the sealed `VerifyRequest`s of one run: everything but the call.
pub struct Factory {
    pub key: pb::GetSealingKeyResponse,
    pub purpose: pb::Purpose,
    pub identities: Identities,
    /// The face every request carries (empty: none).
    pub face: Vec<u8>,
    /// Distinguishes this run's account and request ids from other runs'.
    pub run_id: String,
    pub consent_unix: i64,
}

impl Factory {
    /// Request `index`, sealed to the gateway's key exactly as `idgate verify` seals.
    pub fn request(&self, index: u64) -> Result<pb::VerifyRequest, SealError> {
        let (_, who) = self.identities.applicant(index);
        let payload = pb::IdentityPayload {
            name: who.name,
            id_number: who.id_number,
            phone: who.phone,
            face_image: self.face.clone(),
            id_card_front: Vec::new(),
            id_card_back: Vec::new(),
            handheld_id_photo: Vec::new(),
        };
        let plaintext = zeroize::Zeroizing::new(payload.encode_to_vec());
        drop(payload);
        let consent = pb::Consent {
            policy_version: "2026-01".into(),
            granted_at_unix: self.consent_unix,
            // The synthetic applicants agreed to face processing too (ANCHOR needs it).
            biometric: Some(pb::BiometricConsent {
                policy_version: "face-2026-01".into(),
                granted_at_unix: self.consent_unix,
            }),
        };
        let id = format!("lt-{}-{index}", self.run_id);
        sealed_verify_request(&self.key, self.purpose, id.clone(), id, consent, &plaintext)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::domain::{IdNumber, Image};

    #[test]
    fn mix_parses_and_holds_its_shares() {
        let mix: Mix = "6:3:1".parse().unwrap();
        let mut counts = [0u32; 3];
        for i in 0..1000 {
            counts[mix.outcome(i) as usize] += 1;
        }
        assert_eq!(counts, [600, 300, 100]);
        assert!("1:2".parse::<Mix>().is_err());
        assert!("0:0:0".parse::<Mix>().is_err());
        assert!("a:1:1".parse::<Mix>().is_err());
    }

    #[test]
    fn id_numbers_are_valid_distinct_and_pick_the_outcome() {
        let today = time::macros::date!(2026 - 12 - 01);
        let ids = Identities {
            mix: "2:1:1".parse().unwrap(),
            seed: 123_456_789,
        };
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let (outcome, who) = ids.applicant(i);
            let parsed = IdNumber::parse(&who.id_number, today);
            assert!(parsed.is_ok(), "index {i} gave an invalid ID number");
            let code: u32 = who.id_number[14..17].parse().unwrap();
            let expected = match outcome {
                Outcome::Verified => code < 900,
                Outcome::NotVerified => (900..940).contains(&code),
                Outcome::Review => (940..960).contains(&code),
            };
            assert!(expected, "index {i}: sequence code {code} does not give {outcome:?}");
            assert!(seen.insert(who.id_number.clone()), "index {i} repeats an ID number");
            assert!(crate::domain::Name::parse(&who.name).is_ok());
        }
    }

    #[test]
    fn check_character_matches_a_known_number() {
        // The example of docs/api.md / the README's quickstart.
        assert_eq!(check_character("11010519491231002"), Some('X'));
        assert_eq!(check_character("1101051949123100"), None);
    }

    #[test]
    fn jpeg_has_the_size_and_dimensions_asked_and_the_gateway_accepts_it() {
        for size in [64usize, 1024, 65_540, 65_541, 65_542, 200 * 1024, 300_001] {
            let bytes = jpeg(640, 480, size);
            assert_eq!(bytes.len(), size);
            let image = Image::parse("face_image", bytes).unwrap();
            assert_eq!((image.width(), image.height()), (640, 480));
        }
    }
}
