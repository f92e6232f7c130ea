//! A loopback HTTP/1.1 proxy that injects network faults between the MCP server and its upstreams
//! (the CIBA provider, the bank API), so tests can tell what bankguard does when the network fails
//! at the worst moment: the bank committed a transfer but the answer never arrived, the token
//! endpoint reset the connection, the provider hung.
//!
//! It works at the TCP level, not as an HTTP framework handler, so the faults are real: a reset is a
//! socket closed with `SO_LINGER` 0 (the client sees an RST), a truncated body is the upstream's own
//! head and `Content-Length` followed by fewer bytes and a FIN, a hang is an open socket that never
//! answers. The client under test runs its real HTTP stack against all of them.
//!
//! Each connection carries exactly one exchange: the proxy reads one request (request line, headers
//! up to CRLFCRLF, a `Content-Length` body), decides on a [`Rule`], forwards the request on a fresh
//! upstream connection with `Connection: close` and `Host` set to the upstream, reads the whole
//! response until the upstream closes, and answers with `connection: close`. Clients with keep-alive
//! pools simply open a new connection next time. A proxy started with
//! [`FaultProxy::start_keeping_connections`] instead keeps the client's connection open after each
//! exchange that passes (a faulted one still ends it), so a client that only counts through it pays
//! for its pooled connection as it would without the proxy: what the benchmarks need.
//!
//! - [`rules`]: the [`Fault`]s and the [`Rule`]s that pick requests for them.
//! - [`wire`]: HTTP/1.1 by hand, just enough to read, re-encode and truncate one exchange.
//! - here: the accept loop, one task per connection, and what a test can observe.

mod rules;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

// Every test binary compiles the support module, and not every one names each of these.
#[allow(unused_imports)]
pub use self::rules::{Fault, Rule, RuleFor, Times};
use self::wire::{Request, Response, canned};

/// The proxy: a listener on `127.0.0.1`, the rules, and what it has seen. Dropping it stops it.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

/// What the accept loop, the connection tasks and the test share.
struct Shared {
    /// `host:port` of the upstream.
    upstream: String,
    rules: Mutex<Vec<Rule>>,
    exchanges: Mutex<Vec<Exchange>>,
    /// Bumped on every change to `exchanges`, so waiters re-check without polling.
    changes: watch::Sender<u64>,
    /// Client connections stay open after an exchange that passed.
    keep_alive: bool,
    /// Client connections accepted.
    connections: AtomicUsize,
}

/// One request the proxy received, and what became of it.
struct Exchange {
    method: String,
    path: String,
    fault: Option<&'static str>,
    /// When it arrived.
    at: Instant,
    /// The request line's target and the headers, as text.
    head: String,
    /// The request body, as text (lossy).
    body: String,
    /// The upstream answered it in full.
    forwarded: bool,
    /// The body of the upstream's answer, as text (lossy); empty until it was forwarded.
    answer: String,
}

