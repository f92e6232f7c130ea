//! Refresh tokens rotate: each works once. One presented again means two parties hold it, so the
//! whole sign-in is revoked (RFC 9700 §4.14.2): the latest refresh token stops working too.
//! Presenting one as another client, or asking for more than was granted, changes nothing.

use crate::signing_in_with_a_code_and_pkce::{CLIENT, REDIRECT_URI, dev_with_public_client};
use crate::support::sign_in::{self, Tokens};

async fn signed_in(dev: &crate::support::dev::Dev) -> Tokens {
    sign_in::sign_in(dev.issuer(), CLIENT, REDIRECT_URI, "alice", &dev.config.mcp_resource(), "mcp:tools").await
}

#[tokio::test]
async fn presenting_a_rotated_refresh_token_again_revokes_its_successors() {
    let dev = dev_with_public_client().await;
    let issuer = dev.issuer();
    let first = signed_in(&dev).await;
    let second = sign_in::refresh(issuer, CLIENT, &first.refresh_token).await;

    let replay = sign_in::refresh_reply(issuer, CLIENT, &first.refresh_token).await;
    assert_eq!((replay.status, replay.body["error"].as_str()), (400, Some("invalid_grant")), "{}", replay.body);

    let latest = sign_in::refresh_reply(issuer, CLIENT, &second.refresh_token).await;
    assert_eq!(latest.body["error"], "invalid_grant", "the whole family is revoked: {}", latest.body);

    // Another sign-in of the same user and client is not affected.
    let other = signed_in(&dev).await;
    sign_in::refresh(issuer, CLIENT, &other.refresh_token).await;
}

#[tokio::test]
async fn a_refresh_token_of_another_client_a_wider_scope_or_another_resource_is_refused_and_changes_nothing() {
    let dev = dev_with_public_client().await;
    let issuer = dev.issuer();
    let tokens = signed_in(&dev).await;
    for (extra, error) in [
        (vec![("client_id", "someone-else")], "invalid_grant"),
        (vec![("client_id", CLIENT), ("scope", "mcp:tools create:transfer")], "invalid_scope"),
        (vec![("client_id", CLIENT), ("resource", dev.config.bank_api.audience.as_str())], "invalid_target"),
        (vec![], "invalid_client"),
    ] {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", tokens.refresh_token.as_str())];
        form.extend(extra.iter().copied());
        let reply = sign_in::token_request(issuer, &form).await;
        assert_eq!(reply.body["error"], error, "{extra:?}: {}", reply.body);
    }
    let narrowed = sign_in::token_request(
        issuer,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
            ("client_id", CLIENT),
            ("scope", "mcp:tools"),
        ],
    )
    .await;
    assert_eq!(narrowed.status, 200, "the refresh token still works: {}", narrowed.body);
}
