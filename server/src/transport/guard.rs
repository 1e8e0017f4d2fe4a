//! Who may reach the server at all, checked on every request before any handler runs.
//!
//! **Desktop mode** trusts whoever connects, so it must make sure the caller is a program of
//! this machine's user and not a web page the user happens to have open:
//! - the `Host` header must name this machine (`localhost`, `127.x.x.x`, `[::1]`, with or
//!   without a port) or the exact address the server was told to bind; anything else is a DNS
//!   rebinding attempt (403 `FORBIDDEN_HOST`). With `--allow-remote-desktop` any Host passes.
//! - an `Origin` header, when present (browsers send it on WebSocket handshakes and on
//!   cross-origin POSTs), must be the server's own origin, a loopback origin, or one listed with
//!   `--allowed-origin` (403 `FORBIDDEN_ORIGIN`). Programs that are not browsers send no Origin
//!   and pass.
//!
//! **Token mode** serves any Host (it is meant to be reached by name from other machines and a
//! token is required anyway), but the Origin rule holds for `/ws` and `/admin`: a WebSocket
//! handshake carries `?token=` or cookies a page could borrow, and server administration must
//! never be one cross-site request away. REST under `/api/v1` needs a bearer header, which a
//! foreign page cannot make a browser attach, so its Origin is left to CORS.
//!
//! Every mode also limits REST requests per client (see [`rest_rate_limit`]).
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{is_loopback_name, AuthMode, Config};
use crate::transport::limits::{Clock, RateLimiter};
use crate::transport::state::SharedState;

/// Whether `ip` is this machine, including IPv4 callers of an IPv6 socket (`::ffff:127.0.0.1`,
/// which `IpAddr::is_loopback` does not count).
pub fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

