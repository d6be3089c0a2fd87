//! Where screenshots go: `target/browser-screenshots/<scenario>.png`, and `docs/` for the README.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The folder under the target directory that holds the scenarios' screenshots.
pub const SCREENSHOT_DIR: &str = "browser-screenshots";

/// The workspace root (two levels above this package's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root when
/// relative), otherwise `target/` in the workspace root.
pub fn target_dir() -> PathBuf {
    target_dir_from(std::env::var_os("CARGO_TARGET_DIR"), &workspace_root())
}

fn target_dir_from(var: Option<OsString>, root: &Path) -> PathBuf {
    match var.filter(|v| !v.is_empty()) {
        Some(dir) => root.join(dir), // `join` keeps an absolute path as it is
        None => root.join("target"),
    }
}

/// The path of scenario `name`'s screenshot; `name` is reduced to `[A-Za-z0-9_-]`.
pub fn screenshot_path(name: &str) -> PathBuf {
    target_dir()
        .join(SCREENSHOT_DIR)
        .join(format!("{}.png", file_stem(name)))
}

/// `name` with every character outside `[A-Za-z0-9_-]` replaced by `_` (never empty).
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "screenshot".to_owned()
    } else {
        stem
    }
}

/// Writes `png` to `path`, creating its folder.
///
/// # Errors
///
/// [`Error::Screenshot`] when the folder or the file cannot be written.
pub fn write_png(path: &Path, png: &[u8]) -> Result<()> {
    let fail = |source| Error::Screenshot {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    std::fs::write(path, png).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_rules() {
        let root = Path::new("/ws");
        assert_eq!(target_dir_from(None, root), Path::new("/ws/target"));
        assert_eq!(
            target_dir_from(Some("".into()), root),
            Path::new("/ws/target")
        );
        assert_eq!(
            target_dir_from(Some("/elsewhere/t".into()), root),
            Path::new("/elsewhere/t")
        );
        assert_eq!(
            target_dir_from(Some("build/t".into()), root),
            Path::new("/ws/build/t")
        );
    }

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("workspace Cargo.toml");
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn screenshot_names_are_safe() {
        assert_eq!(file_stem("axum/login ok"), "axum_login_ok");
        assert_eq!(file_stem("../x"), "___x");
        assert_eq!(file_stem(""), "screenshot");
        let path = screenshot_path("actix-pay_confirm");
        assert!(path.ends_with("browser-screenshots/actix-pay_confirm.png"));
    }
}
