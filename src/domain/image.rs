//! Photos supplied with an application: the live face image and optional ID card / hand-held
//! photos.
//!
//! The format is decided from the bytes (magic numbers), never from a client-supplied name or MIME
//! type, and the header is read to get real dimensions so that a payload that merely starts with
//! the right magic is refused before it is forwarded to the upstream verifier. Nothing here decodes
//! pixels: only the headers are read, with `imagesize` over an in-memory slice.
//!
//! A face image is biometric data. The bytes are wiped on drop (also when refused), and `Debug`
//! shows only kind, dimensions and byte length.

use std::fmt;

use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::refusal::{Reason, Refusal};

/// Largest accepted image, in bytes (4 MiB): ample for a phone photo at verification quality,
/// and what the upstream verifier accepts.
pub const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// Smallest accepted side, in pixels: below this a face or a card cannot be read.
pub const MIN_IMAGE_SIDE: u32 = 64;
/// Largest accepted side, in pixels: bigger than any phone camera produces; larger claims are
/// decompression-bomb shaped.
pub const MAX_IMAGE_SIDE: u32 = 8192;

const PNG_SIGNATURE: &[u8; 8] = b"\x89PNG\r\n\x1a\n";
/// A PNG's first chunk must be IHDR with a 13-byte body (PNG spec §5.6, §11.2.2).
const PNG_IHDR_HEADER: &[u8; 8] = b"\x00\x00\x00\x0dIHDR";
/// SOI marker followed by the first byte of the next marker.
const JPEG_MAGIC: &[u8; 3] = b"\xff\xd8\xff";

/// An accepted image container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Jpeg,
    Png,
}

impl ImageKind {
    /// Sniff the container from its leading bytes.
    fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(JPEG_MAGIC) {
            Some(ImageKind::Jpeg)
        } else if bytes.starts_with(PNG_SIGNATURE) {
            Some(ImageKind::Png)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "jpeg",
            ImageKind::Png => "png",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
        }
    }
}

/// A checked image: JPEG or PNG by content, at most [`MAX_IMAGE_BYTES`], each side within
/// [`MIN_IMAGE_SIDE`]..=[`MAX_IMAGE_SIDE`]. Wiped on drop.
pub struct Image {
    kind: ImageKind,
    width: u32,
    height: u32,
    bytes: Zeroizing<Vec<u8>>,
}

impl ZeroizeOnDrop for Image {}

