//! The embedded CIBA authorization server over real HTTP on loopback, with its state in temp dirs.

#[path = "../support/mod.rs"]
mod support;

mod a_changed_or_settled_request_is_asked_anew;
mod a_client_named_by_its_metadata_document_signs_in;
mod a_code_works_once_and_only_with_its_verifier;
mod a_reused_refresh_token_revokes_the_sign_in;
mod approval_moves_money_at_the_bank;
mod authorization_requests_that_are_refused;
mod backchannel_request_errors;
mod clients_register_themselves_and_sign_in;
mod device_page;
mod device_page_in_a_browser;
mod discovery_and_keys;
mod mcp_clients_discover_the_authorization_server;
mod ping_delivery;
mod polling_the_token_endpoint;
mod requests_survive_a_restart;
mod resending_an_approval_request_is_a_retry;
mod sign_in_forms_need_their_own_csrf_token;
mod signing_in_in_a_browser;
mod signing_in_with_a_code_and_pkce;
mod waiting_survives_a_provider_outage;
