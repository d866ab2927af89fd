//! The one loop that drives a `QueryDriver` to its answer. Whoever moves the
//! bytes implements `QueryPeers`: `actors::processor` over QUIC (relays and
//! authorities asked in parallel, discrete logs on a blocking thread), the
//! in-memory `harness` for tests and benchmarks, and the adversary tests.
//! Input: the driver's steps; output: the peers' replies fed back in, and
//! the answer. No I/O of its own.

use std::future::Future;
use std::time::{Duration, Instant};

use curve25519_dalek::ristretto::RistrettoPoint;
use rand_core::{CryptoRng, RngCore};

use super::error::{PeerReply, ProtocolError};
use super::messages::{AuthorityRequest, AuthorityResponse, QueryAnswer, RelayRequest, RelayResponse};
use super::processor::{QueryDriver, Step};
use crate::crypto::DlogRange;
use crate::stats::Release;

/// What a query needs from the world. Methods return futures (not
/// `async fn`) so that implementations choose whether theirs are `Send`.
pub trait QueryPeers {
    /// Sends `request` to each of `relays` (the driver's active relays);
    /// one reply per relay.
    fn ask_relays(
        &mut self,
        request: &RelayRequest,
        relays: &[String],
    ) -> impl Future<Output = Result<Vec<PeerReply<RelayResponse>>, ProtocolError>>;

    /// Sends each request to each of `authorities` (the driver's
    /// `QueryDriver::authorities`); one reply list per request, in order.
    fn ask_authorities(
        &mut self,
        requests: &[AuthorityRequest],
        authorities: &[String],
    ) -> impl Future<Output = Result<Vec<Vec<PeerReply<AuthorityResponse>>>, ProtocolError>>;

    /// The discrete log of each point, searched in its range
    /// (`DlogSolver::solve_vartime_in`).
    fn solve(
        &mut self,
        points: Vec<(Release, RistrettoPoint, DlogRange)>,
    ) -> impl Future<Output = Result<Vec<(Release, i64)>, ProtocolError>>;

    /// The driver took one step in `took` (for traces and progress reports;
    /// default: ignored).
    fn processed(&mut self, _took: Duration, _driver: &QueryDriver) {}
}

/// Runs the query from `step` (what `QueryDriver::new` returned) to its
/// answer. The driver stays with the caller, which can read what it
/// charged after a failure or a timeout.
pub async fn run_query(
    driver: &mut QueryDriver,
    mut step: Step,
    peers: &mut impl QueryPeers,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<QueryAnswer, ProtocolError> {
    loop {
        step = match step {
            Step::AskRelays(request) => {
                let active = driver.active_relays().to_vec();
                let replies = peers.ask_relays(&request, &active).await?;
                let t = Instant::now();
                let next = driver.on_relays(replies);
                peers.processed(t.elapsed(), driver);
                next?
            }
            Step::AskAuthorities(requests) => {
                let asked = driver.authorities().to_vec();
                let replies = peers.ask_authorities(&requests, &asked).await?;
                let t = Instant::now();
                let next = driver.on_authorities(requests, replies, rng);
                peers.processed(t.elapsed(), driver);
                next?
            }
            Step::Solve(points) => {
                let values = peers.solve(points).await?;
                let t = Instant::now();
                let next = driver.on_solved(values);
                peers.processed(t.elapsed(), driver);
                next?
            }
            Step::Done(answer) => return Ok(*answer),
        };
    }
}

/// Runs a future whose every await is ready at once (in-memory peers) to
/// completion without an executor; an internal error if it ever waits.
pub fn run_ready<F: Future>(future: F) -> Result<F::Output, ProtocolError> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Ok(output),
        std::task::Poll::Pending => {
            Err(ProtocolError::Internal("an in-memory query waited on something that is never ready".into()))
        }
    }
}
