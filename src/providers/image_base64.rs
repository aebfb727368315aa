//! Images in vendor bodies: standard base64 (RFC 4648, with padding), SIMD-accelerated.
//!
//! A 200 KB face is about 270 KB of base64, encoded once per provider call and decoded once again by
//! the simulator, which checks it like the vendor: with the scalar `base64` crate that was about an
//! eighth of an ANCHOR `Verify`'s CPU (docs/performance.md). Output is byte for byte the `base64`
//! crate's `STANDARD` engine's (tests compare). Small values (signatures, keys) keep `base64`.
//!
//! Never logs, and its errors say nothing about the bytes.

/// Appends the base64 of `image` to `out` (reserving the space, writing no zeroes first).
pub fn encode_into(out: &mut Vec<u8>, image: &[u8]) {
    base64_simd::STANDARD.encode_append(image, out);
}

/// Writes the base64 of `image` into the start of `out` and returns it; `None` (nothing written) when
/// `out` is shorter than [`encoded_len`] of it.
pub fn encode_to_slice<'o>(image: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    use base64_simd::AsOut as _;
    let out = out.get_mut(..encoded_len(image.len()))?;
    Some(base64_simd::STANDARD.encode(image, out.as_out()))
}

/// Bytes of base64 for `len` bytes of image.
pub const fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// The image in `text`; `None` for anything that is not canonical standard base64 with padding.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    base64_simd::STANDARD.decode_to_vec(text).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use base64::Engine as _;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 131 % 251) as u8).collect()
    }

    /// Every length around the SIMD block sizes and every padding length: the same text as the
    /// `base64` crate, and back again.
    #[test]
    fn agrees_with_the_base64_crate_both_ways() {
        for n in (0..200).chain([1023, 1024, 1025, 4095, 4096, 4097, 204_800, 204_801, 204_802]) {
            let image = bytes(n);
            let expected = base64::engine::general_purpose::STANDARD.encode(&image);
            let mut out = b"prefix".to_vec();
            encode_into(&mut out, &image);
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(&out[6..], expected.as_bytes(), "length {n}");
            assert_eq!(encoded_len(n), expected.len());
            let mut slice = vec![0u8; expected.len() + 3];
            assert_eq!(encode_to_slice(&image, &mut slice), Some(expected.as_bytes()));
            if n > 0 {
                assert_eq!(encode_to_slice(&image, &mut slice[..expected.len() - 1]), None);
            }
            assert_eq!(decode(expected.as_bytes()).as_deref(), Some(&image[..]), "length {n}");
        }
    }

    /// What the `base64` crate refuses, this refuses too: other alphabets, missing or stray padding,
    /// whitespace, and non-zero bits after the last character.
    #[test]
    fn refuses_what_is_not_standard_base64() {
        for bad in [
            &b"ab-_"[..],
            b"abc",
            b"ab=c",
            b"ab c",
            b"abcd\n",
            b"ab==ab==",
            b"abc=\x00",
            b"\xff\xfe\xfd\xfc",
            b"QR==",
            b"QUJ=",
        ] {
            assert!(
                base64::engine::general_purpose::STANDARD.decode(bad).is_err(),
                "the base64 crate refuses {bad:?}"
            );
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
