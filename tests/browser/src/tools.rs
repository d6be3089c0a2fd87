//! Finding Chromium and ChromeDriver, and the skip rule when they are missing.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The line a browser test prints when it skips (outside CI).
pub const SKIP_HINT: &str = "install chromium and chromium-driver \
     (apt-get install chromium chromium-driver fonts-noto-cjk) to run them";

/// Browser executables tried in this order, by name on `PATH`.
const BROWSER_NAMES: &[&str] = &["chromium", "chromium-browser"];
/// The driver executable, by name on `PATH`.
const DRIVER_NAME: &str = "chromedriver";

/// The two programs the tests need, found on `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The Chromium executable (`chromium`, or `chromium-browser`).
    pub chromium: PathBuf,
    /// The ChromeDriver executable (`chromedriver`).
    pub chromedriver: PathBuf,
}

impl Tools {
    /// Looks for Chromium and ChromeDriver on `PATH`.
    ///
    /// `Ok(None)` when one is missing outside CI; the caller then skips. This prints nothing:
    /// see [`Tools::locate_or_skip`].
    ///
    /// # Errors
    ///
    /// [`Error::NotInstalled`] when one is missing and the environment has `CI=true`: CI must
    /// run the browser tests, never skip them.
    pub fn locate() -> Result<Option<Tools>> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let ci = is_ci(std::env::var_os("CI"));
        locate_in(&path, ci)
    }

    /// [`Tools::locate`], printing one line naming `test` when the test is skipped.
    ///
    /// The line goes straight to the process's stderr (not through the test harness's output
    /// capture), so `cargo test` shows it even though the test passes.
    ///
    /// # Errors
    ///
    /// As [`Tools::locate`].
    pub fn locate_or_skip(test: &str) -> Result<Option<Tools>> {
        let found = Tools::locate()?;
        if found.is_none() {
            let line = format!("browser test {test} skipped: {SKIP_HINT}\n");
            // Best effort: a closed stderr must not fail the test.
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        Ok(found)
    }
}

/// Whether the value of `CI` asks for CI behaviour (`true` or `1`, any case).
fn is_ci(value: Option<OsString>) -> bool {
    value
        .and_then(|v| v.into_string().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// [`Tools::locate`] over an explicit `PATH` value and CI flag.
fn locate_in(path: &std::ffi::OsStr, ci: bool) -> Result<Option<Tools>> {
    let chromium = BROWSER_NAMES.iter().find_map(|name| which(path, name));
    let chromedriver = which(path, DRIVER_NAME);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Ok(Some(Tools {
            chromium,
            chromedriver,
        })),
        (None, _) if ci => Err(Error::NotInstalled {
            missing: "chromium",
        }),
        (_, None) if ci => Err(Error::NotInstalled {
            missing: "chromedriver",
        }),
        _ => Ok(None),
    }
}

/// The first executable file called `name` in the directories of `path`.
fn which(path: &std::ffi::OsStr, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with fake executables `names` in it, removed on drop.
    struct FakeBin(PathBuf);

    impl FakeBin {
        fn new(tag: &str, names: &[&str]) -> FakeBin {
            use std::os::unix::fs::PermissionsExt as _;
            let dir = std::env::temp_dir()
                .join(format!("wechat-browser-tools-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            for name in names {
                let file = dir.join(name);
                std::fs::write(&file, "#!/bin/sh\n").expect("fake program");
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                    .expect("chmod");
            }
            FakeBin(dir)
        }
    }

    impl Drop for FakeBin {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn finds_both_programs() {
        let bin = FakeBin::new("both", &["chromium", "chromedriver"]);
        let found = locate_in(bin.0.as_os_str(), true)
            .expect("found")
            .expect("some");
        assert_eq!(found.chromium, bin.0.join("chromium"));
        assert_eq!(found.chromedriver, bin.0.join("chromedriver"));
    }

    #[test]
    fn falls_back_to_chromium_browser() {
        let bin = FakeBin::new("fallback", &["chromium-browser", "chromedriver"]);
        let found = locate_in(bin.0.as_os_str(), false)
            .expect("ok")
            .expect("some");
        assert_eq!(found.chromium, bin.0.join("chromium-browser"));
    }

    #[test]
    fn missing_driver_skips_outside_ci_and_fails_in_ci() {
        let bin = FakeBin::new("nodriver", &["chromium"]);
        assert_eq!(locate_in(bin.0.as_os_str(), false).expect("ok"), None);
        let err = locate_in(bin.0.as_os_str(), true).expect_err("CI must fail");
        assert!(matches!(
            err,
            Error::NotInstalled {
                missing: "chromedriver"
            }
        ));
        assert!(err.to_string().contains("apt-get install"), "{err}");
    }

    #[test]
    fn missing_browser_fails_in_ci() {
        let bin = FakeBin::new("nobrowser", &["chromedriver"]);
        let err = locate_in(bin.0.as_os_str(), true).expect_err("CI must fail");
        assert!(matches!(
            err,
            Error::NotInstalled {
                missing: "chromium"
            }
        ));
    }

    #[test]
    fn non_executable_files_do_not_count() {
        let bin = FakeBin::new("noexec", &["chromedriver"]);
        std::fs::write(bin.0.join("chromium"), "not a program").expect("write");
        assert_eq!(locate_in(bin.0.as_os_str(), false).expect("ok"), None);
    }

    #[test]
    fn ci_flag_values() {
        assert!(is_ci(Some("true".into())));
        assert!(is_ci(Some("TRUE".into())));
        assert!(is_ci(Some("1".into())));
        assert!(!is_ci(Some("false".into())));
        assert!(!is_ci(Some("".into())));
        assert!(!is_ci(None));
    }
}
