//! The whole identity submission, checked against the rules for its [`Purpose`].
//!
//! [`IdentityFields`] is the raw plaintext as the transport decoded it; [`Applicant`] is the only
//! thing the rest of the gateway may act on, and cannot exist unless every rule for the purpose
//! held. Checks run in a fixed order (name, ID number, age rule, phone, images in field order) so
//! the first refusal is deterministic for a given input.
//!
//! Neither type has a derived `Debug` or a `Clone`: both hold raw PII, which must be wiped once it
//! is no longer needed, never copied around, and never logged.

use std::fmt;

use time::Date;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::consent::FaceUse;
use super::id_number::IdNumber;
use super::image::Image;
use super::name::Name;
use super::phone::Phone;
use super::purpose::Purpose;
use super::refusal::{Reason, Refusal};

/// Field names reported in image refusals ([`Refusal::field`]).
pub const FACE_IMAGE_FIELD: &str = "face_image";
pub const ID_CARD_FRONT_FIELD: &str = "id_card_front";
pub const ID_CARD_BACK_FIELD: &str = "id_card_back";
pub const HANDHELD_ID_PHOTO_FIELD: &str = "handheld_id_photo";

/// The plaintext fields as they arrive, after the transport decrypted and decoded them. Empty
/// means absent. Wiped on drop (including when [`Applicant::check`] refuses them); no `Debug`, no
/// `Clone`.
#[derive(Default, Zeroize, ZeroizeOnDrop)]
pub struct IdentityFields {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub face_image: Vec<u8>,
    pub id_card_front: Vec<u8>,
    pub id_card_back: Vec<u8>,
    pub handheld_id_photo: Vec<u8>,
}

/// A checked applicant: every rule for [`purpose`](Applicant::purpose) held on the `today` it was
/// checked against.
pub struct Applicant {
    purpose: Purpose,
    name: Name,
    id_number: IdNumber,
    phone: Option<Phone>,
    face_image: Option<Image>,
    id_card_front: Option<Image>,
    id_card_back: Option<Image>,
    handheld_id_photo: Option<Image>,
}

/// Whether a request for `purpose` on the face path `face` uses the applicant's face at all: only a
/// purpose that compares one, off the document-review path. A face sent on any other path is dropped
/// unread, since nobody consented to its processing for anything else.
pub fn reads_face(purpose: Purpose, face: &FaceUse) -> bool {
    purpose.requires_face() && *face != FaceUse::DocumentReview
}

/// An optional image: absent when empty, otherwise it must pass [`Image::parse`]. The bytes are
/// moved out (not copied) so exactly one owner wipes them.
fn optional_image(field: &'static str, bytes: &mut Vec<u8>) -> Result<Option<Image>, Refusal> {
    if bytes.is_empty() {
        return Ok(None);
    }
    Image::parse(field, std::mem::take(bytes)).map(Some)
}

impl Applicant {
    /// Checks `fields` for `purpose`. `today` is the date in China Standard Time
    /// ([`Clock::today_cst`](crate::clock::Clock::today_cst)); it bounds the birth date and decides
    /// the age rule.
    pub fn check(purpose: Purpose, fields: IdentityFields, today: Date) -> Result<Applicant, Refusal> {
        Self::check_on(purpose, &FaceUse::NotCompared, fields, today)
    }

