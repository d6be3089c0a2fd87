//! The memory of the caches: the session cookie's verified-value cache and the token store,
//! filled with many distinct users (apps), read from `/proc/self/status` (VmRSS, VmHWM).
//!
//! ```sh
//! cargo run --release -p wechat-loadtest --bin cache-memory        # every case, ~1 min
//! cargo run --release -p wechat-loadtest --bin cache-memory -- --case session:4096:1000000:base
//! ```
//!
//! Every case runs in a fresh process (this binary started again with `--case`), so that one
//! case's freed memory, which the allocator keeps, does not count in the next. A case reads
//! VmRSS before it builds the cache, once the cache is built and empty, and after the fill,
//! and prints one line; the parent prints them as a Markdown table.
//!
//! - `session:<slots>:<users>:<base|userinfo>`: a [`SessionCookie`] whose cache has `<slots>`
//!   slots ([`SessionCookieBuilder::cache_capacity`](wechat_core::session::SessionCookieBuilder::cache_capacity))
//!   decodes a cookie minted with [`SessionCookie::encode`] for each of `<users>` distinct
//!   users, so that each value is verified and cached, as when that many browsers come back.
//!   `base` users carry an openid (`snsapi_base`); `userinfo` users also a unionid and a typical
//!   profile (Chinese nickname, avatar URL, region). The cache is direct-mapped: a value takes
//!   the slot its tag selects, replacing what was there, so `<users>` values fill on average
//!   `slots × (1 − (1 − 1/slots)^users)` slots (the "held" column).
//! - `tokens:<apps>`: a [`MemoryStore`] (the default token store, a moka cache of at most
//!   10,000 entries) receives, for each of `<apps>` distinct app ids, the access token and the
//!   jsapi_ticket under the keys [`Tokens`](wechat_core::token::Tokens) uses
//!   (`wechat:access_token:<appid>`, `wechat:jsapi_ticket:<appid>`), with values as long as
//!   WeChat's; then every key is read once (which also lets moka finish its evictions) and the
//!   entries still there are counted.

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use wechat_benches::fixtures;
use wechat_core::OpenId;
use wechat_core::session::{Profile, SessionCookie};
use wechat_core::token::{MemoryStore, StoredToken, TokenStore};
use wechat_loadtest::report::{loadavg, machine};

/// The cases run by default: the default and the largest session cache, each with 10,000 and
/// 1,000,000 users, and the token store below, at and far above its cap.
const DEFAULT_CASES: &[&str] = &[
    "session:0:1000000:base",
    "session:4096:10000:base",
    "session:4096:1000000:base",
    "session:4096:10000:userinfo",
    "session:4096:1000000:userinfo",
    "session:1048576:10000:base",
    "session:1048576:1000000:base",
    "tokens:1",
    "tokens:1000",
    "tokens:5000",
    "tokens:1000000",
];

/// The cap of [`MemoryStore`] (`max_capacity` of its moka cache, in entries).
const TOKEN_STORE_CAP: u64 = 10_000;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Memory of the session cookie cache and the token store, filled with many users")]
struct Args {
    /// Run only this case, in this process, and print its one result line:
    /// `session:<slots>:<users>:<base|userinfo>` or `tokens:<apps>` (the default: every case
    /// of the table, each in a fresh process).
    #[arg(long)]
    case: Option<String>,
}

/// What one case measured.
#[derive(Debug, Clone, PartialEq)]
struct Measured {
    /// VmRSS before the cache was built, in KiB.
    rss_before: u64,
    /// VmRSS with the cache built and empty.
    rss_empty: u64,
    /// VmRSS after the fill.
    rss_full: u64,
    /// VmHWM (the peak VmRSS) after the fill.
    hwm: u64,
    /// Entries in the cache after the fill (expected, for the session cache; counted, for the
    /// token store).
    held: u64,
    /// The entries' mean value length in bytes (cookie value; token and ticket).
    value_len: u64,
    /// How long the fill took.
    fill: Duration,
}

impl Measured {
    /// As the child prints it.
    fn line(&self) -> String {
        format!(
            "measured rss_before={} rss_empty={} rss_full={} hwm={} held={} value_len={} fill_ms={}",
            self.rss_before,
            self.rss_empty,
            self.rss_full,
            self.hwm,
            self.held,
            self.value_len,
            self.fill.as_millis()
        )
    }

    /// Reads [`line`](Self::line)'s output back.
    fn parse(output: &str) -> Option<Self> {
        let line = output.lines().find(|l| l.starts_with("measured "))?;
        let field = |name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(Self {
            rss_before: field("rss_before")?,
            rss_empty: field("rss_empty")?,
            rss_full: field("rss_full")?,
            hwm: field("hwm")?,
            held: field("held")?,
            value_len: field("value_len")?,
            fill: Duration::from_millis(field("fill_ms")?),
        })
    }
}

