//! The demo's one error type.

/// Why the demo cannot start, or why the order store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    /// An environment variable (or a [`Settings`](crate::Settings) field) is invalid; the
    /// message names it and says what is expected.
    #[error("configuration: {0}")]
    Config(String),
    /// `wechat-core` refused the configuration or failed (e.g. Redis unreachable).
    #[error(transparent)]
    WeChat(#[from] wechat_core::Error),
    /// The embedded simulator's generated configuration is invalid.
    #[error("embedded wechat-sim: {0}")]
    Sim(#[from] wechat_sim::ConfigError),
    /// A file or socket operation failed; the message names what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, e.g. "cannot bind 127.0.0.1:3000".
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The SQLite order store failed.
    #[error("order database {path}: {source}")]
    Database {
        /// The database file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A blocking database task panicked or was cancelled.
    #[error("order database task failed: {0}")]
    Task(String),
}

impl From<wechat_core::ConfigError> for DemoError {
    fn from(error: wechat_core::ConfigError) -> Self {
        Self::WeChat(error.into())
    }
}

impl DemoError {
    /// An I/O error with what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// `Result` with [`DemoError`].
pub type Result<T, E = DemoError> = std::result::Result<T, E>;
