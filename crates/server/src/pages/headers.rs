//! The security headers of every page, the operator's included: a Content-Security-Policy that
//! names the two inline scripts by their hashes, no framing, no referrer to other sites.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// The premiere countdown, an inline script (so it runs without the built assets); the CSP
/// names its hash.
pub(super) const COUNTDOWN_JS: &str = include_str!("../../templates/countdown.js");

/// The watch page's start, its other inline script: it fetches the first segments of the floor
/// rung and its sound while the player's script is still on its way (docs/ARCHITECTURE.md,
/// "The player"). The CSP names its hash too.
pub(super) const START_JS: &str = include_str!("../../templates/start.js");

/// The Content-Security-Policy of every page (CSP Level 3, W3C): scripts, styles, images,
/// fonts, fetches and media from this origin only, plus the two inline scripts by their hashes.
/// hls.js plays through Media Source Extensions (`blob:` media URLs) and transmuxes in a worker
/// it starts from a `blob:` URL, and native HLS plays a slow first visit from `blob:`
/// playlists; nothing else needs an exception. No plugins (`object-src`), no
/// `<base>` rewriting relative URLs, forms post only here, and no site may frame a page
/// (`frame-ancestors`, with `X-Frame-Options` for older browsers): no clickjacking of the
/// operator's sign-in.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = |script: &str| {
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
    };
    let (countdown, start) = (hash(COUNTDOWN_JS), hash(START_JS));
    let policy = format!(
        "default-src 'self'; script-src 'self' 'sha256-{countdown}' 'sha256-{start}'; style-src 'self'; \
         img-src 'self'; media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // Base64 and the fixed text are visible ASCII: this cannot fail, but if it did, the
    // stricter policy without the inline scripts would stand.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
    })
});

/// The security headers of every page: [`CSP`], no framing (RFC 7034), and no `Referer` to
/// other sites (`same-origin`, Referrer Policy, W3C): a film or dashboard URL is nobody else's
/// business.
pub(crate) async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
