//! The sign-in itself, between `/authorize` and the client's redirect URI: the person picks a demo
//! user (there are no passwords: this is the development server), then sees which client asks for
//! what and approves or denies. Approval issues the code ([`super::grants`]).
//!
//! Each sign-in in progress is kept here, in memory, under a random id, with a CSRF token that only
//! its own page carries: a `POST` whose token is missing or wrong is refused with 403 and changes
//! nothing. The token is replaced when the consent page is shown, so the sign-in page's token cannot
//! approve. A sign-in is finished (approved or denied) at most once, and forgotten after
//! [`SIGN_IN_TIMEOUT`]; a restart forgets every one (the person starts again from their app).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AuthzState;
use super::authorize::AuthorizationRequest;
use super::error::{ErrorCode, OAuthError};
use super::form::OAuthForm;
use super::grants::CodeBinding;
use super::html;
use super::local_browser::{Refusal, require_loopback_host, same_origin};
use super::page::find_user;
use super::sign_in_page;
use super::store::now_ms;
use crate::devstack::seed::SeedUser;
use crate::secrets;

pub const SIGN_IN_PATH: &str = "/authorize/sign-in";
pub const CONSENT_PATH: &str = "/authorize/consent";
/// How long a person has to finish a sign-in.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(600);
/// Sign-ins in progress at once; beyond it the oldest expired ones are dropped, then new ones refused.
const MAX_IN_PROGRESS: usize = 1000;

/// The sign-ins in progress.
#[derive(Default)]
pub struct SignIns {
    in_progress: Mutex<HashMap<String, InProgress>>,
}

struct InProgress {
    request: AuthorizationRequest,
    csrf: String,
    /// Set once the person picked who they are.
    user: Option<&'static SeedUser>,
    until: Instant,
}

/// What the sign-in and consent forms send.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    pub sign_in: String,
    pub csrf: Option<String>,
    pub user: Option<String>,
    pub decision: Option<String>,
}

/// Why a form post is refused before anything changes.
enum Refused {
    /// Not on a loopback host name.
    NotLocal(Refusal),
    /// Not from our page: a missing or wrong CSRF token, or another origin.
    Forged,
    /// Unknown, finished or expired sign-in.
    Gone,
    /// Not the step this sign-in is at, or an unknown user or decision.
    Malformed(&'static str),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            Refused::NotLocal(refusal) => return refusal.into_response(),
            Refused::Forged => (
                StatusCode::FORBIDDEN,
                "This form did not come from the sign-in page",
                "Nothing was changed. Start again from your app.",
            ),
            Refused::Gone => (
                StatusCode::BAD_REQUEST,
                "This sign-in has ended",
                "It was finished already, or it expired, or the server restarted. Start again from your app.",
            ),
            Refused::Malformed(why) => (StatusCode::BAD_REQUEST, "This sign-in step is not valid", why),
        };
        (status, html::guarded(sign_in_page::problem(title, message))).into_response()
    }
}

/// Keeps `request` as a new sign-in and answers with its first page.
pub fn start(state: &AuthzState, request: AuthorizationRequest) -> Response {
    let id = secrets::random_token(24);
    let csrf = secrets::random_token(32);
    let page = sign_in_page::pick_user(&request, &id, &csrf);
    {
        let mut in_progress = state.sign_ins.in_progress.lock().expect("sign-ins");
        let now = Instant::now();
        in_progress.retain(|_, sign_in| sign_in.until > now);
        if in_progress.len() >= MAX_IN_PROGRESS {
            let page = sign_in_page::problem("Too many sign-ins at once", "Finish or abandon one, then try again.");
            return (StatusCode::SERVICE_UNAVAILABLE, html::guarded(page)).into_response();
        }
        in_progress.insert(id, InProgress { request, csrf, user: None, until: now + SIGN_IN_TIMEOUT });
    }
    html::guarded(page)
}

