//! The user's side: sends one request to the processor named in a user
//! config (mutual TLS, pinned processor certificate) and returns its answer.
//! Used by `crux-node query` and `crux-node status`.

use super::error::NodeError;
use super::keys::{resolve, transport_config};
use super::transport::{client_endpoint_for, Client};
use crate::config::NodeConfig;
use crate::protocol::wire::{decode, encode};
use crate::protocol::{ProcessorRequest, ProcessorResponse};

/// Longest wait for the connection's close to be sent before the CLI exits.
/// The close frame goes out at the endpoint's next poll (well under a
/// millisecond on loopback); `wait_idle` would then wait out the whole
/// draining period (three probe timeouts, about 85 ms even on loopback),
/// which only delays the CLI's exit.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// One request/response with the processor, inside a fresh actix System.
pub fn ask_processor(cfg: &NodeConfig, request: &ProcessorRequest) -> Result<ProcessorResponse, NodeError> {
    let tcfg = transport_config(cfg)?;
    let processor = cfg.cluster.processor.clone();
    let addr = resolve(&processor)?;
    let bytes = encode(request)?;
    let max_frame = cfg.max_frame_bytes;
    let system = actix_rt::System::new();
    system.block_on(async move {
        let endpoint = client_endpoint_for(addr, &tcfg)?;
        let client = Client::new(endpoint.clone(), &tcfg);
        // a query is not resent after a lost connection: it could run twice
        let reply = if matches!(request, ProcessorRequest::Query { .. }) {
            client.request_at_most_once(&processor.name, addr, &bytes).await
        } else {
            client.request(&processor.name, addr, &bytes).await
        };
        endpoint.close(0u32.into(), b"done");
        // let the close reach the processor: else it holds this connection
        // until its idle timeout, and past `MAX_CONNECTIONS_PER_PEER` of a
        // user's connections it has to close the oldest idle one
        let _ = tokio::time::timeout(CLOSE_WAIT, endpoint.wait_idle()).await;
        let reply = reply?;
        Ok(decode::<ProcessorResponse>(&reply, max_frame)?)
    })
}
