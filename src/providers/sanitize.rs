//! What an adapter may repeat of a vendor's answer: an answer code and a request id, each made safe
//! for an error or a log line. Shared by every adapter.
//!
//! Must never: let through text that may carry personal data (a run of digits shaped like an ID or
//! phone number, anything but short ASCII identifiers).

/// Makes a provider-supplied code safe to put into an error or a log line.
///
/// Codes are short ASCII identifiers. Anything else, or anything with a run of six or more digits
/// (an ID number, a phone number), is replaced: a misbehaving provider must not be able to route
/// personal data into our logs through the code field.
pub fn code(code: &str) -> String {
    let shape_ok = !code.is_empty()
        && code.len() <= 80
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if shape_ok && longest_digit_run(code) < 6 {
        code.to_owned()
    } else {
        "<redacted>".to_owned()
    }
}

/// A vendor request id fit for a log line: short, letters, digits and '-' only, and no run of 11 or
/// more digits (the shape of a phone or an ID number; vendors' ids are UUIDs); else nothing.
pub(crate) fn request_id(id: &str) -> Option<String> {
    (!id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && longest_digit_run(id) < 11)
        .then(|| id.to_owned())
}

fn longest_digit_run(text: &str) -> usize {
    text.split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_codes_and_redacts_anything_personal() {
        assert_eq!(code("FailedOperation.New_Code-2"), "FailedOperation.New_Code-2");
        assert_eq!(code("-7"), "-7");
        for bad in [
            "110105194912310021",
            "code 11010519491231002X",
            "张三",
            "FailedOperation.张三",
            "13800138000",
            "a b",
            "",
            &"x".repeat(81),
        ] {
            assert_eq!(code(bad), "<redacted>", "{bad:?}");
        }
    }
}