impl Image {
    /// Checks `bytes` as the image for `field` (a field *name* such as `"face_image"`, reported in
    /// the refusal). Takes ownership so that the bytes are wiped whatever the outcome.
    ///
    /// Empty bytes mean "absent" to the caller ([`Applicant`](super::Applicant) never calls this
    /// with them); here they are simply not an image: `ImageFormat`.
    pub fn parse(field: &'static str, bytes: Vec<u8>) -> Result<Self, Refusal> {
        let bytes = Zeroizing::new(bytes);
        let refuse = |reason| Refusal::with_field(reason, field);

        // Size first: cheapest, and bounds all later work.
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(refuse(Reason::ImageTooLarge));
        }
        let kind = ImageKind::sniff(&bytes).ok_or(refuse(Reason::ImageFormat))?;
        if kind == ImageKind::Png && bytes.get(8..16) != Some(PNG_IHDR_HEADER.as_slice()) {
            // imagesize only checks `\x89PNG` and reads offset 16 blindly; insist on a real IHDR.
            return Err(refuse(Reason::ImageMalformed));
        }
        // Cross-check imagesize's own sniffing so both agree on what is being measured.
        let agreed = matches!(
            (kind, imagesize::image_type(&bytes)),
            (ImageKind::Jpeg, Ok(imagesize::ImageType::Jpeg)) | (ImageKind::Png, Ok(imagesize::ImageType::Png))
        );
        if !agreed {
            return Err(refuse(Reason::ImageMalformed));
        }
        let size = imagesize::blob_size(&bytes).map_err(|_| refuse(Reason::ImageMalformed))?;
        let side_ok = |v: usize| {
            u32::try_from(v)
                .ok()
                .filter(|v| (MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE).contains(v))
        };
        let (Some(width), Some(height)) = (side_ok(size.width), side_ok(size.height)) else {
            return Err(refuse(Reason::ImageDimensions));
        };
        Ok(Image {
            kind,
            width,
            height,
            bytes,
        })
    }

    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The image bytes exactly as received. Handle with care: biometric data.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("kind", &self.kind)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("len", &self.bytes.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::test_support::{XorShift, jpeg, png};

    fn reason(bytes: Vec<u8>) -> Option<Reason> {
        Image::parse("face_image", bytes).err().map(|r| {
            assert_eq!(r.field(), Some("face_image"));
            r.reason()
        })
    }

    fn ok(bytes: Vec<u8>) -> Image {
        Image::parse("face_image", bytes).unwrap_or_else(|e| panic!("{}", e.code()))
    }

    #[test]
    fn png_64() {
        let bytes = png(64, 64);
        let len = bytes.len();
        let img = ok(bytes.clone());
        assert_eq!(img.kind(), ImageKind::Png);
        assert_eq!((img.width(), img.height()), (64, 64));
        assert_eq!(img.as_bytes(), bytes.as_slice());
        assert_eq!(
            format!("{img:?}"),
            format!("Image {{ kind: Png, width: 64, height: 64, len: {len} }}")
        );
    }

    #[test]
    fn jpeg_sof0() {
        let img = ok(jpeg(640, 480));
        assert_eq!(img.kind(), ImageKind::Jpeg);
        assert_eq!((img.width(), img.height()), (640, 480));
        assert_eq!(img.kind().mime_type(), "image/jpeg");
    }

    #[test]
    fn bounds_inclusive() {
        ok(png(MIN_IMAGE_SIDE, MAX_IMAGE_SIDE));
        ok(jpeg(MAX_IMAGE_SIDE as u16, MIN_IMAGE_SIDE as u16));
    }

    #[test]
    fn dimensions() {
        for (w, h) in [(10, 10), (9000, 100), (100, 9000), (63, 64), (64, 63), (0, 0)] {
            assert_eq!(reason(png(w, h)), Some(Reason::ImageDimensions), "{w}x{h}");
            assert_eq!(
                reason(jpeg(w as u16, h as u16)),
                Some(Reason::ImageDimensions),
                "{w}x{h}"
            );
        }
        assert_eq!(reason(png(u32::MAX, 64)), Some(Reason::ImageDimensions));
        assert_eq!(reason(png(8193, 8193)), Some(Reason::ImageDimensions));
    }

    #[test]
    fn format_by_content_only() {
        let gif = b"GIF89a\x40\x00\x40\x00\x80\x00\x00".to_vec();
        assert_eq!(reason(gif), Some(Reason::ImageFormat));
        let webp = b"RIFF\x24\x00\x00\x00WEBPVP8 ".to_vec();
        assert_eq!(reason(webp), Some(Reason::ImageFormat));
        assert_eq!(reason(Vec::new()), Some(Reason::ImageFormat));
        assert_eq!(reason(b"\xff".to_vec()), Some(Reason::ImageFormat));
        assert_eq!(reason(b"\xff\xd8".to_vec()), Some(Reason::ImageFormat));
        assert_eq!(reason(b"<svg></svg>".to_vec()), Some(Reason::ImageFormat));
        // A valid PNG with one leading byte is not a PNG.
        let mut shifted = vec![0u8];
        shifted.extend(png(64, 64));
        assert_eq!(reason(shifted), Some(Reason::ImageFormat));
    }

    #[test]
    fn malformed() {
        // JPEG magic, then cut before any SOF marker.
        let full = jpeg(640, 480);
        for cut in [3, 4, 6, 11, 12, 20, full.len() / 2] {
            let truncated = full.get(..cut).map(<[u8]>::to_vec).unwrap_or_default();
            assert_eq!(reason(truncated), Some(Reason::ImageMalformed), "cut {cut}");
        }
        // JPEG magic followed by garbage that is not a marker.
        assert_eq!(
            reason(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00junkjunkjunk".to_vec()),
            Some(Reason::ImageMalformed)
        );
        // PNG signature only / truncated IHDR.
        assert_eq!(reason(PNG_SIGNATURE.to_vec()), Some(Reason::ImageMalformed));
        let p = png(64, 64);
        assert_eq!(reason(p[..20].to_vec()), Some(Reason::ImageMalformed));
        // `\x89PNG` without the rest of the signature.
        assert_eq!(
            reason(b"\x89PNG\x00\x00\x00\x00\x00\x00\x00\x0dIHDR\x00\x00\x00\x40\x00\x00\x00\x40".to_vec()),
            Some(Reason::ImageFormat)
        );
        // Right signature, first chunk not IHDR.
        let mut wrong_chunk = p.clone();
        wrong_chunk[12..16].copy_from_slice(b"IDAT");
        assert_eq!(reason(wrong_chunk), Some(Reason::ImageMalformed));
    }

    #[test]
    fn too_large() {
        let mut big = png(64, 64);
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert_eq!(reason(big), Some(Reason::ImageTooLarge));
        let mut at_limit = png(64, 64);
        at_limit.resize(MAX_IMAGE_BYTES, 0);
        assert_eq!(ok(at_limit).as_bytes().len(), MAX_IMAGE_BYTES);
    }

    #[test]
    fn fuzz_no_panic() {
        let mut rng = XorShift::new(0x1a_6e);
        let prefixes: [&[u8]; 4] = [b"", JPEG_MAGIC, PNG_SIGNATURE, b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"];
        for i in 0..4000usize {
            let len = rng.below(64);
            let mut bytes = prefixes[i % prefixes.len()].to_vec();
            bytes.extend((0..len).map(|_| rng.byte()));
            // Sprinkle JPEG markers so the segment walker gets exercised.
            if i % 3 == 0 && bytes.len() > 6 {
                let at = 3 + rng.below(bytes.len() - 4);
                bytes[at] = 0xff;
            }
            let _ = Image::parse("face_image", bytes);
        }
        // Mutations of valid headers.
        for base in [png(64, 64), jpeg(64, 64)] {
            for i in 0..base.len() {
                for b in [0x00, 0x01, 0x7f, 0xc0, 0xd8, 0xd9, 0xff] {
                    let mut m = base.clone();
                    m[i] = b;
                    let _ = Image::parse("face_image", m);
                }
            }
        }
    }
}
