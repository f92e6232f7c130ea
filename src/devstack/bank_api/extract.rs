//! Request extractors whose refusals are already [`ApiError`]s: the bearer token and the JSON body.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::problem::ApiError;
use super::token::AccessToken;

/// A request authenticated by a verified bearer access token (RFC 6750 §2.1: header only).
pub struct Bearer(pub AccessToken);

impl FromRequestParts<Arc<AppState>> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("Bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::MissingToken)?;
        Ok(Self(state.verifier.verify(token).await?))
    }
}

impl Bearer {
    /// The token, if it carries `scope`; otherwise the RFC 6750 `insufficient_scope` refusal.
    pub fn with_scope(self, scope: &'static str) -> Result<AccessToken, ApiError> {
        if self.0.has_scope(scope) { Ok(self.0) } else { Err(ApiError::InsufficientScope(scope)) }
    }
}

/// A JSON request body; anything unreadable is a 400 that says why.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request("malformed_json", rejection.body_text())),
        }
    }
}
