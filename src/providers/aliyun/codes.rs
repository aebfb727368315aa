//! Every documented Alibaba Cloud ID Verification answer code, and what it means for idgate, in one
//! table ([`TABLE`]).
//!
//! Codes come from three places: the top-level `Code` (the API's own codes, `"200"` = the call
//! worked; the OpenAPI gateway's codes such as `SignatureDoesNotMatch` or `Throttling.User`, which
//! apply to every action), `ResultObject.BizCode` of `Id2MetaVerify`, and `ResultObject.Passed` +
//! `ResultObject.SubCode` of `ContrastFaceVerify`. The same numeric `Code` can mean different
//! things per action (`402` is "authority source down" for `Id2MetaVerify` but "application
//! configuration missing" for the face check), so rows are keyed by action.
//!
//! Sources:
//! - `Id2MetaVerify` request, response and `Code` list:
//!   <https://help.aliyun.com/zh/id-verification/information-verification/developer-reference/vatsl9lfmbwe74iv>
//! - `ContrastFaceVerify` request and response:
//!   <https://help.aliyun.com/document_detail/163107.html>
//! - Financial-grade verification `Code` list and `ResultObject.SubCode` 200–206:
//!   <https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/error-code> and
//!   <https://help.aliyun.com/zh/id-verification/financial-grade-id-verification/code-collection>
//! - Gateway codes (`InvalidAccessKeyId.*`, `InvalidTimeStamp.*`, `SignatureNonceUsed`): the API
//!   Gateway error table (seen as a mirror of Alibaba's page, <https://help-w.com/finance/1578857855_zh.html>);
//!   `SignatureDoesNotMatch`, `Throttling`, `Throttling.User`, `Throttling.Api`, `ServiceUnavailable`
//!   and `InternalError` are the common OpenAPI codes; the exact list for cloudauth was NOT found
//!   in a page read for this table.
//!
//! Not confirmed: whether `ContrastFaceVerify` returns a similarity score (no field in its
//! documented response was found), so a passed face check is reported as [`Outcome::Match`], which
//! the decision policy sends to review for an anchor rather than guessing a score; SubCodes above
//! 206 were not found and are protocol errors.
//!
//! It must never: guess (an unknown code is [`ProviderError::Protocol`], never an outcome), or
//! handle `Message` text (it may echo input).

use crate::providers::{Outcome, ProviderError, sanitize};

pub const ACTION_ID2: &str = "Id2MetaVerify";
pub const ACTION_FACE: &str = "ContrastFaceVerify";

/// Where a code was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Top-level `Code` of either action (gateway codes).
    Gateway,
    /// Top-level `Code` of `Id2MetaVerify`.
    Id2Code,
    /// `ResultObject.BizCode` of `Id2MetaVerify`.
    BizCode,
    /// Top-level `Code` of `ContrastFaceVerify`.
    FaceCode,
    /// `ResultObject.SubCode` of `ContrastFaceVerify`.
    SubCode,
}

/// What a code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// The call worked; look at the result object.
    Ok,
    Match,
    Mismatch,
    CannotDecide,
    Unavailable,
    Refused,
    RateLimited,
}

pub struct Row {
    pub field: Field,
    pub code: &'static str,
    pub meaning: Meaning,
}

const fn r(field: Field, code: &'static str, meaning: Meaning) -> Row {
    Row { field, code, meaning }
}

use Field::{BizCode, FaceCode, Gateway, Id2Code, SubCode};
use Meaning::{CannotDecide, Match, Mismatch, Ok as CallOk, RateLimited, Refused, Unavailable};

