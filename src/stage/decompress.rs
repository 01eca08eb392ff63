//! Recognise a compressed stream by its magic bytes (never by the file name) and wrap it
//! in the matching decoder: gzip, xz (multi-stream) and zstd; anything else is passed
//! through as is.

use std::io::{BufRead, Read};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
    /// Recognised but not supported.
    Bzip2,
}

/// What the first bytes of a stream say.
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else {
        Compression::None
    }
}

/// Peek at `r` and return a reader of the decompressed bytes.
pub fn decoder<'a, R: BufRead + 'a>(
    mut r: R,
) -> std::io::Result<(Compression, Box<dyn Read + 'a>)> {
    let c = detect(r.fill_buf()?);
    let out: Box<dyn Read + 'a> = match c {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Compression::None | Compression::Bzip2 => Box::new(r),
    };
    Ok((c, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(detect(b"\x1f\x8b\x08"), Compression::Gzip);
        assert_eq!(detect(b"\xfd7zXZ\0\0"), Compression::Xz);
        assert_eq!(detect(b"\x28\xb5\x2f\xfd\0"), Compression::Zstd);
        assert_eq!(detect(b"BZh9"), Compression::Bzip2);
        assert_eq!(detect(b"usr/bin/"), Compression::None);
        assert_eq!(detect(b""), Compression::None);
    }
}