/// The host part of a `Host` header value (`name`, `1.2.3.4`, `[::1]`), without its port.
fn host_part(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// Whether the server answers to `host` (a Host header value) in desktop mode.
pub fn host_allowed(config: &Config, host: &str) -> bool {
    if config.allow_remote_desktop {
        return true;
    }
    let name = host_part(host);
    if is_loopback_name(name) {
        return true;
    }
    let bound = host_part(&config.host);
    let wildcard = bound.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    !wildcard && !bound.is_empty() && name.eq_ignore_ascii_case(bound)
}

/// Whether a request with this `Origin` (and `Host`) may go on: same-origin, a loopback origin,
/// or one of `--allowed-origin`. `null` (sandboxed frames, file: pages) is foreign.
pub fn origin_allowed(config: &Config, origin: &str, host: Option<&str>) -> bool {
    let origin = origin.trim().trim_end_matches('/');
    if config
        .allowed_origins
        .iter()
        .any(|o| o.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return false;
    }
    if authority.contains(['/', '@']) {
        return false;
    }
    host.is_some_and(|h| h.trim().eq_ignore_ascii_case(authority))
        || is_loopback_name(host_part(authority))
}

/// Why a request is refused before it reaches a handler, if it is: the error code and message
/// of a 403.
pub fn check(
    config: &Config,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), (&'static str, String)> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let desktop = config.auth == AuthMode::Desktop;
    if desktop && !host.is_some_and(|h| host_allowed(config, h)) {
        return Err((
            "FORBIDDEN_HOST",
            format!(
                "Host {:?} is not this machine; a desktop-mode server answers to localhost only",
                host.unwrap_or_default()
            ),
        ));
    }
    let guarded = desktop || path == "/ws" || path == "/admin" || path.starts_with("/admin/");
    if guarded {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| origin_allowed(config, o, host));
            if !allowed {
                return Err((
                    "FORBIDDEN_ORIGIN",
                    format!(
                        "Origin {:?} may not use this server (allow it with --allowed-origin)",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The Host and Origin rules (see the module documentation), as middleware for every route.
pub async fn host_and_origin(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    match check(&state.config, request.uri().path(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err((code, message)) => {
            state.metrics.refused(crate::metrics::Refused::HostOrOrigin);
            tracing::info!(path = %request.uri().path(), host = ?request.headers().get(header::HOST),
                origin = ?request.headers().get(header::ORIGIN), "request refused by the Host/Origin rules");
            error(StatusCode::FORBIDDEN, code, message)
        }
    }
}

/// Clients idle this long have a full bucket again and are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Past this many clients, idle ones are swept out (at most once a second).
const SWEEP_AT: usize = 10_000;
/// Past this many clients active at once the buckets start over: memory stays bounded even
/// against an attacker with addresses to spare (the limit is then briefly lenient).
const MAX_CLIENTS: usize = 100_000;

/// Token buckets for REST, one per client: a user in token mode (when the bearer token
/// verifies), else the peer's IP address (an IPv6 peer's /64, which one host usually owns).
#[derive(Default)]
pub struct RestLimiter {
    /// What the buckets read the time from.
    pub clock: Clock,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    clients: HashMap<String, (RateLimiter, Instant)>,
    swept: Option<Instant>,
}

impl RestLimiter {
    /// Takes a token for `client`, if it has one.
    pub fn allow(&self, client: &str, per_sec: u32, burst: u32) -> bool {
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Buckets { clients, swept } = &mut *buckets;
        if clients.len() >= SWEEP_AT && swept.is_none_or(|t| now.duration_since(t).as_secs() >= 1) {
            clients.retain(|_, (_, last)| now.duration_since(*last) < FORGET_AFTER);
            *swept = Some(now);
        }
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        let (bucket, last) = clients
            .entry(client.to_string())
            .or_insert_with(|| (RateLimiter::new(per_sec, burst, now), now));
        *last = now;
        bucket.allow(now)
    }
}

/// The rate-limit key of a peer address.
fn peer_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        v4 => format!("ip:{v4}"),
    }
}

/// REST requests over the client's rate: 429 RATE_LIMITED with Retry-After. WebSocket frames
/// have their own bucket per connection (see `ws`), so `/ws` is not counted here.
pub async fn rest_rate_limit(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    if config.rest_rate_limit_per_sec == 0 || request.uri().path() == "/ws" {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| peer_key(c.0.ip()));
    let user = match config.auth {
        AuthMode::Token => crate::auth::identify(config, request.headers(), None, None, false)
            .ok()
            .map(|i| format!("user:{}", i.user_id)),
        AuthMode::Desktop => None,
    };
    let client = user.unwrap_or_else(|| peer.unwrap_or_else(|| "ip:unknown".into()));
    let allowed = state.rest_limiter.allow(
        &client,
        config.rest_rate_limit_per_sec,
        config.rest_rate_limit_burst,
    );
    match allowed {
        true => next.run(request).await,
        false => {
            state.metrics.rest_rate_limited.increment(1);
            // At one token a second or more, the next one is less than a second away.
            let wait = 1u64;
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!(
                    "Rate limit exceeded: at most {} requests per second (bursts of {}); retry after {wait} s",
                    config.rest_rate_limit_per_sec, config.rest_rate_limit_burst
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desktop() -> Config {
        Config::for_data_dir("/tmp/x")
    }

    #[test]
    fn loopback_includes_ipv4_mapped_addresses() {
        assert!(is_loopback("::ffff:127.0.0.1".parse().unwrap()));
        assert!(is_loopback("::1".parse().unwrap()));
        assert!(is_loopback("127.0.0.2".parse().unwrap()));
        assert!(!is_loopback("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!is_loopback("192.168.0.1".parse().unwrap()));
    }

    #[test]
    fn rest_clients_are_keyed_by_address_or_ipv6_prefix_and_forgotten() {
        assert_eq!(peer_key("::ffff:10.0.0.1".parse().unwrap()), "ip:10.0.0.1");
        assert_eq!(
            peer_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            peer_key("2001:db8:1:2:bbbb::2".parse().unwrap())
        );
        let limiter = RestLimiter::default();
        assert!(limiter.allow("a", 1, 1));
        assert!(!limiter.allow("a", 1, 1));
        assert!(limiter.allow("b", 1, 1), "a bucket per client");
        for i in 0..MAX_CLIENTS + 10 {
            limiter.allow(&i.to_string(), 1, 1);
        }
        let held = limiter.buckets.lock().unwrap().clients.len();
        assert!(held <= MAX_CLIENTS, "{held} buckets");
    }

    #[test]
    fn desktop_mode_answers_to_this_machine_only() {
        let c = desktop();
        for ok in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "127.9.9.9:80",
            "[::1]",
            "[::1]:443",
        ] {
            assert!(host_allowed(&c, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "10.0.0.1",
            "localhost.evil.example",
            "[::2]:1",
            "",
        ] {
            assert!(!host_allowed(&c, bad), "{bad}");
        }
        let mut lan = desktop();
        lan.host = "192.168.1.5".into();
        assert!(host_allowed(&lan, "192.168.1.5:3000"));
        assert!(!host_allowed(&lan, "evil.example"));
        lan.host = "0.0.0.0".into();
        assert!(
            !host_allowed(&lan, "0.0.0.0"),
            "a wildcard bind names no host"
        );
        lan.allow_remote_desktop = true;
        assert!(host_allowed(&lan, "evil.example"));
    }

    #[test]
    fn origins_are_same_origin_loopback_or_configured() {
        let mut c = desktop();
        let host = Some("127.0.0.1:5000");
        assert!(origin_allowed(&c, "http://127.0.0.1:5000", host));
        assert!(origin_allowed(&c, "https://127.0.0.1:5000", host));
        assert!(origin_allowed(&c, "http://localhost:3000", host));
        assert!(origin_allowed(&c, "http://[::1]:3000", host));
        assert!(!origin_allowed(&c, "http://evil.example", host));
        assert!(!origin_allowed(&c, "null", host));
        assert!(!origin_allowed(&c, "file://", host));
        assert!(!origin_allowed(&c, "http://127.0.0.1@evil.example", host));
        c.allowed_origins = vec!["https://board.example/".into()];
        assert!(origin_allowed(&c, "https://board.example", host));
        assert!(origin_allowed(
            &c,
            "https://board.example",
            Some("pm.lan:80")
        ));
        assert!(origin_allowed(&c, "http://pm.lan:80", Some("pm.lan:80")));
    }

    #[test]
    fn token_mode_guards_origin_on_ws_and_admin_only() {
        let mut c = desktop();
        c.auth = AuthMode::Token;
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("pm.example.com"));
        assert!(check(&c, "/api/v1/projects", &h).is_ok(), "any Host");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(check(&c, "/api/v1/projects", &h).is_ok());
        assert!(check(&c, "/ws", &h).is_err());
        assert!(check(&c, "/admin/shutdown", &h).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://pm.example.com"),
        );
        assert!(check(&c, "/ws", &h).is_ok(), "same origin");
    }
}
