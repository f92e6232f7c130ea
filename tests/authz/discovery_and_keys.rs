use crate::support::dev::Dev;
use crate::support::send;

#[tokio::test]
async fn discovery_describes_a_ciba_provider_auth0_clients_can_use() {
    let dev = Dev::start().await;
    let issuer = dev.issuer().to_owned();

    let reply = send(dev.http.get(format!("{issuer}/.well-known/openid-configuration"))).await;

    assert_eq!(reply.status, 200);
    let metadata = &reply.body;
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(metadata["backchannel_authentication_endpoint"], format!("{issuer}/bc-authorize"));
    assert_eq!(metadata["backchannel_token_delivery_modes_supported"], serde_json::json!(["poll", "ping"]));
    let grants = metadata["grant_types_supported"].as_array().unwrap();
    for grant in ["urn:openid:params:grant-type:ciba", "client_credentials"] {
        assert!(grants.contains(&grant.into()), "{grant}");
    }
    let methods = metadata["token_endpoint_auth_methods_supported"].as_array().unwrap();
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(methods.contains(&method.into()), "{method}");
    }
    let scopes = metadata["scopes_supported"].as_array().unwrap();
    for scope in ["openid", "read:accounts", "create:transfer"] {
        assert!(scopes.contains(&scope.into()), "{scope}");
    }
}

#[tokio::test]
async fn the_signing_key_is_generated_once_persisted_and_published_with_a_kid() {
    let dev = Dev::start().await;
    let jwks = send(dev.http.get(format!("{}/.well-known/jwks.json", dev.issuer()))).await.body;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key["d"].is_null(), "the private part is never published");
    let kid = key["kid"].as_str().unwrap().to_owned();
    assert_private(&dev.data_path("authz-signing-key.pem"));
    let secret_before = dev.mcp().client_secret.clone();

    let dev = dev.restart().await;

    let jwks = send(dev.http.get(format!("{}/.well-known/jwks.json", dev.issuer()))).await.body;
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str(), "the same key after a restart");
    assert_eq!(dev.mcp().client_secret, secret_before, "the same MCP client credentials after a restart");
}

#[tokio::test]
async fn the_mcp_server_client_is_created_on_first_start_in_a_private_file() {
    let dev = Dev::start().await;
    let path = dev.data_path("mcp-client.json");
    assert_private(&path);
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file["client_id"], "bankguard-mcp");
    assert_eq!(file["token_endpoint_auth_method"], "client_secret_basic");
    assert!(file["client_secret"].as_str().unwrap().len() >= 43, "at least 256 bits");
    assert_eq!(file["client_secret"], dev.mcp().client_secret.as_str());
    // And the credentials work.
    dev.read_token().await;
}

fn assert_private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}
