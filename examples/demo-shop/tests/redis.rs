//! `WECHAT_REDIS_URL`: the demo keeps its access_token and jsapi_ticket in Redis.
//!
//! The server's URL comes from `WECHAT_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`), as for
//! wechat-core's Redis tests. Without it the test prints one line and passes, except under
//! `CI=true`, where it fails.

use demo_shop::{Settings, Shop, bind, sim::SIM_APPID};
use wechat_core::token::{RedisStore, TokenStore as _};

#[tokio::test]
async fn tokens_are_shared_through_redis() {
    let Some(url) = wechat_core::testing::test_redis_url() else {
        return;
    };
    let key = format!("wechat:access_token:{SIM_APPID}");
    // Start clean: a token left by an earlier run belongs to a simulator that is gone.
    let redis = RedisStore::connect(&url).await.expect("redis");
    if let Some(stale) = redis.get(&key).await.expect("get") {
        redis.expire_if(&key, stale.value()).await.expect("expire");
    }

    let dir = std::env::temp_dir().join(format!(
        "demo-shop-redis-{}-{}",
        std::process::id(),
        demo_shop::new_out_trade_no()
    ));
    let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut settings = Settings::embedded(listener.local_addr().unwrap(), dir.join("db.sqlite3"));
    settings.redis_url = Some(url);
    let shop = Shop::start(&settings, listener.local_addr().unwrap())
        .await
        .expect("the shop starts with Redis");

    let page = format!("{}/?a=1", shop.public_url());
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("url", &page)
        .finish();
    let response = shop.routes().jssdk_config(Some(&query)).await;
    assert_eq!(response.status(), 200, "{:?}", response.body());

    let token = shop.tokens().access_token().await.expect("token");
    let stored = redis
        .get(&key)
        .await
        .expect("get")
        .expect("the token is in Redis");
    assert_eq!(stored.value(), token.expose_secret());

    shop.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
