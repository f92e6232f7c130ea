//! HTTP/1.1 by hand, as much as the fault proxy needs: a request read off the socket (request line,
//! headers up to CRLFCRLF, a `Content-Length` body) and re-encoded for the upstream, and a response
//! read to the end and re-encoded for the client. Every message says `connection: close`, except a
//! response for a client connection the proxy keeps open.

use std::io;

use axum::http::StatusCode;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A request head longer than this is refused: nothing the stack sends comes close.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// A complete response of the proxy's own.
pub(super) fn canned(status: u16, body: &str, content_type: &str) -> Vec<u8> {
    let reason = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Fault");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body.as_bytes()].concat()
}

/// A request as the client sent it.
pub(super) struct Request {
    pub(super) method: String,
    /// The request target as sent: path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// Reads one request; `None` if the client closed without sending one. Malformed requests are
    /// `InvalidData` errors.
    pub(super) async fn read(client: &mut TcpStream) -> io::Result<Option<Self>> {
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(end) = head_end(&buffer) {
                break end;
            }
            if buffer.len() > MAX_REQUEST_HEAD {
                return Err(invalid("the request head is too long"));
            }
            let mut chunk = [0; 8 * 1024];
            match client.read(&mut chunk).await? {
                0 if buffer.is_empty() => return Ok(None),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                read => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let head = std::str::from_utf8(&buffer[..head_end]).map_err(|_| invalid("the request head is not UTF-8"))?;
        let mut lines = head.trim_end().split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(&format!("malformed request line {request_line:?}")));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(&format!("unsupported version {version:?}")));
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or_else(|| invalid(&format!("malformed header {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut request =
            Self { method: method.to_owned(), target: target.to_owned(), headers, body: buffer[head_end..].to_vec() };
        if request.header("transfer-encoding").is_some() {
            return Err(invalid("chunked request bodies are not supported: send a Content-Length"));
        }
        let length = match request.header("content-length") {
            Some(length) => length.parse::<usize>().map_err(|_| invalid(&format!("bad Content-Length {length:?}")))?,
            None => 0,
        };
        if request.body.len() < length {
            let already = request.body.len();
            request.body.resize(length, 0);
            client.read_exact(&mut request.body[already..]).await?;
        }
        request.body.truncate(length);
        Ok(Some(request))
    }

    pub(super) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    pub(super) fn body(&self) -> &[u8] {
        &self.body
    }

    /// The request line's target and every header, as text.
    pub(super) fn head(&self) -> String {
        let headers = self.headers.iter().map(|(name, value)| format!("{name}: {value}"));
        std::iter::once(format!("{} {}", self.method, self.target)).chain(headers).collect::<Vec<_>>().join("\r\n")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The request as the upstream gets it: its own `Host`, and `Connection: close`.
    pub(super) fn encode_for(&self, upstream: &str) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nhost: {upstream}\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            if !is_hop_by_hop(name) && !name.eq_ignore_ascii_case("host") {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("connection: close\r\n\r\n");
        [head.as_bytes(), &self.body].concat()
    }
}

/// The upstream's complete response, as it arrived.
pub(super) struct Response {
    bytes: Vec<u8>,
    head_end: usize,
}

impl Response {
    pub(super) fn parse(bytes: Vec<u8>) -> io::Result<Self> {
        let head_end =
            head_end(&bytes).ok_or_else(|| invalid("the upstream closed without a complete response head"))?;
        std::str::from_utf8(&bytes[..head_end]).map_err(|_| invalid("the upstream's response head is not UTF-8"))?;
        Ok(Self { bytes, head_end })
    }

    /// The upstream's head with `connection: close` (or, if `keep`, with its framing made explicit),
    /// then `body`.
    fn with_body(&self, body: &[u8], keep: bool) -> Vec<u8> {
        let head = std::str::from_utf8(&self.bytes[..self.head_end]).unwrap_or_default();
        let mut rewritten = String::new();
        for line in head.trim_end().split("\r\n") {
            let name = line.split_once(':').map_or("", |(name, _)| name.trim());
            if !is_hop_by_hop(name) {
                rewritten.push_str(line);
                rewritten.push_str("\r\n");
            }
        }
        if !keep {
            rewritten.push_str("connection: close\r\n");
        } else if !rewritten.lines().any(|line| {
            let name = line.split_once(':').map_or("", |(name, _)| name.trim());
            name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
        }) {
            // Delimited by the upstream's close; the client's connection stays open, so say where it ends.
            rewritten.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        rewritten.push_str("\r\n");
        [rewritten.as_bytes(), body].concat()
    }

    /// The body as it arrived.
    pub(super) fn body(&self) -> &[u8] {
        &self.bytes[self.head_end..]
    }

    pub(super) fn for_client(&self) -> Vec<u8> {
        self.with_body(&self.bytes[self.head_end..], false)
    }

    /// The whole response, for a client connection that stays open.
    pub(super) fn for_client_keeping_connection(&self) -> Vec<u8> {
        self.with_body(&self.bytes[self.head_end..], true)
    }

    /// The real head and `Content-Length`, but only the first `keep` body bytes.
    pub(super) fn truncated(&self, keep: usize) -> Vec<u8> {
        let body = &self.bytes[self.head_end..];
        self.with_body(&body[..keep.min(body.len())], false)
    }
}

/// Where the head ends (after CRLFCRLF), if it has arrived.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|window| window == b"\r\n\r\n").map(|at| at + 4)
}

/// Headers that describe one connection and so are not passed on (RFC 9110 §7.6.1).
fn is_hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection"].iter().any(|hop| name.eq_ignore_ascii_case(hop))
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_owned())
}