    /// [`check`](Applicant::check) on the face path `face`. A face only [`reads_face`] paths use is
    /// required there; on any other path (a purpose that compares no face, or
    /// [`FaceUse::DocumentReview`]) a face image the client sealed anyway is wiped unread: never
    /// checked, sent, fingerprinted, stored or shown to a reviewer.
    pub fn check_on(
        purpose: Purpose,
        face: &FaceUse,
        mut fields: IdentityFields,
        today: Date,
    ) -> Result<Applicant, Refusal> {
        let face_required = reads_face(purpose, face);
        if !face_required {
            fields.face_image.zeroize();
        }
        let name = Name::parse(&fields.name)?;
        let id_number = IdNumber::parse(&fields.id_number, today)?;
        if let Some(min_age) = purpose.minimum_age()
            && id_number.age_on(today) < min_age
        {
            return Err(Refusal::new(Reason::Underage));
        }

        // Whitespace-only counts as absent, the same rule Phone::parse uses for PhoneMissing.
        let phone = if fields.phone.trim().is_empty() {
            if purpose.requires_phone() {
                return Err(Refusal::new(Reason::PhoneMissing));
            }
            None
        } else {
            Some(Phone::parse(&fields.phone)?)
        };

        let face_image = optional_image(FACE_IMAGE_FIELD, &mut fields.face_image)?;
        if face_image.is_none() && face_required {
            return Err(Refusal::with_field(Reason::FaceImageMissing, FACE_IMAGE_FIELD));
        }
        let id_card_front = optional_image(ID_CARD_FRONT_FIELD, &mut fields.id_card_front)?;
        let id_card_back = optional_image(ID_CARD_BACK_FIELD, &mut fields.id_card_back)?;
        let handheld_id_photo = optional_image(HANDHELD_ID_PHOTO_FIELD, &mut fields.handheld_id_photo)?;

        Ok(Applicant {
            purpose,
            name,
            id_number,
            phone,
            face_image,
            id_card_front,
            id_card_back,
            handheld_id_photo,
        })
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    pub fn name(&self) -> &Name {
        &self.name
    }

    pub fn id_number(&self) -> &IdNumber {
        &self.id_number
    }

    /// Always `Some` when [`Purpose::requires_phone`].
    pub fn phone(&self) -> Option<&Phone> {
        self.phone.as_ref()
    }

    /// Always `Some` when [`Purpose::requires_face`].
    pub fn face_image(&self) -> Option<&Image> {
        self.face_image.as_ref()
    }

    pub fn id_card_front(&self) -> Option<&Image> {
        self.id_card_front.as_ref()
    }

    pub fn id_card_back(&self) -> Option<&Image> {
        self.id_card_back.as_ref()
    }

    pub fn handheld_id_photo(&self) -> Option<&Image> {
        self.handheld_id_photo.as_ref()
    }

    /// Whether the ID card front, back and handheld-ID photo are all here: what a reviewer needs to
    /// decide an anchor case from documents.
    pub fn has_all_documents(&self) -> bool {
        self.id_card_front.is_some() && self.id_card_back.is_some() && self.handheld_id_photo.is_some()
    }
}

/// Redacted: the PII fields print through their own redacted `Debug`.
impl fmt::Debug for Applicant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applicant")
            .field("purpose", &self.purpose)
            .field("name", &self.name)
            .field("id_number", &self.id_number)
            .field("phone", &self.phone)
            .field("face_image", &self.face_image)
            .field("id_card_front", &self.id_card_front)
            .field("id_card_back", &self.id_card_back)
            .field("handheld_id_photo", &self.handheld_id_photo)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::consent::Consent;
    use crate::domain::ids::{AccountId, RequestId};
    use crate::domain::test_support::{XorShift, date, id_number, jpeg, png, xorshift_strings};

    const NAME: &str = "阿卜杜拉·买买提";
    const PHONE: &str = "13912345678";

    fn today() -> Date {
        date(2026, 11, 29)
    }

    /// An adult (born 1990-07-15), everything present and valid.
    fn adult_id() -> String {
        id_number("440305", "19900715", "123")
    }

    fn full() -> IdentityFields {
        IdentityFields {
            name: NAME.to_owned(),
            id_number: adult_id(),
            phone: PHONE.to_owned(),
            face_image: jpeg(480, 640),
            id_card_front: png(856, 540),
            id_card_back: png(856, 540),
            handheld_id_photo: jpeg(1080, 1440),
        }
    }

    fn minimal() -> IdentityFields {
        // Struct-update syntax cannot move out of a `Drop` type, hence field by field.
        let mut f = IdentityFields::default();
        f.name = NAME.to_owned();
        f.id_number = adult_id();
        f
    }

