//! The approval page over HTTP: what it shows, and who may use it.

use crate::support::dev::Dev;
use crate::support::{Reply, Transfer, send};

async fn page(dev: &Dev, path: &str, host: Option<&str>) -> Reply {
    let mut request = dev.http.get(format!("{}{path}", dev.issuer()));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    send(request).await
}

fn html(reply: &Reply) -> &str {
    reply.body.as_str().unwrap_or_default()
}

/// The CSRF token embedded in the page's forms.
fn csrf(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_page_shows_each_pending_transfer_in_plain_words_newest_first() {
    let dev = Dev::start().await;
    let older = Transfer::new("acc_alice_sav", "acc_alice_chk", "10.00");
    let newer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.50").with_memo("<b>Dinner</b> & drinks");
    dev.request_transfer_approval("alice", &older).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    dev.request_transfer_approval("alice", &newer).await;

    let picker = page(&dev, "/device", None).await;
    assert_eq!(picker.status, 200);
    assert!(html(&picker).contains("Development device"), "the picker is labelled dev-only");
    assert!(html(&picker).contains("/device?user=alice") && html(&picker).contains("/device?user=bob"));

    let reply = page(&dev, "/device?user=alice", None).await;
    let body = html(&reply);
    assert_eq!(reply.status, 200);
    assert!(body.contains("<html lang=\"en\">"));
    let newer_at = body.find("25.50 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor)").unwrap();
    let older_at =
        body.find("10.00 USD from Rainy Day Savings (SAV-7390) to Everyday Checking (CHK-4821, Alice Martin)").unwrap();
    assert!(newer_at < older_at, "newest first");
    assert!(body.contains("&lt;b&gt;Dinner&lt;/b&gt; &amp; drinks"), "request data is escaped");
    assert!(!body.contains("<b>Dinner</b>"));
    assert!(body.contains("Transfer 25.50 USD #"), "the binding message");
    assert!(body.contains("bankguard-mcp"), "the requesting client");
    assert!(body.contains(" left</span>"), "the time left");
    assert!(body.contains(">Approve</button>") && body.contains(">Deny</button>"));
    assert!(body.contains("aria-live=\"polite\""), "updates are announced to screen readers");

    let bob = page(&dev, "/device?user=bob", None).await;
    assert!(html(&bob).contains("No requests are waiting"), "alice's requests are not bob's");
    let fragment = page(&dev, "/device/pending?user=alice", None).await;
    assert!(html(&fragment).contains("25.50 USD") && !html(&fragment).contains("<html"));
}

#[tokio::test]
async fn approving_from_the_page_needs_its_csrf_token_and_origin() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;
    let page_html = html(&page(&dev, "/device?user=alice", None).await).to_owned();
    let token = csrf(&page_html);
    let no_redirects = bankguard::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let decide = |csrf: String, origin: Option<String>| {
        let mut request = no_redirects.post(format!("{}/device/decide", dev.issuer())).form(&[
            ("user", "alice"),
            ("auth_req_id", auth_req_id.as_str()),
            ("decision", "approve"),
            ("csrf", csrf.as_str()),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        send(request)
    };

    let forged = decide("guessed".into(), None).await;
    assert_eq!(forged.status, 403);
    let cross_site = decide(token.clone(), Some("https://evil.example".into())).await;
    assert_eq!(cross_site.status, 403);
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending", "nothing was decided");

    let own_origin = dev.issuer().to_owned();
    let approved = decide(token, Some(own_origin)).await;
    assert_eq!(approved.status, 303);
    assert_eq!(approved.header("location"), "/device?user=alice&done=approved");
    assert_eq!(dev.poll(&auth_req_id).await.status, 200);
}

#[tokio::test]
async fn the_device_answers_only_to_loopback_host_names() {
    let dev = Dev::start().await;
    for host in ["evil.example", "evil.example:4100", "192.168.1.5"] {
        assert_eq!(page(&dev, "/device?user=alice", Some(host)).await.status, 403, "{host}");
    }
    assert_eq!(page(&dev, "/device", Some("localhost:4100")).await.status, 200);
}

#[tokio::test]
async fn the_device_api_needs_the_device_token() {
    let dev = Dev::start().await;
    let anonymous = send(dev.http.get(format!("{}/device/api/pending", dev.issuer()))).await;
    assert_eq!(anonymous.status, 401);
    let wrong = send(dev.http.get(format!("{}/device/api/pending", dev.issuer())).bearer_auth("guess")).await;
    assert_eq!(wrong.status, 401);
    let token = std::fs::read_to_string(dev.data_path("device-token")).unwrap();
    let right = send(dev.http.get(format!("{}/device/api/pending", dev.issuer())).bearer_auth(token.trim())).await;
    assert_eq!(right.status, 200);
}