/// The one table.
pub const TABLE: &[Row] = &[
    // --- Gateway (any action).
    r(Gateway, "SignatureDoesNotMatch", Refused),
    r(Gateway, "IncompleteSignature", Refused),
    r(Gateway, "InvalidAccessKeyId.NotFound", Refused),
    r(Gateway, "InvalidAccessKeyId.Inactive", Refused),
    r(Gateway, "InvalidTimeStamp.Format", Refused),
    r(Gateway, "InvalidTimeStamp.Expired", Refused),
    // Our nonce was seen before: our bug (or a replay); a new call needs a new nonce.
    r(Gateway, "SignatureNonceUsed", Refused),
    r(Gateway, "MissingParameter", Refused),
    r(Gateway, "InvalidParameter", Refused),
    r(Gateway, "InvalidAction.NotFound", Refused),
    r(Gateway, "InvalidVersion", Refused),
    r(Gateway, "Forbidden.RAM", Refused),
    r(Gateway, "Throttling", RateLimited),
    r(Gateway, "Throttling.User", RateLimited),
    r(Gateway, "Throttling.Api", RateLimited),
    r(Gateway, "ServiceUnavailable", Unavailable),
    r(Gateway, "InternalError", Unavailable),
    // --- Id2MetaVerify `Code`.
    r(Id2Code, "200", CallOk),
    r(Id2Code, "400", Refused), // 参数不能为空: we sent an empty parameter.
    // 参数非法 (name / ID number not to the national standard). The ID number is checked locally
    // before any call, so this is about the name: a human looks, as with Tencent's NameFormatError.
    r(Id2Code, "401", CannotDecide),
    r(Id2Code, "402", Unavailable),  // 权威源服务异常: the authority source is down.
    r(Id2Code, "403", CannotDecide), // 异常重复调⽤: too many checks of this identity.
    r(Id2Code, "410", Refused),      // 未开通服务
    r(Id2Code, "411", Refused),      // RAM无权限
    r(Id2Code, "412", Refused),      // 欠费中
    r(Id2Code, "500", Unavailable),  // 系统错误
    // --- Id2MetaVerify `ResultObject.BizCode`.
    r(BizCode, "1", Match),        // 校验一致
    r(BizCode, "2", Mismatch),     // 校验不一致
    r(BizCode, "3", CannotDecide), // 查无记录
    // --- ContrastFaceVerify `Code` (the financial-grade list).
    r(FaceCode, "200", CallOk),
    r(FaceCode, "400", Refused),      // 参数不能为空
    r(FaceCode, "401", CannotDecide), // 参数非法 (see Id2Code 401)
    r(FaceCode, "402", Refused),      // 应用配置不存在
    r(FaceCode, "404", Refused),      // 认证场景配置不存在: scene_id wrong
    r(FaceCode, "410", Refused),      // 未开通服务
    r(FaceCode, "411", Refused),      // RAM无权限
    r(FaceCode, "412", Refused),      // 欠费中
    r(FaceCode, "417", CannotDecide), // 无法使用刷脸服务: "若信息正确,建议人工审核"
    r(FaceCode, "418", CannotDecide), // 刷脸失败次数过多 (today, for this identity)
    r(FaceCode, "500", Unavailable),  // 系统错误
    // --- ContrastFaceVerify `ResultObject.SubCode` (with `Passed`).
    r(SubCode, "200", Match),        // 认证通过
    r(SubCode, "201", Mismatch),     // 姓名和身份证不一致
    r(SubCode, "202", CannotDecide), // 查询不到身份信息: "建议预留人工审核入口"
    r(SubCode, "203", CannotDecide), // 查询不到照片或照片不可用
    r(SubCode, "204", Mismatch),     // 人脸比对不一致
    r(SubCode, "205", CannotDecide), // 活体检测存在风险: "建议人工审核分层处理"
    r(SubCode, "206", CannotDecide), // 业务策略限制
];

fn lookup(field: Field, code: &str) -> Option<&'static Row> {
    TABLE.iter().find(|row| row.field == field && row.code == code)
}

fn unknown(code: &str) -> ProviderError {
    ProviderError::Protocol(format!("unknown code {}", sanitize::code(code)))
}

fn error_of(meaning: Meaning, code: &'static str) -> Result<Outcome, ProviderError> {
    match meaning {
        Meaning::Unavailable => Err(ProviderError::Unavailable(code)),
        Meaning::Refused => Err(ProviderError::Refused(code.to_owned())),
        // No documented retry time in cloudauth answers: the router's configured back-off applies.
        Meaning::RateLimited => Err(ProviderError::RateLimited {
            code: code.to_owned(),
            retry_after: None,
        }),
        Meaning::Match => Ok(Outcome::Match),
        Meaning::Mismatch => Ok(Outcome::Mismatch),
        Meaning::CannotDecide => Ok(Outcome::CannotDecide),
        Meaning::Ok => Err(ProviderError::Protocol(format!("{code} without a result"))),
    }
}

/// The top-level `Code` of `action`: `Ok(None)` means "the call worked, read the result object".
pub fn top_level(action: &str, code: &str) -> Result<Option<Outcome>, ProviderError> {
    let field = if action == ACTION_ID2 { Id2Code } else { FaceCode };
    for f in [field, Gateway] {
        if let Some(row) = lookup(f, code) {
            return match row.meaning {
                Meaning::Ok => Ok(None),
                m => error_of(m, row.code).map(Some),
            };
        }
    }
    Err(unknown(code))
}

/// `Id2MetaVerify`'s `ResultObject.BizCode`.
pub fn biz_code(code: &str) -> Result<Outcome, ProviderError> {
    match lookup(BizCode, code) {
        Some(row) => error_of(row.meaning, row.code),
        None => Err(unknown(code)),
    }
}

