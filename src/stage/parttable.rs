//! Partition tables of disk images (MBR and GPT), parsed from bytes read at their fixed
//! places. Pure and bounds-checked: images are untrusted input. The one parser of tables
//! in images we read (base images in `stage::image`; built images through
//! `image::reader` for `run` and `inspect`), fuzzed by `fuzz/fuzz_targets/parttable.rs`.

/// One partition, in bytes from the start of the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// 1-based number as the kernel counts them (p1, p2, ...).
    pub number: u32,
    pub offset: u64,
    pub len: u64,
    pub kind: PartKind,
}

/// What the table says a partition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// The MBR system id byte (0x0c FAT32 LBA, 0x83 Linux, ...).
    Mbr(u8),
    /// GPT: type and unique GUID as stored (mixed-endian), name as stored (UTF-16LE,
    /// NUL-padded).
    Gpt {
        type_guid: [u8; 16],
        guid: [u8; 16],
        name: [u16; 36],
    },
}

impl PartKind {
    /// The GPT partition name (PARTLABEL); empty for MBR partitions.
    pub fn name(&self) -> String {
        match self {
            PartKind::Mbr(_) => String::new(),
            PartKind::Gpt { name, .. } => {
                let end = name.iter().position(|c| *c == 0).unwrap_or(name.len());
                String::from_utf16_lossy(&name[..end])
            }
        }
    }
}

/// Where a GPT's entries are and the disk's GUID, from its header at LBA 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptHeader {
    /// Byte offset of the entry array.
    pub entries_at: u64,
    pub count: u32,
    pub entry_size: u32,
    /// As stored (mixed-endian).
    pub disk_guid: [u8; 16],
    /// The CRC32 the header records for the entry array ([`check_entries`]).
    pub entries_crc32: u32,
}

/// The CRC32 of GPT headers and entry arrays (UEFI: the ISO-HDLC polynomial).
const GPT_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

const SECTOR: u64 = 512;

