//! The doctor against a running wechat-sim: every check ok for a correct setup, and each failure
//! it names, produced by configuring the simulator (or the settings) to be wrong.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wechat_doctor::{Report, Settings, Status, run};
use wechat_sim::fixtures::{
    self, API_KEY, APIV3_KEY, APPID, MCH_ID, MerchantKeyPair, PAY_PUBLIC_KEY_ID, SECRET,
};
use wechat_sim::{RunningSim, Simulator};

/// A started simulator, the merchant's files and the demos' environment pointing at both.
struct Setup {
    sim: RunningSim,
    dir: PathBuf,
    vars: HashMap<String, String>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    /// The shop's simulator (`toml` edited by `edit`), and v3 (or v2) settings that are right.
    async fn new(name: &str, version: &str, edit: impl FnOnce(String) -> String) -> Self {
        let toml = edit(fixtures::shop_toml(&["127.0.0.1:3000"], None));
        let sim = Simulator::from_toml_str(&toml)
            .expect("valid config")
            .start()
            .await
            .expect("simulator starts");
        let dir = std::env::temp_dir().join(format!("wechat-doctor-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = MerchantKeyPair::shared();
        std::fs::write(dir.join("apiclient_key.pem"), &keys.private_key_pem).unwrap();
        let (id, pem) = sim.pay_public_key(MCH_ID).expect("a v3 merchant");
        assert_eq!(id, PAY_PUBLIC_KEY_ID);
        std::fs::write(dir.join("pub_key.pem"), pem).unwrap();
        let base = sim.base_url();
        let mut vars: HashMap<String, String> = [
            ("WECHAT_APPID", APPID),
            ("WECHAT_SECRET", SECRET),
            ("WECHAT_MCH_ID", MCH_ID),
            ("WECHAT_PAY_VERSION", version),
            ("WECHAT_API_BASE", &base),
            ("WECHAT_OPEN_BASE", &base),
            ("WECHAT_PAY_BASE", &base),
            ("WECHAT_RES_BASE", &base),
            ("WECHAT_PUBLIC_URL", "http://127.0.0.1:3000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if version == "v2" {
            vars.insert("WECHAT_PAY_KEY".into(), API_KEY.into());
        } else {
            vars.insert("WECHAT_PAY_V3_KEY".into(), APIV3_KEY.into());
            vars.insert("WECHAT_PAY_MCH_SERIAL".into(), keys.serial.clone());
            vars.insert(
                "WECHAT_PAY_MCH_KEY".into(),
                dir.join("apiclient_key.pem").display().to_string(),
            );
            vars.insert(
                "WECHAT_PAY_PUBLIC_KEY".into(),
                dir.join("pub_key.pem").display().to_string(),
            );
            vars.insert("WECHAT_PAY_PUBLIC_KEY_ID".into(), PAY_PUBLIC_KEY_ID.into());
        }
        Self { sim, dir, vars }
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    fn unset(&mut self, name: &str) -> &mut Self {
        self.vars.remove(name);
        self
    }

    /// A file in this setup's folder.
    fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// The checks, in process.
    async fn doctor(&self) -> Report {
        let settings = Settings::from_lookup(|name| self.vars.get(name).cloned()).unwrap();
        let report = run(&settings).await;
        assert_no_secret(&report.to_text());
        report
    }

    /// The command with this environment only: (exit code, stdout, stderr), waiting 60 s at most.
    async fn command(&self) -> (i32, String, String) {
        let vars = self.vars.clone();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_wechat-doctor"))
                .env_clear()
                .envs(vars)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("wechat-doctor starts");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("wechat-doctor did not finish within 60 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8(output.stdout).unwrap();
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_no_secret(&stdout);
            assert_no_secret(&stderr);
            (output.status.code().unwrap_or(-1), stdout, stderr)
        })
        .await
        .unwrap()
    }
}

/// No configured secret in `text`.
fn assert_no_secret(text: &str) {
    for secret in [SECRET, API_KEY, APIV3_KEY, "PRIVATE KEY"] {
        assert!(!text.contains(secret), "{secret} printed in:\n{text}");
    }
}

/// The check `name`, asserting its status.
fn check(report: &Report, name: &str, status: Status) -> String {
    let check = report
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"));
    assert_eq!(check.status, status, "{name}:\n{}", report.to_text());
    check.message.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_v3_setup_is_all_ok_and_exits_0() {
    let setup = Setup::new("ok-v3", "v3", |t| t).await;
    let (code, stdout, stderr) = setup.command().await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Shown with `--nocapture` (the README's example output).
    println!("{stdout}");
    for name in [
        "credentials",
        "jsapi_ticket",
        "public_url",
        "v3_merchant_key",
        "v3_apiv3_key",
        "v3_public_key",
        "v3_query",
        "clock",
    ] {
        assert!(
            stdout.contains(&format!("ok   {name}: ")),
            "{name}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("ORDER_NOT_EXIST"), "{stdout}");
    // The token came from stable_token: nothing was retired.
    assert_eq!(setup.sim.stats().calls_to("/cgi-bin/token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_v2_setup_is_all_ok() {
    let setup = Setup::new("ok-v2", "v2", |t| t).await;
    let report = setup.doctor().await;
    assert!(!report.failed(), "{}", report.to_text());
    let message = check(&report, "v2_key", Status::Ok);
    assert!(message.contains("ORDERNOTEXIST"), "{message}");
    assert_eq!(report.exit_code(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_certificates_are_downloaded_and_verify() {
    let mut setup = Setup::new("platform", "v3", |t| {
        t.replace(
            "platform_certificate = false",
            "platform_certificate = true",
        )
    })
    .await;
    setup
        .unset("WECHAT_PAY_PUBLIC_KEY")
        .unset("WECHAT_PAY_PUBLIC_KEY_ID");
    let report = setup.doctor().await;
    assert!(!report.failed(), "{}", report.to_text());
    check(&report, "v3_public_key", Status::Skip);
    check(&report, "v3_query", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_merchant_pay_is_skipped() {
    let mut setup = Setup::new("no-pay", "v3", |t| t).await;
    setup.unset("WECHAT_MCH_ID");
    let report = setup.doctor().await;
    assert!(!report.failed(), "{}", report.to_text());
    check(&report, "pay", Status::Skip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_and_exits_1() {
    let mut setup = Setup::new("secret", "v3", |t| t).await;
    setup.set("WECHAT_SECRET", "ffffffffffffffffffffffffffffffff");
    let (code, stdout, _) = setup.command().await;
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("FAIL credentials: WeChat rejected WECHAT_SECRET"),
        "{stdout}"
    );
    assert!(stdout.contains("AppSecret"), "{stdout}");
    assert!(!stdout.contains("ffffffffffffffff"), "{stdout}");
    assert!(stdout.contains("skip jsapi_ticket"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_appid_fails() {
    let mut setup = Setup::new("appid", "v3", |t| t).await;
    setup.set("WECHAT_APPID", "wx0000000000000000");
    let report = setup.doctor().await;
    let message = check(&report, "credentials", Status::Fail);
    assert!(message.contains("40013"), "{message}");
    assert!(message.contains("wx0000000000000000"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_outside_the_whitelist_is_named_with_where_to_add_it() {
    let setup = Setup::new("whitelist", "v3", |t| {
        t.replacen("secret = ", "ip_whitelist = [\"10.0.0.1\"]\nsecret = ", 1)
    })
    .await;
    let report = setup.doctor().await;
    let message = check(&report, "credentials", Status::Fail);
    assert!(
        message.contains("from IP 127.0.0.1 (errcode 40164"),
        "{message}"
    );
    assert!(
        message.contains(
            "Add 127.0.0.1 to the IP whitelist in the Official Accounts Platform (mp.weixin.qq.com): \
             设置与开发 → 基本配置 → IP白名单"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_failure_is_reported() {
    let setup = Setup::new("ticket", "v3", |t| t).await;
    let url = format!(
        "{}/_sim/fail?path=/cgi-bin/ticket/getticket&errcode=45009&times=5",
        setup.sim.base_url()
    );
    let answer = reqwest::Client::new().post(url).send().await.unwrap();
    assert!(answer.status().is_success());
    let report = setup.doctor().await;
    check(&report, "credentials", Status::Ok);
    let message = check(&report, "jsapi_ticket", Status::Fail);
    assert!(message.contains("45009"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_public_url_fails() {
    let mut setup = Setup::new("url", "v3", |t| t).await;
    setup.set("WECHAT_PUBLIC_URL", "http://shop.example.com:8080/app");
    let report = setup.doctor().await;
    let message = check(&report, "public_url", Status::Fail);
    assert!(message.contains("/app"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_v2_key_is_a_signature_error() {
    let mut setup = Setup::new("v2-key", "v2", |t| t).await;
    setup.set("WECHAT_PAY_KEY", "00000000000000000000000000000000");
    let report = setup.doctor().await;
    let message = check(&report, "v2_key", Status::Fail);
    assert!(message.contains("签名错误"), "{message}");
    assert!(
        message.contains("The v2 API key (WECHAT_PAY_KEY) is wrong"),
        "{message}"
    );
    assert!(message.contains("账户中心 → API安全"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_v3_serial_is_named() {
    let mut setup = Setup::new("serial", "v3", |t| t).await;
    setup.set(
        "WECHAT_PAY_MCH_SERIAL",
        "0123456789ABCDEF0123456789ABCDEF01234567",
    );
    let report = setup.doctor().await;
    check(&report, "v3_merchant_key", Status::Ok);
    let message = check(&report, "v3_query", Status::Fail);
    assert!(message.contains("401 SIGN_ERROR"), "{message}");
    assert!(message.contains("WECHAT_PAY_MCH_SERIAL"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_v3_private_key_is_named() {
    let mut setup = Setup::new("private", "v3", |t| t).await;
    let other = MerchantKeyPair::generate();
    let path = setup.file("other_key.pem", &other.private_key_pem);
    setup.set("WECHAT_PAY_MCH_KEY", &path);
    let report = setup.doctor().await;
    let message = check(&report, "v3_query", Status::Fail);
    assert!(message.contains("401 SIGN_ERROR"), "{message}");
    assert!(
        message.contains("WECHAT_PAY_MCH_KEY is not the private key"),
        "{message}"
    );
    // The public key where the private key belongs.
    let public = setup.file("public_as_private.pem", &other.public_key_pem);
    setup.set("WECHAT_PAY_MCH_KEY", &public);
    let report = setup.doctor().await;
    let message = check(&report, "v3_merchant_key", Status::Fail);
    assert!(message.contains("public key"), "{message}");
    check(&report, "v3_query", Status::Skip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_wechat_pay_public_key_does_not_verify() {
    let mut setup = Setup::new("pay-key", "v3", |t| t).await;
    // Another RSA key under the right id.
    let path = setup.file(
        "wrong_pub_key.pem",
        &MerchantKeyPair::shared().public_key_pem,
    );
    setup.set("WECHAT_PAY_PUBLIC_KEY", &path);
    let report = setup.doctor().await;
    check(&report, "v3_public_key", Status::Ok);
    let message = check(&report, "v3_query", Status::Fail);
    assert!(
        message.contains(
            "WECHAT_PAY_PUBLIC_KEY does not match WECHAT_PAY_PUBLIC_KEY_ID: download it again"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_key_ids_are_checked() {
    let mut setup = Setup::new("key-id", "v3", |t| t).await;
    setup.set("WECHAT_PAY_PUBLIC_KEY_ID", "PUB_KEY_ID_12AB");
    let report = setup.doctor().await;
    let message = check(&report, "v3_public_key", Status::Fail);
    assert!(
        message.contains("is not PUB_KEY_ID_ followed by digits"),
        "{message}"
    );
    check(&report, "v3_query", Status::Skip);
    // Well formed, but not the key WeChat Pay signs with.
    setup.set(
        "WECHAT_PAY_PUBLIC_KEY_ID",
        "PUB_KEY_ID_0119000001092025120100000099",
    );
    let report = setup.doctor().await;
    check(&report, "v3_public_key", Status::Ok);
    let message = check(&report, "v3_query", Status::Fail);
    assert!(
        message.contains(&format!("signed its answer with key {PAY_PUBLIC_KEY_ID}")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apiv3_key_of_another_length_fails() {
    let mut setup = Setup::new("apiv3", "v3", |t| t).await;
    setup.set("WECHAT_PAY_V3_KEY", "0123456789abcdef");
    let report = setup.doctor().await;
    let message = check(&report, "v3_apiv3_key", Status::Fail);
    assert!(message.contains("16 bytes, not 32"), "{message}");
    // The query does not need the APIv3 key in public-key mode.
    check(&report, "v3_query", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_is_detected_from_the_date_header() {
    let setup = Setup::new("clock", "v3", |t| t).await;
    let message = check(&setup.doctor().await, "clock", Status::Ok);
    assert!(
        message.contains(" s from WeChat's Date header"),
        "{message}"
    );
    setup.sim.advance_clock(600);
    let report = setup.doctor().await;
    let message = check(&report, "clock", Status::Fail);
    assert!(message.contains("s behind WeChat's"), "{message}");
    assert!(message.contains("5 minutes"), "{message}");
    // The v3 signatures use the wall clock in the simulator: only the clock check fails.
    check(&report, "v3_query", Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_settings_exit_2() {
    let mut setup = Setup::new("usage", "v3", |t| t).await;
    setup.set("WECHAT_PAY_VERSION", "v4");
    let (code, stdout, stderr) = setup.command().await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("WECHAT_PAY_VERSION"), "{stderr}");
    setup.unset("WECHAT_PAY_VERSION").unset("WECHAT_APPID");
    let (code, _, stderr) = setup.command().await;
    assert_eq!(code, 2);
    assert!(stderr.contains("WECHAT_APPID"), "{stderr}");
}

/// A self-signed merchant certificate (`apiclient_cert.pem`) over `keys`, with their serial.
fn merchant_certificate(keys: &MerchantKeyPair) -> String {
    let key = rcgen::KeyPair::from_pem(&keys.private_key_pem).expect("an RSA key rcgen signs with");
    let mut params = rcgen::CertificateParams::new(vec!["1900000109".to_owned()]).unwrap();
    let serial: Vec<u8> = (0..keys.serial.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&keys.serial[i..i + 2], 16).unwrap())
        .collect();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.self_signed(&key).unwrap().pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_key_is_checked_against_the_certificate() {
    let mut setup = Setup::new("cert", "v3", |t| t).await;
    let keys = MerchantKeyPair::shared();
    let cert = setup.file("apiclient_cert.pem", &merchant_certificate(keys));
    setup
        .set("WECHAT_PAY_CERT", &cert)
        .unset("WECHAT_PAY_MCH_SERIAL");
    let report = setup.doctor().await;
    assert!(!report.failed(), "{}", report.to_text());
    let message = check(&report, "v3_merchant_key", Status::Ok);
    assert!(
        message.contains(&format!(
            "matches the merchant certificate, serial {}",
            keys.serial
        )),
        "{message}"
    );

    // The certificate's serial and WECHAT_PAY_MCH_SERIAL disagree.
    setup.set("WECHAT_PAY_MCH_SERIAL", "0123456789ABCDEF");
    let message = check(&setup.doctor().await, "v3_merchant_key", Status::Fail);
    assert!(
        message.contains("is not the serial of WECHAT_PAY_CERT"),
        "{message}"
    );

    // Another private key than the certificate's.
    setup.unset("WECHAT_PAY_MCH_SERIAL");
    let other = setup.file(
        "other_key.pem",
        &MerchantKeyPair::generate().private_key_pem,
    );
    setup.set("WECHAT_PAY_MCH_KEY", &other);
    let report = setup.doctor().await;
    let message = check(&report, "v3_merchant_key", Status::Fail);
    assert!(message.contains("for another key"), "{message}");
    check(&report, "v3_query", Status::Skip);
}

#[test]
fn help_and_bad_arguments() {
    let run = |arg: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_wechat-doctor"))
            .arg(arg)
            .env_clear()
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, stdout, _) = run("--help");
    assert_eq!(code, Some(0));
    for (name, _) in wechat_doctor::ENV_VARS {
        assert!(
            stdout.contains(name),
            "{name} missing from --help:\n{stdout}"
        );
    }
    assert!(stdout.contains("Exit codes"), "{stdout}");
    let (code, _, stderr) = run("--bogus");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--bogus"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_error_answer_proves_the_merchant_key_only() {
    let setup = Setup::new("unsigned", "v3", |t| t).await;
    let fail = |fault: &str| {
        format!(
            "{}/_sim/fail?path=/v3/pay/transactions/out-trade-no/*&fault={fault}",
            setup.sim.base_url()
        )
    };
    let http = reqwest::Client::new();
    assert!(
        http.post(fail("unsigned"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let message = check(&setup.doctor().await, "v3_query", Status::Ok);
    assert!(message.contains("the answer was not signed"), "{message}");
    // A signature over other bytes does not verify.
    assert!(
        http.post(fail("bad_signature"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let message = check(&setup.doctor().await, "v3_query", Status::Fail);
    assert!(message.contains("does not verify"), "{message}");
}
