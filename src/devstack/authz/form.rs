//! The form body of OAuth endpoints (`application/x-www-form-urlencoded`), refused as
//! `invalid_request` when unreadable, repeated or of another content type (RFC 6749 §3.2).

use axum::extract::{Form, FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::OAuthError;

pub struct OAuthForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OAuthForm<T> {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, OAuthError> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(value)) => Ok(Self(value)),
            Err(rejection) => Err(OAuthError::invalid_request(rejection.body_text())),
        }
    }
}
