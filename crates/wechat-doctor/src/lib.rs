//! `wechat-doctor`: checks a real WeChat setup, read from the demos' environment variables,
//! without changing anything or spending money.
//!
//! The command (`cargo run -p wechat-doctor`) prints one line per check, `ok   <check>: …`,
//! `FAIL <check>: <what is wrong>. <how to fix it>` or `skip <check>: …`, and exits with 1 when
//! a check failed, 2 when the settings cannot be read, so that a deploy pipeline can run it. The
//! checks are in this library so that tests run them in process:
//!
//! | check | what it does |
//! | --- | --- |
//! | `credentials` | an access token from `cgi-bin/stable_token` (40013 appid, 40001/40125 secret, 40164 the IP to whitelist) |
//! | `jsapi_ticket` | `cgi-bin/ticket/getticket` with that token |
//! | `public_url` | `WECHAT_PUBLIC_URL` against the OAuth and JS-SDK domain rules ([`check_public_url`]) |
//! | `v2_key` | a signed `orderquery` of an order that does not exist answers `ORDERNOTEXIST` |
//! | `v3_merchant_key` | the private key parses, matches the certificate and its serial |
//! | `v3_apiv3_key` | the APIv3 key has 32 bytes |
//! | `v3_public_key` | the WeChat Pay public key parses; its id is `PUB_KEY_ID_` + digits |
//! | `v3_query` | a signed query of an order that does not exist answers 404 `ORDER_NOT_EXIST`, signed by the configured WeChat Pay key |
//! | `clock` | the `Date` header of WeChat's answer is within 60 s of this machine's clock |
//!
//! ```no_run
//! # async fn demo() -> Result<(), wechat_doctor::SettingsError> {
//! let settings = wechat_doctor::Settings::from_env()?;
//! let report = wechat_doctor::run(&settings).await;
//! print!("{}", report.to_text());
//! std::process::exit(report.exit_code());
//! # }
//! ```
//!
//! Nothing printed contains the AppSecret, a WeChat Pay key, the access token or the ticket.

mod checks;
mod public_url;
mod report;
mod settings;

pub use checks::{MAX_CLOCK_SKEW_SECS, run};
pub use public_url::check_public_url;
pub use report::{Check, Report, Status};
pub use settings::{ENV_VARS, PaySettings, PayVersion, Settings, SettingsError};
