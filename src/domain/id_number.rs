//! The resident identity card number (公民身份号码, GB 11643-1999).
//!
//! Layout, 18 ASCII characters: 6-digit region code, 8-digit birth date `YYYYMMDD`, 3-digit
//! sequence code (odd = male), 1 check character (`0`–`9` or `X`).
//!
//! This is the most sensitive value the gateway handles. The type never prints it (`Debug` is
//! redacted, there is no `Display`), never puts it in a [`Refusal`], and wipes its buffer on drop.
//! Parsing works on bytes with explicit length checks first, so no input can make it index out of
//! bounds or slice inside a multi-byte character.

use std::fmt;

use time::{Date, Month};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::refusal::{Reason, Refusal};

/// Number of characters (and bytes: all are ASCII) in an ID number.
pub const ID_NUMBER_LEN: usize = 18;

/// GB 11643-1999 weights for the first 17 digits (2^(18-i) mod 11).
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character indexed by (weighted sum mod 11).
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Earliest accepted birth date: anything older is a typo or a forgery, not an applicant.
pub const EARLIEST_BIRTH_DATE: Date = time::macros::date!(1900 - 01 - 01);

/// A checked ID number: right shape, right check digit, a real birth date between
/// [`EARLIEST_BIRTH_DATE`] and the `today` given to [`parse`](IdNumber::parse).
///
/// Wiped on drop. Deliberately not `Zeroize`: a public `zeroize()` would let a holder turn a checked
/// value into an empty one that still claims to be checked.
pub struct IdNumber {
    /// Normalized: 17 ASCII digits then a digit or upper-case `X`.
    chars: String,
    /// Also personal data, but `time::Date` has no `Zeroize`; it is a copy of digits 7–14.
    birth_date: Date,
}

impl Drop for IdNumber {
    fn drop(&mut self) {
        self.chars.zeroize();
    }
}

impl ZeroizeOnDrop for IdNumber {}

/// Sum of weighted digits mod 11 → expected check character. `digits` must be ASCII digits.
fn check_char(digits: &[u8; 17]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w)
        .sum();
    // sum % 11 < 11 == CHECK_CHARS.len(); `get` keeps the no-panic rule visible anyway.
    CHECK_CHARS.get((sum % 11) as usize).copied().unwrap_or(0)
}

/// Value of a run of ASCII digits (already checked). At most 4 digits, so no overflow.
fn decimal(digits: &[u8]) -> u16 {
    digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d.wrapping_sub(b'0')))
}

impl IdNumber {
    /// Parses and checks an ID number. A lower-case `x` check character is accepted and stored as
    /// `X`. No trimming: the field is machine-entered or OCR'd and must be exactly 18 characters.
    pub fn parse(s: &str, today: Date) -> Result<Self, Refusal> {
        if s.is_empty() {
            return Err(Refusal::new(Reason::IdNumberMissing));
        }
        let format = Refusal::new(Reason::IdNumberFormat);
        // Byte length, not char count: 18 chars with any multi-byte one is more than 18 bytes, and
        // 18 bytes with a non-ASCII char fails the digit checks below.
        let bytes: &[u8; ID_NUMBER_LEN] = s.as_bytes().try_into().map_err(|_| format)?;
        let (body, check) = bytes.split_at(17);
        let body: &[u8; 17] = body.try_into().map_err(|_| format)?;
        let &[check] = check else {
            return Err(format);
        };
        if !body.iter().all(u8::is_ascii_digit) {
            return Err(format);
        }
        // Region codes start with 1–8 (GB/T 2260). 0 and 9 are never issued to citizens.
        if !matches!(body[0], b'1'..=b'8') {
            return Err(format);
        }
        let check = match check {
            b'0'..=b'9' | b'X' => check,
            b'x' => b'X',
            _ => return Err(format),
        };
        if check_char(body) != check {
            return Err(Refusal::new(Reason::IdNumberChecksum));
        }

        let birth_date = Self::read_birth_date(body)
            .filter(|d| *d >= EARLIEST_BIRTH_DATE && *d <= today)
            .ok_or(Refusal::new(Reason::IdNumberBirthDate))?;

        let mut chars = String::with_capacity(ID_NUMBER_LEN);
        for &b in body {
            chars.push(char::from(b));
        }
        chars.push(char::from(check));
        Ok(IdNumber { chars, birth_date })
    }

    /// Digits 7–14 as a calendar date, if they form one.
    fn read_birth_date(body: &[u8; 17]) -> Option<Date> {
        let year = decimal(body.get(6..10)?);
        let month = decimal(body.get(10..12)?);
        let day = decimal(body.get(12..14)?);
        let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
        Date::from_calendar_date(i32::from(year), month, u8::try_from(day).ok()?).ok()
    }

    /// The normalized number (upper-case `X`). Handle with care: this is the raw PII.
    pub fn as_str(&self) -> &str {
        &self.chars
    }

    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// Characters 15–17 (the sequence code) as a number, 0–999.
    pub fn sequence_code(&self) -> u16 {
        self.chars.as_bytes().get(14..17).map_or(0, decimal)
    }

    /// Whole years completed on `today`: the age goes up on the birthday itself. Someone born on
    /// 29 February turns a year older on 1 March in common years (because (3,1) > (2,29) and
    /// (2,28) < (2,29)). Returns 0 if `today` is before the birth date.
    pub fn age_on(&self, today: Date) -> u32 {
        let born = self.birth_date;
        if today < born {
            return 0;
        }
        let mut years = today.year() - born.year();
        if (today.month() as u8, today.day()) < (born.month() as u8, born.day()) {
            years -= 1;
        }
        u32::try_from(years).unwrap_or(0)
    }