/// `POST /authorize/sign-in`: the person picked a user; the consent page follows.
pub async fn pick_user(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    form: Result<OAuthForm<SignInForm>, OAuthError>,
) -> Response {
    let step = |sign_in: &mut InProgress, form: &SignInForm| {
        if sign_in.user.is_some() {
            return Err(Refused::Malformed("A user is already signed in here; approve or deny on the consent page."));
        }
        let user = form.user.as_deref().and_then(find_user).ok_or(Refused::Malformed("Pick one of the demo users."))?;
        sign_in.user = Some(user);
        sign_in.csrf = secrets::random_token(32);
        Ok(html::guarded(sign_in_page::consent(&sign_in.request, user, &form.sign_in, &sign_in.csrf)))
    };
    match continue_sign_in(&state, &headers, form, step) {
        Ok((consent_page, _)) => consent_page,
        Err(refused) => refused.into_response(),
    }
}

/// `POST /authorize/consent`: approve (a code goes back to the client) or deny (`access_denied`).
pub async fn decide(
    State(state): State<Arc<AuthzState>>,
    headers: HeaderMap,
    form: Result<OAuthForm<SignInForm>, OAuthError>,
) -> Response {
    let step = |sign_in: &mut InProgress, form: &SignInForm| {
        let user = sign_in.user.ok_or(Refused::Malformed("Pick a user first."))?;
        match form.decision.as_deref() {
            Some("approve") => Ok((user, true)),
            Some("deny") => Ok((user, false)),
            _ => Err(Refused::Malformed("Choose Allow or Deny.")),
        }
    };
    let ((user, approve), form) = match continue_sign_in(&state, &headers, form, step) {
        Ok(decided) => decided,
        Err(refused) => return refused.into_response(),
    };
    // Finished once: of two posts racing here, the second finds it gone.
    let Some(InProgress { request, .. }) = state.sign_ins.in_progress.lock().expect("sign-ins").remove(&form.sign_in)
    else {
        return Refused::Gone.into_response();
    };
    let client = &request.client.client_id;
    if !approve {
        tracing::info!(client, user = user.subject, "sign-in denied");
        let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return request.callback.with_error(&denied);
    }
    let binding = CodeBinding {
        client_id: client.clone(),
        redirect_uri: request.callback.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        resource: request.resource.clone(),
        scope: request.scope.clone(),
        subject: user.subject.to_owned(),
    };
    match state.grants.issue_code(&binding, now_ms() / 1000).await {
        Ok(code) => {
            tracing::info!(client, user = user.subject, resource = %request.resource, "sign-in approved; code issued");
            request.callback.with_code(&code)
        }
        Err(error) => request.callback.with_error(&OAuthError::server_error(error)),
    }
}

/// Runs `step` on the sign-in the form continues, if the post came from its own page on this
/// machine (its CSRF token, our origin) and the sign-in is still in progress. A refusal changes
/// nothing, as long as `step` changes nothing when it refuses.
fn continue_sign_in<T>(
    state: &AuthzState,
    headers: &HeaderMap,
    form: Result<OAuthForm<SignInForm>, OAuthError>,
    step: impl FnOnce(&mut InProgress, &SignInForm) -> Result<T, Refused>,
) -> Result<(T, SignInForm), Refused> {
    let form = checked_post(headers, form)?;
    let mut in_progress = state.sign_ins.in_progress.lock().expect("sign-ins");
    let sign_in = current(&mut in_progress, &form)?;
    let outcome = step(sign_in, &form)?;
    Ok((outcome, form))
}

/// The form, if it is readable and came from a page of ours on this machine.
fn checked_post(headers: &HeaderMap, form: Result<OAuthForm<SignInForm>, OAuthError>) -> Result<SignInForm, Refused> {
    require_loopback_host(headers).map_err(Refused::NotLocal)?;
    let Ok(OAuthForm(form)) = form else {
        return Err(Refused::Malformed("The form was incomplete."));
    };
    if !same_origin(headers) {
        return Err(Refused::Forged);
    }
    Ok(form)
}

/// The sign-in the form continues, if it is still in progress and the form carries its CSRF token.
fn current<'a>(
    in_progress: &'a mut HashMap<String, InProgress>,
    form: &SignInForm,
) -> Result<&'a mut InProgress, Refused> {
    let sign_in = in_progress.get_mut(&form.sign_in).filter(|sign_in| sign_in.until > Instant::now());
    let Some(sign_in) = sign_in else { return Err(Refused::Gone) };
    match &form.csrf {
        Some(csrf) if secrets::constant_time_eq(csrf, &sign_in.csrf) => Ok(sign_in),
        _ => Err(Refused::Forged),
    }
}
