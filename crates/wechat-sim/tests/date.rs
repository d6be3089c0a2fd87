//! The `Date` header of every answer follows the simulated clock.

use wechat_sim::Simulator;

/// The unix time of an answer's `Date` header.
async fn date_of(url: &str) -> i64 {
    let answer = reqwest::get(url).await.unwrap();
    let date = answer.headers()["date"].to_str().unwrap().to_owned();
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(&date, &format)
        .unwrap_or_else(|e| panic!("{date:?}: {e}"))
        .assume_utc()
        .unix_timestamp()
}

#[tokio::test]
async fn the_date_header_follows_the_simulated_clock() {
    let sim = Simulator::from_toml_str(
        r#"
        [[apps]]
        appid = "wx1234567890abcdef"
        secret = "0123456789abcdef0123456789abcdef"
        "#,
    )
    .unwrap()
    .start()
    .await
    .unwrap();
    // An API error, a control route and an unknown path alike.
    for path in ["/cgi-bin/token", "/_sim/clock", "/nowhere"] {
        let url = format!("{}{path}", sim.base_url());
        let now = i64::try_from(sim.now_secs()).unwrap();
        assert!((date_of(&url).await - now).abs() <= 1, "{path}");
        sim.advance_clock(600);
        let later = date_of(&url).await;
        assert!((later - now - 600).abs() <= 1, "{path}: {later} vs {now}");
    }
}