fn main() {
    let args = Args::parse();
    let result = match &args.case {
        Some(case) => run_case(case).map(|m| println!("{}", m.line())),
        None => run_all(),
    };
    if let Err(e) = result {
        eprintln!("cache-memory failed: {e}");
        std::process::exit(1);
    }
}

type BoxError = Box<dyn std::error::Error>;

/// Every case in a fresh process, then the table.
fn run_all() -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    println!(
        "machine: {} | load average before: {}",
        machine(),
        loadavg()
    );
    println!();
    println!(
        "| cache | cap | filled with | held | value | empty cache | full cache | per held entry | peak (VmHWM) of the process | fill time |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for case in DEFAULT_CASES {
        eprintln!("case {case} …");
        let output = Command::new(&exe).args(["--case", case]).output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let m = Measured::parse(&stdout).ok_or_else(|| {
            format!(
                "case {case} printed no result ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let (cache, cap, filled) = describe(case);
        let empty = m.rss_empty.saturating_sub(m.rss_before);
        let full = m.rss_full.saturating_sub(m.rss_before);
        let entries = m.rss_full.saturating_sub(m.rss_empty);
        let per_entry = (entries * 1024)
            .checked_div(m.held)
            .map_or_else(|| "–".to_owned(), |bytes| format!("{bytes} B"));
        println!(
            "| {cache} | {cap} | {filled} | {} | {} B | {} | {} | {per_entry} | {} | {:.1} s |",
            thousands(m.held),
            m.value_len,
            kib(empty),
            kib(full),
            kib(m.hwm),
            m.fill.as_secs_f64(),
        );
    }
    println!();
    println!("load average after: {}", loadavg());
    Ok(())
}

/// A case's cache, its cap and what fills it, as the table says them.
fn describe(case: &str) -> (String, String, String) {
    let parts: Vec<&str> = case.split(':').collect();
    let number = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
    };
    match parts[0] {
        "session" => {
            let slots = number(1);
            let cap = match slots {
                0 => "off (0)".to_owned(),
                s if s == SessionCookie::DEFAULT_CACHE_CAPACITY as u64 => {
                    format!("{} slots (default)", thousands(s))
                }
                s => format!("{} slots (the most)", thousands(s)),
            };
            let kind = parts.get(3).copied().unwrap_or("base");
            (
                "session cookie".to_owned(),
                cap,
                format!("{} {kind} users", thousands(number(2))),
            )
        }
        _ => (
            "token store (MemoryStore)".to_owned(),
            format!("{} entries", thousands(TOKEN_STORE_CAP)),
            format!(
                "{} app{} × 2 credentials",
                thousands(number(1)),
                if number(1) == 1 { "" } else { "s" }
            ),
        ),
    }
}

/// Runs one case in this process.
fn run_case(case: &str) -> Result<Measured, BoxError> {
    let parts: Vec<&str> = case.split(':').collect();
    let number = |i: usize| -> Result<usize, BoxError> {
        Ok(parts
            .get(i)
            .ok_or_else(|| format!("case {case:?}: a number is missing"))?
            .parse()?)
    };
    match parts[0] {
        "session" => {
            let profile = match parts.get(3).copied().unwrap_or("base") {
                "base" => false,
                "userinfo" => true,
                other => return Err(format!("unknown user kind {other:?}").into()),
            };
            fill_session_cache(number(1)?, number(2)?, profile)
        }
        "tokens" => fill_token_store(number(1)?),
        other => Err(format!("unknown case {other:?} (session:… or tokens:…)").into()),
    }
}

/// Decodes a minted cookie for each of `users` distinct users with a cache of `slots`.
fn fill_session_cache(slots: usize, users: usize, profile: bool) -> Result<Measured, BoxError> {
    let build = |slots| {
        SessionCookie::builder(fixtures::session_keys())
            .cache_capacity(slots)
            .build()
    };
    let mint_and_decode = |cookie: &SessionCookie, i: usize| -> Result<usize, BoxError> {
        let mut user = cookie.new_user(OpenId::new(openid(i, 'o')));
        if profile {
            user.unionid = Some(openid(i, 'u').into());
            user.profile = Some(typical_profile(i));
        }
        let value = cookie.encode(&user)?;
        if cookie.decode(&value).as_ref() != Some(&user) {
            return Err(format!("user {i}: the minted cookie did not decode").into());
        }
        Ok(value.len())
    };
    // The code and the allocator's first pages are not the cache's: touch them first, with no
    // cache.
    mint_and_decode(&build(0)?, usize::MAX)?;
    let rss_before = status_kib("VmRSS")?;
    let cookie = build(slots)?;
    let rss_empty = status_kib("VmRSS")?;
    let started = Instant::now();
    let mut value_bytes = 0u64;
    for i in 0..users {
        value_bytes += mint_and_decode(&cookie, i)? as u64;
    }
    let fill = started.elapsed();
    let slots = cookie.cache_capacity();
    let held = if slots == 0 {
        0.0
    } else {
        // Distinct values spread uniformly over the slots, the last one in a slot staying.
        slots as f64 * (1.0 - (1.0 - 1.0 / slots as f64).powf(users as f64))
    };
    let measured = Measured {
        rss_before,
        rss_empty,
        rss_full: status_kib("VmRSS")?,
        hwm: status_kib("VmHWM")?,
        held: held.round() as u64,
        value_len: value_bytes / users.max(1) as u64,
        fill,
    };
    drop(cookie);
    Ok(measured)
}

/// Stores both credentials of `apps` distinct apps in a [`MemoryStore`], then reads every key.
fn fill_token_store(apps: usize) -> Result<Measured, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let expires_at = fixtures::unix_now() + 7200;
        // As long as WeChat's: a stable access token is 136–157 characters, a jsapi_ticket 86.
        let access_token = |i: usize| format!("{i:020}_{}", "A".repeat(136));
        let jsapi_ticket = |i: usize| format!("{i:020}_{}", "t".repeat(65));
        let keys = |i: usize| {
            let appid = format!("wx{i:016x}");
            [
                format!("wechat:access_token:{appid}"),
                format!("wechat:jsapi_ticket:{appid}"),
            ]
        };
        let fill_apps = |store: &MemoryStore, apps: std::ops::Range<usize>| {
            let store = store.clone();
            async move {
                for i in apps {
                    let [access, ticket] = keys(i);
                    store
                        .set(&access, &StoredToken::new(access_token(i), expires_at))
                        .await?;
                    store
                        .set(&ticket, &StoredToken::new(jsapi_ticket(i), expires_at))
                        .await?;
                }
                Ok::<(), BoxError>(())
            }
        };
        // The code and the allocator's first pages are not the store's: touch them first, in
        // a store of their own.
        fill_apps(&MemoryStore::new(), usize::MAX - 1..usize::MAX).await?;
        let rss_before = status_kib("VmRSS")?;
        let store = MemoryStore::new();
        let rss_empty = status_kib("VmRSS")?;
        let started = Instant::now();
        fill_apps(&store, 0..apps).await?;
        let fill = started.elapsed();
        let mut held = 0;
        for i in 0..apps {
            for key in keys(i) {
                held += u64::from(store.get(&key).await?.is_some());
            }
        }
        let value_len = (access_token(0).len() + jsapi_ticket(0).len()) as u64 / 2;
        Ok(Measured {
            rss_before,
            rss_empty,
            rss_full: status_kib("VmRSS")?,
            hwm: status_kib("VmHWM")?,
            held,
            value_len,
            fill,
        })
    })
}

