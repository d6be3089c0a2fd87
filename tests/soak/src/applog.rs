//! The log of the processes under test, counted: a `tracing` layer that counts every warning
//! and error by crate and message, and every retry the library logs (its retry events carry an
//! `attempt` field) by endpoint. Optionally the same events go to a file.

use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::tally::Tally;

/// What the log said, counted.
#[derive(Debug, Default)]
pub struct AppLog {
    /// Retries logged by the library, by endpoint (`/v3/pay/transactions/jsapi: 3`).
    pub retries: Tally,
    /// Warnings and errors, by `LEVEL crate: message`.
    pub events: Tally,
}

/// The counting layer; install it with [`install`].
#[derive(Debug, Clone)]
pub struct CountingLayer(Arc<AppLog>);

#[derive(Default)]
struct Fields {
    message: String,
    endpoint: Option<String>,
    attempt: bool,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "endpoint" => self.endpoint = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, _value: u64) {
        if field.name() == "attempt" {
            self.attempt = true;
        }
    }

    fn record_i64(&mut self, field: &Field, _value: i64) {
        if field.name() == "attempt" {
            self.attempt = true;
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "endpoint" => self.endpoint = Some(format!("{value:?}").trim_matches('"').to_owned()),
            "attempt" => self.attempt = true,
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for CountingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::WARN {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.attempt {
            self.0
                .retries
                .add(fields.endpoint.unwrap_or_else(|| meta.target().to_owned()));
        }
        let krate = meta.target().split("::").next().unwrap_or("");
        self.0
            .events
            .add(format!("{} {krate}: {}", meta.level(), fields.message));
    }
}

/// Installs the process's global subscriber: warnings and errors are counted into the returned
/// [`AppLog`] and, with `file`, also written there (with the events `RUST_LOG` selects, when
/// set; warnings and errors otherwise).
///
/// # Errors
/// When the file cannot be created or a global subscriber is already set.
pub fn install(file: Option<&std::path::Path>) -> Result<Arc<AppLog>, String> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let log = Arc::new(AppLog::default());
    let writer = file
        .map(|path| {
            std::fs::File::create(path)
                .map(std::sync::Mutex::new)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))
        })
        .transpose()?;
    let to_file = writer.map(|w| {
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(w)
            .with_filter(filter)
    });
    tracing_subscriber::registry()
        .with(CountingLayer(Arc::clone(&log)).with_filter(LevelFilter::WARN))
        .with(to_file)
        .try_init()
        .map_err(|e| format!("cannot install the log counter: {e}"))?;
    Ok(log)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn counts_warnings_and_retries() {
        let log = Arc::new(AppLog::default());
        let subscriber = tracing_subscriber::registry().with(CountingLayer(Arc::clone(&log)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                endpoint = "/v3/x",
                attempt = 1u32,
                "call failed, sending again"
            );
            tracing::warn!(
                endpoint = "/v3/x",
                attempt = 2u32,
                "call failed, sending again"
            );
            tracing::error!(detail = %"db", "order backend failed");
            tracing::info!("not counted");
        });
        assert_eq!(log.retries.get("/v3/x"), 2);
        let events = log.events.snapshot();
        assert_eq!(events.values().sum::<u64>(), 3, "{events:?}");
        assert!(
            events
                .keys()
                .any(|k| k.starts_with("ERROR ") && k.ends_with(": order backend failed"))
        );
    }
}
