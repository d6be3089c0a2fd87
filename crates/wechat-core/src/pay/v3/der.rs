//! The little DER this module reads: the RSA key inside a `PUBLIC KEY` (SubjectPublicKeyInfo)
//! and the serial number and public key of an X.509 certificate. Every read is bounds-checked
//! and linear in the input; anything unexpected is `None`.

/// One DER element: its tag, and the bytes of its contents.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xa0;

/// The OID 1.2.840.113549.1.1.1 (rsaEncryption), DER-encoded.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads one element from the front of `input`; returns it and the rest.
fn read(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let mut len = 0usize;
        for &byte in &rest[..count] {
            len = (len << 8) | usize::from(byte);
        }
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((Element { tag, contents }, rest))
}

/// Reads an element that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (element, rest) = read(input)?;
    (element.tag == tag).then_some((element.contents, rest))
}

/// The RSAPublicKey (PKCS#1 DER) inside a SubjectPublicKeyInfo, when its algorithm is RSA.
pub(crate) fn rsa_key_of_spki(spki: &[u8]) -> Option<&[u8]> {
    let (info, _) = expect(spki, SEQUENCE)?;
    let (algorithm, rest) = expect(info, SEQUENCE)?;
    let (oid, _) = expect(algorithm, OID)?;
    if oid != RSA_ENCRYPTION {
        return None;
    }
    let (bits, _) = expect(rest, BIT_STRING)?;
    // The first byte counts the unused bits of the last byte: 0 for a key.
    let (&unused, key) = bits.split_first()?;
    (unused == 0).then_some(key)
}

/// What this module needs of an X.509 certificate.
pub(crate) struct Certificate<'a> {
    /// The serial number's bytes (big-endian, without a leading zero byte).
    pub(crate) serial: &'a [u8],
    /// The SubjectPublicKeyInfo.
    pub(crate) spki: &'a [u8],
}

/// Reads the serial number and the public key of a DER certificate.
pub(crate) fn certificate(der: &[u8]) -> Option<Certificate<'_>> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = read(rest)?.1;
    }
    let (serial, rest) = expect(rest, INTEGER)?;
    let serial = match serial {
        [0, tail @ ..] if !tail.is_empty() => tail,
        serial => serial,
    };
    // signature algorithm, issuer, validity, subject
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (_, rest) = expect(rest, SEQUENCE)?;
    let (spki_element, _) = read(rest)?;
    if spki_element.tag != SEQUENCE {
        return None;
    }
    // The SPKI with its own header: the bytes from `rest` up to the end of the element.
    let header_len = rest.len() - read(rest)?.1.len() - spki_element.contents.len();
    let spki = &rest[..header_len + spki_element.contents.len()];
    Some(Certificate { serial, spki })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_odd_input_is_none() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x00],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x80],
            &[0x02, 0x01, 0x05],
        ] {
            assert!(rsa_key_of_spki(bad).is_none(), "{bad:?}");
            assert!(certificate(bad).is_none(), "{bad:?}");
        }
    }
}
