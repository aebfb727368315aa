//! Every documented Tencent FaceID answer code, and what it means for idgate.
//!
//! The adapter reads a code from one of three places: `Response.Result` of `IdCardVerification`
//! (`"0"`, `"-1"`, ...), `Response.Result` of `ImageRecognitionV2` (`"Success"` or a
//! `FailedOperation.*` code, next to `Sim`), and `Response.Error.Code` of either action. This module
//! turns that code into an [`Outcome`] or a [`ProviderError`] by table lookup, nothing else.
//!
//! It must never: guess. A code that is not in the tables is [`ProviderError::Protocol`], never a
//! match; a face comparison without a valid `Sim` is a protocol error, never a match. And it never
//! sees or returns message text: Tencent's `Message` / `Description` may echo the input, so the
//! adapter does not even deserialize them, and a code that looks like it might carry personal data
//! is redacted by [`sanitize::code`] before it goes into an error.
//!
//! Sources (fetched for this table): the response models and per-action "error codes that may be
//! returned" lists of Tencent's own SDKs for `faceid` 2018-03-01 (tencentcloud-sdk-go
//! `faceid/v20180301/{client,errors}.go`, tencentcloud-sdk-php `Models/IdCardVerificationResponse.php`
//! and `Models/ImageRecognitionV2Response.php`, tencentcloud-sdk-java `FaceidErrorCode`), the API
//! Explorer examples in tencentcloud-cli (`examples/faceid/v20180301/*.md`), and the API 3.0
//! "Common Error Codes" page.

use crate::providers::{Outcome, ProviderError, sanitize};

/// What a code means, before any `Sim` is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMeaning {
    /// Two-factor check passed.
    Match,
    /// A face comparison happened; the similarity is in `Sim`.
    Compared,
    /// Name and ID do not belong together / the ID is invalid: a hard "no".
    Mismatch,
    /// The applicant's photo cannot be used; a new one may work.
    PhotoUnusable,
    /// The authority could not answer about this person; a human must decide.
    CannotDecide,
    /// The provider failed on its side; the router should try another provider.
    Unavailable,
    /// The provider refused our request (credentials, account, request shape).
    Refused,
    /// Too many calls (rate limit or quota): try elsewhere and give this provider a rest.
    RateLimited,
}

/// One documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub code: &'static str,
    pub meaning: CodeMeaning,
}

const fn e(code: &'static str, meaning: CodeMeaning) -> Entry {
    Entry { code, meaning }
}

use CodeMeaning::{CannotDecide, Compared, Match, Mismatch, PhotoUnusable, RateLimited, Refused, Unavailable};

/// `IdCardVerification` `Response.Result`. Documented: "0" and "-1" are billed results; "-2"..."-7"
/// are not billed.
pub const ID_CARD_RESULTS: &[Entry] = &[
    // 姓名和身份证号一致: name and ID number belong together.
    e("0", Match),
    // 姓名和身份证号不一致 (billed): a definite "no" from the authority.
    e("-1", Mismatch),
    // 非法身份证号 (length/check digit wrong): the ID is invalid. The gateway checks IDs locally first,
    // so this means the authority disagrees with our check; either way it is not this person's ID.
    e("-2", Mismatch),
    // 非法姓名 (length/format wrong): the authority never compared anything. Not a hard "no": names
    // with a middle dot or rare characters are legitimate and are what trips format checks, so a
    // human decides instead of the applicant being rejected outright.
    e("-3", CannotDecide),
    // 证件库服务异常: the ID-card database service failed. The contract (docs/api.md §5) routes this to the
    // next provider first ("failover, then PENDING_REVIEW"): another provider may reach the authority
    // through a working path; when none does, the router sends the case to review anyway.
    e("-4", Unavailable),
    // 证件库中无此身份证记录: no record of this ID at the authority.
    e("-5", CannotDecide),
    // 权威比对系统升级中，请稍后再试: the comparison system is down for upgrade; like "-4", another
    // provider may still answer, and review follows when none does.
    e("-6", Unavailable),
    // 认证次数超过当日限制: this identity hit its daily attempt limit. Not our credentials or quota, and
    // repeated attempts on one identity are exactly what a human should look at.
    e("-7", CannotDecide),
];

