//! The one way the crate builds outbound HTTP clients (reqwest over rustls with the `aws-lc-rs`
//! provider).
//!
//! aws-lc-rs is the crate's one crypto library: the bank API's JWT checks and the dev authorization
//! server's keys use it too. reqwest is built without a default TLS provider, so the provider must
//! be installed before the first client exists; doing it here means no caller can forget.

use std::sync::Once;
use std::time::Duration;

/// Outbound calls give up after this long unless a caller sets its own timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client builder with TLS ready, a timeout, and bankguard's user agent.
pub fn builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Fails only if another provider was installed first, which is just as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
    reqwest::Client::builder().timeout(DEFAULT_TIMEOUT).user_agent(concat!("bankguard/", env!("CARGO_PKG_VERSION")))
}

/// A builder for a client that will only call `urls`: when none of them is `https`, the system's
/// trust store is not read at all (it is neither needed nor, on a bare machine, necessarily there),
/// which also keeps it out of start-up time and memory. Any `https` URL keeps the platform verifier.
pub fn builder_for<'a>(urls: impl IntoIterator<Item = &'a str>) -> reqwest::ClientBuilder {
    let plain_http_only = urls.into_iter().all(|url| url.trim_start().to_ascii_lowercase().starts_with("http://"));
    let builder = builder();
    if plain_http_only { builder.tls_certs_only(std::iter::empty()) } else { builder }
}

/// Why a request failed, with the causes reqwest keeps underneath, but without the URL (callers name
/// it once themselves).
pub fn reason(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    if let Some(url) = error.url() {
        reason = reason.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}