/// A distinct 28-character id for user `i`, shaped like WeChat's (`o…` openid, `u…` unionid).
fn openid(i: usize, first: char) -> String {
    format!("{first}6_bm{i:023}")
}

/// A `snsapi_userinfo` profile as WeChat returns them (the avatar URL differs per user).
fn typical_profile(i: usize) -> Profile {
    Profile {
        nickname: "微信用户小明".to_owned(),
        headimgurl: format!(
            "https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTKicM3dTuBcT2ibRqWeQvYp{i:020}SC6yIb7ZQ/132"
        ),
        province: "Guangdong".to_owned(),
        city: "Shenzhen".to_owned(),
        country: "CN".to_owned(),
        ..Profile::default()
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .ok_or_else(|| format!("no {field} in /proc/self/status").into())
}

/// `1.2 MiB`, `350 KiB`.
fn kib(kib: u64) -> String {
    if kib >= 1024 {
        format!("{:.1} MiB", kib as f64 / 1024.0)
    } else {
        format!("{kib} KiB")
    }
}

/// `1,000,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_round_trip() {
        let m = Measured {
            rss_before: 1,
            rss_empty: 2,
            rss_full: 3,
            hwm: 4,
            held: 5,
            value_len: 6,
            fill: Duration::from_millis(7),
        };
        assert_eq!(Measured::parse(&format!("noise\n{}\n", m.line())), Some(m));
        assert_eq!(Measured::parse("nothing"), None);
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(4096), "4,096");
        assert_eq!(thousands(1_048_576), "1,048,576");
        assert_eq!(kib(512), "512 KiB");
        assert_eq!(kib(1536), "1.5 MiB");
    }

    #[test]
    fn ids_are_distinct_and_wechat_sized() {
        assert_eq!(openid(7, 'o').len(), 28);
        assert_ne!(openid(7, 'o'), openid(8, 'o'));
        assert!(status_kib("VmRSS").unwrap() > 0 || cfg!(not(target_os = "linux")));
    }
}