/// A request the proxy received, as a test reads it back.
pub struct Seen {
    pub at: Instant,
    pub body: String,
    /// The upstream's answer's body; empty if none came back.
    pub answer: String,
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`; any path is ignored).
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(upstream, false).await
    }

    /// A proxy that keeps client connections open between the exchanges that pass (see the module doc).
    pub async fn start_keeping_connections(upstream: &str) -> Self {
        Self::start_with(upstream, true).await
    }

    async fn start_with(upstream: &str, keep_alive: bool) -> Self {
        let (upstream, _) = split_http_url(upstream);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the fault proxy binds a loopback port");
        let address = listener.local_addr().expect("a bound listener has an address");
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            rules: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
            changes: watch::Sender::new(0),
            keep_alive,
            connections: AtomicUsize::new(0),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept(listener, shared.clone(), stop.clone()));
        Self { address, shared, stop }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `upstream_url` (a base or a full endpoint of this proxy's upstream) routed through the proxy,
    /// path and query kept as written.
    pub fn via(&self, upstream_url: &str) -> String {
        let (authority, rest) = split_http_url(upstream_url);
        assert_eq!(authority, self.shared.upstream, "{upstream_url} is not on this proxy's upstream");
        format!("{}{rest}", self.url())
    }

    /// Adds a rule after the existing ones.
    pub fn inject(&self, rule: Rule) {
        self.shared.rules.lock().unwrap().push(rule);
    }

    /// Removes every rule: from now on every request passes.
    pub fn clear(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Requests received whose path starts with `path_prefix`, faulted or not.
    pub fn seen(&self, path_prefix: &str) -> usize {
        self.shared.count(path_prefix, |_| true)
    }

    /// Requests received whose path starts with `path_prefix` and whose body contains `needle`: token
    /// requests of one grant, say (`grant-type%3Aciba` in a form body).
    pub fn seen_with_body(&self, path_prefix: &str, needle: &str) -> usize {
        self.shared.count(path_prefix, |exchange| exchange.body.contains(needle))
    }

    /// Requests received that carry `needle` anywhere: in the target, a header or the body.
    pub fn seen_carrying(&self, needle: &str) -> usize {
        self.shared.count("/", |exchange| exchange.head.contains(needle) || exchange.body.contains(needle))
    }

    /// The requests received whose path starts with `path_prefix`, in order of arrival.
    pub fn seen_exchanges(&self, path_prefix: &str) -> Vec<Seen> {
        let exchanges = self.shared.exchanges.lock().unwrap();
        exchanges
            .iter()
            .filter(|e| e.path.starts_with(path_prefix))
            .map(|e| Seen { at: e.at, body: e.body.clone(), answer: e.answer.clone() })
            .collect()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests whose path starts with `path_prefix` that the upstream has answered in full.
    pub fn forwarded(&self, path_prefix: &str) -> usize {
        self.shared.count(path_prefix, |exchange| exchange.forwarded)
    }

    /// Waits until [`seen`](Self::seen) reaches `count`; false if `timeout` passes first.
    pub async fn wait_for(&self, path_prefix: &str, count: usize, timeout: Duration) -> bool {
        let mut changes = self.shared.changes.subscribe();
        let reached = changes.wait_for(|_| self.seen(path_prefix) >= count);
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }

    /// One line per request received, in order: `POST /api/transfers -> ForwardThenReset`, or
    /// `-> passed` when no rule matched.
    pub fn log(&self) -> Vec<String> {
        let exchanges = self.shared.exchanges.lock().unwrap();
        exchanges.iter().map(|e| format!("{} {} -> {}", e.method, e.path, e.fault.unwrap_or("passed"))).collect()
    }

    /// Stops accepting and drops every open connection, hung ones included (as dropping does).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Shared {
    /// Records a request and picks its fault, spending the rule that applies.
    fn admit(&self, request: &Request) -> (usize, Option<Fault>) {
        let fault = {
            let mut rules = self.rules.lock().unwrap();
            rules.iter().position(|rule| rule.matches(&request.method, request.path())).map(|index| {
                let fault = rules[index].fault.clone();
                if !rules[index].spend() {
                    rules.remove(index);
                }
                fault
            })
        };
        let index = {
            let mut exchanges = self.exchanges.lock().unwrap();
            exchanges.push(Exchange {
                method: request.method.clone(),
                path: request.path().to_owned(),
                fault: fault.as_ref().map(Fault::name),
                at: Instant::now(),
                head: request.head(),
                body: String::from_utf8_lossy(request.body()).into_owned(),
                forwarded: false,
                answer: String::new(),
            });
            exchanges.len() - 1
        };
        self.changes.send_modify(|n| *n += 1);
        (index, fault)
    }

    /// Sends `request` upstream on a fresh connection and reads the whole response. If the upstream
    /// fails, the client gets a 502 (as from a real gateway), stderr a line, and the caller `None`.
    async fn forward(
        &self,
        exchange: usize,
        request: &Request,
        client: &mut TcpStream,
    ) -> io::Result<Option<Response>> {
        match self.exchange_upstream(request).await {
            Ok(response) => {
                {
                    let mut exchanges = self.exchanges.lock().unwrap();
                    exchanges[exchange].forwarded = true;
                    exchanges[exchange].answer = String::from_utf8_lossy(response.body()).into_owned();
                }
                self.changes.send_modify(|n| *n += 1);
                Ok(Some(response))
            }
            Err(error) => {
                let reason = format!("upstream {} failed: {error}", self.upstream);
                eprintln!("fault proxy: {} {}: {reason}", request.method, request.path());
                answer(client, &canned(502, &reason, "text/plain")).await.map(|()| None)
            }
        }
    }

    async fn exchange_upstream(&self, request: &Request) -> io::Result<Response> {
        let mut upstream = TcpStream::connect(&self.upstream).await?;
        upstream.write_all(&request.encode_for(&self.upstream)).await?;
        let mut bytes = Vec::new();
        upstream.read_to_end(&mut bytes).await?;
        Response::parse(bytes)
    }

    fn count(&self, path_prefix: &str, counts: impl Fn(&Exchange) -> bool) -> usize {
        let exchanges = self.exchanges.lock().unwrap();
        exchanges.iter().filter(|e| e.path.starts_with(path_prefix) && counts(e)).count()
    }
}

/// Splits `http://host:port/rest` into `host:port` and `/rest` (possibly empty).
fn split_http_url(url: &str) -> (&str, &str) {
    let without_scheme = url.strip_prefix("http://").unwrap_or_else(|| panic!("{url} is not an http:// URL"));
    let authority_end = without_scheme.find(['/', '?']).unwrap_or(without_scheme.len());
    without_scheme.split_at(authority_end)
}

/// Accepts until stopped; each connection gets its own task, which also ends when stopped.
async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let client = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(error) => {
                    // Such as running out of file descriptors: back off rather than spin.
                    eprintln!("fault proxy: accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let (shared, stop) = (shared.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                outcome = serve(&shared, client) => {
                    if let Err(error) = outcome
                        && is_unexpected(&error)
                    {
                        eprintln!("fault proxy: connection failed: {error}");
                    }
                }
            }
        });
    }
}

