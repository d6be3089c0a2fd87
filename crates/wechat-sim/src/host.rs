//! Which `Host` the `/_sim/` control routes and the console answer: a loopback address
//! (127.0.0.0/8, `::1`), `localhost`, a name under `.localhost`, or a name of `[server] hosts`.
//!
//! The cross-origin rule of [`crate::router`] compares `Origin` with `Host`, which a DNS
//! rebinding page satisfies: a page on `rebind.evil.example`, whose name its owner then points
//! at 127.0.0.1, is same-origin with its own requests to the simulator. Those requests carry
//! `Host: rebind.evil.example`, which this check refuses. Names under `.localhost` are accepted
//! because browsers resolve them to loopback themselves (RFC 6761), so no outside DNS can
//! rebind them. A request without `Host` is refused whatever its HTTP version, and so is one
//! whose request target names another host (absolute form).

use std::net::{IpAddr, Ipv6Addr};

use axum::extract::Request;
use axum::http::{header, uri::Authority};
use url::Host;

use crate::config::ServerConfig;

/// The hosts the control routes answer, besides the loopback ones.
#[derive(Debug, Default)]
pub(crate) struct AllowedHosts {
    /// `[server] hosts`, parsed (entries that do not parse never match).
    listed: Vec<Host>,
}

impl AllowedHosts {
    /// The hosts of `[server] hosts`.
    pub(crate) fn new(server: &ServerConfig) -> Self {
        Self {
            listed: server.hosts.iter().filter_map(|h| listed(h).ok()).collect(),
        }
    }

    /// Why a request to a control route is refused for its `Host`, if it is: the header is
    /// missing or names a host that is neither loopback nor listed; or the request target names
    /// such a host.
    pub(crate) fn refusal(&self, request: &Request) -> Option<String> {
        let Some(value) = request.headers().get(header::HOST) else {
            return Some(format!(
                "the /_sim/ control routes need a Host header naming {ALLOWED}"
            ));
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        if !self.allows(&text) {
            return Some(refused(&text));
        }
        let target = request.uri().authority().map(Authority::as_str);
        match target {
            Some(target) if !self.allows(target) => Some(refused(target)),
            _ => None,
        }
    }

    /// Whether `authority` (`host[:port]`, IPv6 in brackets) names an allowed host.
    fn allows(&self, authority: &str) -> bool {
        let Ok(authority) = authority.parse::<Authority>() else {
            return false;
        };
        // No user info; after the host, nothing or a port of digits.
        let port = authority.as_str().strip_prefix(authority.host());
        if !port.is_some_and(|p| {
            p.is_empty()
                || p.strip_prefix(':')
                    .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
        }) {
            return false;
        }
        let Ok(host) = Host::parse(authority.host()) else {
            return false;
        };
        loopback(&host) || self.listed.contains(&host)
    }
}

/// What the control routes answer, for the messages.
const ALLOWED: &str = "a loopback address (127.0.0.1, [::1]), localhost, a name under \
                       .localhost, or a name listed under [server] hosts in the simulator's \
                       configuration";

/// The refusal message for `host`.
fn refused(host: &str) -> String {
    let name = host
        .parse::<Authority>()
        .map_or_else(|_| host.to_owned(), |a| a.host().to_owned());
    format!(
        "Host {host:?} may not use the /_sim/ control routes or the console: they answer only \
         {ALLOWED} (this refuses pages that point their own name at the simulator: DNS \
         rebinding). Open the simulator as http://127.0.0.1:PORT or http://localhost:PORT, or \
         allow this name with [server] hosts = [{name:?}]"
    )
}

/// Whether `host` is loopback: 127.0.0.0/8, `::1` (also IPv4-mapped), `localhost` or a name
/// under `.localhost`.
fn loopback(host: &Host) -> bool {
    match host {
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).to_canonical().is_loopback(),
        Host::Domain(name) => name == "localhost" || name.ends_with(".localhost"),
    }
}

/// An entry of `[server] hosts` as a host: a name or an IP address (IPv6 with or without
/// brackets), lower-cased; no port, scheme, path or wildcard.
pub(crate) fn listed(entry: &str) -> Result<Host, &'static str> {
    if let Ok(ip) = entry.parse::<Ipv6Addr>() {
        return Ok(Host::Ipv6(ip));
    }
    if entry.contains('*') {
        return Err("is a wildcard: list each name");
    }
    if entry.is_empty() {
        return Err("is empty");
    }
    Host::parse(entry).map_err(|_| "is not a host name or IP address (no port, scheme or path)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listed: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&ServerConfig {
            hosts: listed.iter().map(|h| (*h).to_owned()).collect(),
        })
    }

    #[test]
    fn loopback_localhost_and_listed_hosts_only() {
        let allowed = hosts(&["Sim.Internal", "10.0.0.5", "fd00::1"]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9000",
            "127.255.0.1:1",
            "[::1]:9000",
            "[::1]",
            "[::ffff:127.0.0.1]:9000",
            "localhost",
            "LOCALHOST:9000",
            "shop.localhost:3000",
            "sim.internal:9000",
            "SIM.INTERNAL",
            "10.0.0.5:80",
            "[fd00::1]:9000",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for refused in [
            "rebind.evil.example",
            "rebind.evil.example:9000",
            "localhost.evil.example",
            "evil-localhost",
            "localhost.",
            "127.0.0.1.evil.example",
            "sim.internal.evil.example",
            "0.0.0.0",
            "[::]",
            "[::2]",
            "10.0.0.6",
            "user@127.0.0.1",
            "127.0.0.1:x",
            "",
            "a b",
        ] {
            assert!(!allowed.allows(refused), "{refused}");
        }
        assert!(!hosts(&[]).allows("sim.internal"));
    }

    #[test]
    fn listed_entries_are_hosts() {
        assert_eq!(
            listed("Sim.Internal"),
            Ok(Host::Domain("sim.internal".into()))
        );
        assert_eq!(listed("::1"), Ok(Host::Ipv6(Ipv6Addr::LOCALHOST)));
        assert_eq!(listed("[::1]"), Ok(Host::Ipv6(Ipv6Addr::LOCALHOST)));
        for bad in ["", "*.internal", "sim.internal:9000", "http://sim", "a/b"] {
            assert!(listed(bad).is_err(), "{bad}");
        }
    }
}
