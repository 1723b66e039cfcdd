//! `/admin`: the operator's studio, behind a sign-in.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/login` | sign-in form (sets the form's CSRF cookie, `csrf.rs`) |
//! | POST | `/admin/login` | `name` + `password`, or `token`: starts a session, sets its cookie, 303 to `/admin` |
//! | POST | `/admin/logout` | ends the session (in the database: on every node) and clears the cookie |
//! | GET | `/admin` | the dashboard (303 to the form without a session) |
//! | GET | `/admin/api/dashboard?film=` | figures and series for the charts, the origin's errors, egress and offload ([`crate::dashboard`]; 401 without a session) |
//! | GET | `/admin/api/dashboard.csv?film=` | the film's series as CSV ([`crate::dashboard`]) |
//! | GET | `/admin/api/audit?limit=&before=` | the audit log, newest first (`audit.rs`) |
//! | GET | `/admin/api/jobs?limit=` | the ingest jobs (`jobs.rs`; 404 without a job queue) |
//! | POST | `/admin/api/jobs/{id}/cancel` | cancels a queued or running job (`jobs.rs`) |
//! | OPTIONS, POST, GET | `/admin/api/uploads` | tus 1.0 discovery and creation; the uploads listed (`upload/mod.rs`) |
//! | HEAD, PATCH, DELETE, GET | `/admin/api/uploads/{id}` | tus offset, bytes, termination; one upload's state (`upload/mod.rs`) |
//!
//! **Who.** Operators have accounts in the catalog database (`monsoon operator add <name>`;
//! `monsoon_catalog::Operators`), each with an argon2id password hash. The admin token of
//! `[admin] token_hash` (made by `monsoon admin-token`, stored only as its hash) stays for
//! scripts: they send `Authorization: Bearer <token>` (Prometheus too, for `/metrics`), or
//! sign in with it; what they do is recorded as done by `token`.
//!
//! **Sessions.** Signing in makes a 256-bit secret, sent as the `monsoon_admin` cookie
//! (`HttpOnly; SameSite=Strict; Path=/admin`, `Secure` whenever the client came over HTTPS, see
//! [`crate::client::https`]); the database keeps its SHA-256 with the operator's name. A
//! session ends at `[admin] session_absolute_s` after the sign-in whatever its use, after
//! `session_idle_s` without a request, at sign-out, and when its account is disabled or its
//! password changed. Any node sharing the database accepts it, and a restart signs nobody out.
//! Every state-changing request under `/admin` also needs the session's CSRF token (`csrf.rs`).
//!
//! **Guessing.** argon2 is deliberately slow (tens of milliseconds and 19 MiB per check), so
//! guesses, of a password or of the token, are rationed:
//! - each client address gets `[admin] sign_in_attempts_per_minute` checks, and so does each
//!   operator name, from whatever addresses (429 with `Retry-After` beyond);
//! - at most [`VERIFY_SLOTS`](auth::VERIFY_SLOTS) checks run at once, off the event loop; one more is refused with
//!   429 at once rather than queued, so a stream of guesses never leaves the operator's own
//!   sign-in waiting behind it (at worst it is refused, and retried a second later);
//! - a wrong password or token is answered after [`WRONG_DELAY`](auth::WRONG_DELAY), slept after the check has
//!   given its slot back: guessing is slow without slowing anyone else;
//! - a name with no account (or a disabled one) is checked against a hash all the same, so
//!   the answer's time does not say which names exist;
//! - a token that verified is remembered (as an HMAC under a key of the process) for
//!   [`VERIFIED_FOR`](auth::VERIFIED_FOR), so a scraper sending it every 15 s costs one check, not one per scrape.
//!
//! Sign-ins, sign-outs and refused sign-ins are written to the audit log
//! ([`crate::Shared::audit`]), with the client's address.
//!
//! Here: the routes; `auth.rs` the rationed checks of passwords and the token, `session.rs` who
//! a request comes from (its session cookie or token), `login.rs` signing in and out, `page.rs`
//! the dashboard's page and its data.

mod auth;
mod login;
mod page;
mod session;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::AppState;

pub use auth::{AdminAuth, SessionTimes, check_token, hash_token, new_token};
pub(crate) use login::form_expired;
pub(crate) use page::job_states;
pub(crate) use session::session_secret;
pub use session::{Operator, Via};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page::dashboard))
        // Typed by hand or kept in bookmarks with the slash.
        .route(
            "/admin/",
            get(|| async { axum::response::Redirect::permanent("/admin") }),
        )
        .route("/admin/login", get(login::login_form).post(login::login))
        .route("/admin/logout", post(login::logout))
        .route("/admin/api/dashboard", get(page::dashboard_data))
        .merge(crate::dashboard::routes())
        .merge(crate::audit::routes())
        .merge(crate::jobs::routes())
        .layer(axum::middleware::map_response(crate::pages::page_headers))
}

pub(crate) fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
