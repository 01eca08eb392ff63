//! OpenPGP, as much as a Debian archive needs: read a keyring (binary or armored), and
//! verify a cleartext-signed `InRelease` against it (RFC 4880 §7, v4 RSA signatures).
//!
//! Why not a crate: `pgp` (rPGP) would add some sixty crates of ciphers we never use to a
//! build that already has `rsa` and `sha2`, and `sequoia-openpgp` needs nettle. Every
//! Debian archive and security key since bullseye signs with RSA-4096 subkeys, so the
//! part we need is small: packet framing, v4 key and signature packets, subkey binding
//! checks, and PKCS#1 v1.5 verification (by the `rsa` crate). Signatures by keys of other
//! algorithms (the ed25519 stable-release key) are skipped, never trusted.

use base64::Engine;
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Why a signature or keyring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgpError {
    #[error("malformed OpenPGP data: {0}")]
    Malformed(String),
    #[error(
        "no valid signature by a trusted key (signatures seen from: {})",
        if seen.is_empty() { "none".to_owned() } else { seen.join(", ") }
    )]
    NoTrustedSignature { seen: Vec<String> },
}

fn bad(what: impl Into<String>) -> PgpError {
    PgpError::Malformed(what.into())
}

/// One key (primary or subkey) that can check signatures.
#[derive(Debug, Clone)]
pub struct Key {
    /// Uppercase hex v4 fingerprint of this key.
    pub fingerprint: String,
    /// Fingerprint of the primary key it belongs to (itself for a primary).
    pub primary: String,
    rsa: Option<RsaPublicKey>,
}

/// The keys of a keyring whose primary fingerprint is in a trusted list; subkeys only
/// with a valid binding signature by their primary.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    pub keys: Vec<Key>,
}

struct Packet<'a> {
    tag: u8,
    body: &'a [u8],
}

fn packets(mut data: &[u8]) -> Result<Vec<Packet<'_>>, PgpError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let b = data[0];
        if b & 0x80 == 0 {
            return Err(bad("packet header without its high bit"));
        }
        let (tag, len, hdr) = if b & 0x40 != 0 {
            let l1 = *data.get(1).ok_or_else(|| bad("truncated packet header"))? as usize;
            match l1 {
                0..=191 => (b & 0x3f, l1, 2),
                192..=223 => {
                    let l2 = *data.get(2).ok_or_else(|| bad("truncated packet header"))?;
                    (b & 0x3f, ((l1 - 192) << 8) + l2 as usize + 192, 3)
                }
                255 => (b & 0x3f, be(data.get(2..6))?, 6),
                _ => {
                    return Err(bad(
                        "partial-length packets are not used in keys or signatures",
                    ));
                }
            }
        } else {
            let tag = (b >> 2) & 0x0f;
            match b & 3 {
                0 => (tag, be(data.get(1..2))?, 2),
                1 => (tag, be(data.get(1..3))?, 3),
                2 => (tag, be(data.get(1..5))?, 5),
                _ => return Err(bad("indeterminate-length packet")),
            }
        };
        let body = data
            .get(hdr..hdr + len)
            .ok_or_else(|| bad("truncated packet"))?;
        out.push(Packet { tag, body });
        data = &data[hdr + len..];
    }
    Ok(out)
}

fn be(b: Option<&[u8]>) -> Result<usize, PgpError> {
    let b = b.ok_or_else(|| bad("truncated length"))?;
    Ok(b.iter().fold(0usize, |a, &x| (a << 8) | x as usize))
}

/// A multiprecision integer at the start of `b`: (value bytes, rest).
fn mpi(b: &[u8]) -> Result<(&[u8], &[u8]), PgpError> {
    let bits = be(b.get(0..2))?;
    let n = bits.div_ceil(8);
    let v = b.get(2..2 + n).ok_or_else(|| bad("truncated MPI"))?;
    Ok((v, &b[2 + n..]))
}

fn key_from(body: &[u8], primary: Option<&str>) -> Result<Key, PgpError> {
    let mut h = Sha1::new();
    h.update([0x99]);
    h.update(
        u16::try_from(body.len())
            .map_err(|_| bad("key packet too long"))?
            .to_be_bytes(),
    );
    h.update(body);
    let fingerprint = hex::encode_upper(h.finalize());
    let rsa = if body.first() == Some(&4) && matches!(body.get(5), Some(1 | 3)) {
        let (n, rest) = mpi(&body[6..])?;
        let (e, _) = mpi(rest)?;
        RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e)).ok()
    } else {
        None
    };
    Ok(Key {
        primary: primary.unwrap_or(&fingerprint).to_owned(),
        fingerprint,
        rsa,
    })
}

/// A v4 signature packet, split into what is hashed and what is checked.
struct Signature<'a> {
    sig_type: u8,
    hash_alg: u8,
    /// version .. end of the hashed subpackets: the part that goes into the hash.
    hashed: &'a [u8],
    left16: [u8; 2],
    issuers: Vec<String>,
    value: &'a [u8],
}

