//! The one way bankguard serves HTTP (the MCP endpoint, the provider, the bank API): axum on a
//! listener whose accepted connections have `TCP_NODELAY` set.
//!
//! Without it, a response written in two pieces (rmcp's SSE headers and priming event, then the
//! result) waits for the client's delayed ACK before the second piece leaves: ~40 ms on every
//! Streamable HTTP call.
//!
//! Every listener is bound through [`bind`], which knows the setting its address came from: an
//! address already in use is the commonest start-up failure (a second `bankguard demo`, another
//! program on 4100–4102), and the message says what to change instead of only "Address in use".

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpListener;

/// Where the address of a listener is configured: its key, and the command-line flag that overrides
/// it, if the command has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenSetting {
    /// The configuration key, e.g. `mcp.listen`.
    pub key: &'static str,
    /// The flag of the running command that overrides it, e.g. `--listen` for `serve`.
    pub flag: Option<&'static str>,
}

impl ListenSetting {
    pub const AUTHZ: Self = Self { key: "authz.listen", flag: None };
    pub const BANK_API: Self = Self { key: "bank_api.listen", flag: None };
    /// The MCP endpoint of `bankguard demo`, which has no `--listen`.
    pub const MCP: Self = Self { key: "mcp.listen", flag: None };
    /// The MCP endpoint of `bankguard serve --transport http`.
    pub const MCP_SERVE: Self = Self { key: "mcp.listen", flag: Some("--listen") };

    /// The environment variable that sets the key: `BANKGUARD_MCP__LISTEN` for `mcp.listen`.
    pub fn env_var(&self) -> String {
        format!("BANKGUARD_{}", self.key.to_ascii_uppercase().replace('.', "__"))
    }
}

/// A listener that could not be had.
#[derive(Debug)]
pub struct BindError {
    pub address: SocketAddr,
    pub setting: ListenSetting,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    /// "127.0.0.1:4102 is in use — set mcp.listen (BANKGUARD_MCP__LISTEN) or pass --listen".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { address, setting, source } = self;
        let change = match setting.flag {
            Some(flag) => format!("set {} ({}) or pass {flag}", setting.key, setting.env_var()),
            None => format!("set {} ({})", setting.key, setting.env_var()),
        };
        match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                write!(f, "{address} is in use (another bankguard, or another program?) — {change}")
            }
            _ => write!(f, "cannot listen on {address} ({}): {source} — {change}", setting.key),
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Binds `address`, which `setting` configures.
pub async fn bind(address: SocketAddr, setting: ListenSetting) -> Result<TcpListener, BindError> {
    TcpListener::bind(address).await.map_err(|source| BindError { address, setting, source })
}

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
    async fn an_address_in_use_names_the_setting_its_variable_and_the_flag() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = taken.local_addr().unwrap();
        let error = bind(address, ListenSetting::MCP_SERVE).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "{address} is in use (another bankguard, or another program?) — set mcp.listen \
                 (BANKGUARD_MCP__LISTEN) or pass --listen"
            )
        );
        let error = bind(address, ListenSetting::BANK_API).await.unwrap_err();
        assert!(error.to_string().ends_with("— set bank_api.listen (BANKGUARD_BANK_API__LISTEN)"), "{error}");
    }

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
