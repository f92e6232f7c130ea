//! The real dev stack (authorization server + bank API) on ephemeral loopback ports, with its data
//! directory in a temp dir, and the client calls a CIBA client makes against it.

use std::net::SocketAddr;
use std::path::PathBuf;

use bankguard::config::{ClientAuthMethod, ClientConfig, Config, DeliveryMode, GrantType};
use bankguard::devstack::DevStack;
use bankguard::devstack::authz::clients::ClientCredentials;
use bankguard::devstack::device_client::DeviceClient;
use serde_json::Value;

use super::intent_store::{StoredIntents, TestStore};
use super::{Reply, Transfer, send};

/// A second CIBA client, registered for `client_secret_post`.
pub const POST_CLIENT: (&str, &str) = ("post-client", "post-client-secret-0123456789");
/// A client allowed only the client-credentials grant.
pub const MACHINE_CLIENT: (&str, &str) = ("machine-client", "machine-client-secret-012345");
/// A ping client; its notification endpoint is set by the test that receives the pings.
pub const PING_CLIENT: (&str, &str) = ("ping-client", "ping-client-secret-0123456789");

/// How a request authenticates its client.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    Basic(String, String),
    Post(String, String),
    Anonymous,
}

pub struct Dev {
    pub stack: DevStack,
    pub config: Config,
    /// Where MCP servers started for this stack keep their intents (SQLite in `data_dir`, or a
    /// PostgreSQL database: see [`TestStore`]).
    pub store: TestStore,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

pub fn client(id: &str, secret: &str, auth_method: ClientAuthMethod) -> ClientConfig {
    ClientConfig {
        id: id.to_owned(),
        secret: secret.to_owned(),
        auth_method,
        redirect_uris: Vec::new(),
        client_name: None,
        grant_types: ClientConfig::default_grant_types(),
        delivery_mode: DeliveryMode::Poll,
        notification_endpoint: None,
        client_credentials_scopes: ClientConfig::default_client_credentials_scopes(),
    }
}

pub fn ping_client(notification_endpoint: &str) -> ClientConfig {
    ClientConfig {
        delivery_mode: DeliveryMode::Ping,
        notification_endpoint: Some(notification_endpoint.to_owned()),
        ..client(PING_CLIENT.0, PING_CLIENT.1, ClientAuthMethod::ClientSecretBasic)
    }
}

impl Dev {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with a 1 s poll interval, the extra test clients, and then `configure`'s changes.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_on(TestStore::for_this_run().await, configure).await
    }

    /// The same, with MCP servers keeping their intents in `store`.
    pub async fn start_on(store: TestStore, configure: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = Config { data_dir: data_dir.path().to_owned(), ..Config::default() };
        config.authz.listen = "127.0.0.1:0".parse().unwrap();
        config.bank_api.listen = "127.0.0.1:0".parse().unwrap();
        config.authz.poll_interval_seconds = 1;
        config.authz.clients = vec![
            client(POST_CLIENT.0, POST_CLIENT.1, ClientAuthMethod::ClientSecretPost),
            ClientConfig {
                grant_types: vec![GrantType::ClientCredentials],
                ..client(MACHINE_CLIENT.0, MACHINE_CLIENT.1, ClientAuthMethod::ClientSecretBasic)
            },
        ];
        store.configure(&mut config);
        configure(&mut config);
        config.validate().unwrap();
        let stack = DevStack::start(&config).await.unwrap();
        Self { stack, config, store, data_dir, http: bankguard::http_client::builder().build().unwrap() }
    }

    /// Stops this process's servers and starts new ones on the same data directory (new ports).
    pub async fn restart(self) -> Self {
        let Self { stack, config, store, data_dir, http } = self;
        stack.shutdown().await;
        let stack = DevStack::start(&config).await.unwrap();
        Self { stack, config, store, data_dir, http }
    }

    /// Stops this process's servers and keeps their ports and data directory for
    /// [`StoppedDev::start_again`]; meanwhile nothing of the dev stack listens.
    pub async fn stop(self) -> StoppedDev {
        let Self { stack, mut config, store, data_dir, http } = self;
        config.authz.listen = stack.authz_address;
        config.bank_api.listen = stack.bank_api_address;
        stack.shutdown().await;
        StoppedDev { config, store, data_dir, http }
    }

    pub fn issuer(&self) -> &str {
        &self.stack.running.issuer
    }

    pub fn data_path(&self, file: &str) -> PathBuf {
        self.data_dir.path().join(file)
    }

    /// The MCP servers' intents as stored.
    pub async fn intents(&self) -> StoredIntents {
        self.store.reader(self.data_dir.path()).await
    }

    pub fn mcp(&self) -> &ClientCredentials {
        &self.stack.mcp_client
    }

    /// The MCP server's client, authenticating as registered (HTTP Basic).
    pub fn mcp_auth(&self) -> ClientAuth {
        ClientAuth::Basic(self.mcp().client_id.clone(), self.mcp().client_secret.clone())
    }

