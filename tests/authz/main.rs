//! The embedded CIBA authorization server over real HTTP on loopback, with its state in temp dirs.

#[path = "../support/mod.rs"]
mod support;

mod a_changed_or_settled_request_is_asked_anew;
mod approval_moves_money_at_the_bank;
mod backchannel_request_errors;
mod device_page;
mod device_page_in_a_browser;
mod discovery_and_keys;
mod mcp_clients_discover_the_authorization_server;
mod ping_delivery;
mod polling_the_token_endpoint;
mod requests_survive_a_restart;
mod resending_an_approval_request_is_a_retry;
mod waiting_survives_a_provider_outage;