fn signature(body: &[u8]) -> Result<Option<Signature<'_>>, PgpError> {
    if body.first() != Some(&4) {
        return Ok(None);
    }
    let hlen = be(body.get(4..6))?;
    let hashed = body
        .get(..6 + hlen)
        .ok_or_else(|| bad("truncated signature"))?;
    let ulen = be(body.get(6 + hlen..8 + hlen))?;
    let unhashed = body
        .get(8 + hlen..8 + hlen + ulen)
        .ok_or_else(|| bad("truncated signature"))?;
    let rest = &body[8 + hlen + ulen..];
    let left16 = [
        *rest.first().ok_or_else(|| bad("truncated signature"))?,
        *rest.get(1).ok_or_else(|| bad("truncated signature"))?,
    ];
    let mut issuers = Vec::new();
    for sub in [&hashed[6..], unhashed] {
        subpackets(sub, &mut issuers)?;
    }
    let value = if body[2] == 1 {
        mpi(&rest[2..])?.0
    } else {
        &rest[2..]
    };
    Ok(Some(Signature {
        sig_type: body[1],
        hash_alg: body[3],
        hashed,
        left16,
        issuers,
        value,
    }))
}

/// Collect the issuer fingerprints (subpacket 33) and key IDs (16), uppercase hex.
fn subpackets(mut b: &[u8], issuers: &mut Vec<String>) -> Result<(), PgpError> {
    while !b.is_empty() {
        let (len, hdr) = match b[0] {
            0..=191 => (b[0] as usize, 1),
            192..=254 => (
                ((b[0] as usize - 192) << 8)
                    + *b.get(1).ok_or_else(|| bad("truncated subpacket"))? as usize
                    + 192,
                2,
            ),
            255 => (be(b.get(1..5))?, 5),
        };
        let sp = b
            .get(hdr..hdr + len)
            .ok_or_else(|| bad("truncated subpacket"))?;
        match sp.first().map(|t| t & 0x7f) {
            Some(33) if sp.len() == 22 => issuers.push(hex::encode_upper(&sp[2..])),
            Some(16) if sp.len() == 9 => issuers.push(hex::encode_upper(&sp[1..])),
            _ => {}
        }
        b = &b[hdr + len..];
    }
    Ok(())
}

/// Does `key` make `sig` over `prefix` (the signed data before the trailer)?
fn verifies(key: &Key, sig: &Signature<'_>, prefix: &[&[u8]]) -> bool {
    let Some(rsa) = &key.rsa else { return false };
    let trailer_len = (sig.hashed.len() as u32).to_be_bytes();
    let parts = prefix
        .iter()
        .copied()
        .chain([sig.hashed, &[4, 0xff], &trailer_len]);
    fn digest<D: Digest>(parts: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<u8> {
        let mut h = D::new();
        parts.for_each(|p| h.update(p));
        h.finalize().to_vec()
    }
    // DigestInfo prefixes (RFC 8017 §9.2, note 1): the `oid` feature of sha2 would give
    // them too, at the price of rebuilding every crate that uses sha2.
    let (hash, oid_byte) = match sig.hash_alg {
        8 => (digest::<Sha256>(parts), 1),
        9 => (digest::<Sha384>(parts), 2),
        10 => (digest::<Sha512>(parts), 3),
        // SHA-1 and anything unknown: not trusted.
        _ => return false,
    };
    let len = hash.len() as u8;
    let prefix = [
        0x30,
        len + 17,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        oid_byte,
        0x05,
        0x00,
        0x04,
        len,
    ];
    let scheme = Pkcs1v15Sign {
        hash_len: Some(hash.len()),
        prefix: prefix.into(),
    };
    if hash[..2] != sig.left16 {
        return false;
    }
    // The MPI drops leading zero bytes; PKCS#1 wants the modulus length.
    let size = rsa::traits::PublicKeyParts::size(rsa);
    if sig.value.len() > size {
        return false;
    }
    let mut padded = vec![0u8; size - sig.value.len()];
    padded.extend_from_slice(sig.value);
    rsa.verify(scheme, &hash, &padded).is_ok()
}

fn key_prefix(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0x99];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

impl Keyring {
    /// Read a keyring (binary, or ASCII-armored `.asc`), keeping only the primary keys
    /// whose fingerprint is in `trusted` and their validly bound subkeys.
    pub fn read(data: &[u8], trusted: &[&str]) -> Result<Keyring, PgpError> {
        let binary;
        let data = if data.starts_with(b"-----BEGIN PGP") {
            binary = dearmor_all(
                std::str::from_utf8(data).map_err(|_| bad("armored keyring is not text"))?,
            )?;
            &binary[..]
        } else {
            data
        };
        let mut ring = Keyring::default();
        let mut primary: Option<(Key, &[u8])> = None;
        let mut subkey: Option<(Key, &[u8])> = None;
        for p in packets(data)? {
            match p.tag {
                6 => {
                    let k = key_from(p.body, None)?;
                    let ok = trusted
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(&k.fingerprint));
                    if ok {
                        ring.keys.push(k.clone());
                    }
                    primary = ok.then_some((k, p.body));
                    subkey = None;
                }
                14 => {
                    subkey = match &primary {
                        Some((pk, _)) => Some((key_from(p.body, Some(&pk.fingerprint))?, p.body)),
                        None => None,
                    }
                }
                2 => {
                    let (Some((pk, pbody)), Some((sk, sbody))) = (&primary, &subkey) else {
                        continue;
                    };
                    let Some(sig) = signature(p.body)? else {
                        continue;
                    };
                    if sig.sig_type == 0x18
                        && verifies(pk, &sig, &[&key_prefix(pbody), &key_prefix(sbody)])
                        && !ring.keys.iter().any(|k| k.fingerprint == sk.fingerprint)
                    {
                        ring.keys.push(sk.clone());
                    }
                }
                _ => {}
            }
        }
        Ok(ring)
    }

    /// Verify a cleartext-signed message; return the signed text (LF line ends) and the
    /// fingerprint of the primary key whose signature verified.
    pub fn verify_cleartext(&self, message: &str) -> Result<(String, String), PgpError> {
        let (text, armored) = split_cleartext(message)?;
        let sigs = dearmor_all(armored)?;
        // Text signatures hash CRLF line ends, trailing blanks stripped, no final newline.
        let canon = text
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t', '\r']))
            .collect::<Vec<_>>()
            .join("\r\n");
        let mut seen = Vec::new();
        for p in packets(&sigs)? {
            let Some(sig) = (p.tag == 2)
                .then(|| signature(p.body))
                .transpose()?
                .flatten()
            else {
                continue;
            };
            seen.extend(sig.issuers.iter().cloned());
            if !matches!(sig.sig_type, 0 | 1) {
                continue;
            }
            for k in &self.keys {
                let named = sig
                    .issuers
                    .iter()
                    .any(|i| k.fingerprint.ends_with(i.as_str()));
                if named && verifies(k, &sig, &[canon.as_bytes()]) {
                    return Ok((text, k.primary.clone()));
                }
            }
        }
        seen.dedup();
        Err(PgpError::NoTrustedSignature { seen })
    }
}

