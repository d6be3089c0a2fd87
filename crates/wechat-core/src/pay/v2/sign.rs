//! The WeChat Pay API v2 signature (protocol reference §4.1).
//!
//! Over every field **except `sign` and empty values** (unknown fields included), sorted by the
//! ASCII bytes of their names: `k1=v1&k2=v2&…&key=API_KEY`, then `MD5` or `HMAC-SHA256` (keyed
//! with the API key), as uppercase hex. The same rule signs requests, verifies replies and
//! notifications, and computes the page's `paySign`.
//!
//! See <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=4_3>.
//!
//! ```
//! use wechat_core::PayApiKey;
//! use wechat_core::pay::v2::{SignType, sign_pay_fields, verify_pay_fields};
//!
//! let key = PayApiKey::new("192006250b4c09247ec02edce69f6a2d");
//! let fields = [
//!     ("appid", "wxd930ea5d5a258f4f"),
//!     ("mch_id", "10000100"),
//!     ("device_info", "1000"),
//!     ("body", "test"),
//!     ("nonce_str", "ibuaiVcKdpRxkhJA"),
//! ];
//! let sign = sign_pay_fields(fields, &key, SignType::Md5);
//! assert_eq!(sign, "9A0A8659F005D6984697E2CA0A9CF3B7");
//! assert!(verify_pay_fields(fields, &key, SignType::Md5, &sign).is_ok());
//! ```

use crate::pay::PayError;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{Error, PayApiKey, Result};

/// The two API v2 signature algorithms, spelled on the wire as in `sign_type` / `signType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignType {
    /// `MD5`: WeChat's default when `sign_type` is absent.
    #[default]
    Md5,
    /// `HMAC-SHA256`, keyed with the API key.
    HmacSha256,
}

impl SignType {
    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Reads a wire name (`MD5` or `HMAC-SHA256`); anything else is `None`.
    pub fn from_wire(value: &str) -> Option<Self> {
        match value {
            "MD5" => Some(Self::Md5),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

impl std::fmt::Display for SignType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many fields are sorted on the stack before falling back to one heap allocation.
const STACK_FIELDS: usize = 40;
/// The size of the stack buffer `stringSignTemp` is assembled in; longer strings use one
/// exactly sized heap buffer.
const STACK_BUF: usize = 1024;

/// Signs `fields` (name, value pairs in any order) with the merchant API key.
///
/// `sign` and empty values are skipped; every other field counts, known or not. The result is
/// the uppercase hex digest WeChat expects in `sign` or `paySign`.
///
/// # Security
/// The key is used only inside the hash; it is never logged or returned.
pub fn sign_pay_fields<'a, I>(fields: I, key: &PayApiKey, sign_type: SignType) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let (digest, len) = digest_fields(fields, key, sign_type);
    let mut hex = [0u8; 64];
    let hex = hex_upper(&digest[..len], &mut hex);
    // `hex_upper` writes ASCII only.
    String::from_utf8_lossy(hex).into_owned()
}

/// Verifies a received `sign` against `fields` in constant time.
///
/// `fields` may include `sign` itself (it is skipped), as when verifying every field of a
/// notification.
///
/// # Errors
/// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) when `sign` does not match.
pub fn verify_pay_fields<'a, I>(
    fields: I,
    key: &PayApiKey,
    sign_type: SignType,
    sign: &str,
) -> Result<()>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let (digest, len) = digest_fields(fields, key, sign_type);
    let mut hex = [0u8; 64];
    let expected = hex_upper(&digest[..len], &mut hex);
    if bool::from(expected.ct_eq(sign.as_bytes())) {
        Ok(())
    } else {
        Err(Error::Pay(PayError::BadSignature(
            "the WeChat Pay sign does not match the fields and the API key",
        )))
    }
}

/// One field to sign: the first 8 bytes of its name as a big-endian integer (so most
/// comparisons are one integer comparison), the name and the value.
type Entry<'a> = (u64, &'a str, &'a str);

