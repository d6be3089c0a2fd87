//! The Pay v2 signature (protocol reference §4.1): every field except `sign` and empty values,
//! sorted by ASCII byte order, `k=v&…&key=API_KEY`, then MD5 or HMAC-SHA256, uppercase hex.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The two v2 signature algorithms, named as in the `sign_type` / `signType` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignType {
    /// `MD5`, the default when `sign_type` is absent.
    Md5,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignType {
    /// Reads a `sign_type` value; an absent or empty field means MD5, an unknown value is `None`.
    pub(crate) fn from_field(value: Option<&str>) -> Option<Self> {
        match value.unwrap_or("") {
            "" | "MD5" => Some(Self::Md5),
            "HMAC-SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    /// The wire name: `MD5` or `HMAC-SHA256`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::HmacSha256 => "HMAC-SHA256",
        }
    }
}

/// A well-formed key that is not a merchant's: what signs the answers and notifications that
/// must not verify (`fault=bad_signature`, `tamper_sign`).
pub(crate) const WRONG_KEY: &str = "00000000000000000000000000000000";

/// `stringSignTemp`: the sorted `k=v` pairs (no `sign`, no empty values) plus `&key=API_KEY`.
fn string_to_sign<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>, key: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('&');
    }
    out.push_str("key=");
    out.push_str(key);
    out
}

/// Computes the signature of `fields` with the merchant API `key`, as uppercase hex.
pub(crate) fn sign<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    key: &str,
    sign_type: SignType,
) -> String {
    let text = string_to_sign(fields, key);
    match sign_type {
        SignType::Md5 => hex::encode_upper(Md5::digest(text.as_bytes())),
        SignType::HmacSha256 => {
            // HMAC accepts keys of any length, so this never fails.
            match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
                Ok(mut mac) => {
                    mac.update(text.as_bytes());
                    hex::encode_upper(mac.finalize().into_bytes())
                }
                Err(_) => String::new(),
            }
        }
    }
}

/// Signs a flat field map.
pub(crate) fn sign_map(
    fields: &BTreeMap<String, String>,
    key: &str,
    sign_type: SignType,
) -> String {
    sign(
        fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        key,
        sign_type,
    )
}

/// Checks `given` against the signature of `fields`, in constant time. The comparison ignores
/// ASCII case (WeChat accepts lowercase hex), and an empty `given` never matches.
pub(crate) fn verify_map(
    fields: &BTreeMap<String, String>,
    key: &str,
    sign_type: SignType,
    given: &str,
) -> bool {
    let expected = sign_map(fields, key, sign_type);
    let given = given.to_ascii_uppercase();
    !given.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Checks the `sign` field of `fields` (which is part of the map).
pub(crate) fn verify_fields(
    fields: &BTreeMap<String, String>,
    key: &str,
    sign_type: SignType,
) -> bool {
    match fields.get("sign") {
        Some(given) => verify_map(fields, key, sign_type, given),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn official() -> BTreeMap<String, String> {
        [
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", "10000100"),
            ("device_info", "1000"),
            ("body", "test"),
            ("nonce_str", "ibuaiVcKdpRxkhJA"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn v2_md5_official_vector() {
        assert_eq!(
            sign_map(&official(), KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn v3_hmac_official_vector() {
        assert_eq!(
            sign_map(&official(), KEY, SignType::HmacSha256),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn v4_empty_values_and_sign_are_skipped() {
        let mut fields = official();
        fields.insert("attach".into(), String::new());
        fields.insert("sign".into(), "XXXX".into());
        assert_eq!(
            sign_map(&fields, KEY, SignType::Md5),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn v5_v6_wechatpy_vectors() {
        let fields: BTreeMap<String, String> = [("test1", "test1"), ("test2", "test2")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        assert_eq!(
            sign_map(&fields, KEY, SignType::Md5),
            "1E3A8D73B5A4AEE787C0F68B5DAB8520"
        );
        assert_eq!(
            sign_map(&fields, KEY, SignType::HmacSha256),
            "EDAC6D70D2FDF5A2382F8204FC96A1918017E46ACC5297F565ED1A7610ACF659"
        );
    }

    #[test]
    fn keys_sort_by_ascii_bytes() {
        // `appId` < `nonceStr` < `package` < `signType` < `timeStamp`; uppercase sorts first.
        let text = string_to_sign([("timeStamp", "1"), ("Zed", "z"), ("appId", "a")], "K");
        assert_eq!(text, "Zed=z&appId=a&timeStamp=1&key=K");
    }

    #[test]
    fn verify_accepts_good_and_lowercase_refuses_bad() {
        let mut fields = official();
        fields.insert("sign".into(), "9a0a8659f005d6984697e2ca0a9cf3b7".into());
        assert!(verify_fields(&fields, KEY, SignType::Md5));
        assert!(!verify_fields(&fields, KEY, SignType::HmacSha256));
        fields.insert("sign".into(), "9A0A8659F005D6984697E2CA0A9CF3B8".into());
        assert!(!verify_fields(&fields, KEY, SignType::Md5));
        fields.insert("sign".into(), String::new());
        assert!(!verify_fields(&fields, KEY, SignType::Md5));
        fields.remove("sign");
        assert!(!verify_fields(&fields, KEY, SignType::Md5));
    }

    #[test]
    fn sign_type_names() {
        assert_eq!(SignType::from_field(None), Some(SignType::Md5));
        assert_eq!(SignType::from_field(Some("")), Some(SignType::Md5));
        assert_eq!(
            SignType::from_field(Some("HMAC-SHA256")),
            Some(SignType::HmacSha256)
        );
        assert_eq!(SignType::from_field(Some("SHA1")), None);
        assert_eq!(SignType::HmacSha256.as_str(), "HMAC-SHA256");
    }
}
