//! The token endpoint's grants for a signed-in user: `authorization_code` (OAuth 2.1 §4.1.3, with
//! the PKCE check of RFC 7636 §4.6) and `refresh_token` with rotation (OAuth 2.1 §4.3, RFC 9700
//! §4.14.2).
//!
//! Every check that can fail is made before anything is written, so a refused request changes
//! nothing, with one deliberate exception: a code or refresh token presented after it was used means
//! a copy is in someone else's hands, so the family of tokens it belongs to is revoked
//! ([`super::grants`]). The access token is a JWT for the resource the user signed in to (`aud`),
//! `sub` the user; the refresh token comes with every response and works once.

use super::AuthzState;
use super::error::{ErrorCode, OAuthError};
use super::grants::StoredCode;
use super::pkce;
use super::store::now_ms;
use super::token_endpoint::TokenForm;
use super::tokens::{Grant, TokenResponse};

const CODE_REUSED: &str = "the code was already used; the tokens issued for it are revoked";
const REFRESH_TOKEN_REUSED: &str = "the refresh token was already used; every token of this sign-in is revoked";

/// `grant_type=authorization_code`, for the client `client_id` (authenticated, or public).
pub async fn authorization_code(
    state: &AuthzState,
    client_id: &str,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let code = required(&form.code, "code")?;
    let redirect_uri = required(&form.redirect_uri, "redirect_uri")?;
    let verifier = required(&form.code_verifier, "code_verifier")?;
    let now = now_ms() / 1000;
    let stored = state.grants.find_code(code).await.map_err(OAuthError::server_error)?;
    let Some(StoredCode { binding, expires_at, family_id }) = stored else {
        return Err(OAuthError::invalid_grant("the code is unknown"));
    };
    if let Some(family_id) = family_id {
        return Err(reused(state, client_id, &family_id, now, CODE_REUSED).await);
    }
    if now >= expires_at {
        return Err(OAuthError::invalid_grant("the code has expired; sign in again"));
    }
    if binding.client_id != client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if binding.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant("redirect_uri differs from the one the code was issued for"));
    }
    check_resource(form, &binding.resource)?;
    pkce::verify(verifier, &binding.code_challenge).map_err(|error| OAuthError::invalid_grant(error.to_string()))?;
    let Some(refresh_token) =
        state.grants.exchange_code(code, &binding, now).await.map_err(OAuthError::server_error)?
    else {
        // Another request exchanged it between the check and now: that one is a reuse too.
        if let Some(family_id) =
            state.grants.find_code(code).await.map_err(OAuthError::server_error)?.and_then(|c| c.family_id)
        {
            return Err(reused(state, client_id, &family_id, now, CODE_REUSED).await);
        }
        return Err(OAuthError::invalid_grant("the code was already used"));
    };
    let grant = Grant {
        subject: &binding.subject,
        client_id,
        audience: Some(&binding.resource),
        scope: &binding.scope,
        authorization_details: None,
        auth_time: None,
    };
    let mut response = state.tokens.issue(&grant, now)?;
    response.refresh_token = Some(refresh_token);
    tracing::info!(client = client_id, user = %binding.subject, resource = %binding.resource, "issued tokens for a sign-in");
    Ok(response)
}

/// `grant_type=refresh_token`: the next access token and the next refresh token.
pub async fn refresh_token(state: &AuthzState, client_id: &str, form: &TokenForm) -> Result<TokenResponse, OAuthError> {
    let token = required(&form.refresh_token, "refresh_token")?;
    let now = now_ms() / 1000;
    let stored = state.grants.find_refresh_token(token).await.map_err(OAuthError::server_error)?;
    let Some(stored) = stored else {
        return Err(OAuthError::invalid_grant("the refresh token is unknown"));
    };
    let family = &stored.family;
    if family.client_id != client_id {
        return Err(OAuthError::invalid_grant("the refresh token was issued to another client"));
    }
    if stored.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token has been revoked; sign in again"));
    }
    if stored.rotated_at.is_some() {
        return Err(reused(state, client_id, &family.family_id, now, REFRESH_TOKEN_REUSED).await);
    }
    if now >= stored.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired; sign in again"));
    }
    check_resource(form, &family.resource)?;
    // RFC 6749 §6: a narrower scope may be asked for; the refresh token keeps the whole grant.
    let scope = match form.scope.as_deref() {
        Some(requested) => {
            let granted: Vec<&str> = family.scope.split(' ').collect();
            if let Some(extra) = requested.split_ascii_whitespace().find(|scope| !granted.contains(scope)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope {extra:?} was not granted to this sign-in"),
                ));
            }
            requested.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
        }
        None => family.scope.clone(),
    };
    let Some(successor) = state.grants.rotate_refresh_token(token, now).await.map_err(OAuthError::server_error)? else {
        // Used or revoked between the check and now.
        return Err(reused(state, client_id, &family.family_id, now, REFRESH_TOKEN_REUSED).await);
    };
    let grant = Grant {
        subject: &family.subject,
        client_id,
        audience: Some(&family.resource),
        scope: &scope,
        authorization_details: None,
        auth_time: None,
    };
    let mut response = state.tokens.issue(&grant, now)?;
    response.refresh_token = Some(successor);
    tracing::info!(client = client_id, user = %family.subject, "refreshed a sign-in's tokens");
    Ok(response)
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// RFC 8707 §2.2: a `resource` at the token endpoint must be the one the user signed in to.
fn check_resource(form: &TokenForm, granted: &str) -> Result<(), OAuthError> {
    match form.resource.as_deref() {
        Some(resource) if resource != granted => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource {resource:?} is not the one this grant is for"),
        )),
        _ => Ok(()),
    }
}

/// A used credential came back: revoke its family, and say so.
async fn reused(
    state: &AuthzState,
    client_id: &str,
    family_id: &str,
    now: i64,
    description: &'static str,
) -> OAuthError {
    tracing::warn!(
        client = client_id,
        "a used authorization code or refresh token was presented again; its sign-in is revoked"
    );
    if let Err(error) = state.grants.revoke_family(family_id, now).await {
        return OAuthError::server_error(error);
    }
    OAuthError::invalid_grant(description)
}
