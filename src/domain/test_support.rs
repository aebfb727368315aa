//! Builders and a tiny deterministic PRNG shared by the domain unit tests. Test-only.

use time::{Date, Month};

/// A calendar date; panics on an invalid one (tests only).
pub fn date(year: i32, month: u8, day: u8) -> Date {
    let month = Month::try_from(month).unwrap_or_else(|_| panic!("bad month {month}"));
    Date::from_calendar_date(year, month, day).unwrap_or_else(|_| panic!("bad date"))
}

/// An ID number with a correct GB 11643-1999 check character, built independently of the code
/// under test (weights computed as 2^(17-i) mod 11 rather than copied from the table).
pub fn id_number(region: &str, birth: &str, seq: &str) -> String {
    let body = format!("{region}{birth}{seq}");
    assert_eq!(body.len(), 17, "body must be 17 digits: {body}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let weight = (1u32 << (17 - i)) % 11;
            u32::from(b - b'0') * weight
        })
        .sum();
    // ISO 7064 MOD 11-2: check value c satisfies (sum + c) % 11 == 1.
    let c = (12 - (sum % 11)) % 11;
    let check = if c == 10 { 'X' } else { char::from(b'0' + c as u8) };
    format!("{body}{check}")
}

/// A PNG signature, IHDR chunk (CRC included) and IEND: enough for a header reader, not an image
/// decoder.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit truecolour, deflate, adaptive filter, no interlace
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.extend(b"IEND");
    out.extend(crc32(b"IEND").to_be_bytes());
    out
}

/// SOI, a JFIF APP0 segment, a baseline SOF0 with the given size, EOI.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xff, 0xd8];
    out.extend([0xff, 0xe0, 0x00, 0x10]);
    out.extend(b"JFIF\0");
    out.extend([0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
    out.extend([0xff, 0xc0, 0x00, 0x11, 0x08]);
    out.extend(height.to_be_bytes());
    out.extend(width.to_be_bytes());
    out.extend([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]);
    out.extend([0xff, 0xd9]);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// xorshift64: deterministic, dependency-free noise for fuzz-style tests.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

const INTERESTING: &[char] = &[
    '0', '1', '3', '8', '9', 'X', 'x', 'a', 'Z', '张', '三', '〇', '·', '•', '・', '.', ' ', '\t', '\u{3000}', '+',
    '-', '_', ':', '\0', '\u{7f}', 'é', '𠀀', '\u{200B}', '\u{FEFF}', '😀', '１',
];

/// `count` strings of up to 40 units: raw random bytes (lossy UTF-8), bytes drawn from `alphabet`,
/// and chars drawn from a list of troublemakers.
pub fn xorshift_strings(seed: u64, count: usize, alphabet: &[u8]) -> Vec<String> {
    let mut rng = XorShift::new(seed);
    (0..count)
        .map(|i| {
            let len = rng.below(41);
            match i % 3 {
                0 => {
                    let bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 if !alphabet.is_empty() => {
                    let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                _ => (0..len).map(|_| INTERESTING[rng.below(INTERESTING.len())]).collect(),
            }
        })
        .collect()
}

#[test]
fn helper_matches_published_example() {
    assert_eq!(id_number("110105", "19491231", "002"), "11010519491231002X");
}

#[test]
fn png_builder_crc_matches_known_iend() {
    // IEND's CRC is the same in every PNG.
    assert_eq!(crc32(b"IEND"), 0xae42_6082);
}