/// `ImageRecognitionV2` `Response.Result` values and every `Response.Error.Code` we know.
pub const CODES: &[Entry] = &[
    // --- A face comparison happened: the answer is the similarity (`Sim`), and the decision policy,
    // not this table, says what it means. CompareLowSimilarity is Tencent judging the similarity
    // below *its* threshold; the gateway's policy judges it against its own.
    e("Success", Compared),
    e("FailedOperation.CompareLowSimilarity", Compared),
    // Same meaning, as the international site spells it (arrives as an error, usually without Sim).
    e("InternalError.CompareLowSimilarity", Compared),
    // --- Mismatch: name and ID do not belong together, or the ID number is invalid.
    e("FailedOperation.IdNameMisMatch", Mismatch),
    e("FailedOperation.IdFormatError", Mismatch),
    // --- CannotDecide: the authority has no record or no photo, did not answer, is down, its photo
    // is unusable (a new selfie will not help), the identity hit its daily limit, or the name format
    // was refused before any comparison (see "-3" above).
    e("FailedOperation.IdNoExistSystem", CannotDecide),
    e("FailedOperation.IdPhotoNoExist", CannotDecide),
    e("FailedOperation.IdPhotoSystemNoanswer", CannotDecide),
    e("FailedOperation.IdPhotoPoorQuality", CannotDecide),
    e("FailedOperation.CompareLibServiceUnavailable", CannotDecide),
    e("FailedOperation.IdentityAuthLimitExceeded", CannotDecide),
    e("FailedOperation.NameFormatError", CannotDecide),
    // --- PhotoUnusable: the applicant's photo (several faces, no face, too small/large, blurry,
    // undecodable, covered, a photo of a photo...). Not a decision about the person.
    e("FailedOperation.LifePhotoDetectFaces", PhotoUnusable),
    e("FailedOperation.LifePhotoDetectNoFaces", PhotoUnusable),
    e("FailedOperation.LifePhotoPoorQuality", PhotoUnusable),
    e("FailedOperation.LifePhotoSizeError", PhotoUnusable),
    e("FailedOperation.LifePhotoDetectFake", PhotoUnusable),
    e("FailedOperation.ImageBlur", PhotoUnusable),
    e("FailedOperation.ImageDecodeFailed", PhotoUnusable),
    e("FailedOperation.ImageSizeTooLarge", PhotoUnusable),
    e("FailedOperation.EmptyImageError", PhotoUnusable),
    e("FailedOperation.CoveredFace", PhotoUnusable),
    e("FailedOperation.IncompleteFace", PhotoUnusable),
    e("FailedOperation.PoorImageQuality", PhotoUnusable),
    e("InternalError.LifePhotoPoorQuality", PhotoUnusable),
    e("InternalError.LifePhotoSizeError", PhotoUnusable),
    // --- Unavailable: Tencent failed internally (comparison engine, crypto, database, unknown), or
    // is overloaded. No outcome; the router fails over.
    e("FailedOperation.CompareSystemError", Unavailable),
    // 比对失败 with no reason: an engine failure, not a "different person" (that is
    // CompareLowSimilarity), so never an outcome.
    e("FailedOperation.CompareFail", Unavailable),
    // We send no `Encryption`, so a decryption/encryption failure is Tencent's side.
    e("FailedOperation.DecryptSystemError", Unavailable),
    e("FailedOperation.EncryptSystemError", Unavailable),
    e("FailedOperation.UnKnown", Unavailable),
    e("FailedOperation.DbError", Unavailable),
    e("FailedOperation", Unavailable),
    e("InternalError", Unavailable),
    e("InternalError.UnKnown", Unavailable),
    e("InternalError.EncryptSystemError", Unavailable),
    e("ServiceUnavailable", Unavailable),
    e("ResourceUnavailable", Unavailable),
    e("ResourceInsufficient", Unavailable),
    e("ResourceInUse", Unavailable),
    e("ResponseSizeLimitExceeded", Unavailable),
    // --- Refused, credentials and signature: operators must fix keys or clocks.
    e("AuthFailure.InvalidAuthorization", Refused),
    e("AuthFailure.InvalidSecretId", Refused),
    e("AuthFailure.MFAFailure", Refused),
    e("AuthFailure.SecretIdNotFound", Refused),
    e("AuthFailure.SignatureExpire", Refused),
    e("AuthFailure.SignatureFailure", Refused),
    e("AuthFailure.TokenFailure", Refused),
    e("AuthFailure.UnauthorizedOperation", Refused),
    // --- Refused, account and permissions: not activated, in arrears, not allowed.
    e("UnauthorizedOperation", Refused),
    e("UnauthorizedOperation.ActivateError", Refused),
    e("UnauthorizedOperation.Activating", Refused),
    e("UnauthorizedOperation.Arrears", Refused),
    e("UnauthorizedOperation.ChargeStatusException", Refused),
    e("UnauthorizedOperation.NonAuthorize", Refused),
    e("UnauthorizedOperation.Nonactivated", Refused),
    e("FailedOperation.StsUnAuthErrError", Refused),
    e("OperationDenied", Refused),
    e("IpInBlacklist", Refused),
    e("IpNotInWhitelist", Refused),
    // --- Rate limits and quotas on our account: fail over now, back this provider off for a while.
    e("LimitExceeded", RateLimited),
    e("RequestLimitExceeded", RateLimited),
    e("RequestLimitExceeded.GlobalRegionUinLimitExceeded", RateLimited),
    e("RequestLimitExceeded.IPLimitExceeded", RateLimited),
    e("RequestLimitExceeded.UinLimitExceeded", RateLimited),
    e("FailedOperation.RequestLimitExceeded", RateLimited),
    // --- Refused, the request itself: wrong action/version/region/parameters. Our bug or our
    // configuration; retrying elsewhere with the same request would not help Tencent answer it.
    e("InvalidAction", Refused),
    e("ActionOffline", Refused),
    e("NoSuchProduct", Refused),
    e("NoSuchVersion", Refused),
    e("UnsupportedProtocol", Refused),
    e("UnsupportedRegion", Refused),
    e("UnsupportedOperation", Refused),
    e("DryRunOperation", Refused),
    e("InvalidParameter", Refused),
    e("InvalidParameter.UnsupportEncryptField", Refused),
    e("InvalidParameterValue", Refused),
    e("MissingParameter", Refused),
    e("UnknownParameter", Refused),
    e("InvalidRequest", Refused),
    e("RequestSizeLimitExceeded", Refused),
    e("ResourceNotFound", Refused),
];

