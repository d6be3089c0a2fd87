//! The outcome of each check, and the report the command prints.

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The setting works.
    Ok,
    /// The setting is wrong: the message says what is wrong and how to fix it.
    Fail,
    /// Not checked: not configured, or it depends on a check that failed.
    Skip,
}

impl Status {
    /// The line's label: `ok`, `FAIL` or `skip`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Fail => "FAIL",
            Self::Skip => "skip",
        }
    }
}

/// One check's outcome: its name (e.g. `credentials`), status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The check, e.g. `credentials`, `v3_query`.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// For [`Status::Ok`] and [`Status::Skip`], what was found; for [`Status::Fail`], what is
    /// wrong, then how to fix it.
    pub message: String,
}

impl Check {
    /// A check that passed.
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            message: detail.into(),
        }
    }

    /// A check that failed: `problem` (what is wrong), then `fix` (how to fix it).
    pub fn fail(name: &'static str, problem: impl std::fmt::Display, fix: &str) -> Self {
        let problem = problem.to_string();
        let problem = problem.trim_end_matches('.');
        Self {
            name,
            status: Status::Fail,
            message: format!("{problem}. {fix}"),
        }
    }

    /// A check that was not made, and why.
    pub fn skip(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Skip,
            message: reason.into(),
        }
    }

    /// The printed line: `ok   name: detail`, `FAIL name: problem. fix`, `skip name: reason`.
    pub fn line(&self) -> String {
        format!("{:<4} {}: {}", self.status.label(), self.name, self.message)
    }
}

/// Every check's outcome, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// The check named `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The exit code: 1 when a check failed, else 0.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.failed())
    }

    /// Every line, then a summary line.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for check in &self.checks {
            text.push_str(&check.line());
            text.push('\n');
        }
        let count = |status| self.checks.iter().filter(|c| c.status == status).count();
        text.push_str(&format!(
            "{} ok, {} failed, {} skipped\n",
            count(Status::Ok),
            count(Status::Fail),
            count(Status::Skip)
        ));
        text
    }

    /// Replaces every occurrence of each of `secrets` (at least 4 characters) in the messages
    /// by `[redacted]`: a last guard, so that no secret is ever printed even if an answer
    /// echoed one.
    pub(crate) fn redact(&mut self, secrets: &[String]) {
        for check in &mut self.checks {
            for secret in secrets.iter().filter(|s| s.len() >= 4) {
                if check.message.contains(secret.as_str()) {
                    check.message = check.message.replace(secret.as_str(), "[redacted]");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_exit_codes() {
        let mut report = Report::default();
        report.checks.push(Check::ok("clock", "skew 0 s"));
        report
            .checks
            .push(Check::skip("v2_key", "WECHAT_PAY_VERSION is v3"));
        assert_eq!(report.exit_code(), 0);
        report.checks.push(Check::fail(
            "credentials",
            "WeChat rejected the secret s3cr3t.",
            "Copy it again",
        ));
        report.redact(&["s3cr3t".to_owned()]);
        assert_eq!(report.exit_code(), 1);
        assert_eq!(
            report.to_text(),
            "ok   clock: skew 0 s\n\
             skip v2_key: WECHAT_PAY_VERSION is v3\n\
             FAIL credentials: WeChat rejected the secret [redacted]. Copy it again\n\
             1 ok, 1 failed, 1 skipped\n"
        );
        assert_eq!(
            report.get("credentials").map(|c| c.status),
            Some(Status::Fail)
        );
    }
}
