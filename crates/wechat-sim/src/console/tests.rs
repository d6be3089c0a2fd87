use super::render::{esc, live, page, when};
use super::*;
use crate::config::SimConfig;

const NASTY: &str = r#"<script>alert(1)</script>"#;

fn sim() -> Sim {
    let config = SimConfig::from_toml_str(&format!(
        r#"
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
[[users]]
appid = "wx1234567890abcdef"
nickname = "{}"
[[users]]
appid = "wx1234567890abcdef"
openid = "o\"onmouseover=alert(2)"
nickname = "Bob's & <b>"
"#,
        NASTY
    ))
    .expect("valid config");
    Sim::new(config)
}

#[test]
fn escape_covers_text_and_attributes() {
    assert_eq!(esc(NASTY), "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert_eq!(esc(r#"a"b'c&d"#), "a&quot;b&#39;c&amp;d");
    assert_eq!(esc("微信 ok"), "微信 ok");
}

#[test]
fn every_value_from_the_state_is_escaped() {
    let sim = sim();
    let html = page(&snapshot(&sim));
    assert!(!html.contains(NASTY), "raw script in the page");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains(r#"o"onmouseover"#));
    assert!(html.contains("o&quot;onmouseover=alert(2)"));
    assert!(html.contains("Bob&#39;s &amp; &lt;b&gt;"));
    // The live fragment is the same markup.
    assert!(html.contains(&live(&snapshot(&sim))));
}

#[test]
fn the_snapshot_holds_no_secret() {
    let sim = sim();
    let json = serde_json::to_string(&snapshot(&sim)).expect("serializes");
    assert!(!json.contains("0123456789abcdef0123456789abcdef"));
    assert!(json.contains("wx1234567890abcdef"));
}

#[test]
fn console_paths_are_not_journaled() {
    assert!(is_console_path("/_sim/"));
    assert!(is_console_path("/_sim/console/live"));
    assert!(!is_console_path("/_sim/stats"));
    assert!(!is_console_path("/_sim/pay/notify"));
}

#[test]
fn html_answers_forbid_inline_script_and_framing() {
    let csp = headers(true)
        .into_iter()
        .find(|(n, _)| n == header::CONTENT_SECURITY_POLICY)
        .map(|(_, v)| v.to_str().unwrap_or("").to_owned())
        .expect("a CSP");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(
        headers(false)
            .iter()
            .all(|(n, _)| !n.as_str().starts_with("access-control-"))
    );
}

#[test]
fn times_are_beijing_time_and_relative() {
    // 1414561699 = 2014-10-29 13:48:19 in Beijing.
    let now = 1_414_561_699;
    assert_eq!(when(now, now), "13:48:19 (now)");
    assert_eq!(when(now, now + 7200), "15:48:19 (in 2h 0m 0s)");
    assert_eq!(when(now, now - 61), "13:47:18 (1m 1s ago)");
    assert_eq!(
        when(now, now + 86_400),
        "2014-10-30 13:48:19 (in 24h 0m 0s)"
    );
}