    fn check(purpose: Purpose, fields: IdentityFields) -> Result<Applicant, Refusal> {
        Applicant::check(purpose, fields, today())
    }

    fn refusal(purpose: Purpose, fields: IdentityFields) -> Refusal {
        match check(purpose, fields) {
            Ok(_) => panic!("accepted"),
            Err(r) => r,
        }
    }

    fn ok(purpose: Purpose, fields: IdentityFields) -> Applicant {
        check(purpose, fields).unwrap_or_else(|e| panic!("refused: {} {:?}", e.code(), e.field()))
    }

    #[test]
    fn document_review_drops_the_face_and_requires_none() {
        let a = Applicant::check_on(Purpose::Anchor, &FaceUse::DocumentReview, full(), today())
            .unwrap_or_else(|e| panic!("refused: {}", e.code()));
        assert!(a.face_image().is_none());
        assert!(a.id_card_front().is_some() && a.id_card_back().is_some() && a.handheld_id_photo().is_some());
        // No face at all is fine on this path; every other anchor rule still holds.
        let mut f = full();
        f.face_image.clear();
        assert!(Applicant::check_on(Purpose::Anchor, &FaceUse::DocumentReview, f, today()).is_ok());
        let mut f = full();
        f.phone.clear();
        let r = Applicant::check_on(Purpose::Anchor, &FaceUse::DocumentReview, f, today()).err();
        assert_eq!(r.map(|r| r.reason()), Some(Reason::PhoneMissing));
        // A garbage face is not even read on this path.
        let mut f = full();
        f.face_image = b"GIF89a..........".to_vec();
        assert!(Applicant::check_on(Purpose::Anchor, &FaceUse::DocumentReview, f, today()).is_ok());
    }

    #[test]
    fn anchor_full() {
        let a = ok(Purpose::Anchor, full());
        assert_eq!(a.purpose(), Purpose::Anchor);
        assert_eq!(a.name().as_str(), NAME);
        assert_eq!(a.id_number().as_str(), adult_id());
        assert_eq!(a.phone().map(Phone::as_str), Some(PHONE));
        assert_eq!(a.face_image().map(|i| (i.width(), i.height())), Some((480, 640)));
        assert!(a.id_card_front().is_some());
        assert!(a.id_card_back().is_some());
        assert!(a.handheld_id_photo().is_some());
    }