/// Why a table could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("no partition table (no 0x55AA boot signature)")]
    NoTable,
    #[error("bad GPT: {0}")]
    BadGpt(&'static str),
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Parse the MBR in `lba0` (512 bytes). Returns the partitions and whether it is only a
/// protective MBR (type 0xEE), in which case the caller reads the GPT.
pub fn parse_mbr(lba0: &[u8]) -> Result<(Vec<Part>, bool), TableError> {
    if lba0.len() < 512 || lba0[510..512] != [0x55, 0xaa] {
        return Err(TableError::NoTable);
    }
    let mut parts = Vec::new();
    let mut gpt = false;
    for i in 0..4 {
        let e = &lba0[446 + i * 16..446 + (i + 1) * 16];
        let ty = e[4];
        let start = u64::from(u32le(e, 8));
        let sectors = u64::from(u32le(e, 12));
        if ty == 0xee {
            gpt = true;
        }
        if ty == 0 || ty == 0xee || sectors == 0 {
            continue;
        }
        parts.push(Part {
            number: i as u32 + 1,
            offset: start * SECTOR,
            len: sectors * SECTOR,
            kind: PartKind::Mbr(ty),
        });
    }
    Ok((parts, gpt))
}

/// The MBR disk signature (bytes 440..444), which names an MBR disk the way a GUID
/// names a GPT one.
pub fn mbr_signature(lba0: &[u8]) -> Result<u32, TableError> {
    parse_mbr(lba0)?;
    Ok(u32le(lba0, 440))
}

/// Where the GPT entry array is, from the GPT header in `lba1`: (byte offset, count,
/// entry size).
pub fn gpt_entries_at(lba1: &[u8]) -> Result<(u64, u32, u32), TableError> {
    let h = gpt_header(lba1)?;
    Ok((h.entries_at, h.count, h.entry_size))
}

/// The GPT header in `lba1`.
pub fn gpt_header(lba1: &[u8]) -> Result<GptHeader, TableError> {
    if lba1.len() < 92 || &lba1[0..8] != b"EFI PART" {
        return Err(TableError::BadGpt("no \"EFI PART\" header at LBA 1"));
    }
    let lba = u64le(lba1, 72);
    let count = u32le(lba1, 80);
    let size = u32le(lba1, 84);
    if !(128..=4096).contains(&size) || !size.is_multiple_of(8) || count > 1024 || lba < 2 {
        return Err(TableError::BadGpt("implausible partition entry array"));
    }
    let off = lba
        .checked_mul(SECTOR)
        .ok_or(TableError::BadGpt("entry array offset overflows"))?;
    let header_size = u32le(lba1, 12) as usize;
    if !(92..=lba1.len().min(512)).contains(&header_size) {
        return Err(TableError::BadGpt("implausible header size"));
    }
    let mut digest = GPT_CRC.digest();
    digest.update(&lba1[..16]);
    digest.update(&[0; 4]);
    digest.update(&lba1[20..header_size]);
    if digest.finalize() != u32le(lba1, 16) {
        return Err(TableError::BadGpt("the header's CRC32 does not match"));
    }
    Ok(GptHeader {
        entries_at: off,
        count,
        entry_size: size,
        disk_guid: lba1[56..72].try_into().expect("16 bytes"),
        entries_crc32: u32le(lba1, 88),
    })
}

/// Check the entry array (as read at `h.entries_at`) against the header's CRC32.
pub fn check_entries(array: &[u8], h: &GptHeader) -> Result<(), TableError> {
    let len = h.count as usize * h.entry_size as usize;
    let bytes = array
        .get(..len)
        .ok_or(TableError::BadGpt("entry array is truncated"))?;
    if GPT_CRC.checksum(bytes) != h.entries_crc32 {
        return Err(TableError::BadGpt("the entry array's CRC32 does not match"));
    }
    Ok(())
}

/// The used entries of a GPT partition entry array.
pub fn parse_gpt_entries(array: &[u8], count: u32, size: u32) -> Result<Vec<Part>, TableError> {
    let mut parts = Vec::new();
    for i in 0..count as usize {
        let Some(e) = array.get(i * size as usize..(i + 1) * size as usize) else {
            return Err(TableError::BadGpt("entry array is truncated"));
        };
        if e[0..16].iter().all(|b| *b == 0) {
            continue;
        }
        let (first, last) = (u64le(e, 32), u64le(e, 40));
        if last < first {
            return Err(TableError::BadGpt("a partition ends before it starts"));
        }
        let len = (last - first)
            .checked_add(1)
            .and_then(|n| n.checked_mul(SECTOR))
            .ok_or(TableError::BadGpt("partition size overflows"))?;
        let mut name = [0u16; 36];
        for (k, c) in name.iter_mut().enumerate() {
            *c = u16::from_le_bytes([e[56 + 2 * k], e[57 + 2 * k]]);
        }
        parts.push(Part {
            number: i as u32 + 1,
            kind: PartKind::Gpt {
                type_guid: e[0..16].try_into().expect("16 bytes"),
                guid: e[16..32].try_into().expect("16 bytes"),
                name,
            },
            offset: first
                .checked_mul(SECTOR)
                .ok_or(TableError::BadGpt("partition offset overflows"))?,
            len,
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `ci/fuzz` (target parttable): first LBA 0, last LBA 2^64-1.
    #[test]
    fn a_partition_spanning_every_lba_is_refused_not_overflowed() {
        let mut e = vec![0u8; 128];
        e[0] = 1;
        e[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_gpt_entries(&e, 1, 128).is_err());
    }

    #[test]
    fn mbr_entries_and_protective_mbr() {
        let mut s = vec![0u8; 512];
        s[510] = 0x55;
        s[511] = 0xaa;
        let e = &mut s[446..462];
        e[4] = 0x0c;
        e[8..12].copy_from_slice(&2048u32.to_le_bytes());
        e[12..16].copy_from_slice(&4096u32.to_le_bytes());
        let (p, gpt) = parse_mbr(&s).unwrap();
        assert_eq!(
            p,
            [Part {
                number: 1,
                offset: 1 << 20,
                len: 2 << 20,
                kind: PartKind::Mbr(0x0c),
            }]
        );
        assert!(!gpt);
        s[440..444].copy_from_slice(&0x0a0b_0c0du32.to_le_bytes());
        assert_eq!(mbr_signature(&s), Ok(0x0a0b_0c0d));
        s[446 + 16 + 4] = 0xee;
        s[446 + 16 + 12] = 1;
        assert!(parse_mbr(&s).unwrap().1);
        assert_eq!(parse_mbr(&[0u8; 512]), Err(TableError::NoTable));
        assert_eq!(parse_mbr(&[0u8; 10]), Err(TableError::NoTable));
    }

    /// Record the header's own CRC32 (the array's is at 88..92).
    fn seal(h: &mut [u8]) {
        h[16..20].fill(0);
        let c = GPT_CRC.checksum(&h[..92]);
        h[16..20].copy_from_slice(&c.to_le_bytes());
    }

    #[test]
    fn gpt_header_and_entries() {
        let mut h = vec![0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[56] = 0xaa;
        seal(&mut h);
        assert_eq!(gpt_entries_at(&h).unwrap(), (1024, 128, 128));
        assert_eq!(gpt_header(&h).unwrap().disk_guid[0], 0xaa);
        h[57] = 1; // a changed byte the CRC no longer covers
        assert_eq!(
            gpt_header(&h),
            Err(TableError::BadGpt("the header's CRC32 does not match"))
        );
        h[57] = 0;
        let mut a = vec![0u8; 128 * 128];
        a[128] = 1; // entry 2 used
        a[128 + 16] = 2;
        a[128 + 32..128 + 40].copy_from_slice(&2048u64.to_le_bytes());
        a[128 + 40..128 + 48].copy_from_slice(&4095u64.to_le_bytes());
        for (k, c) in "boot".encode_utf16().enumerate() {
            a[128 + 56 + 2 * k..128 + 58 + 2 * k].copy_from_slice(&c.to_le_bytes());
        }
        let p = parse_gpt_entries(&a, 128, 128).unwrap();
        assert_eq!(
            (p.len(), p[0].number, p[0].offset, p[0].len),
            (1, 2, 1 << 20, 1 << 20)
        );
        assert_eq!(p[0].kind.name(), "boot");
        let PartKind::Gpt {
            type_guid, guid, ..
        } = p[0].kind
        else {
            panic!("{p:?}")
        };
        assert_eq!((type_guid[0], guid[0]), (1, 2));
        assert!(parse_gpt_entries(&a[..100], 128, 128).is_err());
        h[88..92].copy_from_slice(&GPT_CRC.checksum(&a).to_le_bytes());
        seal(&mut h);
        let hdr = gpt_header(&h).unwrap();
        assert_eq!(check_entries(&a, &hdr), Ok(()));
        a[128 + 60] ^= 1;
        assert_eq!(
            check_entries(&a, &hdr),
            Err(TableError::BadGpt("the entry array's CRC32 does not match"))
        );
        assert!(check_entries(&a[..10], &hdr).is_err());
        h[84] = 7;
        assert!(gpt_entries_at(&h).is_err());
    }
}
