//! The MCP server on the real dev stack, and MCP clients (rmcp) that record what they receive.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bankguard::config::Config;
use bankguard::devstack::device_client::DeviceClient;
use bankguard::mcp::Backends;
use bankguard::mcp::transport::RunningHttp;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

use super::dev::Dev;

/// An MCP client that keeps every progress notification it receives.
#[derive(Clone, Default)]
pub struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, params: ProgressNotificationParam, _: NotificationContext<RoleClient>) {
        self.progress.lock().unwrap().push(params);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("bankguard-tests", "0.0.0"))
    }
}

impl Recorder {
    pub fn messages(&self) -> Vec<String> {
        self.progress.lock().unwrap().iter().filter_map(|p| p.message.clone()).collect()
    }
}

pub type Client = RunningService<RoleClient, Recorder>;

pub struct McpStack {
    pub dev: Dev,
    pub server: RunningHttp,
    /// The configuration the MCP server runs with.
    pub config: Config,
}

impl McpStack {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// `configure` sees the configuration of the dev stack and the MCP server, and the address the
    /// MCP server will listen on (for ping endpoints).
    pub async fn start_with(configure: impl FnOnce(&mut Config, SocketAddr)) -> Self {
        let listener = RunningHttp::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut wanted = None;
        let dev = Dev::start_with(|config| {
            configure(config, address);
            wanted = Some(config.clone());
        })
        .await;
        let mut config = wanted.unwrap();
        config.mcp.issuer = Some(dev.issuer().to_owned());
        config.mcp.bank_api_url = Some(dev.bank_api().to_owned());
        // The generated MCP client's secret is read from the data directory, as `serve` does.
        config.validate().unwrap();
        let backends = Arc::new(Backends::from_config(&config, true).unwrap());
        let server = RunningHttp::start(listener, backends, &config).await.unwrap();
        Self { dev, server, config }
    }

    /// Replaces the MCP server with one whose configuration `change` adjusted (the dev stack stays).
    pub async fn reconfigure_server(&mut self, change: impl FnOnce(&mut Config)) {
        change(&mut self.config);
        let backends = Arc::new(Backends::from_config(&self.config, true).unwrap());
        let listener = RunningHttp::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let old =
            std::mem::replace(&mut self.server, RunningHttp::start(listener, backends, &self.config).await.unwrap());
        old.shutdown().await.unwrap();
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A client over Streamable HTTP (MCP 2025-11-25, the `initialize` handshake).
    pub async fn http_client(&self) -> (Client, Recorder) {
        let recorder = Recorder::default();
        let transport = StreamableHttpClientTransport::from_uri(self.url());
        (recorder.clone().serve(transport).await.unwrap(), recorder)
    }

    /// A client over Streamable HTTP (2025-11-25) that sends `token` as its bearer access token.
    pub async fn http_client_with_token(&self, token: &str) -> (Client, Recorder) {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url()).auth_header(token);
        let recorder = Recorder::default();
        (recorder.clone().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap(), recorder)
    }

    /// `bankguard serve` (the built binary) over stdio, pointed at this stack; its stderr goes to `log`.
    pub async fn stdio_client(&self, log: &std::path::Path) -> (Client, Recorder) {
        let (transport, _) = TokioChildProcess::builder(self.serve_command())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let recorder = Recorder::default();
        (recorder.clone().serve(transport).await.unwrap(), recorder)
    }

    /// The command that starts `bankguard serve` (the built binary, stdio) pointed at this stack.
    pub fn serve_command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_bankguard"));
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANKGUARD_")) {
            command.env_remove(key);
        }
        command
            .arg("serve")
            .current_dir(self.dev.data_dir.path())
            .env("BANKGUARD_DATA_DIR", self.dev.data_dir.path())
            .env("BANKGUARD_MCP__ISSUER", self.dev.issuer())
            .env("BANKGUARD_MCP__BANK_API_URL", self.dev.bank_api())
            .env("BANKGUARD_MCP__PROGRESS_INTERVAL_SECONDS", self.config.mcp.progress_interval_seconds.to_string())
            .env("BANKGUARD_MCP__MAX_WAIT_SECONDS", self.config.mcp.max_wait_seconds.to_string())
            .env("RUST_LOG", "debug");
        self.dev.store.apply_to(&mut command);
        command
    }

    /// How many approval requests the provider has received.
    pub async fn approval_requests(&self) -> i64 {
        let options =
            sqlx::sqlite::SqliteConnectOptions::new().filename(self.dev.data_path("authz.sqlite")).read_only(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        sqlx::query_scalar("SELECT count(*) FROM backchannel_requests").fetch_one(&pool).await.unwrap()
    }

    /// In the background: waits for the next pending request, waits `after`, then decides it as the
    /// holder would on their phone. Returns the binding message the holder saw.
    pub fn decide_next(&self, decision: &'static str, after: Duration) -> tokio::task::JoinHandle<String> {
        let device = DeviceClient::for_data_dir(self.dev.data_dir.path()).unwrap();
        tokio::spawn(async move {
            let request = loop {
                if let Some(request) = device.pending(None).await.unwrap().into_iter().next() {
                    break request;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            tokio::time::sleep(after).await;
            device.decide(None, Some(&request.auth_req_id), decision).await.unwrap();
            request.binding_message
        })
    }
}

pub async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    client.call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments)).await.unwrap()
}

/// The text content of a tool result.
pub fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}