/// Split a cleartext-signed message into its (dash-unescaped) text and armored signature.
fn split_cleartext(message: &str) -> Result<(String, &str), PgpError> {
    let body = message
        .strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----")
        .and_then(|r| r.strip_prefix('\n').or_else(|| r.strip_prefix("\r\n")))
        .ok_or_else(|| bad("not a cleartext-signed message (no BEGIN PGP SIGNED MESSAGE line)"))?;
    // Armor headers ("Hash: SHA256") up to the first empty line.
    let start = body
        .find("\n\n")
        .map(|i| i + 2)
        .or_else(|| body.find("\r\n\r\n").map(|i| i + 4));
    let body = &body[start.ok_or_else(|| bad("no empty line after the armor headers"))?..];
    let marker = "\n-----BEGIN PGP SIGNATURE-----";
    let at = body
        .find(marker)
        .ok_or_else(|| bad("no BEGIN PGP SIGNATURE line"))?;
    let text = body[..at]
        .split('\n')
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    Ok((text, &body[at + 1..]))
}

/// Decode every armored block in `text` and concatenate their packets.
fn dearmor_all(text: &str) -> Result<Vec<u8>, PgpError> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(|l| l.trim_end());
    while let Some(l) = lines.next() {
        if !(l.starts_with("-----BEGIN PGP") && l.ends_with("-----")) {
            continue;
        }
        // Armor headers, then an empty line.
        for h in lines.by_ref() {
            if h.is_empty() {
                break;
            }
        }
        let mut b64 = String::new();
        for d in lines.by_ref() {
            if d.starts_with("-----END PGP") {
                break;
            }
            if !d.starts_with('=') {
                b64.push_str(d);
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("armor is not base64: {e}")))?;
        out.extend(bytes);
    }
    if out.is_empty() {
        return Err(bad("no armored OpenPGP block"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for data in [&b"\x99"[..], b"\x99\x00\x10abc", b"\xc2\xff\x00", b"\x85"] {
            assert!(Keyring::read(data, &[]).is_err(), "{data:?}");
        }
        let ring = Keyring::default();
        assert!(ring.verify_cleartext("hello").is_err());
        let m = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n-----BEGIN PGP SIGNATURE-----\n\nwsBc\n-----END PGP SIGNATURE-----\n";
        assert!(ring.verify_cleartext(m).is_err());
    }

    #[test]
    fn cleartext_is_dash_unescaped() {
        let m = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\na: b\n- -x\n-----BEGIN PGP SIGNATURE-----\n";
        let (text, sig) = split_cleartext(m).unwrap();
        assert_eq!(text, "a: b\n-x");
        assert!(sig.starts_with("-----BEGIN PGP SIGNATURE-----"));
    }
}