/// `ContrastFaceVerify`'s `ResultObject.Passed` and `SubCode`. They must agree: `T` only with
/// `200`, `F` only with a failing SubCode; anything else is a protocol error.
pub fn face_result(passed: &str, sub_code: &str) -> Result<Outcome, ProviderError> {
    let outcome = match lookup(SubCode, sub_code) {
        Some(row) => error_of(row.meaning, row.code)?,
        None => return Err(unknown(sub_code)),
    };
    match (passed, outcome) {
        ("T", Outcome::Match) => Ok(Outcome::Match),
        ("F", o) if o != Outcome::Match => Ok(o),
        _ => Err(ProviderError::Protocol("Passed disagrees with SubCode".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn no_code_is_listed_twice_for_the_same_field() {
        let mut seen = HashSet::new();
        for row in TABLE {
            assert!(seen.insert((row.field, row.code)), "{:?} {}", row.field, row.code);
        }
    }

    /// Written out independently of the table, so that a change to either alone fails.
    #[test]
    fn documented_codes_map_as_intended() {
        let refused = |c: &str| Err(ProviderError::Refused(c.to_owned()));
        let limited = |c: &str| {
            Err(ProviderError::RateLimited {
                code: c.to_owned(),
                retry_after: None,
            })
        };
        use Outcome::*;
        let id2 = |c| top_level(ACTION_ID2, c);
        let face = |c| top_level(ACTION_FACE, c);
        assert_eq!(id2("200"), Ok(None));
        assert_eq!(face("200"), Ok(None));
        assert_eq!(id2("400"), refused("400").map(Some));
        assert_eq!(id2("401"), Ok(Some(CannotDecide)));
        assert_eq!(id2("402"), Err(ProviderError::Unavailable("402")));
        assert_eq!(face("402"), refused("402").map(Some));
        assert_eq!(id2("403"), Ok(Some(CannotDecide)));
        assert_eq!(face("404"), refused("404").map(Some));
        assert_eq!(id2("404"), Err(ProviderError::Protocol("unknown code 404".into())));
        for c in ["410", "411", "412"] {
            assert_eq!(id2(c), refused(c).map(Some));
            assert_eq!(face(c), refused(c).map(Some));
        }
        assert_eq!(face("417"), Ok(Some(CannotDecide)));
        assert_eq!(face("418"), Ok(Some(CannotDecide)));
        assert_eq!(id2("500"), Err(ProviderError::Unavailable("500")));
        assert_eq!(face("500"), Err(ProviderError::Unavailable("500")));
        for c in ["Throttling", "Throttling.User", "Throttling.Api"] {
            assert_eq!(id2(c), limited(c).map(Some));
            assert_eq!(face(c), limited(c).map(Some));
        }
        for c in [
            "SignatureDoesNotMatch",
            "InvalidTimeStamp.Expired",
            "SignatureNonceUsed",
            "InvalidAccessKeyId.NotFound",
        ] {
            assert_eq!(id2(c), refused(c).map(Some));
        }
        assert_eq!(
            face("ServiceUnavailable"),
            Err(ProviderError::Unavailable("ServiceUnavailable"))
        );

        assert_eq!(biz_code("1"), Ok(Match));
        assert_eq!(biz_code("2"), Ok(Mismatch));
        assert_eq!(biz_code("3"), Ok(CannotDecide));
        assert!(matches!(biz_code("4"), Err(ProviderError::Protocol(_))));

        assert_eq!(face_result("T", "200"), Ok(Match));
        assert_eq!(face_result("F", "201"), Ok(Mismatch));
        assert_eq!(face_result("F", "202"), Ok(CannotDecide));
        assert_eq!(face_result("F", "203"), Ok(CannotDecide));
        assert_eq!(face_result("F", "204"), Ok(Mismatch));
        assert_eq!(face_result("F", "205"), Ok(CannotDecide));
        assert_eq!(face_result("F", "206"), Ok(CannotDecide));
    }

    #[test]
    fn contradictions_and_unknowns_are_protocol_errors_never_outcomes() {
        for (passed, sub) in [("T", "201"), ("F", "200"), ("X", "200"), ("T", "207"), ("F", "")] {
            assert!(
                matches!(face_result(passed, sub), Err(ProviderError::Protocol(_))),
                "{passed} {sub}"
            );
        }
        // A code that looks like it carries an ID number is redacted.
        match top_level(ACTION_ID2, "11010519491231002X") {
            Err(ProviderError::Protocol(m)) => assert!(!m.contains("110105"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
