//! A client whose `client_id` is the URL of its metadata document (OAuth Client ID Metadata
//! Document): the server fetches the document (served here by a small axum server on loopback),
//! checks it names itself, and signs the user in. A document that names another client, answers
//! with a redirect or is too large is refused on the error page, and nothing is redirected.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::support::dev::Dev;
use crate::support::sign_in::{self, AuthorizationRequest, Page, Pkce, authorization_url};

const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

/// The client's web site, serving its metadata document and some broken ones.
struct ClientSite {
    base: String,
    fetches: Arc<AtomicUsize>,
}

impl ClientSite {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let site = (base.clone(), fetches.clone());
        let router = Router::new()
            .route("/client.json", get(document))
            .route("/other.json", get(names_another_client))
            .route("/moved.json", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/client.json")]) }))
            .route("/huge.json", get(huge))
            .with_state(site);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { base, fetches }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

type Site = State<(String, Arc<AtomicUsize>)>;

async fn document(State((base, fetches)): Site) -> Response {
    fetches.fetch_add(1, Ordering::SeqCst);
    let client_id = format!("{base}/client.json");
    axum::Json(json!({"client_id": client_id, "client_name": "Documented Agent", "redirect_uris": [REDIRECT_URI]}))
        .into_response()
}

async fn names_another_client(State((base, _)): Site) -> Response {
    axum::Json(json!({"client_id": format!("{base}/client.json"), "redirect_uris": [REDIRECT_URI]})).into_response()
}

async fn huge(State((base, _)): Site) -> Response {
    let padding = "x".repeat(100 * 1024);
    axum::Json(json!({"client_id": format!("{base}/huge.json"), "redirect_uris": [REDIRECT_URI], "padding": padding}))
        .into_response()
}

#[tokio::test]
async fn the_server_fetches_the_document_once_and_signs_alice_in_to_the_client_it_describes() {
    let dev = Dev::start().await;
    let site = ClientSite::start().await;
    let client_id = site.url("/client.json");
    let resource = dev.config.mcp_resource();

    let pkce = Pkce::new();
    let request =
        AuthorizationRequest::new(dev.issuer(), &client_id, REDIRECT_URI, &resource, "mcp:tools", &pkce).await;
    let consent = request.consent_page("alice").await;
    assert!(consent.html.contains("Documented Agent") && consent.html.contains(&client_id), "{}", consent.html);
    let code = request.approve(&consent).await;
    let tokens = sign_in::Tokens::from_reply(
        &sign_in::exchange_code(dev.issuer(), &client_id, REDIRECT_URI, &code, &pkce.verifier).await,
    );
    sign_in::refresh(dev.issuer(), &client_id, &tokens.refresh_token).await;

    // Within the cache time a second sign-in does not fetch it again.
    sign_in::sign_in(dev.issuer(), &client_id, REDIRECT_URI, "bob", &resource, "mcp:tools").await;
    assert_eq!(site.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_document_that_names_another_client_redirects_or_is_too_large_is_refused_on_the_error_page() {
    let dev = Dev::start().await;
    let site = ClientSite::start().await;
    let resource = dev.config.mcp_resource();
    let challenge = Pkce::new().challenge;
    for (path, shown) in [
        ("/other.json", "names another client_id"),
        ("/moved.json", "HTTP 302"),
        ("/huge.json", "larger than"),
        ("/missing.json", "HTTP 404"),
    ] {
        let client_id = site.url(path);
        let url = authorization_url(
            dev.issuer(),
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT_URI),
                ("resource", &resource),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
        let page = Page::get(&url).await;
        assert_eq!((page.status, page.location.as_deref()), (400, None), "{path}: {}", page.html);
        assert!(page.html.contains(shown), "{path}: {}", page.html);
    }
}
