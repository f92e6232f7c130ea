//! What every page of the authorization server shares: the HTML shell with its development banner,
//! one stylesheet, escaping of every piece of data on the way out, and the headers that keep the
//! pages out of frames, caches and other sites' `Referer`.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

/// A complete page: `title`, the `banner` (trusted markup) that says this is for development, `body`
/// (trusted markup, its data already escaped).
pub fn document(title: &str, banner: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<p class="dev-banner" role="note">{banner}</p>
<main>
{body}
</main>
</body>
</html>"#,
        title = escape(title),
    )
}

/// `page` with headers for a page that holds a form or a secret: never framed (no clickjacking of
/// Allow), never cached, and never named in a `Referer` sent to another site (the client's redirect
/// URI included).
pub fn guarded(page: String) -> Response {
    let mut response = Html(page).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    // Not `no-referrer`: browsers then send `Origin: null` with the page's own form posts, which
    // the same-origin check must refuse.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

const STYLE: &str = r#"
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f6f7f9; }
main { max-width: 40rem; margin: 0 auto; padding: 1rem; }
.dev-banner { margin: 0; padding: .6rem 1rem; background: #fff3c4; border-bottom: 2px solid #8a6d00; }
h1 { font-size: 1.5rem; }
.users, .requests, .grants { list-style: none; padding: 0; }
.user { display: block; padding: .8rem 1rem; margin: .5rem 0; background: #fff; border: 1px solid #c8ccd2; border-radius: .5rem; color: #0b4fb3; }
button.user { width: 100%; text-align: left; font: inherit; cursor: pointer; }
.request, .consent { background: #fff; border: 1px solid #c8ccd2; border-radius: .75rem; padding: 1rem; margin: .75rem 0; }
.binding { font-family: ui-monospace, monospace; font-size: 1.05rem; margin: 0 0 .25rem; }
.reference { font-size: 2rem; font-weight: 700; margin: 0 0 .25rem; }
.reference .code { font-family: ui-monospace, monospace; letter-spacing: .08em; }
.message { margin: .25rem 0; color: #4a4f57; }
.confirmation h2 { font-size: 1.2rem; margin: .25rem 0; }
.confirmation.approved { background: #e6f4ea; border-left-color: #0f7b3f; }
.confirmation.denied, .confirmation.problem { background: #fdecec; border-left-color: #a11d1d; }
.history { list-style: none; padding: 0; }
.history li { background: #fff; border: 1px solid #c8ccd2; border-radius: .5rem; padding: .5rem .75rem; margin: .4rem 0; }
.history time { display: block; font-size: .85rem; }
.badge { display: inline-block; font-weight: 700; padding: 0 .5rem; border-radius: .25rem; }
.badge.approved { background: #e6f4ea; color: #0f5a2f; }
.badge.denied { background: #fdecec; color: #8a1717; }
.badge.expired { background: #eceef1; color: #3a3f47; }
.summary { font-size: 1.2rem; margin: .25rem 0; }
.meta, .muted { color: #4a4f57; }
.grants li { margin: .4rem 0; padding-left: 1.2rem; position: relative; }
.grants li::before { content: "•"; position: absolute; left: .2rem; }
code { font-family: ui-monospace, monospace; word-break: break-all; }
.decision { display: flex; gap: .75rem; margin-top: .75rem; }
button { font: inherit; padding: .6rem 1.4rem; border-radius: .5rem; border: 2px solid transparent; cursor: pointer; }
.approve { background: #0f7b3f; color: #fff; }
.deny { background: #fff; color: #a11d1d; border-color: #a11d1d; }
button:focus-visible, a:focus-visible { outline: 3px solid #0b4fb3; outline-offset: 2px; }
button:disabled { opacity: .5; cursor: not-allowed; }
.notice { background: #e3f1ff; border-left: 4px solid #0b4fb3; padding: .5rem 1rem; }
.problem { background: #fdecec; border-left: 4px solid #a11d1d; padding: .5rem 1rem; }
"#;
