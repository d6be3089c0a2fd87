//! Unit tests of the v3 configuration checks.

use crate::fixtures::{self, MerchantKeyPair};
use crate::{ConfigError, SimConfig};

const CERT: &str = include_str!("testdata/rsa_test_certificate.pem");

fn merchant(extra: &str) -> String {
    format!("[[merchants]]\nmch_id = \"1900000109\"\n{extra}\n")
}

fn error(toml: &str) -> String {
    match SimConfig::from_toml_str(toml) {
        Err(ConfigError::Invalid(msg)) => msg,
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn v3_fields_are_checked_and_named() {
    let pem = &MerchantKeyPair::shared().public_key_pem;
    let base = format!(
        "merchant_public_key = '''{pem}'''\nmerchant_serial = \"ABC\"\npay_public_key_id = \"PUB_KEY_ID_01\""
    );
    let short = error(&merchant(&format!("apiv3_key = \"short\"\n{base}")));
    assert!(
        short.contains("merchant 1900000109") && short.contains("apiv3_key"),
        "{short}"
    );
    let nokey = error(&merchant(&format!(
        "apiv3_key = \"{}\"",
        fixtures::APIV3_KEY
    )));
    assert!(nokey.contains("merchant_public_key"), "{nokey}");
    let bad = error(&merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key = \"garbage\"\npay_public_key_id = \"PUB_KEY_ID_01\"\nmerchant_serial = \"AB\"",
        fixtures::APIV3_KEY
    )));
    assert!(bad.contains("merchant_public_key:"), "{bad}");
    let id = error(&merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key = '''{pem}'''\nmerchant_serial = \"AB\"\npay_public_key_id = \"KEY1\"",
        fixtures::APIV3_KEY
    )));
    assert!(id.contains("pay_public_key_id"), "{id}");
    let no_serial = error(&merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key = '''{pem}'''\npay_public_key_id = \"PUB_KEY_ID_01\"",
        fixtures::APIV3_KEY
    )));
    assert!(no_serial.contains("merchant_serial"), "{no_serial}");
    let missing_file = error(&merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key_file = \"/nonexistent/merchant_pub.pem\"\nmerchant_serial = \"AB\"\npay_public_key_id = \"PUB_KEY_ID_01\"",
        fixtures::APIV3_KEY
    )));
    assert!(
        missing_file.contains("merchant_public_key_file"),
        "{missing_file}"
    );
    let neither = error(&merchant(""));
    assert!(neither.contains("api_key"), "{neither}");
    let v3_without_key = error(&merchant(
        "api_key = \"192006250b4c09247ec02edce69f6a2d\"\nplatform_certificate = true",
    ));
    assert!(v3_without_key.contains("apiv3_key"), "{v3_without_key}");
}

#[test]
fn a_certificate_gives_the_serial() {
    let toml = merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key = '''{CERT}'''\nplatform_certificate = true",
        fixtures::APIV3_KEY
    ));
    let config = SimConfig::from_toml_str(&toml).unwrap();
    let checked = super::check(&config.merchants[0]).unwrap().unwrap();
    assert_eq!(checked.merchant_serial, "F5765756002FDD77");
    let debug = format!("{:?}", config.merchants[0]);
    assert!(
        debug.contains("[redacted]") && !debug.contains(fixtures::APIV3_KEY),
        "{debug}"
    );
}

#[test]
fn platform_merchants_get_a_certificate_and_a_key_id() {
    let toml = merchant(&format!(
        "apiv3_key = \"{}\"\nmerchant_public_key = '''{CERT}'''\nplatform_certificate = true",
        fixtures::APIV3_KEY
    ));
    let config = SimConfig::from_toml_str(&toml).unwrap();
    let loaded = super::load(&config.merchants[0], 1_700_000_000)
        .unwrap()
        .unwrap();
    assert!(loaded.pay_public_key_id.starts_with("PUB_KEY_ID_0"));
    let platform = loaded.platform.as_ref().unwrap();
    assert_eq!(platform.serial.len(), 40);
    assert_eq!(loaded.serial_for(None), platform.serial);
    assert_eq!(
        loaded.serial_for(Some(&loaded.pay_public_key_id)),
        loaded.pay_public_key_id
    );
    let (key, serial) = super::keys::PublicKey::from_pem(&platform.pem).unwrap();
    assert_eq!(serial.as_deref(), Some(platform.serial.as_str()));
    assert_eq!(key.spki_pem, loaded.pay_key.public.spki_pem);
    assert!(!format!("{loaded:?}").contains(fixtures::APIV3_KEY));
}
