//! CIBA Core §10–11 at `/oauth/token`: pending, slow_down, denial, expiry, one-time redemption, and
//! the tokens an approval yields; and the client-credentials grant.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::support::dev::{ClientAuth, Dev, MACHINE_CLIENT, POST_CLIENT};
use crate::support::{Transfer, send};

async fn verify(dev: &Dev, jwt: &str, audience: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet =
        dev.http.get(format!("{}/.well-known/jwks.json", dev.issuer())).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[dev.issuer()]);
    validation.set_audience(&[audience]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation).unwrap().claims;
    (header, claims)
}

#[tokio::test]
async fn an_approved_request_yields_an_rfc_9068_access_token_bound_to_the_transfer_once() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").with_memo("Dinner");
    let auth_req_id = dev.request_transfer_approval("alice", &transfer).await;

    let pending = dev.poll(&auth_req_id).await;
    assert_eq!((pending.status, pending.body["error"].as_str()), (400, Some("authorization_pending")));

    dev.approve(&auth_req_id).await;
    // Right away: a decided request is answered whatever the interval.
    let reply = dev.poll(&auth_req_id).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 300);
    assert_eq!(reply.body["scope"], "openid create:transfer");
    assert_eq!(reply.body["authorization_details"], json!([transfer.binding()]));
    let access_token = reply.body["access_token"].as_str().unwrap();
    let (header, claims) = verify(&dev, access_token, "urn:bankguard:bank-api").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["iss"], dev.issuer());
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "bankguard-mcp");
    assert_eq!(claims["scope"], "openid create:transfer");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 16));
    assert_eq!(claims["authorization_details"], json!([transfer.binding()]));
    let (_, id_claims) = verify(&dev, reply.body["id_token"].as_str().unwrap(), "bankguard-mcp").await;
    assert_eq!(id_claims["sub"], "alice");

    let again = dev.poll(&auth_req_id).await;
    assert_eq!((again.status, again.body["error"].as_str()), (400, Some("invalid_grant")), "exchanged once");
}

#[tokio::test]
async fn polling_faster_than_the_interval_earns_slow_down_and_the_interval_stays_grown() {
    let dev = Dev::start().await; // interval 1 s
    let auth_req_id = dev.request_sign_in(&[]).await;

    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");
    let fast = dev.poll(&auth_req_id).await;
    assert_eq!((fast.status, fast.body["error"].as_str()), (400, Some("slow_down")));
    assert_eq!(fast.body["interval"], 6, "1 s + 5 s");
    assert_eq!(fast.header("retry-after"), "6");

    // The old interval is no longer enough: still too fast, and the interval grows again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let still_fast = dev.poll(&auth_req_id).await;
    assert_eq!(
        (still_fast.body["error"].as_str(), still_fast.body["interval"].as_i64()),
        (Some("slow_down"), Some(11))
    );

    // Waiting the grown interval is fine.
    tokio::time::sleep(Duration::from_millis(11_100)).await;
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");
}

#[tokio::test]
async fn a_denied_request_is_access_denied_and_never_yields_tokens() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;

    dev.deny(&auth_req_id).await;
    let reply = dev.poll(&auth_req_id).await;

    assert_eq!((reply.status, reply.body["error"].as_str()), (400, Some("access_denied")));
    assert!(dev.device().decide(None, Some(&auth_req_id), "approve").await.is_err(), "a denial is final");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "access_denied");
}

#[tokio::test]
async fn a_request_not_approved_in_time_expires() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[("requested_expiry", "1")]).await;

    tokio::time::sleep(Duration::from_millis(1200)).await;

    let reply = dev.poll(&auth_req_id).await;
    assert_eq!((reply.status, reply.body["error"].as_str()), (400, Some("expired_token")));
    assert!(dev.device().pending(None).await.unwrap().is_empty(), "an expired request is no longer shown");
    let late = dev.device().decide(None, Some(&auth_req_id), "approve").await;
    assert!(late.is_err(), "an expired request cannot be approved");
}