fn name_prefix(name: &str) -> u64 {
    let mut prefix = [0u8; 8];
    let n = name.len().min(8);
    prefix[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(prefix)
}

/// Builds `stringSignTemp` in one pre-sized buffer (on the stack when it fits) and hashes it:
/// besides the result, nothing allocates unless there are more than 40 fields or the string
/// exceeds 1 KiB.
fn digest_fields<'a, I>(fields: I, key: &PayApiKey, sign_type: SignType) -> ([u8; 32], usize)
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut stack: [Entry<'a>; STACK_FIELDS] = [(0, "", ""); STACK_FIELDS];
    let mut heap: Vec<Entry<'a>> = Vec::new();
    let mut count = 0;
    let mut total = 0;
    for (name, value) in fields {
        if name == "sign" || value.is_empty() {
            continue;
        }
        let entry = (name_prefix(name), name, value);
        if count < STACK_FIELDS {
            stack[count] = entry;
        } else {
            if heap.is_empty() {
                heap.reserve(STACK_FIELDS * 2);
                heap.extend_from_slice(&stack);
            }
            heap.push(entry);
        }
        count += 1;
        total += name.len() + value.len() + 2;
    }
    let entries: &mut [Entry<'a>] = if count <= STACK_FIELDS {
        &mut stack[..count]
    } else {
        &mut heap
    };
    entries.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.as_bytes().cmp(b.1.as_bytes()))
    });

    let key = key.expose_secret().as_bytes();
    total += "key=".len() + key.len();
    let mut stack_buf = [0u8; STACK_BUF];
    let mut heap_buf = Vec::new();
    let buf: &mut [u8] = if total <= STACK_BUF {
        &mut stack_buf[..total]
    } else {
        heap_buf.resize(total, 0);
        &mut heap_buf
    };
    let mut pos = 0;
    for (_, name, value) in entries.iter() {
        buf[pos..pos + name.len()].copy_from_slice(name.as_bytes());
        pos += name.len();
        buf[pos] = b'=';
        pos += 1;
        buf[pos..pos + value.len()].copy_from_slice(value.as_bytes());
        pos += value.len();
        buf[pos] = b'&';
        pos += 1;
    }
    buf[pos..pos + 4].copy_from_slice(b"key=");
    pos += 4;
    buf[pos..pos + key.len()].copy_from_slice(key);

    let mut out = [0u8; 32];
    match sign_type {
        SignType::Md5 => {
            out[..16].copy_from_slice(&Md5::digest(&*buf));
            (out, 16)
        }
        SignType::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
                .expect("HMAC accepts keys of any length");
            mac.update(buf);
            out.copy_from_slice(&mac.finalize().into_bytes());
            (out, 32)
        }
    }
}

