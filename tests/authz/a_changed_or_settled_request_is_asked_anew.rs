//! Only a byte-identical resend of a request for an intent that has not been exchanged or expired is
//! the same request (the holder's decision, if already given, applies to the resend: the client
//! lost the first answer, not the question). Any other difference, a request without an intent, or
//! an earlier request that was already exchanged or expired makes a new one.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::dev::{ClientAuth, Dev, POST_CLIENT};
use crate::support::{Reply, Transfer};

fn id(reply: Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["auth_req_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_that_differs_in_anything_or_names_no_intent_is_a_new_one() {
    let dev = Dev::start().await;
    let mcp = dev.mcp_auth();
    let other_client = ClientAuth::Post(POST_CLIENT.0.into(), POST_CLIENT.1.into());
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00");

    let ids = [
        id(dev.ask_transfer_approval(&mcp, "alice", &transfer, &[]).await),
        id(dev.ask_transfer_approval(&mcp, "alice", &transfer, &[("binding_message", "Transfer 25.00 USD")]).await),
        // The default spelled out is still a different request: resends are byte-identical.
        id(dev.ask_transfer_approval(&mcp, "alice", &transfer, &[("requested_expiry", "300")]).await),
        id(dev.ask_transfer_approval(&mcp, "alice@example.com", &transfer, &[]).await),
        id(dev.ask_transfer_approval(&other_client, "alice", &transfer, &[]).await),
        // No authorization details, so no intent: every sign-in request is its own.
        dev.request_sign_in(&[]).await,
        dev.request_sign_in(&[]).await,
    ];

    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len(), "all different: {ids:?}");
    assert_eq!(dev.device().pending(Some("alice")).await.unwrap().len(), ids.len());
}

#[tokio::test]
async fn a_decided_request_is_handed_out_with_its_decision_and_a_redeemed_or_expired_one_never() {
    let dev = Dev::start().await;
    let mcp = dev.mcp_auth();
    let ask = |transfer: Transfer, changes: &'static [(&'static str, &'static str)]| {
        let (dev, mcp) = (&dev, mcp.clone());
        async move { id(dev.ask_transfer_approval(&mcp, "alice", &transfer, changes).await) }
    };

    let approved = Transfer::new("acc_alice_chk", "acc_bob_chk", "1.00");
    let first = ask(approved.clone(), &[]).await;
    dev.approve(&first).await;
    assert_eq!(ask(approved, &[]).await, first, "approved but not yet exchanged: the approval holds");
    assert_eq!(dev.poll(&first).await.status, 200, "and is exchanged once");

    let redeemed = Transfer::new("acc_alice_chk", "acc_bob_chk", "2.00");
    let first = ask(redeemed.clone(), &[]).await;
    dev.approve(&first).await;
    assert_eq!(dev.poll(&first).await.status, 200);
    assert_ne!(ask(redeemed, &[]).await, first, "exchanged");

    let denied = Transfer::new("acc_alice_chk", "acc_bob_chk", "3.00");
    let first = ask(denied.clone(), &[]).await;
    dev.deny(&first).await;
    assert_eq!(ask(denied, &[]).await, first, "denied: the denial holds");
    assert_eq!(dev.poll(&first).await.body["error"], "access_denied");

    let expiring = Transfer::new("acc_alice_chk", "acc_bob_chk", "4.00");
    let first = ask(expiring.clone(), &[("requested_expiry", "1")]).await;
    // A resend is the same request while it lasts, and a new one once it has expired.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let next = loop {
        let again = ask(expiring.clone(), &[("requested_expiry", "1")]).await;
        if again != first || tokio::time::Instant::now() > deadline {
            break again;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(next, first, "expired");
    assert_eq!(dev.poll(&first).await.body["error"], "expired_token");
}
