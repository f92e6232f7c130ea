//! The one way bankguard serves HTTP (the MCP endpoint, the provider, the bank API): axum on a
//! listener whose accepted connections have `TCP_NODELAY` set.
//!
//! Without it, a response written in two pieces (rmcp's SSE headers and priming event, then the
//! result) waits for the client's delayed ACK before the second piece leaves: ~40 ms on every
//! Streamable HTTP call.

use std::future::Future;

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpListener;

/// `listener`, with `TCP_NODELAY` on every connection it accepts.
pub fn no_delay(listener: TcpListener) -> impl Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on an accepted connection");
        }
    })
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(no_delay(listener), router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_accepted_connection_has_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut listener = no_delay(listener);
        let _client = tokio::net::TcpStream::connect(address).await.unwrap();
        let (accepted, _) = listener.accept().await;
        assert!(accepted.nodelay().unwrap(), "an accepted socket without TCP_NODELAY");
    }
}
