//! `/admin/operators`: the operator accounts, managed from the studio as `monsoon operator`
//! manages them on the command line (`monsoon_catalog::Operators`, the same rules): list them,
//! add one, disable or enable one, set a new password. Plain HTML forms, so the page works
//! without JavaScript; each form carries the session's `_csrf` field (`csrf.rs`), and every
//! change is in the audit log with the operator's name and address.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/admin/operators` | the page (`operators.html`): every account with its creation, last sign-in and state, and the forms |
//! | GET | `/admin/api/operators` | `{"operators": [{name, created_at, updated_at, disabled_at, last_sign_in_at}]}`, by name |
//! | POST | `/admin/operators` | form `name`, `password` or `generate=on` → 201 and the page saying so (a generated password shown once) |
//! | POST | `/admin/operators/{name}/password` | form `password` or `generate=on` → 200; the account's sessions end |
//! | POST | `/admin/operators/{name}/disable` | → 200; its sessions end. 409 for oneself, for the last active account, or one disabled already |
//! | POST | `/admin/operators/{name}/enable` | → 200; 409 when it is active |
//!
//! A refusal is the page again with the status and the message in the page's language
//! (`op_err_*` of `locales/studio.<lang>.toml`), naming the value and the rule: 400 for a name that breaks [`monsoon_catalog::operators::NAME_RULE`] or a password
//! outside 12 to 128 characters, 404 for an unknown account, 409 as above, 413 for a form
//! over [`FORM_BYTES`]. A password is hashed (argon2id) off the event loop and never stored,
//! logged or audited; a generated one ([`generate_password`]) is in that one answer only
//! (`Cache-Control: no-store`).
//!
//! No operator can disable their own account, and nobody the last active one, so a signed-in
//! operator always keeps a way in.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use monsoon_catalog::Action;
use monsoon_catalog::Error as CatalogError;
use monsoon_catalog::operators::{
    Account, check_password, generate_password, hash_password, limits, validate_name,
};
use serde::{Deserialize, Serialize};

use crate::admin::{Operator, private};
use crate::i18n::Locale;
use crate::studio::{StudioMessages, messages};
use crate::{ApiError, AppState};

/// The largest form these routes read: a name, a password of 128 characters (four bytes each
/// at most, percent-encoded) and the CSRF token fit many times over.
pub const FORM_BYTES: usize = 4096;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/operators", get(page).post(create))
        .route("/admin/api/operators", get(list))
        .route("/admin/operators/{name}/password", post(set_password))
        .route("/admin/operators/{name}/disable", post(disable))
        .route("/admin/operators/{name}/enable", post(enable))
        .layer(DefaultBodyLimit::max(FORM_BYTES))
        .layer(axum::middleware::map_response(crate::pages::page_headers))
}

/// The form of a new account, or of a new password (`name` unused).
#[derive(Debug, Default, Deserialize)]
struct PasswordForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// A checkbox: present (`on`) when ticked.
    generate: Option<String>,
}

/// What the page says above the list after a change.
struct Notice {
    text: String,
    /// A generated password, shown this once.
    password: Option<String>,
}

/// An account as the page shows it.
struct Row {
    name: String,
    created: String,
    last_sign_in: Option<String>,
    disabled: bool,
    /// The signed-in operator's own account.
    own: bool,
}

#[derive(Template)]
#[template(path = "operators.html")]
struct OperatorsPage {
    t: &'static crate::i18n::Messages,
    s: &'static StudioMessages,
    c: crate::pages::Chrome,
    studio_css: String,
    csrf: String,
    operator: String,
    rows: Vec<Row>,
    notice: Option<Notice>,
    error: Option<String>,
    /// The name typed in the add form, kept after a refusal.
    name: String,
}

fn shown_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::Invalid(m) => ApiError::BadRequest(m),
        CatalogError::Conflict(m) => ApiError::Conflict(m),
        other => ApiError::Unavailable(format!("the operators' database: {other}")),
    }
}