/// A client hanging up or resetting is its own business, not the proxy's failure.
fn is_unexpected(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// The exchanges on one client connection: one, or with `keep_alive` every one until the client
/// closes or a fault ends it. `Err` only for failures talking to the client.
async fn serve(shared: &Shared, mut client: TcpStream) -> io::Result<()> {
    loop {
        let request = match Request::read(&mut client).await {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                eprintln!("fault proxy: refused a request: {error}");
                return answer(&mut client, &canned(400, &error.to_string(), "text/plain")).await;
            }
            Err(error) => return Err(error),
        };
        let (exchange, fault) = shared.admit(&request);
        if let Some(fault) = fault {
            return inject(shared, exchange, &request, client, fault).await;
        }
        let Some(response) = shared.forward(exchange, &request, &mut client).await? else { return Ok(()) };
        if !shared.keep_alive {
            return answer(&mut client, &response.for_client()).await;
        }
        client.write_all(&response.for_client_keeping_connection()).await?;
    }
}

/// One faulted exchange; the connection ends with it.
async fn inject(
    shared: &Shared,
    exchange: usize,
    request: &Request,
    mut client: TcpStream,
    fault: Fault,
) -> io::Result<()> {
    match fault {
        Fault::RespondWithoutForwarding { status, body, content_type } => {
            answer(&mut client, &canned(status, &body, content_type)).await
        }
        Fault::ResetWithoutForwarding => reset(client),
        Fault::Hang => hang(client).await,
        Fault::ForwardThenRespond { status, body, content_type } => {
            let Some(_) = shared.forward(exchange, request, &mut client).await? else { return Ok(()) };
            answer(&mut client, &canned(status, &body, content_type)).await
        }
        Fault::ForwardThenReset => {
            let Some(_) = shared.forward(exchange, request, &mut client).await? else { return Ok(()) };
            reset(client)
        }
        Fault::ForwardThenTruncate { keep_body_bytes } => {
            let Some(response) = shared.forward(exchange, request, &mut client).await? else { return Ok(()) };
            answer(&mut client, &response.truncated(keep_body_bytes)).await
        }
        Fault::ForwardThenDelay(delay) => {
            let Some(response) = shared.forward(exchange, request, &mut client).await? else { return Ok(()) };
            tokio::time::sleep(delay).await;
            answer(&mut client, &response.for_client()).await
        }
    }
}

/// Writes `bytes` and closes gracefully (FIN), so the client reads everything that was sent.
async fn answer(client: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    client.write_all(bytes).await?;
    client.shutdown().await
}

/// Closes with `SO_LINGER` 0: the kernel sends an RST, and the client sees a connection reset.
fn reset(client: TcpStream) -> io::Result<()> {
    client.set_zero_linger()
}

/// Reads and discards until the client closes; the stop token ends it when the proxy goes.
async fn hang(mut client: TcpStream) -> io::Result<()> {
    let mut discard = [0; 1024];
    while client.read(&mut discard).await? > 0 {}
    Ok(())
}