#[tokio::test]
async fn an_unknown_foreign_or_missing_auth_req_id_is_invalid_grant() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;
    let ciba = "urn:openid:params:grant-type:ciba";
    let post = ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into());

    let unknown = dev.poll("no-such-request").await;
    let foreign = dev.token(&post, &[("grant_type", ciba), ("auth_req_id", &auth_req_id)]).await;
    let missing = dev.token(&dev.mcp_auth(), &[("grant_type", ciba)]).await;
    let no_grant = dev.token(&dev.mcp_auth(), &[("auth_req_id", &auth_req_id)]).await;
    let odd_grant = dev.token(&dev.mcp_auth(), &[("grant_type", "password")]).await;
    let anonymous = dev.token(&ClientAuth::Anonymous, &[("grant_type", ciba), ("auth_req_id", &auth_req_id)]).await;
    let machine = ClientAuth::Basic(MACHINE_CLIENT.0.into(), MACHINE_CLIENT.1.into());
    let not_ciba = dev.token(&machine, &[("grant_type", ciba), ("auth_req_id", &auth_req_id)]).await;

    assert_eq!((unknown.status, unknown.body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!((foreign.status, foreign.body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!((missing.status, missing.body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!((no_grant.status, no_grant.body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!((odd_grant.status, odd_grant.body["error"].as_str()), (400, Some("unsupported_grant_type")));
    assert_eq!((anonymous.status, anonymous.body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!((not_ciba.status, not_ciba.body["error"].as_str()), (400, Some("unauthorized_client")));
    // None of that touched the real request.
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");
}

#[tokio::test]
async fn client_credentials_give_read_accounts_and_never_create_transfer() {
    // A bank that serves this client too (by default it accepts only the MCP server's tokens).
    let dev = Dev::start_with(|config| config.bank_api.accepted_client_ids.push(MACHINE_CLIENT.0.into())).await;
    let audience = dev.config.bank_api.audience.clone();
    let machine = ClientAuth::Basic(MACHINE_CLIENT.0.into(), MACHINE_CLIENT.1.into());

    let reply = dev.token(&machine, &[("grant_type", "client_credentials"), ("audience", &audience)]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["scope"], "read:accounts");
    assert!(reply.body["id_token"].is_null());
    let (_, claims) = verify(&dev, reply.body["access_token"].as_str().unwrap(), &audience).await;
    assert_eq!(claims["sub"], "machine-client@clients");
    assert_eq!(claims["scope"], "read:accounts");

    let grabbing = dev
        .token(&machine, &[("grant_type", "client_credentials"), ("audience", &audience), ("scope", "create:transfer")])
        .await;
    assert_eq!((grabbing.status, grabbing.body["error"].as_str()), (400, Some("invalid_scope")));
    let nowhere = dev.token(&machine, &[("grant_type", "client_credentials")]).await;
    assert_eq!(nowhere.body["error"], "invalid_request");
    let elsewhere =
        dev.token(&machine, &[("grant_type", "client_credentials"), ("audience", "https://other.example")]).await;
    assert_eq!(elsewhere.body["error"], "invalid_scope");

    // The token reads accounts at the bank.
    let token = reply.body["access_token"].as_str().unwrap();
    let accounts = send(dev.http.get(format!("{}/users/alice/accounts", dev.bank_api())).bearer_auth(token)).await;
    assert_eq!(accounts.status, 200);
}

#[tokio::test]
async fn waiting_costs_no_durable_write_only_the_decision_and_the_exchange_do() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;
    // `data_version` changes whenever another connection commits to the database.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dev.data_path("authz.sqlite")).read_only(true);
    let mut watcher = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    let before = data_version(&mut watcher).await;

    for _ in 0..10 {
        let answer = dev.poll(&auth_req_id).await.body["error"].clone();
        assert!(answer == "authorization_pending" || answer == "slow_down", "{answer}");
    }
    assert_eq!(data_version(&mut watcher).await, before, "ten polls of a pending request wrote to the database");

    dev.approve(&auth_req_id).await;
    assert_eq!(dev.poll(&auth_req_id).await.status, 200);
    assert_ne!(data_version(&mut watcher).await, before, "the decision and the exchange are durable");
}

async fn data_version(connection: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA data_version").fetch_one(connection).await.unwrap()
}
