//! The operating system's randomness, as the single source of nonces, keys and ids.

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the OS CSPRNG.
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|_| RandomError)
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}

/// A random identifier: `prefix` followed by 26 lower-case base32 characters (128 bits).
pub fn id(prefix: &str) -> Result<String, RandomError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let raw: [u8; 16] = bytes()?;
    let mut acc: u128 = u128::from_be_bytes(raw);
    let mut out = String::with_capacity(prefix.len() + 26);
    out.push_str(prefix);
    // 26 * 5 = 130 bits: the top two bits of the first character are always zero, which is fine.
    let mut chars = [0u8; 26];
    for slot in chars.iter_mut().rev() {
        *slot = ALPHABET[(acc & 31) as usize];
        acc >>= 5;
    }
    out.extend(chars.iter().map(|&c| c as char));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_have_the_documented_shape_and_differ() {
        let a = super::id("vf_").unwrap();
        let b = super::id("vf_").unwrap();
        assert_eq!(a.len(), 29);
        assert!(a.starts_with("vf_"));
        assert!(
            a[3..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
        );
        assert_ne!(a, b);
        // What the transport parses a verification id from the wire into.
        assert!(crate::domain::VerificationId::parse(&a).is_some());
    }
}
