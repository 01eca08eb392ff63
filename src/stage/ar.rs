//! The `ar` container of a `.deb`, read the way dpkg reads it (deb(5)): the magic, then
//! members of a 60-byte header (name, mtime, uid, gid, mode, size, "`\n") followed by the
//! data padded to an even length. Debian packages hold only short names (`debian-binary`,
//! `control.tar.xz`, `data.tar.zst`), so GNU and BSD long-name tables are refused rather
//! than interpreted: a name table offset or a size taken from the file is never used to
//! index or allocate anything. Member data is streamed, never read whole.

use std::io::{self, Read};

/// The magic of `ar` archives (and so of .deb files).
pub const AR_MAGIC: &[u8] = b"!<arch>\n";

const HEADER_LEN: usize = 60;

/// A reader over the members of an `ar` archive.
#[derive(Debug)]
pub struct ArReader<R> {
    inner: R,
    /// Bytes of the current member not yet read, then its padding byte.
    left: u64,
    pad: u64,
    /// Offset of the next header, for error messages.
    offset: u64,
}

/// One member: its name and size, and its data through `Read`.
#[derive(Debug)]
pub struct Member<'a, R> {
    pub name: String,
    pub size: u64,
    archive: &'a mut ArReader<R>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl<R: Read> ArReader<R> {
    /// Check the magic and start before the first member.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut magic = [0u8; 8];
        inner.read_exact(&mut magic).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => bad("too short for an ar archive".into()),
            _ => e,
        })?;
        if magic != AR_MAGIC {
            return Err(bad("not an ar archive (no \"!<arch>\" magic)".into()));
        }
        Ok(Self {
            inner,
            left: 0,
            pad: 0,
            offset: 8,
        })
    }

    /// The next member, skipping what was not read of the previous one; `None` at the end.
    pub fn next_member(&mut self) -> io::Result<Option<Member<'_, R>>> {
        let skip = self.left + self.pad;
        if skip > 0 {
            let n = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
            if n < self.left {
                return Err(bad(format!(
                    "member data truncated before offset {}",
                    self.offset
                )));
            }
            // A missing padding byte after the last member is tolerated, as by GNU ar.
            self.left = 0;
            self.pad = 0;
        }
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match self.inner.read(&mut header[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if got == 0 {
            return Ok(None);
        }
        let at = self.offset;
        if got < HEADER_LEN {
            return Err(bad(format!("member header at offset {at} is truncated")));
        }
        if &header[58..60] != b"`\n" {
            return Err(bad(format!(
                "member header at offset {at} has no \"`\\n\" terminator"
            )));
        }
        let name = parse_name(&header[..16])
            .map_err(|why| bad(format!("member at offset {at}: {why}")))?;
        let size = parse_size(&header[48..58]).ok_or_else(|| {
            bad(format!(
                "member {name:?} at offset {at}: its size is not a decimal number"
            ))
        })?;
        self.left = size;
        self.pad = size % 2;
        self.offset = at
            .saturating_add(HEADER_LEN as u64)
            .saturating_add(size)
            .saturating_add(size % 2);
        Ok(Some(Member {
            name,
            size,
            archive: self,
        }))
    }
}

fn parse_name(field: &[u8]) -> Result<String, String> {
    let end = field.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    let mut name = &field[..end];
    if name.first() == Some(&b'/') || name.starts_with(b"#1/") {
        return Err("long-name (GNU or BSD) members do not occur in Debian packages".into());
    }
    // GNU ar ends short names with '/'.
    if let Some(stripped) = name.strip_suffix(b"/") {
        name = stripped;
    }
    if name.is_empty() {
        return Err("the member name is empty".into());
    }
    if !name.iter().all(|&b| b.is_ascii_graphic() && b != b'/') {
        return Err(format!(
            "the member name {:?} is not a plain file name",
            String::from_utf8_lossy(name)
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

fn parse_size(field: &[u8]) -> Option<u64> {
    let end = field.iter().rposition(|&b| b != b' ')? + 1;
    let digits = &field[..end];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl<R: Read> Read for Member<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let a = &mut *self.archive;
        if a.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(a.left).unwrap_or(usize::MAX));
        let n = a.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "member {:?} is truncated ({} of {} bytes missing)",
                    self.name, a.left, self.size
                ),
            ));
        }
        a.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: &str) -> Vec<u8> {
        let h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
            0, 0, 0, 100644
        )
        .into_bytes();
        assert_eq!(h.len(), HEADER_LEN);
        h
    }

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = AR_MAGIC.to_vec();
        for (name, data) in members {
            out.extend(header(name, &data.len().to_string()));
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn names(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut ar = ArReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(mut m) = ar.next_member()? {
            let mut data = Vec::new();
            m.read_to_end(&mut data)?;
            out.push((m.name.clone(), data));
        }
        Ok(out)
    }

    #[test]
    fn reads_members_with_padding_and_gnu_slash() {
        let bytes = archive(&[
            ("debian-binary", b"2.0\n"),
            ("control.tar.xz/", b"abc"),
            ("data.tar", b""),
        ]);
        let got = names(&bytes).unwrap();
        assert_eq!(got[0], ("debian-binary".into(), b"2.0\n".to_vec()));
        assert_eq!(got[1], ("control.tar.xz".into(), b"abc".to_vec()));
        assert_eq!(got[2], ("data.tar".into(), Vec::new()));
    }

    #[test]
    fn skips_unread_member_data() {
        let bytes = archive(&[("a", b"12345"), ("b", b"xy")]);
        let mut ar = ArReader::new(&bytes[..]).unwrap();
        assert_eq!(ar.next_member().unwrap().unwrap().name, "a");
        let mut b = ar.next_member().unwrap().unwrap();
        let mut s = String::new();
        b.read_to_string(&mut s).unwrap();
        assert_eq!((b.name.as_str(), s.as_str()), ("b", "xy"));
        assert!(ar.next_member().unwrap().is_none());
    }

    #[test]
    fn refuses_hostile_headers_without_panicking_or_allocating() {
        let mut gnu_index = AR_MAGIC.to_vec();
        gnu_index.extend(header("/1218463333", "0"));
        let mut name_table = AR_MAGIC.to_vec();
        name_table.extend(header("//", "9999999999"));
        let mut huge = AR_MAGIC.to_vec();
        huge.extend(header("data.tar", "9999999999"));
        huge.extend_from_slice(b"short");
        let mut bad_size = AR_MAGIC.to_vec();
        bad_size.extend(header("data.tar", "-1"));
        let mut no_fmag = archive(&[("a", b"x")]);
        no_fmag[8 + 58] = b'!';
        let truncated = archive(&[("a", b"xyz")])[..8 + 30].to_vec();
        for bytes in [
            gnu_index,
            name_table,
            huge,
            bad_size,
            no_fmag,
            truncated,
            b"!<arch>".to_vec(),
        ] {
            let err = names(&bytes).expect_err("hostile archive accepted");
            assert!(!err.to_string().is_empty());
        }
    }
}
