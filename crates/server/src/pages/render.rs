//! What every page shares: its frame ([`Chrome`]), JSON for its scripts, rendering with the
//! caching and language headers, and the error pages (RFC 9110 §15.5, §15.6).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use super::page_headers;
use crate::i18n::{Locale, Messages};
use crate::search::MAX_QUERY_CHARS;
use crate::{ApiError, AppState};

/// What every page's frame needs: language, stylesheet, icons, the language switch, the
/// search box.
#[derive(Debug)]
pub struct Chrome {
    pub lang: &'static str,
    pub css: String,
    /// The viewer pages' script (continue watching, share), for the pages that use it.
    pub js: String,
    pub icon_svg: String,
    pub apple_icon: String,
    /// What the search box shows: the query on the search page, else nothing.
    pub query: String,
    pub max_query: usize,
    /// The same page in the other language (a plain link: works without JavaScript).
    pub switch_href: String,
    pub switch_text: &'static str,
    pub switch_label: &'static str,
    pub switch_lang: &'static str,
}

impl Chrome {
    /// The frame of the page at `path`, which may carry a query (the switch adds `lang`).
    pub fn new(state: &AppState, locale: Locale, path: &str) -> Self {
        let other = locale.lang.other();
        let join = if path.contains('?') { '&' } else { '?' };
        Self {
            lang: locale.lang.code(),
            css: state.assets.url("site.css"),
            js: state.assets.url("site.js"),
            icon_svg: state.assets.url("icon.svg"),
            apple_icon: state.assets.url("apple-touch-icon.png"),
            query: String::new(),
            max_query: MAX_QUERY_CHARS,
            switch_href: format!("{path}{join}lang={}", other.code()),
            switch_text: locale.lang.messages().switch_to.as_str(),
            switch_label: locale.lang.messages().switch_label.as_str(),
            switch_lang: other.code(),
        }
    }
}

/// JSON for a `<script type="application/json">` or JSON-LD block: `<` is escaped so no
/// string can close the script element.
pub fn script_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    t: &'static Messages,
    c: Chrome,
    title: &'static str,
    text: String,
}

pub(super) fn render(template: &impl Template, locale: Locale) -> Result<Response, ApiError> {
    let html = template
        .render()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    // Pages depend on the language cookie: shared caches must keep them apart.
    headers.insert(header::VARY, HeaderValue::from_static("Cookie"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if locale.switched
        && let Ok(cookie) = HeaderValue::from_str(&locale.cookie())
    {
        headers.insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// A page in the viewer's language for an error (RFC 9110 §15.5, §15.6), with the error's
/// status and a link back to the catalog. A client error says what was wrong when it is the
/// viewer's to fix (400); a server error says nothing of its cause, which goes to the log.
/// Cached as briefly as the API's errors (5 s), server errors not at all.
pub(super) fn error_page(state: &AppState, locale: Locale, uri: &Uri, error: ApiError) -> Response {
    let status = error.status();
    let t = locale.lang.messages();
    let (title, text) = if status == StatusCode::NOT_FOUND {
        (&t.not_found_title, t.not_found_text.clone())
    } else if status.is_client_error() {
        (&t.bad_request_title, error.to_string())
    } else {
        tracing::error!(error = %error, path = uri.path(), "page failed");
        (&t.server_error_title, t.server_error_text.clone())
    };
    let page = ErrorPage {
        t,
        c: Chrome::new(state, locale, safe_path(uri)),
        title,
        text,
    };
    let Ok(mut response) = render(&page, locale) else {
        return error.into_response();
    };
    *response.status_mut() = status;
    let cache = if status.is_server_error() {
        "no-store"
    } else {
        "max-age=5"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The request's path for the error page's language switch, or `/` when it could be read as
/// another site (`//host`, `/\host`: WHATWG URL parsing treats `\` as `/`).
fn safe_path(uri: &Uri) -> &str {
    let path = uri.path();
    let rest = path.strip_prefix('/').unwrap_or("/");
    if rest.starts_with(['/', '\\']) || !path.starts_with('/') {
        "/"
    } else {
        path
    }
}

/// A page handler's answer: the page, or its error as a page.
pub(super) fn page_or_error(
    state: &AppState,
    locale: Locale,
    uri: &Uri,
    page: Result<Response, ApiError>,
) -> Response {
    page.unwrap_or_else(|e| error_page(state, locale, uri, e))
}

/// Whatever no route matched: a 404 page, except under the JSON APIs and media, whose clients
/// read the JSON error contract (`ApiError`).
pub(crate) async fn fallback(State(state): State<AppState>, locale: Locale, uri: Uri) -> Response {
    let path = uri.path();
    let not_found = ApiError::NotFound(format!("nothing at `{path}`"));
    if ["/api/", "/admin/api/", "/media/"]
        .iter()
        .any(|prefix| path.starts_with(prefix) || path == prefix.trim_end_matches('/'))
    {
        return not_found.into_response();
    }
    page_headers(error_page(&state, locale, &uri, not_found)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_page_switch_never_links_to_another_site() {
        for (uri, path) in [
            ("/films/typo", "/films/typo"),
            ("/", "/"),
            ("//evil.example/x", "/"),
            ("/%5Cevil.example", "/%5Cevil.example"),
            ("/\\evil.example", "/"),
        ] {
            let uri: Uri = uri.parse().unwrap();
            assert_eq!(safe_path(&uri), path);
        }
    }
}
