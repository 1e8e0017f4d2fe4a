//! A span per HTTP request, so that every line logged while it is served names it:
//! `request{id, method, path}`. The id is the client's `X-Request-Id` when that is a short
//! token of plain characters (a proxy's id, say), else a fresh one; it is sent back in the
//! response's `X-Request-Id`. The path is logged without its query string, where a `?token=`
//! may be.
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

use crate::transport::state::SharedState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept.
const MAX_ID: usize = 64;

pub async fn request_span(
    State(state): State<SharedState>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| usable(id))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    // Always a valid header value (checked by `usable`, or made so).
    let value = HeaderValue::from_str(&id).ok();
    if let Some(value) = &value {
        request.headers_mut().insert(REQUEST_ID, value.clone());
    }
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    state.metrics.http_request(status);
    span.in_scope(|| {
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if status >= 500 {
            tracing::warn!(status, ms, "request failed");
        } else {
            tracing::debug!(status, ms, "request served");
        }
    });
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A request id a client may choose: 1 to 64 letters, digits, `-`, `_`, `.` or `:`; nothing a
/// log reader could mistake for another field or line.
fn usable(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::usable;

    #[test]
    fn a_client_request_id_is_kept_only_when_plain_and_short() {
        assert!(usable("abc-123_x.y:z"));
        assert!(usable(&"a".repeat(64)));
        assert!(!usable(""));
        assert!(!usable(&"a".repeat(65)));
        assert!(!usable("a b"));
        assert!(!usable("a\"b"));
        assert!(!usable("id=1 token=x"));
    }
}