    pub async fn post_form(&self, path: &str, auth: &ClientAuth, params: &[(&str, &str)]) -> Reply {
        let mut form: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut request = self.http.post(format!("{}{path}", self.issuer()));
        match auth {
            ClientAuth::Basic(id, secret) => request = request.basic_auth(id, Some(secret)),
            ClientAuth::Post(id, secret) => {
                form.push(("client_id".into(), id.clone()));
                form.push(("client_secret".into(), secret.clone()));
            }
            ClientAuth::Anonymous => {}
        }
        send(request.form(&form)).await
    }

    pub async fn bc_authorize(&self, auth: &ClientAuth, params: &[(&str, &str)]) -> Reply {
        self.post_form("/bc-authorize", auth, params).await
    }

    /// A backchannel request by the MCP client for alice with a plain binding message.
    pub async fn request_sign_in(&self, extra: &[(&str, &str)]) -> String {
        let mut params = vec![("scope", "openid"), ("login_hint", "alice"), ("binding_message", "Sign in #TEST")];
        params.extend_from_slice(extra);
        let reply = self.bc_authorize(&self.mcp_auth(), &params).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["auth_req_id"].as_str().unwrap().to_owned()
    }

    /// The approval request the MCP server sends for `transfer` on behalf of `subject`.
    pub async fn request_transfer_approval(&self, subject: &str, transfer: &Transfer) -> String {
        let reply = self.ask_transfer_approval(&self.mcp_auth(), subject, transfer, &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["auth_req_id"].as_str().unwrap().to_owned()
    }

    /// That approval request sent by `auth`, with `changes` replacing or adding parameters; the reply.
    pub async fn ask_transfer_approval(
        &self,
        auth: &ClientAuth,
        subject: &str,
        transfer: &Transfer,
        changes: &[(&str, &str)],
    ) -> Reply {
        let details = Value::Array(vec![transfer.binding()]).to_string();
        let binding = format!("Transfer {} {} #{}", transfer.amount, transfer.currency, &transfer.intent_id[4..8]);
        let mut params = vec![
            ("scope", "openid create:transfer"),
            ("login_hint", subject),
            ("binding_message", binding.as_str()),
            ("audience", self.config.bank_api.audience.as_str()),
            ("authorization_details", details.as_str()),
        ];
        params.retain(|(name, _)| !changes.iter().any(|(changed, _)| changed == name));
        params.extend_from_slice(changes);
        self.bc_authorize(auth, &params).await
    }

    pub async fn token(&self, auth: &ClientAuth, params: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/token", auth, params).await
    }

    /// One CIBA token request by the MCP client.
    pub async fn poll(&self, auth_req_id: &str) -> Reply {
        self.token(
            &self.mcp_auth(),
            &[("grant_type", "urn:openid:params:grant-type:ciba"), ("auth_req_id", auth_req_id)],
        )
        .await
    }

    pub fn device(&self) -> DeviceClient {
        DeviceClient::for_data_dir(self.data_dir.path()).unwrap()
    }

    pub async fn approve(&self, auth_req_id: &str) {
        self.device().decide(None, Some(auth_req_id), "approve").await.unwrap();
    }

    pub async fn deny(&self, auth_req_id: &str) {
        self.device().decide(None, Some(auth_req_id), "deny").await.unwrap();
    }

    /// The bank API's base URL (ending in `/api`).
    pub fn bank_api(&self) -> &str {
        &self.stack.running.bank_api
    }

    /// A client-credentials token of the MCP server for reading accounts.
    pub async fn read_token(&self) -> String {
        let reply = self
            .token(
                &self.mcp_auth(),
                &[("grant_type", "client_credentials"), ("audience", &self.config.bank_api.audience)],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["access_token"].as_str().unwrap().to_owned()
    }

    /// Every account's balance, read through the bank API with the MCP server's own token.
    pub async fn balances(&self) -> std::collections::BTreeMap<String, String> {
        let token = self.read_token().await;
        let mut balances = std::collections::BTreeMap::new();
        for user in ["alice", "bob"] {
            let url = format!("{}/users/{user}/accounts", self.bank_api());
            let reply = send(self.http.get(url).bearer_auth(&token)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            for account in reply.body["accounts"].as_array().unwrap() {
                balances.insert(account["id"].as_str().unwrap().into(), account["balance"].as_str().unwrap().into());
            }
        }
        balances
    }

    pub async fn post_transfer(&self, token: &str, transfer: &Transfer) -> Reply {
        let request = self
            .http
            .post(format!("{}/transfers", self.bank_api()))
            .bearer_auth(token)
            .header("Idempotency-Key", &transfer.intent_id)
            .json(&transfer.body());
        send(request).await
    }
}

/// A dev stack whose servers are stopped, with its data directory and ports kept.
pub struct StoppedDev {
    config: Config,
    store: TestStore,
    data_dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl StoppedDev {
    /// Where the authorization server listened, and will again.
    pub fn authz_address(&self) -> SocketAddr {
        self.config.authz.listen
    }

    /// Starts the servers again on the same data directory and the same ports, so the issuer and
    /// every endpoint URL a client holds stay valid.
    pub async fn start_again(self) -> Dev {
        let Self { config, store, data_dir, http } = self;
        let stack = DevStack::start(&config).await.unwrap();
        Dev { stack, config, store, data_dir, http }
    }
}
