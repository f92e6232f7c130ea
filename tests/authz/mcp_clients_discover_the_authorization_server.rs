//! An MCP client finds everything it needs to sign a user in from the issuer alone: RFC 8414
//! metadata, and the same endpoints in the OpenID discovery document.

use serde_json::json;

use crate::support::dev::Dev;
use crate::support::send;

#[tokio::test]
async fn the_authorization_server_metadata_offers_the_code_flow_with_s256_to_public_clients() {
    let dev = Dev::start().await;
    let issuer = dev.issuer().to_owned();

    let reply = send(dev.http.get(format!("{issuer}/.well-known/oauth-authorization-server"))).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    let metadata = &reply.body;
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(metadata["registration_endpoint"], format!("{issuer}/register"));
    assert_eq!(metadata["response_types_supported"], json!(["code"]));
    assert_eq!(metadata["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        metadata["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "urn:openid:params:grant-type:ciba", "client_credentials"])
    );
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert!(metadata["scopes_supported"].as_array().unwrap().contains(&"mcp:tools".into()));
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn the_openid_discovery_document_names_the_same_endpoints() {
    let dev = Dev::start().await;
    let issuer = dev.issuer();
    let oauth = send(dev.http.get(format!("{issuer}/.well-known/oauth-authorization-server"))).await.body;
    let openid = send(dev.http.get(format!("{issuer}/.well-known/openid-configuration"))).await.body;

    for (member, value) in oauth.as_object().unwrap() {
        assert_eq!(&openid[member], value, "{member}");
    }
    assert_eq!(openid["backchannel_authentication_endpoint"], format!("{issuer}/bc-authorize"));
}
