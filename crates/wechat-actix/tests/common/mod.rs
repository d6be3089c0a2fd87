//! What the actix-web test files share.

/// Serves the actix-web app that `$factory` builds on `$listener` (one worker, no signal
/// handling) in the test's runtime, and evaluates to its `ServerHandle`. A macro:
/// `HttpServer::new`'s bounds on the factory are long.
macro_rules! serve {
    ($listener:expr, $factory:expr) => {{
        let server = actix_web::HttpServer::new($factory)
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen($listener)
            .expect("listen")
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        handle
    }};
}

pub(crate) use serve;