fn lookup(table: &'static [Entry], code: &str) -> Option<&'static Entry> {
    table.iter().find(|entry| entry.code == code)
}

fn similarity(sim: Option<f64>) -> Result<Outcome, ProviderError> {
    match sim {
        Some(s) if s.is_finite() && (0.0..=100.0).contains(&s) => Ok(Outcome::FaceCompared { similarity: s as f32 }),
        Some(_) => Err(ProviderError::Protocol("Sim outside 0..=100".to_owned())),
        None => Err(ProviderError::Protocol("face comparison without Sim".to_owned())),
    }
}

fn apply(entry: &'static Entry, sim: Option<f64>) -> Result<Outcome, ProviderError> {
    match entry.meaning {
        Match => Ok(Outcome::Match),
        Compared => similarity(sim),
        Mismatch => Ok(Outcome::Mismatch),
        PhotoUnusable => Ok(Outcome::PhotoUnusable),
        CannotDecide => Ok(Outcome::CannotDecide),
        Unavailable => Err(ProviderError::Unavailable(entry.code)),
        Refused => Err(ProviderError::Refused(entry.code.to_owned())),
        // Tencent's error answers carry no retry time; the router applies its configured back-off.
        RateLimited => Err(ProviderError::RateLimited {
            code: entry.code.to_owned(),
            retry_after: None,
        }),
    }
}

fn unknown(code: &str) -> ProviderError {
    ProviderError::Protocol(format!("unknown code {}", sanitize::code(code)))
}

/// Maps `IdCardVerification`'s `Response.Result`.
pub fn id_card_result(result: &str) -> Result<Outcome, ProviderError> {
    lookup(ID_CARD_RESULTS, result)
        .ok_or_else(|| unknown(result))
        .and_then(|entry| apply(entry, None))
}

/// Maps `ImageRecognitionV2`'s `Response.Result` together with its `Sim`.
pub fn face_result(result: &str, sim: Option<f64>) -> Result<Outcome, ProviderError> {
    lookup(CODES, result)
        .ok_or_else(|| unknown(result))
        .and_then(|entry| apply(entry, sim))
}

/// Maps `Response.Error.Code` (either action). An error never carries a usable similarity, so a
/// "compared" code arriving here is a protocol error, and a success code is nonsense.
pub fn error_code(code: &str) -> Result<Outcome, ProviderError> {
    let entry = lookup(CODES, code).ok_or_else(|| unknown(code))?;
    match entry.meaning {
        Match | Compared => Err(ProviderError::Protocol(format!("{} returned as an error", entry.code))),
        _ => apply(entry, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// What each code must become, written out independently of the tables above so that a change
    /// to either one alone fails. (`Sim` for the compared codes is 50.0.)
    fn expected_face(code: &'static str) -> Option<Result<Outcome, ProviderError>> {
        let compared = Ok(Outcome::FaceCompared { similarity: 50.0 });
        let refused = |c: &str| Err(ProviderError::Refused(c.to_owned()));
        Some(match code {
            "Success" | "FailedOperation.CompareLowSimilarity" | "InternalError.CompareLowSimilarity" => compared,
            "FailedOperation.IdNameMisMatch" | "FailedOperation.IdFormatError" => Ok(Outcome::Mismatch),
            "FailedOperation.IdNoExistSystem"
            | "FailedOperation.IdPhotoNoExist"
            | "FailedOperation.IdPhotoSystemNoanswer"
            | "FailedOperation.IdPhotoPoorQuality"
            | "FailedOperation.CompareLibServiceUnavailable"
            | "FailedOperation.IdentityAuthLimitExceeded"
            | "FailedOperation.NameFormatError" => Ok(Outcome::CannotDecide),
            "FailedOperation.LifePhotoDetectFaces"
            | "FailedOperation.LifePhotoDetectNoFaces"
            | "FailedOperation.LifePhotoPoorQuality"
            | "FailedOperation.LifePhotoSizeError"
            | "FailedOperation.LifePhotoDetectFake"
            | "FailedOperation.ImageBlur"
            | "FailedOperation.ImageDecodeFailed"
            | "FailedOperation.ImageSizeTooLarge"
            | "FailedOperation.EmptyImageError"
            | "FailedOperation.CoveredFace"
            | "FailedOperation.IncompleteFace"
            | "FailedOperation.PoorImageQuality"
            | "InternalError.LifePhotoPoorQuality"
            | "InternalError.LifePhotoSizeError" => Ok(Outcome::PhotoUnusable),
            "FailedOperation.CompareSystemError"
            | "FailedOperation.CompareFail"
            | "FailedOperation.DecryptSystemError"
            | "FailedOperation.EncryptSystemError"
            | "FailedOperation.UnKnown"
            | "FailedOperation.DbError"
            | "FailedOperation"
            | "InternalError"
            | "InternalError.UnKnown"
            | "InternalError.EncryptSystemError"
            | "ServiceUnavailable"
            | "ResourceUnavailable"
            | "ResourceInsufficient"
            | "ResourceInUse"
            | "ResponseSizeLimitExceeded" => Err(ProviderError::Unavailable(code)),
            c if c.starts_with("RequestLimitExceeded")
                || matches!(c, "LimitExceeded" | "FailedOperation.RequestLimitExceeded") =>
            {
                Err(ProviderError::RateLimited {
                    code: c.to_owned(),
                    retry_after: None,
                })
            }
            c if c.starts_with("AuthFailure.")
                || c.starts_with("UnauthorizedOperation")
                || c.starts_with("InvalidParameter")
                || matches!(
                    c,
                    "FailedOperation.StsUnAuthErrError"
                        | "OperationDenied"
                        | "IpInBlacklist"
                        | "IpNotInWhitelist"
                        | "InvalidAction"
                        | "ActionOffline"
                        | "NoSuchProduct"
                        | "NoSuchVersion"
                        | "UnsupportedProtocol"
                        | "UnsupportedRegion"
                        | "UnsupportedOperation"
                        | "DryRunOperation"
                        | "MissingParameter"
                        | "UnknownParameter"
                        | "InvalidRequest"
                        | "RequestSizeLimitExceeded"
                        | "ResourceNotFound"
                ) =>
            {
                refused(c)
            }
            _ => return None,
        })
    }

    #[test]
    fn every_face_and_error_code_maps_as_documented() {
        let mut seen = HashSet::new();
        for entry in CODES {
            assert!(seen.insert(entry.code), "duplicate {}", entry.code);
            let expected =
                expected_face(entry.code).unwrap_or_else(|| panic!("no expectation written for {}", entry.code));
            assert_eq!(face_result(entry.code, Some(50.0)), expected, "{}", entry.code);
            // The same code as Response.Error.Code: identical, except that a comparison code cannot
            // be an error.
            let as_error = error_code(entry.code);
            match entry.meaning {
                Match | Compared => {
                    assert!(matches!(as_error, Err(ProviderError::Protocol(_))), "{}", entry.code)
                }
                _ => assert_eq!(as_error, expected, "{}", entry.code),
            }
        }
        // Spot-check the brief's fixed points, so the table cannot drift from the product rules.
        assert_eq!(
            error_code("AuthFailure.SignatureFailure"),
            Err(ProviderError::Refused("AuthFailure.SignatureFailure".into()))
        );
        assert_eq!(
            error_code("InternalError"),
            Err(ProviderError::Unavailable("InternalError"))
        );
        assert_eq!(
            face_result("FailedOperation.CompareSystemError", Some(0.0)),
            Err(ProviderError::Unavailable("FailedOperation.CompareSystemError"))
        );
    }

    #[test]
    fn every_id_card_result_maps_as_documented() {
        let expected = [
            ("0", Outcome::Match),
            ("-1", Outcome::Mismatch),
            ("-2", Outcome::Mismatch),
            ("-3", Outcome::CannotDecide),
            ("-5", Outcome::CannotDecide),
            ("-7", Outcome::CannotDecide),
        ];
        assert_eq!(id_card_result("-4"), Err(ProviderError::Unavailable("-4")));
        assert_eq!(id_card_result("-6"), Err(ProviderError::Unavailable("-6")));
        assert_eq!(ID_CARD_RESULTS.len(), expected.len() + 2);
        for (code, outcome) in expected {
            assert_eq!(id_card_result(code), Ok(outcome), "{code}");
        }
        // IdCardVerification results are only meaningful there; "Success" is not one of them.
        for code in ["1", "-8", "", "Success", " 0", "0 "] {
            assert!(
                matches!(id_card_result(code), Err(ProviderError::Protocol(_))),
                "{code:?}"
            );
        }
    }

    #[test]
    fn unknown_codes_are_protocol_errors_never_outcomes() {
        for code in [
            "FailedOperation.SomethingNew",
            "success",
            "SUCCESS",
            "AuthFailure",
            "0",
            "",
        ] {
            assert!(
                matches!(face_result(code, Some(99.0)), Err(ProviderError::Protocol(_))),
                "{code:?}"
            );
            assert!(matches!(error_code(code), Err(ProviderError::Protocol(_))), "{code:?}");
        }
    }

    #[test]
    fn a_comparison_needs_a_valid_similarity() {
        for sim in [None, Some(-0.1), Some(100.01), Some(f64::NAN), Some(f64::INFINITY)] {
            assert!(
                matches!(face_result("Success", sim), Err(ProviderError::Protocol(_))),
                "{sim:?}"
            );
        }
        assert_eq!(
            face_result("Success", Some(100.0)),
            Ok(Outcome::FaceCompared { similarity: 100.0 })
        );
        assert_eq!(
            face_result("FailedOperation.CompareLowSimilarity", Some(0.0)),
            Ok(Outcome::FaceCompared { similarity: 0.0 })
        );
        // A non-comparison code ignores whatever Sim came with it.
        assert_eq!(
            face_result("FailedOperation.IdNameMisMatch", Some(99.0)),
            Ok(Outcome::Mismatch)
        );
    }

    #[test]
    fn an_unknown_code_that_looks_personal_is_redacted_in_the_error() {
        let err = face_result("110105194912310021", Some(1.0));
        assert_eq!(err, Err(ProviderError::Protocol("unknown code <redacted>".into())));
    }
}