/// Renders the page for `operator` with `status`, and the outcome of what was asked.
async fn render(
    state: &AppState,
    locale: Locale,
    operator: &Operator,
    status: StatusCode,
    outcome: Result<Option<Notice>, ApiError>,
    name: String,
) -> Response {
    let accounts = match state.operators.list().await {
        Ok(accounts) => accounts,
        Err(e) => return private(catalog_error(e).into_response()),
    };
    let (notice, error) = match outcome {
        Ok(notice) => (notice, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let page = OperatorsPage {
        t: locale.lang.messages(),
        s: messages(locale.lang),
        c: crate::pages::Chrome::new(state, locale, "/admin/operators"),
        studio_css: state.assets.url("studio.css"),
        csrf: operator.csrf().unwrap_or_default().to_owned(),
        operator: operator.name.clone(),
        rows: accounts
            .into_iter()
            .map(|a| Row {
                own: a.name == operator.name,
                created: shown_time(a.created_at),
                last_sign_in: a.last_sign_in_at.map(shown_time),
                disabled: a.disabled_at.is_some(),
                name: a.name,
            })
            .collect(),
        notice,
        error,
        name,
    };
    match page.render() {
        Ok(html) => private((status, Html(html)).into_response()),
        Err(e) => private(ApiError::Internal(e.to_string()).into_response()),
    }
}

/// The page, or the sign-in for a browser without a session.
async fn page(
    State(state): State<AppState>,
    locale: Locale,
    operator: Result<Operator, ApiError>,
) -> Response {
    let Ok(operator) = operator else {
        let to = format!("/admin/login?lang={}", locale.lang.code());
        return private(Redirect::to(&to).into_response());
    };
    render(
        &state,
        locale,
        &operator,
        StatusCode::OK,
        Ok(None),
        String::new(),
    )
    .await
}

/// An account as `GET /admin/api/operators` lists it (the hash never leaves the server).
#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    last_sign_in_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct Entries {
    operators: Vec<Entry>,
}

async fn list(State(state): State<AppState>, _: Operator) -> Response {
    let answer = state
        .operators
        .list()
        .await
        .map_err(catalog_error)
        .map(|accounts| {
            Json(Entries {
                operators: accounts
                    .into_iter()
                    .map(|a: Account| Entry {
                        name: a.name,
                        created_at: a.created_at,
                        updated_at: a.updated_at,
                        disabled_at: a.disabled_at,
                        last_sign_in_at: a.last_sign_in_at,
                    })
                    .collect(),
            })
            .into_response()
        });
    private(answer.unwrap_or_else(IntoResponse::into_response))
}

/// The form, or a 400 (413 past [`FORM_BYTES`]) saying what is wrong with it.
fn form_of(form: Result<Form<PasswordForm>, FormRejection>) -> Result<PasswordForm, ApiError> {
    match form {
        Ok(Form(form)) => Ok(form),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge(
            format!("the form is over {FORM_BYTES} bytes"),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "the form must be application/x-www-form-urlencoded with `name`, `password` or \
             `generate`: {}",
            e.body_text()
        ))),
    }
}

/// The password the form asks for (a generated one when `generate` is ticked), checked by
/// the CLI's rule, and its hash made off the event loop. The second value is the password
/// when it was generated, to show once.
async fn new_password(
    form: &PasswordForm,
    s: &StudioMessages,
) -> Result<(String, Option<String>), ApiError> {
    let (password, generated) = if form.generate.is_some() {
        let password = generate_password().map_err(|e| ApiError::Internal(e.to_string()))?;
        (password.clone(), Some(password))
    } else {
        check_password(&form.password).map_err(|_| {
            let (min, max) = (limits::PASSWORD.start(), limits::PASSWORD.end());
            ApiError::BadRequest(
                s.op_err_password
                    .replace("{chars}", &form.password.chars().count().to_string())
                    .replace("{min}", &min.to_string())
                    .replace("{max}", &max.to_string()),
            )
        })?;
        (form.password.clone(), None)
    };
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((hash, generated))
}

/// A path's account name, by the name rule (400 naming it), and then its account (404).
async fn existing(state: &AppState, s: &StudioMessages, name: &str) -> Result<Account, ApiError> {
    valid_name(s, name)?;
    state
        .operators
        .find(name)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| ApiError::NotFound(said(&s.op_err_missing, name)))
}

/// `name` by [`validate_name`]'s rule, or a 400 in the page's language.
fn valid_name(s: &StudioMessages, name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(|_| {
        let shown: String = name.chars().take(40).collect();
        ApiError::BadRequest(said(&s.op_err_name, &shown))
    })
}

/// A refusal's template of the page's language, with the account's `name` written in.
fn said(template: &str, name: &str) -> String {
    template.replace("{name}", name)
}

