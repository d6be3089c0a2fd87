//! The simulator's `snsapi_userinfo` consent page, as the browser shows it: one form with the
//! login's hidden fields, a radio per user and the "allow" and "deny" buttons.

use url::Url;

use crate::browser::{Answer, Browser, Request};
use crate::html::Form;

/// The consent page's form, read from a page load that ended on it.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    /// Where the form posts (its `action`, resolved against the page's URL).
    pub action: Url,
    /// The form.
    pub form: Form,
}

impl ConsentPage {
    /// The consent form of `page`, or `None` when `page` is not the consent page (no "allow"
    /// button, `id="sim-consent-allow"`).
    pub fn read(page: &Answer) -> Option<Self> {
        if !page.body.contains(r#"id="sim-consent-allow""#) {
            return None;
        }
        let form = Form::parse(&page.body)?;
        let action = page.url.join(&form.action).ok()?;
        Some(Self { action, form })
    }

    /// The fields the browser posts when `openid` is chosen (`None`: the user checked on the
    /// page) and `action` (`allow` or `deny`) is pressed.
    pub fn fields(&self, openid: Option<&str>, action: &str) -> Vec<(String, String)> {
        let mut fields = self
            .form
            .submission(openid.map(|o| ("openid", o)), &[("action", action)]);
        // A user the page does not list (the radio's value is the only place openids are): the
        // choice is posted all the same, as a page script could.
        if let Some(openid) = openid {
            if !fields.iter().any(|(n, v)| n == "openid" && v == openid) {
                fields.retain(|(n, _)| n != "openid");
                fields.push(("openid".to_owned(), openid.to_owned()));
            }
        }
        fields
    }
}

impl Browser {
    /// Presses `action` (`allow` or `deny`) on the consent `page` as `openid` (`None`: the
    /// user checked on the page): the form's POST from the simulator's own page. Send it to
    /// get WeChat's redirect back to the app's callback, or follow it to the app's page.
    pub fn consent(&self, page: &ConsentPage, openid: Option<&str>, action: &str) -> Request<'_> {
        self.submit(page.action.as_str())
            .form(&page.fields(openid, action))
    }
}

impl Browser {
    /// On WeChat's authorize page (the simulator's) at `authorize_url`: where WeChat sends the
    /// browser back. `snsapi_base` redirects at once (`choice` must be `None`); `snsapi_userinfo`
    /// shows the consent page, answered with `choice`, `(openid, action)`.
    ///
    /// # Panics
    /// When the page is neither, a consent page comes without a choice or a redirect with one,
    /// or the answer is not WeChat's redirect.
    pub async fn back_from_wechat(
        &self,
        authorize_url: &str,
        choice: Option<(&str, &str)>,
    ) -> String {
        let page = self.open(authorize_url).await;
        if page.status == http::StatusCode::FOUND {
            assert!(choice.is_none(), "snsapi_base shows no consent page");
            return page.location().expect("a Location").to_owned();
        }
        assert_eq!(page.status, http::StatusCode::OK, "{page:?}");
        assert!(
            page.body.contains("sim-consent-allow") && page.body.contains("sim-consent-deny"),
            "{}",
            page.body
        );
        let (openid, action) = choice.expect("snsapi_userinfo shows a consent page");
        let form = ConsentPage::read(&page).expect("the consent form");
        let answer = self.consent(&form, Some(openid), action).send().await;
        assert_eq!(answer.status, http::StatusCode::FOUND, "{answer:?}");
        answer.location().expect("a Location").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_consent_form() {
        let body = r#"<form method="post" action="/connect/oauth2/authorize" class="card">
<input type="hidden" name="appid" value="wx1">
<input type="hidden" name="redirect_uri" value="http://127.0.0.1:1/cb?r=%2F&amp;x=1">
<label class="user"><input type="radio" name="openid" value="o1" checked>A</label>
<label class="user"><input type="radio" name="openid" value="o2">B</label>
<button type="submit" id="sim-consent-allow" name="action" value="allow">ok</button></form>"#;
        let page = Answer {
            url: Url::parse("http://127.0.0.1:9/connect/oauth2/authorize?appid=wx1").unwrap(),
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: body.to_owned(),
        };
        let consent = ConsentPage::read(&page).unwrap();
        assert_eq!(
            consent.action.as_str(),
            "http://127.0.0.1:9/connect/oauth2/authorize"
        );
        let fields = consent.fields(Some("o2"), "allow");
        assert_eq!(
            fields,
            [
                ("appid".to_owned(), "wx1".to_owned()),
                (
                    "redirect_uri".to_owned(),
                    "http://127.0.0.1:1/cb?r=%2F&x=1".to_owned()
                ),
                ("openid".to_owned(), "o2".to_owned()),
                ("action".to_owned(), "allow".to_owned()),
            ]
        );
        assert_eq!(consent.fields(None, "deny")[2].1, "o1");
        assert_eq!(consent.fields(Some("o9"), "allow").last().unwrap().1, "o9");
        let not_consent = Answer {
            body: "<p>no form</p>".to_owned(),
            ..page
        };
        assert!(ConsentPage::read(&not_consent).is_none());
    }
}
