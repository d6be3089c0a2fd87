//! The ChromeDriver child process and the temporary folder it and Chromium use.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How long ChromeDriver may take to answer `/status` with `ready: true`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often `/status` is polled while it starts.
const START_POLL: Duration = Duration::from_millis(50);
/// How many ports are tried when ChromeDriver exits at once (usually: port taken meanwhile).
const START_ATTEMPTS: usize = 3;
/// Bound on each step of the blocking clean-up (connect, write, read).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many trailing bytes of ChromeDriver's output go into error messages.
const LOG_TAIL: usize = 4000;

/// A folder under the system's temporary directory, removed (with its content) on drop.
///
/// Browsers get their fresh profile in one; tests can put a demo's database in another.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a new, empty, uniquely named folder `<prefix>-<pid>-<n>-<nanos>`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be created.
    pub fn new(prefix: &str) -> Result<TempDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id()));
        // `create_dir` (not `_all`) fails if it exists: the folder is ours alone.
        std::fs::create_dir(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(TempDir(path))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover folder in /tmp is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running ChromeDriver listening on `127.0.0.1:port`, killed on drop.
///
/// Its output goes to `chromedriver.log` in a temporary folder that also holds Chromium's
/// fresh profile (`profile/`); the folder is removed on drop, after ChromeDriver has exited.
#[derive(Debug)]
pub(crate) struct DriverProcess {
    child: Child,
    port: u16,
    /// The session to end on drop (set once created).
    session_id: Option<String>,
    /// Holds `chromedriver.log` and `profile/`; declared last so it is removed last.
    dir: TempDir,
}

impl DriverProcess {
    /// Starts `chromedriver` on a free port and waits until it is ready.
    pub(crate) async fn start(chromedriver: &Path) -> Result<DriverProcess> {
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            match DriverProcess::start_once(chromedriver).await {
                Ok(driver) => return Ok(driver),
                Err(e @ Error::DriverStart { .. }) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| Error::DriverStart {
            reason: "no attempt was made".to_owned(),
            log: String::new(),
        }))
    }

    async fn start_once(chromedriver: &Path) -> Result<DriverProcess> {
        let dir = TempDir::new("wechat-browser")?;
        let log_path = dir.path().join("chromedriver.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Error::io(format!("create {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io("duplicate the log file handle", e))?;
        let port = free_port()?;
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| Error::io(format!("spawn {}", chromedriver.display()), e))?;
        let mut driver = DriverProcess {
            child,
            port,
            session_id: None,
            dir,
        };
        driver.wait_ready().await?;
        Ok(driver)
    }

    /// Polls `GET /status` until ChromeDriver says `ready`, it exits, or the time is up.
    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|source| Error::Http {
                command: "build client".to_owned(),
                source,
            })?;
        let url = format!("{}/status", self.url());
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.start_error(format!("it exited with {status}")));
            }
            if status_ready(&client, &url).await {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(self.start_error(format!(
                    "no ready /status on port {} within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            tokio::time::sleep(START_POLL).await;
        }
    }

    fn start_error(&self, reason: String) -> Error {
        Error::DriverStart {
            reason,
            log: self.log_tail(),
        }
    }

    /// The last part of ChromeDriver's output (for error messages).
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read(self.dir.path().join("chromedriver.log"))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_owned()
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A fresh folder for Chromium's `--user-data-dir`, inside this driver's temporary folder.
    pub(crate) fn profile_dir(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("profile");
        std::fs::create_dir(&path)
            .map_err(|e| Error::io(format!("create {}", path.display()), e))?;
        Ok(path)
    }

    /// Remembers the session, so that drop ends it (and Chromium with it).
    pub(crate) fn set_session(&mut self, id: String) {
        self.session_id = Some(id);
    }

    /// Forgets the session (after it was ended properly).
    pub(crate) fn clear_session(&mut self) {
        self.session_id = None;
    }

    /// Ends the session with a blocking `DELETE /session/{id}`, bounded by [`CLEANUP_TIMEOUT`].
    ///
    /// Plain `std::net`, because drop cannot await.
    fn delete_session_blocking(&self, id: &str) -> std::io::Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, CLEANUP_TIMEOUT)?;
        stream.set_read_timeout(Some(CLEANUP_TIMEOUT))?;
        stream.set_write_timeout(Some(CLEANUP_TIMEOUT))?;
        write!(
            stream,
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.port
        )?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply)?;
        Ok(())
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        if let Some(id) = self.session_id.take() {
            // Quits Chromium; if it fails, killing ChromeDriver closes Chromium's pipe and it
            // exits on its own.
            let _ = self.delete_session_blocking(&id);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET url` answers JSON with `value.ready == true`.
async fn status_ready(client: &reqwest::Client, url: &str) -> bool {
    match client.get(url).send().await {
        Ok(resp) => resp
            .json::<serde_json::Value>()
            .await
            .is_ok_and(|body| body["value"]["ready"] == serde_json::Value::Bool(true)),
        Err(_) => false,
    }
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("bind 127.0.0.1:0 to find a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("read the free port", e))?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_unique_and_removed() {
        let a = TempDir::new("wechat-browser-test").expect("a");
        let b = TempDir::new("wechat-browser-test").expect("b");
        assert_ne!(a.path(), b.path());
        let path = a.path().to_path_buf();
        std::fs::write(path.join("f"), "x").expect("write");
        drop(a);
        assert!(!path.exists());
        assert!(b.path().is_dir());
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(free_port().expect("port"), 0);
    }

    #[tokio::test]
    async fn a_driver_that_exits_at_once_is_reported_with_its_output() {
        let dir = TempDir::new("wechat-browser-fake").expect("dir");
        let fake = dir.path().join("chromedriver");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'cannot start: fake driver'\nexit 3\n",
        )
        .expect("write");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let err = DriverProcess::start(&fake).await.expect_err("must fail");
        let text = err.to_string();
        assert!(text.contains("exited"), "{text}");
        assert!(text.contains("cannot start: fake driver"), "{text}");
    }
}
