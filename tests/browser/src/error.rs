//! The one error type of this crate.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong while driving the browser.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Chromium or ChromeDriver is not on `PATH` while `CI=true` (outside CI the tests skip).
    #[error(
        "CI=true but {missing} is not on PATH: install it with \
         `apt-get install -y chromium chromium-driver fonts-noto-cjk` (the browser tests must not be skipped in CI)"
    )]
    NotInstalled {
        /// The program that was not found.
        missing: &'static str,
    },

    /// A local file or process operation failed (temporary profile, screenshot, spawning).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// ChromeDriver did not start answering `/status` in time, or exited.
    #[error("chromedriver did not start: {reason}; its output:\n{log}")]
    DriverStart {
        /// Why it is considered failed.
        reason: String,
        /// The last lines ChromeDriver printed.
        log: String,
    },

    /// An HTTP exchange with ChromeDriver failed (connection refused, timeout, bad JSON).
    #[error("WebDriver {command}: {source}")]
    Http {
        /// The WebDriver command, e.g. `POST /session/{id}/url`.
        command: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// ChromeDriver answered a command with a W3C WebDriver error.
    #[error("WebDriver {command}: {error}: {message}")]
    WebDriver {
        /// The WebDriver command, e.g. `POST /session/{id}/element`.
        command: String,
        /// The W3C error code, e.g. `no such element`, `timeout`, `javascript error`.
        error: String,
        /// ChromeDriver's message (first line).
        message: String,
    },

    /// ChromeDriver answered with JSON of an unexpected shape.
    #[error("WebDriver {command}: unexpected reply {reply}")]
    Protocol {
        /// The WebDriver command.
        command: String,
        /// The reply, shortened.
        reply: String,
    },

    /// A bounded wait ran out.
    #[error("timed out after {after:?} waiting for {what}{last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it waited.
        after: Duration,
        /// What was last seen, for the failure message (empty or starting with `; `).
        last: String,
    },

    /// A scenario's own check failed.
    #[error("{0}")]
    Check(String),

    /// A screenshot could not be written.
    #[error("cannot write screenshot {path}: {source}")]
    Screenshot {
        /// Where it was to be written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether this is ChromeDriver's `no such element` (the usual "not there yet" while polling).
    pub fn is_no_such_element(&self) -> bool {
        matches!(self, Error::WebDriver { error, .. } if error == "no such element")
    }
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fails the scenario with `message` unless `cond` holds.
///
/// # Errors
///
/// [`Error::Check`] with `message` when `cond` is false.
pub fn ensure(cond: bool, message: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(message()))
    }
}
