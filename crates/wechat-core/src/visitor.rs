//! Who is visiting: WeChat's in-app browser, WeChat for Windows or Mac, WeCom, or a browser
//! outside WeChat, on a phone or a desktop, read from the request headers, and the login and
//! payment each of them can use.
//!
//! WeChat's web OAuth page, the JS-SDK and JSAPI payment work only inside WeChat's browser;
//! elsewhere the OAuth page only says 请在微信客户端打开链接 and `WeixinJSBridge` does not exist.
//! A shop that serves every visitor picks the flow by the visitor:
//!
//! | visitor | log in | pay |
//! | --- | --- | --- |
//! | [`Visitor::WeChat`]: WeChat on a phone | the Official Account's web OAuth | JSAPI |
//! | [`Visitor::MiniProgram`]: a page in a mini-program's `<web-view>` | web OAuth | Native (JSAPI cannot start there) |
//! | [`Visitor::WeChatDesktop`]: WeChat for Windows or Mac | web OAuth | Native (JSAPI is not supported there) |
//! | [`Visitor::WeCom`]: WeCom (企业微信) | website QR-code login (WeCom shows Official Account OAuth pages as outside WeChat) | Native |
//! | [`Visitor::PhoneBrowser`]: another browser on a phone | none on the web: ask to open the page in WeChat, or buy as a guest | H5 |
//! | [`Visitor::DesktopBrowser`]: another browser on a computer | website QR-code login | Native |
//!
//! The User-Agent can be forged: use this to choose a flow, never as an identity or a
//! permission. What WeChat itself checks (its OAuth page, the H5 cashier) it checks again.
//!
//! ```
//! use wechat_core::visitor::{Login, Payment, Visitor};
//!
//! let wechat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
//!     (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI Language/zh_CN";
//! let visitor = Visitor::from_user_agent(wechat);
//! assert_eq!(visitor, Visitor::WeChat);
//! assert_eq!((visitor.login(), visitor.payment()), (Login::WebOAuth, Payment::Jsapi));
//!
//! let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
//!     Chrome/131.0.0.0 Safari/537.36";
//! assert_eq!(Visitor::from_user_agent(chrome).payment(), Payment::Native);
//! ```
//!
//! The tokens are WeChat's and the browsers' own: `MicroMessenger/` in every WeChat web view
//! (WeCom's too), `WindowsWechat` and `MacWechat/` in WeChat for Windows and Mac (older Mac
//! builds also end in `WindowsWechat`, so Mac is tested first), `wxwork/` in WeCom,
//! `miniProgram` in a mini-program's web view, and `Mobi`, `Android`, `iPhone`, `iPod` or the
//! client hint `Sec-CH-UA-Mobile: ?1` for a phone. An iPad's Safari presents itself as a Mac
//! and is taken for a desktop.

use http::HeaderMap;

/// What kind of browser a request comes from, as far as WeChat's flows care. See the
/// [module documentation](self) for the login and payment of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Visitor {
    /// WeChat's in-app browser on a phone (iOS, Android, HarmonyOS): web OAuth, the JS-SDK and
    /// JSAPI payment work.
    WeChat,
    /// A page inside a mini-program's `<web-view>` (WeChat on a phone): web OAuth works, but
    /// the web-view JS-SDK has no payment; a shop pays there with Native or by handing off to
    /// a page of its mini-program.
    MiniProgram,
    /// WeChat for Windows or Mac: web OAuth works; JSAPI payment does not, Native does (the
    /// buyer scans with the phone).
    WeChatDesktop(DesktopWeChat),
    /// WeCom (企业微信), on a phone or a computer: it opens Official Account OAuth pages as a
    /// browser outside WeChat does (请在微信客户端打开链接), and refuses H5 payment as WeChat does.
    WeCom,
    /// A browser outside WeChat on a phone or an Android tablet: no WeChat web login; H5
    /// payment sends the buyer to the WeChat app.
    PhoneBrowser,
    /// A browser outside WeChat on a computer (and an iPad's Safari, which presents itself as
    /// a Mac): website QR-code login and Native payment.
    DesktopBrowser,
}

/// Which WeChat for desktops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DesktopWeChat {
    /// WeChat for Windows (`WindowsWechat`).
    Windows,
    /// WeChat for Mac (`MacWechat/`).
    Mac,
}

/// How a visitor can log in with WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Login {
    /// The Official Account's web OAuth (`snsapi_base` or `snsapi_userinfo`), inside WeChat.
    WebOAuth,
    /// Website QR-code login (`qrconnect`, `snsapi_login`) with an Open Platform website
    /// application: the visitor scans a QR code with WeChat on a phone.
    WebsiteQrCode,
    /// None on the web: a phone browser outside WeChat cannot show WeChat's login. Ask the
    /// visitor to open the page in WeChat, or let them buy as a guest.
    OpenInWeChat,
}

