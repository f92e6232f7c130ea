//! The MCP server end to end: real MCP clients (rmcp over Streamable HTTP, and the built binary over
//! stdio) against the real dev stack on ephemeral loopback ports.

#[path = "../support/mod.rs"]
mod support;

mod a_cancelled_call_never_moves_money;
mod approvals_outlast_the_call;
mod holders_sign_in_over_http;
mod http_endpoint_guards;
mod http_sessions_are_bounded;
mod invalid_transfers_are_refused_before_approval;
mod listing_accounts;
mod money_policy;
mod operations_endpoints;
mod over_stdio;
mod proof_of_consent;
mod replicas_share_one_store;
mod resuming_a_stream;
mod the_fault_proxy_injects_real_faults;
mod tools_are_described;
mod transfer_outcomes;
mod transfers_survive_crashes;
mod transfers_survive_network_faults;
mod waiting_for_the_holder;
