//! The applicant's name as printed on the resident identity card.
//!
//! The card's name field is written in Chinese characters; names of ethnic minorities transcribed
//! into Chinese separate their parts with a middle dot (`阿卜杜拉·买买提`). So a name here is CJK
//! ideographs, optionally separated by single U+00B7 middle dots. Latin letters, digits, kana,
//! hangul, punctuation and symbols are refused: a name containing them cannot match the card, and
//! passing it upstream would only waste a paid verification call.
//!
//! Length is 1–30 characters after normalization. One character is allowed because household
//! registration rules permit single-character names for some ethnic minorities whose customs call
//! for them (the general rule is "at least two characters"); the upstream check against the
//! national database is what decides if the name is real, and refusing a real citizen's name here
//! would lock them out with no recourse.
//!
//! The type never prints the name (redacted `Debug`, no `Display`), never puts it in a refusal,
//! and wipes it on drop.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::refusal::{Reason, Refusal};

/// Shortest accepted name, in characters (see the module docs for why 1).
pub const MIN_NAME_CHARS: usize = 1;
/// Longest accepted name, in characters: room for long transcribed minority names.
pub const MAX_NAME_CHARS: usize = 30;

/// The separator in transcribed minority names, as the ID card prints it.
pub const NAME_SEPARATOR: char = '\u{00B7}';

/// A checked, normalized name. Wiped on drop; deliberately not `Zeroize` so that a holder cannot
/// empty a checked value.
pub struct Name(String);

impl Drop for Name {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Name {}

/// Ideographs that may appear on an ID card: the URO and Extensions A–F, the compatibility
/// ideographs (kept as typed, not NFC-folded, because the registry stores whichever code point its
/// font used), and U+3007 `〇`, which the 2013 通用规范汉字表 lists as a character and which does
/// appear in registered names. Extension G and later are left out: they are historic forms outside
/// the national name character set.
fn is_name_ideograph(c: char) -> bool {
    matches!(c,
        '\u{3007}'
        | '\u{3400}'..='\u{4DBF}'   // Extension A
        | '\u{4E00}'..='\u{9FFF}'   // URO
        | '\u{F900}'..='\u{FA6D}'   // Compatibility Ideographs
        | '\u{FA70}'..='\u{FAD9}'
        | '\u{20000}'..='\u{2A6DF}' // Extension B
        | '\u{2A700}'..='\u{2B73F}' // Extension C
        | '\u{2B740}'..='\u{2B81F}' // Extension D
        | '\u{2B820}'..='\u{2CEAF}' // Extension E
        | '\u{2CEB0}'..='\u{2EBEF}' // Extension F
        | '\u{2F800}'..='\u{2FA1F}' // Compatibility Ideographs Supplement
    )
}

/// Dots that phones and IMEs produce where the card has U+00B7. Only middle-height dots: a full
/// stop (`.`, `．`, `。`) is a different character and is refused rather than guessed at.
fn is_separator_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{00B7}' // MIDDLE DOT itself
            | '\u{0387}' // GREEK ANO TELEIA (canonically equivalent to U+00B7)
            | '\u{2022}' // BULLET
            | '\u{2027}' // HYPHENATION POINT
            | '\u{2219}' // BULLET OPERATOR
            | '\u{22C5}' // DOT OPERATOR
            | '\u{2E31}' // WORD SEPARATOR MIDDLE DOT
            | '\u{30FB}' // KATAKANA MIDDLE DOT
            | '\u{FF65}' // HALFWIDTH KATAKANA MIDDLE DOT
    )
}