    #[test]
    fn purposes_that_compare_no_face_drop_one_unread() {
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            assert!(!reads_face(p, &FaceUse::NotCompared));
            // A valid face is not kept; a garbage one is not even read (no IMAGE_FORMAT refusal).
            let mut f = minimal();
            f.face_image = jpeg(480, 640);
            assert!(ok(p, f).face_image().is_none());
            let mut f = minimal();
            f.face_image = b"GIF89a..........".to_vec();
            assert!(ok(p, f).face_image().is_none());
            let mut f = minimal();
            f.face_image = vec![0; MAX_FOR_TEST];
            assert!(ok(p, f).face_image().is_none());
        }
        assert!(reads_face(Purpose::Anchor, &FaceUse::NotCompared));
        assert!(!reads_face(Purpose::Anchor, &FaceUse::DocumentReview));
    }

    #[test]
    fn short_video_and_radio_minimal() {
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            let a = ok(p, minimal());
            assert!(a.phone().is_none());
            assert!(a.face_image().is_none());
            assert!(a.id_card_front().is_none());
            assert!(a.id_card_back().is_none());
            assert!(a.handheld_id_photo().is_none());
            // Whitespace-only phone is absent, not invalid.
            let mut f = minimal();
            f.phone = "  ".to_owned();
            assert!(ok(p, f).phone().is_none());
        }
    }

    #[test]
    fn optional_fields_still_checked() {
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            let mut f = minimal();
            f.phone = "12345".to_owned();
            assert_eq!(refusal(p, f).reason(), Reason::PhoneInvalid);

            let mut f = minimal();
            f.id_card_back = png(10, 10);
            let r = refusal(p, f);
            assert_eq!((r.reason(), r.field()), (Reason::ImageDimensions, Some("id_card_back")));

            let mut f = minimal();
            f.handheld_id_photo = vec![0xff, 0xd8, 0xff, 0xe0];
            let r = refusal(p, f);
            assert_eq!(
                (r.reason(), r.field()),
                (Reason::ImageMalformed, Some("handheld_id_photo"))
            );

            let mut f = minimal();
            f.id_card_front = vec![0; MAX_FOR_TEST];
            let r = refusal(p, f);
            assert_eq!((r.reason(), r.field()), (Reason::ImageTooLarge, Some("id_card_front")));
        }
    }

    const MAX_FOR_TEST: usize = crate::domain::image::MAX_IMAGE_BYTES + 1;

    #[test]
    fn minors_may_not_be_anchors() {
        // Turns 18 exactly on today(): allowed.
        let mut f = full();
        f.id_number = id_number("440305", "20081129", "123");
        let a = ok(Purpose::Anchor, f);
        assert_eq!(a.id_number().age_on(today()), 18);

        // One day short.
        let mut f = full();
        f.id_number = id_number("440305", "20081130", "123");
        let r = refusal(Purpose::Anchor, f);
        assert_eq!(r.reason(), Reason::Underage);
        assert_eq!(r.class(), crate::domain::RefusalClass::NotAllowed);

        // A minor may still be checked for the other purposes.
        for p in [Purpose::ShortVideo, Purpose::Radio] {
            let mut f = minimal();
            f.id_number = id_number("440305", "20150101", "123");
            ok(p, f);
        }
    }

    #[test]
    fn leap_day_anchor() {
        let mut f = full();
        f.id_number = id_number("440305", "20080229", "123");
        // 2026 is a common year: 18 on 1 March, not on 28 February.
        assert_eq!(
            Applicant::check(Purpose::Anchor, f, date(2026, 2, 28))
                .err()
                .map(|r| r.reason()),
            Some(Reason::Underage)
        );
        let mut f = full();
        f.id_number = id_number("440305", "20080229", "123");
        assert!(Applicant::check(Purpose::Anchor, f, date(2026, 3, 1)).is_ok());
    }

    #[test]
    fn anchor_requires_everything() {
        let mut f = full();
        f.phone.clear();
        assert_eq!(refusal(Purpose::Anchor, f).reason(), Reason::PhoneMissing);

        let mut f = full();
        f.face_image.clear();
        let r = refusal(Purpose::Anchor, f);
        assert_eq!((r.reason(), r.field()), (Reason::FaceImageMissing, Some("face_image")));

        // Card photos stay optional even for anchors.
        let mut f = full();
        f.id_card_front.clear();
        f.id_card_back.clear();
        f.handheld_id_photo.clear();
        ok(Purpose::Anchor, f);
    }

    #[test]
    fn fixed_check_order() {
        // Everything wrong: the name is reported first, then each field in turn as it is fixed.
        let mut f = IdentityFields {
            name: "x".to_owned(),
            id_number: "123".to_owned(),
            phone: "1".to_owned(),
            face_image: png(1, 1),
            id_card_front: png(1, 1),
            id_card_back: png(1, 1),
            handheld_id_photo: png(1, 1),
        };
        let mut steps = Vec::new();
        loop {
            let fields = IdentityFields {
                name: f.name.clone(),
                id_number: f.id_number.clone(),
                phone: f.phone.clone(),
                face_image: f.face_image.clone(),
                id_card_front: f.id_card_front.clone(),
                id_card_back: f.id_card_back.clone(),
                handheld_id_photo: f.handheld_id_photo.clone(),
            };
            let Err(r) = check(Purpose::Anchor, fields) else {
                break;
            };
            steps.push((r.code(), r.field()));
            match (r.reason(), r.field()) {
                (Reason::NameInvalid, _) => f.name = NAME.to_owned(),
                (Reason::IdNumberFormat, _) => f.id_number = id_number("440305", "20100101", "123"),
                (Reason::Underage, _) => f.id_number = adult_id(),
                (Reason::PhoneInvalid, _) => f.phone = PHONE.to_owned(),
                (Reason::ImageDimensions, Some("face_image")) => f.face_image = jpeg(64, 64),
                (Reason::ImageDimensions, Some("id_card_front")) => f.id_card_front = png(64, 64),
                (Reason::ImageDimensions, Some("id_card_back")) => f.id_card_back = png(64, 64),
                (Reason::ImageDimensions, Some("handheld_id_photo")) => f.handheld_id_photo = png(64, 64),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            steps,
            [
                ("NAME_INVALID", None),
                ("ID_NUMBER_FORMAT", None),
                ("UNDERAGE", None),
                ("PHONE_INVALID", None),
                ("IMAGE_DIMENSIONS", Some("face_image")),
                ("IMAGE_DIMENSIONS", Some("id_card_front")),
                ("IMAGE_DIMENSIONS", Some("id_card_back")),
                ("IMAGE_DIMENSIONS", Some("handheld_id_photo")),
            ]
        );
    }

    #[test]
    fn missing_name_and_id() {
        let mut f = minimal();
        f.name.clear();
        assert_eq!(refusal(Purpose::Radio, f).reason(), Reason::NameMissing);
        let mut f = minimal();
        f.id_number.clear();
        assert_eq!(refusal(Purpose::Radio, f).reason(), Reason::IdNumberMissing);
        let mut f = minimal();
        // Same body, a different (therefore wrong) check character.
        let good = adult_id();
        let wrong = if good.ends_with('1') { '2' } else { '1' };
        f.id_number = format!("{}{wrong}", &good[..17]);
        assert_eq!(refusal(Purpose::Radio, f).reason(), Reason::IdNumberChecksum);
        let mut f = minimal();
        f.id_number = id_number("440305", "20261130", "123");
        assert_eq!(refusal(Purpose::Radio, f).reason(), Reason::IdNumberBirthDate);
    }

    /// Every reason code is reachable through the public parsers, and no refusal, redacted
    /// `Debug` or `Display` ever contains any part of the input.
    #[test]
    fn no_pii_in_any_output() {
        const NOW: i64 = 1_790_000_000;
        let id = adult_id();
        let secrets: Vec<String> = vec![
            NAME.to_owned(),
            "阿卜杜拉".to_owned(),
            "买买提".to_owned(),
            id.clone(),
            id[..6].to_owned(),
            id[6..14].to_owned(),
            "19900715".to_owned(),
            "1990".to_owned(),
            PHONE.to_owned(),
            "1234".to_owned(),
            "5678".to_owned(),
            "secret-req".to_owned(),
            "policy!".to_owned(),
        ];

        let mut outputs: Vec<(Reason, String)> = Vec::new();
        let mut record = |r: Refusal| {
            outputs.push((r.reason(), format!("{r} | {r:?} | {r:#?} | {}", r.code())));
        };

        // Reach every reason with PII-bearing inputs.
        let e = |r: Result<_, Refusal>| r.err().unwrap_or_else(|| panic!("accepted"));
        record(e(RequestId::parse("secret-req/\u{0}").map(|_| ())));
        record(e(AccountId::parse("secret-req 1990").map(|_| ())));
        record(Refusal::new(Reason::PurposeInvalid));
        record(e(Consent::parse("", 1, NOW).map(|_| ())));
        record(e(Consent::parse("policy!", 1, NOW).map(|_| ())));
        record(e(FaceUse::decide(Purpose::Anchor, false, None, NOW).map(|_| ())));
        record(e(crate::domain::BiometricConsent::parse("face!", 1, NOW).map(|_| ())));
        record(e(Name::parse("  ").map(|_| ())));
        record(e(Name::parse("阿卜杜拉··买买提").map(|_| ())));
        record(e(IdNumber::parse("", today()).map(|_| ())));
        record(e(IdNumber::parse(&format!("{id}0"), today()).map(|_| ())));
        let mut bad_check = id.clone().into_bytes();
        bad_check[17] = if bad_check[17] == b'1' { b'2' } else { b'1' };
        let bad_check = String::from_utf8(bad_check).unwrap_or_default();
        record(e(IdNumber::parse(&bad_check, today()).map(|_| ())));
        record(e(IdNumber::parse(&id, date(1990, 7, 14)).map(|_| ())));
        let mut f = full();
        f.id_number = id_number("440305", "20100101", "123");
        record(e(check(Purpose::Anchor, f).map(|_| ())));
        let mut f = full();
        f.phone.clear();
        record(e(check(Purpose::Anchor, f).map(|_| ())));
        record(e(Phone::parse("+86 1234 5678").map(|_| ())));
        let mut f = full();
        f.face_image.clear();
        record(e(check(Purpose::Anchor, f).map(|_| ())));
        record(e(Image::parse("id_card_front", b"GIF89a1990".to_vec()).map(|_| ())));
        record(e(
            Image::parse("id_card_front", b"\xff\xd8\xff1990".to_vec()).map(|_| ())
        ));
        record(e(Image::parse("id_card_front", vec![0; MAX_FOR_TEST]).map(|_| ())));
        record(e(Image::parse("id_card_front", png(1990, 1)).map(|_| ())));

        let reached: std::collections::HashSet<Reason> = outputs.iter().map(|(r, _)| *r).collect();
        for r in Reason::ALL {
            assert!(reached.contains(r), "{r:?} not reached");
        }

        // The redacted Debug of every checked type.
        let a = ok(Purpose::Anchor, full());
        outputs.push((Reason::Underage, format!("{a:?} {a:#?}")));
        outputs.push((Reason::Underage, format!("{:?}", a.name())));
        outputs.push((Reason::Underage, format!("{:?}", a.id_number())));
        outputs.push((Reason::Underage, format!("{:?}", a.phone())));
        outputs.push((Reason::Underage, format!("{:?}", a.face_image())));

        for (_, out) in &outputs {
            for s in &secrets {
                assert!(!out.contains(s.as_str()), "{out:?} leaks {s:?}");
            }
        }
        // Messages carry no input by construction; check they carry no digits from it either.
        for r in Reason::ALL {
            assert!(!r.message().contains("1990"));
        }
    }

    #[test]
    fn fuzz_all_parsers() {
        let strings = xorshift_strings(0xa991, 3000, b"0123456789Xx+86 -\xc2\xb7");
        let mut rng = XorShift::new(0xfeed);
        for s in &strings {
            let _ = RequestId::parse(s);
            let _ = AccountId::parse(s);
            let _ = Purpose::from_str_name(s);
            let n = rng.next_u64() as i64;
            let _ = Consent::parse(s, n, NOW_FUZZ);
            let _ = Consent::parse(s, n, n);
            let _ = Name::parse(s);
            let _ = IdNumber::parse(s, today());
            let _ = IdNumber::parse(s, Date::MIN);
            let _ = Phone::parse(s);
        }
        for i in 0..1500usize {
            let pick = |rng: &mut XorShift| strings[rng.below(strings.len())].clone();
            let bytes = |rng: &mut XorShift| -> Vec<u8> {
                let len = rng.below(48);
                let mut v = match rng.below(3) {
                    0 => vec![0xff, 0xd8, 0xff],
                    1 => b"\x89PNG\r\n\x1a\n".to_vec(),
                    _ => Vec::new(),
                };
                v.extend((0..len).map(|_| rng.byte()));
                v
            };
            let fields = IdentityFields {
                name: pick(&mut rng),
                id_number: if i % 2 == 0 { adult_id() } else { pick(&mut rng) },
                phone: pick(&mut rng),
                face_image: bytes(&mut rng),
                id_card_front: bytes(&mut rng),
                id_card_back: bytes(&mut rng),
                handheld_id_photo: bytes(&mut rng),
            };
            let purpose = [Purpose::ShortVideo, Purpose::Radio, Purpose::Anchor][i % 3];
            let _ = Applicant::check(purpose, fields, today());
        }
    }

    const NOW_FUZZ: i64 = 1_790_000_000;
}