/// How a visitor can pay with WeChat Pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Payment {
    /// JSAPI: the page calls `getBrandWCPayRequest` inside WeChat; needs the buyer's openid
    /// under the order's app id.
    Jsapi,
    /// Native: the page shows the order's `code_url` as a QR code that the buyer scans with
    /// WeChat; no openid needed.
    Native,
    /// H5: the phone browser is sent to WeChat Pay's cashier page, which opens the WeChat app;
    /// needs the H5 product and the page's domain configured on the merchant platform.
    H5,
}

impl Visitor {
    /// The visitor of a request: its `User-Agent`, and the `Sec-CH-UA-Mobile` client hint when
    /// a Chromium browser sends it. A request without a User-Agent is a desktop browser; bytes
    /// that are not UTF-8 are replaced, the rest is read.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let user_agent = headers
            .get(http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default();
        let mobile_hint = headers
            .get("sec-ch-ua-mobile")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim() == "?1");
        Self::classify(&user_agent, mobile_hint)
    }

    /// The visitor of a `User-Agent` string alone.
    pub fn from_user_agent(user_agent: &str) -> Self {
        Self::classify(user_agent, None)
    }

    fn classify(user_agent: &str, mobile_hint: Option<bool>) -> Self {
        let ua = user_agent.to_ascii_lowercase();
        let has = |token: &str| ua.contains(token);
        if has("wxwork/") {
            return Self::WeCom;
        }
        if has("micromessenger") {
            if has("miniprogram") {
                return Self::MiniProgram;
            }
            // Older WeChat for Mac also ends in `WindowsWechat`: Mac first.
            if has("macwechat") {
                return Self::WeChatDesktop(DesktopWeChat::Mac);
            }
            if has("windowswechat") {
                return Self::WeChatDesktop(DesktopWeChat::Windows);
            }
            return Self::WeChat;
        }
        let phone = mobile_hint.unwrap_or(false)
            || has("mobi")
            || has("android")
            || has("iphone")
            || has("ipod")
            || has("openharmony");
        if phone {
            Self::PhoneBrowser
        } else {
            Self::DesktopBrowser
        }
    }

    /// Whether this is one of WeChat's own browsers (phone, mini-program web view, Windows,
    /// Mac), where the Official Account's web OAuth works. WeCom is not.
    pub fn is_wechat(self) -> bool {
        matches!(
            self,
            Self::WeChat | Self::MiniProgram | Self::WeChatDesktop(_)
        )
    }

    /// Whether the visitor is on a phone (WeChat or WeCom on a phone cannot be told from WeChat
    /// on a tablet; WeCom says nothing about the device and counts as not).
    pub fn is_phone(self) -> bool {
        matches!(self, Self::WeChat | Self::MiniProgram | Self::PhoneBrowser)
    }

    /// How this visitor logs in with WeChat.
    pub fn login(self) -> Login {
        match self {
            Self::WeChat | Self::MiniProgram | Self::WeChatDesktop(_) => Login::WebOAuth,
            Self::WeCom | Self::DesktopBrowser => Login::WebsiteQrCode,
            Self::PhoneBrowser => Login::OpenInWeChat,
        }
    }

    /// How this visitor pays.
    pub fn payment(self) -> Payment {
        match self {
            Self::WeChat => Payment::Jsapi,
            Self::PhoneBrowser => Payment::H5,
            Self::MiniProgram | Self::WeChatDesktop(_) | Self::WeCom | Self::DesktopBrowser => {
                Payment::Native
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real User-Agent strings of each kind (WeChat's from the protocol reference and public
    /// code; the browsers' as they send them today).
    const CASES: &[(&str, &str, Visitor)] = &[
        (
            "WeChat, iOS",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 9_1 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Mobile/12H321 MicroMessenger/6.3.6 NetType/WIFI Language/zh_CN",
            Visitor::WeChat,
        ),
        (
            "WeChat 8, iOS 17",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800323d) NetType/WIFI Language/zh_CN",
            Visitor::WeChat,
        ),
        (
            "WeChat, Android",
            "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220133 MMWEBSDK/20240404 MMWEBID/2307 MicroMessenger/8.0.47.2560(0x28002F51) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
            Visitor::WeChat,
        ),
        (
            "mini-program web-view, Android",
            "Mozilla/5.0 (Linux; Android 14; 23127PN0CC Build/UKQ1.230804.001; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.120 Mobile Safari/537.36 XWEB/1220133 MMWEBSDK/20240404 MMWEBID/2307 MicroMessenger/8.0.47.2560(0x28002F51) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64 miniProgram/wxdfcaa44b1aa891a7",
            Visitor::MiniProgram,
        ),
        (
            "mini-program web-view, iOS",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN miniProgram",
            Visitor::MiniProgram,
        ),
        (
            "WeChat for Windows",
            "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090a13) XWEB/9129 Flue",
            Visitor::WeChatDesktop(DesktopWeChat::Windows),
        ),
        (
            "WeChat for Windows, QBCore",
            "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/53.0.2785.116 Safari/537.36 QBCore/3.43.901.400 QQBrowser/9.0.2524.400 MicroMessenger/6.5.2.501 NetType/WIFI WindowsWechat",
            Visitor::WeChatDesktop(DesktopWeChat::Windows),
        ),
        (
            "WeChat for Mac, ending in WindowsWechat",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.0.1(0x13000110) NetType/WIFI WindowsWechat",
            Visitor::WeChatDesktop(DesktopWeChat::Mac),
        ),
        (
            "WeCom, iOS",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 10_2 like Mac OS X) AppleWebKit/602.3.12 (KHTML, like Gecko) Mobile/14C92 wxwork/2.4.2 MicroMessenger/6.3.22 Language/zh",
            Visitor::WeCom,
        ),
        (
            "WeCom, Windows",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36 wxwork/4.1.22 (MicroMessenger/6.2) WindowsWechat MailPlugin_Electron WeMail embeddisk",
            Visitor::WeCom,
        ),
        (
            "Safari, iPhone",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            Visitor::PhoneBrowser,
        ),
        (
            "Chrome, Android",
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            Visitor::PhoneBrowser,
        ),
        (
            "Chrome, Android tablet",
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Visitor::PhoneBrowser,
        ),
        (
            "Firefox, Android",
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            Visitor::PhoneBrowser,
        ),
        (
            "QQ Browser, Android",
            "Mozilla/5.0 (Linux; U; Android 13; zh-cn; PHB110 Build/TP1A.220905.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/109.0.5414.86 MQQBrowser/14.8 Mobile Safari/537.36 COVC/046713",
            Visitor::PhoneBrowser,
        ),
        (
            "Chrome, Windows",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            Visitor::DesktopBrowser,
        ),
        (
            "Safari, Mac",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            Visitor::DesktopBrowser,
        ),
        (
            "Firefox, Linux",
            "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            Visitor::DesktopBrowser,
        ),
        (
            "Edge, Windows",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            Visitor::DesktopBrowser,
        ),
        ("no User-Agent", "", Visitor::DesktopBrowser),
    ];

    #[test]
    fn real_user_agents_are_told_apart() {
        for (name, user_agent, expected) in CASES {
            assert_eq!(Visitor::from_user_agent(user_agent), *expected, "{name}");
            let mut headers = HeaderMap::new();
            if !user_agent.is_empty() {
                headers.insert(http::header::USER_AGENT, user_agent.parse().unwrap());
            }
            assert_eq!(Visitor::from_headers(&headers), *expected, "{name}");
        }
    }

    #[test]
    fn each_visitor_gets_a_login_and_a_payment_that_work_for_it() {
        let table = [
            (Visitor::WeChat, Login::WebOAuth, Payment::Jsapi),
            (Visitor::MiniProgram, Login::WebOAuth, Payment::Native),
            (
                Visitor::WeChatDesktop(DesktopWeChat::Windows),
                Login::WebOAuth,
                Payment::Native,
            ),
            (
                Visitor::WeChatDesktop(DesktopWeChat::Mac),
                Login::WebOAuth,
                Payment::Native,
            ),
            (Visitor::WeCom, Login::WebsiteQrCode, Payment::Native),
            (Visitor::PhoneBrowser, Login::OpenInWeChat, Payment::H5),
            (
                Visitor::DesktopBrowser,
                Login::WebsiteQrCode,
                Payment::Native,
            ),
        ];
        for (visitor, login, payment) in table {
            assert_eq!(visitor.login(), login, "{visitor:?}");
            assert_eq!(visitor.payment(), payment, "{visitor:?}");
            // JSAPI only inside WeChat's browser; web OAuth only in WeChat's own browsers.
            assert_eq!(
                payment == Payment::Jsapi,
                visitor == Visitor::WeChat,
                "{visitor:?}"
            );
            assert_eq!(login == Login::WebOAuth, visitor.is_wechat(), "{visitor:?}");
        }
    }

    #[test]
    fn the_mobile_client_hint_marks_a_phone() {
        // Chrome's reduced User-Agent on some devices, with the hint saying "mobile".
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
                .parse()
                .unwrap(),
        );
        assert_eq!(Visitor::from_headers(&headers), Visitor::DesktopBrowser);
        headers.insert("sec-ch-ua-mobile", "?1".parse().unwrap());
        assert_eq!(Visitor::from_headers(&headers), Visitor::PhoneBrowser);
        headers.insert("sec-ch-ua-mobile", "?0".parse().unwrap());
        assert_eq!(Visitor::from_headers(&headers), Visitor::DesktopBrowser);
    }

    #[test]
    fn a_long_or_odd_user_agent_is_still_read() {
        let long = "a".repeat(64 * 1024) + " MicroMessenger/8.0";
        assert_eq!(Visitor::from_user_agent(&long), Visitor::WeChat);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::USER_AGENT,
            http::HeaderValue::from_bytes(b"\xff\xfe MicroMessenger").unwrap(),
        );
        // Not UTF-8: the rest of it is still read.
        assert_eq!(Visitor::from_headers(&headers), Visitor::WeChat);
    }
}