impl Name {
    /// Trims surrounding whitespace (including the ideographic space U+3000), maps look-alike dots
    /// to U+00B7 and checks the result. Empty or all-whitespace is `NameMissing`; anything else
    /// wrong is `NameInvalid`.
    pub fn parse(s: &str) -> Result<Self, Refusal> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Refusal::new(Reason::NameMissing));
        }
        let invalid = Refusal::new(Reason::NameInvalid);
        // Every char is at most 4 bytes, so more bytes than this means more than
        // MAX_NAME_CHARS chars: refuse before allocating anything sized by the input.
        if s.len() > MAX_NAME_CHARS * 4 {
            return Err(invalid);
        }
        // Zeroizing: a refused half-built name must not be left in freed memory either. Capacity
        // is enough for the whole result (normalizing only shrinks a char), so the buffer never
        // reallocates and leaves a stale copy behind.
        let mut out = Zeroizing::new(String::with_capacity(s.len()));
        let mut count = 0usize;
        let mut prev_was_dot = true; // a dot at the very start is refused by the same rule
        for c in s.chars() {
            count += 1;
            if count > MAX_NAME_CHARS {
                return Err(invalid);
            }
            if is_separator_lookalike(c) {
                if prev_was_dot {
                    return Err(invalid);
                }
                prev_was_dot = true;
                out.push(NAME_SEPARATOR);
            } else if is_name_ideograph(c) {
                prev_was_dot = false;
                out.push(c);
            } else {
                // Interior whitespace, controls, Latin, digits, emoji, variation selectors, ...
                return Err(invalid);
            }
        }
        if prev_was_dot || count < MIN_NAME_CHARS {
            return Err(invalid);
        }
        Ok(Name(std::mem::take(&mut *out)))
    }

    /// The normalized name. Handle with care: this is the raw PII.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Name(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::xorshift_strings;

    fn ok(s: &str) -> String {
        match Name::parse(s) {
            Ok(n) => n.as_str().to_owned(),
            Err(e) => panic!("refused {s:?}: {}", e.code()),
        }
    }

    fn reason(s: &str) -> Option<Reason> {
        Name::parse(s).err().map(|r| r.reason())
    }

    #[test]
    fn accepts_han_names() {
        for s in ["张三", "王小明", "欧阳娜娜", "李", "林〇", "㐀丂", "𠀀𪚥", "司马相如"] {
            assert_eq!(ok(s), s);
        }
        assert_eq!(ok(&"王".repeat(30)), "王".repeat(30));
    }

    #[test]
    fn compatibility_ideographs_kept_as_is() {
        assert_eq!(ok("金\u{F900}"), "金\u{F900}");
        assert_eq!(ok("\u{2F800}明"), "\u{2F800}明");
    }

    #[test]
    fn minority_names_and_dot_normalization() {
        assert_eq!(ok("阿卜杜拉·买买提"), "阿卜杜拉·买买提");
        for dot in [
            '\u{0387}', '\u{2022}', '\u{2027}', '\u{2219}', '\u{22C5}', '\u{2E31}', '\u{30FB}', '\u{FF65}',
        ] {
            assert_eq!(ok(&format!("阿卜杜拉{dot}买买提")), "阿卜杜拉·买买提", "{dot:?}");
        }
        assert_eq!(ok("爱新觉罗·玄烨·甲"), "爱新觉罗·玄烨·甲");
    }

    #[test]
    fn trims_surrounding_whitespace() {
        assert_eq!(ok("  张三\t"), "张三");
        assert_eq!(ok("\u{3000}张三\u{3000}"), "张三");
        assert_eq!(ok("\n张三\r\n"), "张三");
    }

    #[test]
    fn missing() {
        for s in ["", " ", "\u{3000}", "\t\n"] {
            assert_eq!(reason(s), Some(Reason::NameMissing), "{s:?}");
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "张 三",
            "张\u{3000}三",
            "张\t三",
            "·张三",
            "张三·",
            "张··三",
            "张·•三",
            "·",
            "张.三",
            "张．三",
            "张。三",
            "Zhang San",
            "张三a",
            "张3",
            "张\u{0}三",
            "张\u{7}三",
            "张\u{200B}三",
            "张\u{200D}三",
            "葛\u{E0100}",
            "さくら",
            "김민준",
            "张三😀",
            "张-三",
            "张_三",
            "张\u{FF0E}三",
            "\u{30000}",
        ] {
            assert_eq!(reason(s), Some(Reason::NameInvalid), "{s:?}");
        }
    }

    #[test]
    fn length_limits() {
        assert_eq!(reason(&"王".repeat(31)), Some(Reason::NameInvalid));
        assert_eq!(reason(&"𠀀".repeat(31)), Some(Reason::NameInvalid));
        assert_eq!(reason(&"王".repeat(10_000)), Some(Reason::NameInvalid));
        assert_eq!(ok(&"𠀀".repeat(30)), "𠀀".repeat(30));
        // 29 chars + dot + 1 char = 31: too long.
        let s = format!("{}·王", "王".repeat(29));
        assert_eq!(reason(&s), Some(Reason::NameInvalid));
    }

    #[test]
    fn debug_is_redacted() {
        let n = Name::parse("阿卜杜拉·买买提").unwrap_or_else(|e| panic!("{}", e.code()));
        let dbg = format!("{n:?} {n:#?}");
        assert_eq!(format!("{n:?}"), "Name(***)");
        assert!(!dbg.contains("阿"));
    }

    #[test]
    fn fuzz_no_panic() {
        for s in xorshift_strings(0x4e_4d45, 4000, "张三·•・ \u{3000}a1".as_bytes()) {
            if let Ok(n) = Name::parse(&s) {
                let n = n.as_str();
                assert!(!n.is_empty() && n.chars().count() <= MAX_NAME_CHARS);
                assert!(!n.starts_with(NAME_SEPARATOR) && !n.ends_with(NAME_SEPARATOR));
            }
        }
    }
}