    /// The 17th digit is odd for men and even for women.
    pub fn is_male(&self) -> bool {
        self.chars
            .as_bytes()
            .get(16)
            .is_some_and(|d| d.wrapping_sub(b'0') % 2 == 1)
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdNumber(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{date, id_number, xorshift_strings};

    fn today() -> Date {
        date(2026, 5, 20)
    }

    fn parse(s: &str) -> Result<IdNumber, Refusal> {
        IdNumber::parse(s, today())
    }

    fn reason(s: &str) -> Option<Reason> {
        parse(s).err().map(|r| r.reason())
    }

    fn ok(s: &str) -> IdNumber {
        parse(s).unwrap_or_else(|e| panic!("refused: {}", e.code()))
    }

    #[test]
    fn classic_example_and_helper_agree() {
        assert_eq!(id_number("110105", "19491231", "002"), "11010519491231002X");
        let id = ok("11010519491231002X");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.sequence_code(), 2);
        assert!(!id.is_male());
    }

    #[test]
    fn check_digit_every_value() {
        // Vary the sequence code so every check character 0-9 and X is produced and accepted.
        let mut seen = std::collections::BTreeSet::new();
        for seq in 0..200u16 {
            let s = id_number("310104", "19900715", &format!("{seq:03}"));
            seen.insert(s.as_bytes()[17]);
            let id = ok(&s);
            assert_eq!(id.sequence_code(), seq);
            assert_eq!(id.is_male(), seq % 2 == 1);
        }
        assert_eq!(seen.len(), 11);
    }

    #[test]
    fn lower_case_x_normalized() {
        let id = ok("11010519491231002x");
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn wrong_check_digit() {
        assert_eq!(reason("110105194912310021"), Some(Reason::IdNumberChecksum));
        assert_eq!(reason("110105194912310020"), Some(Reason::IdNumberChecksum));
        // Single transposition is caught.
        assert_eq!(reason("11010519491213002X"), Some(Reason::IdNumberChecksum));
    }

    #[test]
    fn missing() {
        assert_eq!(reason(""), Some(Reason::IdNumberMissing));
    }

    #[test]
    fn format() {
        for s in [
            " ",
            "11010519491231002",
            "11010519491231002X ",
            " 11010519491231002X",
            "11010519491231002XX",
            "1101051949123100 2X",
            "11010519491231002Y",
            "X10105194912310021",
            "110105194912310O2X",                   // letter O
            "１１０１０５１９４９１２３１００２Ｘ", // full-width digits
            "11010519491231002×",                   // multiplication sign, 2 bytes
            "1101051949123100é",                    // 18 bytes, 17 chars
            "11010519491231002\u{0}",
            "+1010519491231002X",
            "-1010519491231002X",
        ] {
            assert_eq!(reason(s), Some(Reason::IdNumberFormat), "{s:?}");
        }
    }

    #[test]
    fn region_first_digit() {
        for first in ['0', '9'] {
            let s = id_number(&format!("{first}10105"), "19491231", "002");
            assert_eq!(reason(&s), Some(Reason::IdNumberFormat), "{s}");
        }
        for first in '1'..='8' {
            ok(&id_number(&format!("{first}10105"), "19491231", "002"));
        }
    }

    #[test]
    fn birth_dates() {
        ok(&id_number("110105", "20000229", "123"));
        ok(&id_number("110105", "19000101", "123"));
        ok(&id_number("110105", "20260520", "123")); // born today
        for bad in [
            "19000229", // 1900 is not a leap year
            "20010229", "18991231", "00000101", "20261301", "20260001", "20260100", "20260431",
            "20260521", // tomorrow
            "99991231",
        ] {
            let s = id_number("110105", bad, "123");
            assert_eq!(reason(&s), Some(Reason::IdNumberBirthDate), "{bad}");
        }
    }

    #[test]
    fn age_boundaries() {
        let id = ok(&id_number("110105", "20081129", "123"));
        assert_eq!(id.age_on(date(2026, 11, 29)), 18);
        assert_eq!(id.age_on(date(2026, 11, 28)), 17);
        assert_eq!(id.age_on(date(2008, 11, 29)), 0);
        assert_eq!(id.age_on(date(2000, 1, 1)), 0);
        assert_eq!(id.age_on(date(2009, 11, 29)), 1);
    }

    #[test]
    fn leap_day_birthday_ages_on_march_first() {
        let id = ok(&id_number("110105", "20000229", "123"));
        // 2018 is a common year.
        assert_eq!(id.age_on(date(2018, 2, 28)), 17);
        assert_eq!(id.age_on(date(2018, 3, 1)), 18);
        // 2028 is a leap year.
        assert_eq!(id.age_on(date(2028, 2, 28)), 27);
        assert_eq!(id.age_on(date(2028, 2, 29)), 28);
    }

    #[test]
    fn debug_is_redacted() {
        let id = ok("11010519491231002X");
        let dbg = format!("{id:?} {id:#?}");
        assert!(!dbg.contains("110105"), "{dbg}");
        assert!(!dbg.contains("1949"), "{dbg}");
        assert_eq!(format!("{id:?}"), "IdNumber(***)");
    }

    #[test]
    fn fuzz_no_panic() {
        for s in xorshift_strings(0x1d_5eed, 4000, b"0123456789xX \xc3\xa9") {
            let _ = parse(&s);
        }
        // Near-misses of a valid number: every single-byte substitution.
        let base = *b"11010519491231002X";
        for i in 0..base.len() {
            for b in 0u8..=127 {
                let mut m = base;
                m[i] = b;
                if let Ok(s) = std::str::from_utf8(&m) {
                    let _ = parse(s);
                }
            }
        }
    }
}