/// The status of an outcome: `ok` for a change, the error's own for a refusal.
fn status_of(outcome: &Result<Option<Notice>, ApiError>, ok: StatusCode) -> StatusCode {
    match outcome {
        Ok(_) => ok,
        Err(e) => e.status(),
    }
}

async fn create(
    State(state): State<AppState>,
    locale: Locale,
    operator: Operator,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let s = messages(locale.lang);
    let mut typed = String::new();
    let outcome = async {
        let form = form_of(form)?;
        typed = form.name.trim().chars().take(64).collect();
        let name = form.name.trim();
        valid_name(s, name)?;
        let (hash, generated) = new_password(&form, s).await?;
        state
            .operators
            .create(name, &hash)
            .await
            .map_err(|e| match e {
                CatalogError::Conflict(_) => ApiError::Conflict(said(&s.op_err_taken, name)),
                other => catalog_error(other),
            })?;
        state
            .audit(
                &operator,
                Action::OperatorCreated,
                name,
                serde_json::json!({ "generated": generated.is_some() }),
            )
            .await;
        typed.clear();
        Ok(Some(Notice {
            text: format!("{} `{name}`", s.op_created),
            password: generated,
        }))
    }
    .await;
    let status = status_of(&outcome, StatusCode::CREATED);
    render(&state, locale, &operator, status, outcome, typed).await
}

async fn set_password(
    State(state): State<AppState>,
    locale: Locale,
    operator: Operator,
    Path(name): Path<String>,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let s = messages(locale.lang);
    let outcome = async {
        let form = form_of(form)?;
        existing(&state, s, &name).await?;
        let (hash, generated) = new_password(&form, s).await?;
        if !state
            .operators
            .set_password(&name, &hash)
            .await
            .map_err(catalog_error)?
        {
            return Err(ApiError::NotFound(said(&s.op_err_missing, &name)));
        }
        state
            .audit(
                &operator,
                Action::OperatorPasswordSet,
                &name,
                serde_json::json!({ "generated": generated.is_some() }),
            )
            .await;
        Ok(Some(Notice {
            text: format!("{} `{name}`", s.op_password_set),
            password: generated,
        }))
    }
    .await;
    let status = status_of(&outcome, StatusCode::OK);
    render(&state, locale, &operator, status, outcome, String::new()).await
}

async fn disable(
    State(state): State<AppState>,
    locale: Locale,
    operator: Operator,
    Path(name): Path<String>,
) -> Response {
    let s = messages(locale.lang);
    let outcome = async {
        let account = existing(&state, s, &name).await?;
        if name == operator.name {
            return Err(ApiError::Conflict(said(&s.op_err_self, &name)));
        }
        let disabled_already = || ApiError::Conflict(said(&s.op_err_disabled_already, &name));
        if account.disabled_at.is_some() {
            return Err(disabled_already());
        }
        // The last active account is refused in the same step as the change
        // (`Operators::disable_keeping_one`): two operators disabling each other at once
        // cannot leave none.
        if !state
            .operators
            .disable_keeping_one(&name)
            .await
            .map_err(|e| match e {
                CatalogError::Conflict(_) => ApiError::Conflict(said(&s.op_err_last, &name)),
                other => catalog_error(other),
            })?
        {
            return Err(disabled_already());
        }
        state
            .audit(
                &operator,
                Action::OperatorDisabled,
                &name,
                serde_json::json!({}),
            )
            .await;
        Ok(Some(Notice {
            text: format!("{} `{name}`", s.op_disabled_done),
            password: None,
        }))
    }
    .await;
    let status = status_of(&outcome, StatusCode::OK);
    render(&state, locale, &operator, status, outcome, String::new()).await
}

async fn enable(
    State(state): State<AppState>,
    locale: Locale,
    operator: Operator,
    Path(name): Path<String>,
) -> Response {
    let s = messages(locale.lang);
    let outcome = async {
        existing(&state, s, &name).await?;
        if !state.operators.enable(&name).await.map_err(catalog_error)? {
            return Err(ApiError::Conflict(said(&s.op_err_active_already, &name)));
        }
        state
            .audit(
                &operator,
                Action::OperatorEnabled,
                &name,
                serde_json::json!({}),
            )
            .await;
        Ok(Some(Notice {
            text: format!("{} `{name}`", s.op_enabled_done),
            password: None,
        }))
    }
    .await;
    let status = status_of(&outcome, StatusCode::OK);
    render(&state, locale, &operator, status, outcome, String::new()).await
}