fn hex_upper<'o>(digest: &[u8], out: &'o mut [u8; 64]) -> &'o [u8] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (i, byte) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    &out[..digest.len() * 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::TEST_API_KEY as KEY;

    fn v2_fields() -> Vec<(&'static str, &'static str)> {
        vec![
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
    }

    #[test]
    fn official_vector_v2_md5() {
        let key = PayApiKey::new(KEY);
        assert_eq!(
            sign_pay_fields(v2_fields(), &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn official_vector_v3_hmac_sha256() {
        let key = PayApiKey::new(KEY);
        assert_eq!(
            sign_pay_fields(v2_fields(), &key, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn vector_v4_empty_values_and_sign_are_skipped() {
        let key = PayApiKey::new(KEY);
        let mut fields = v2_fields();
        fields.push(("attach", ""));
        fields.push(("sign", "XXXX"));
        assert_eq!(
            sign_pay_fields(fields.clone(), &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        assert!(
            verify_pay_fields(
                fields,
                &key,
                SignType::Md5,
                "9A0A8659F005D6984697E2CA0A9CF3B7"
            )
            .is_ok()
        );
    }

    #[test]
    fn vectors_v5_v6_wechatpy() {
        let key = PayApiKey::new(KEY);
        let fields = [("test1", "test1"), ("test2", "test2")];
        assert_eq!(
            sign_pay_fields(fields, &key, SignType::Md5),
            "1E3A8D73B5A4AEE787C0F68B5DAB8520"
        );
        assert_eq!(
            sign_pay_fields(fields, &key, SignType::HmacSha256),
            "EDAC6D70D2FDF5A2382F8204FC96A1918017E46ACC5297F565ED1A7610ACF659"
        );
    }

    #[test]
    fn order_of_input_does_not_matter_and_case_does() {
        let key = PayApiKey::new(KEY);
        let mut reversed = v2_fields();
        reversed.reverse();
        assert_eq!(
            sign_pay_fields(reversed, &key, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
        // `appId` sorts before `body` but after `Zeta` in ASCII order; names are case-sensitive.
        let a = sign_pay_fields([("appId", "x"), ("appid", "x")], &key, SignType::Md5);
        let b = sign_pay_fields([("appid", "x")], &key, SignType::Md5);
        assert_ne!(a, b);
    }

    #[test]
    fn unknown_fields_are_signed() {
        let key = PayApiKey::new(KEY);
        let mut fields = v2_fields();
        fields.push(("some_new_field", "value"));
        let sign = sign_pay_fields(fields.clone(), &key, SignType::Md5);
        assert_ne!(sign, "9A0A8659F005D6984697E2CA0A9CF3B7");
        assert!(verify_pay_fields(fields, &key, SignType::Md5, &sign).is_ok());
        // Dropping the unknown field breaks the signature.
        assert!(verify_pay_fields(v2_fields(), &key, SignType::Md5, &sign).is_err());
    }

    #[test]
    fn verification_rejects_wrong_sign_key_type_and_case() {
        let key = PayApiKey::new(KEY);
        let good = "9A0A8659F005D6984697E2CA0A9CF3B7";
        assert!(verify_pay_fields(v2_fields(), &key, SignType::Md5, good).is_ok());
        assert!(matches!(
            verify_pay_fields(
                v2_fields(),
                &key,
                SignType::Md5,
                "9A0A8659F005D6984697E2CA0A9CF3B8"
            ),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        assert!(verify_pay_fields(v2_fields(), &key, SignType::Md5, &good.to_lowercase()).is_err());
        assert!(verify_pay_fields(v2_fields(), &key, SignType::Md5, "").is_err());
        assert!(verify_pay_fields(v2_fields(), &key, SignType::HmacSha256, good).is_err());
        let other = PayApiKey::new("00000000000000000000000000000000");
        assert!(verify_pay_fields(v2_fields(), &other, SignType::Md5, good).is_err());
    }

    #[test]
    fn many_and_long_fields_match_a_naive_implementation() {
        let key = PayApiKey::new(KEY);
        let names: Vec<String> = (0..120).map(|i| format!("field_{i:03}")).collect();
        let values: Vec<String> = (0..120).map(|i| "v".repeat(i * 13 % 700)).collect();
        let fields: Vec<(&str, &str)> = names
            .iter()
            .map(String::as_str)
            .zip(values.iter().map(String::as_str))
            .rev()
            .collect();
        let mut sorted: Vec<(&str, &str)> = fields
            .iter()
            .copied()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        sorted.sort();
        let mut naive = String::new();
        for (k, v) in &sorted {
            naive.push_str(&format!("{k}={v}&"));
        }
        naive.push_str("key=");
        naive.push_str(KEY);
        let expected = hex::encode_upper(Md5::digest(naive.as_bytes()));
        assert_eq!(
            sign_pay_fields(fields.clone(), &key, SignType::Md5),
            expected
        );
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(naive.as_bytes());
        assert_eq!(
            sign_pay_fields(fields, &key, SignType::HmacSha256),
            hex::encode_upper(mac.finalize().into_bytes())
        );
    }

    #[test]
    fn sign_type_wire_names() {
        assert_eq!(SignType::default(), SignType::Md5);
        for t in [SignType::Md5, SignType::HmacSha256] {
            assert_eq!(SignType::from_wire(t.as_str()), Some(t));
        }
        assert_eq!(SignType::from_wire("md5"), None);
        assert_eq!(SignType::from_wire("HMAC-SHA1"), None);
    }
}
