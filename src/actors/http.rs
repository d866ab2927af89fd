//! The operator's HTTP endpoints (actix-web, one worker), served when the
//! config has `metrics.listen`: `/metrics` (the node's `Registry` in the
//! Prometheus/OpenMetrics text format), `/healthz` (200 "ok" while the
//! process serves) and `/readyz` (200 "ready", or 503 with the reason from
//! `Health`). Input: a TCP listener bound by `node::bind_metrics`, the
//! registry built by `node::prepare`, the readiness the node's runner and
//! the processor's peer probe set; output: HTTP replies to whoever reaches
//! the listener (the operator's scraper). Reads no request body, takes no
//! parameters, serves nothing else.

use std::net::TcpListener;
use std::sync::{Arc, RwLock};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use prometheus_client::registry::Registry;

use super::error::NodeError;
use super::metrics::NodeMetrics;

/// Whether the node is ready to serve, and if not why (plain text); shared
/// by the node runner, the processor's peer probe and the HTTP worker.
#[derive(Clone, Debug)]
pub struct Health {
    state: Arc<RwLock<Result<(), String>>>,
}

impl Health {
    /// Not ready until told otherwise.
    pub fn starting() -> Health {
        Health { state: Arc::new(RwLock::new(Err("starting".into()))) }
    }

    pub fn set(&self, readiness: Result<(), String>) {
        if let Ok(mut state) = self.state.write() {
            *state = readiness;
        }
    }

    pub fn get(&self) -> Result<(), String> {
        self.state.read().map(|s| s.clone()).unwrap_or_else(|_| Err("readiness state unavailable".into()))
    }
}

struct Endpoints {
    registry: Registry,
    health: Health,
}

async fn metrics(state: web::Data<Endpoints>) -> HttpResponse {
    match NodeMetrics::encode(&state.registry) {
        Ok(text) => {
            HttpResponse::Ok().content_type("application/openmetrics-text; version=1.0.0; charset=utf-8").body(text)
        }
        Err(_) => HttpResponse::InternalServerError().body("encoding the metrics failed\n"),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ok\n")
}

async fn readyz(state: web::Data<Endpoints>) -> HttpResponse {
    match state.health.get() {
        Ok(()) => HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("ready\n"),
        Err(reason) => HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{reason}\n")),
    }
}

/// Starts the endpoints on `listener` inside the current actix System (one
/// worker thread, no signal handlers of its own: the node handles those)
/// and returns the handle that stops them.
pub fn serve_http(listener: TcpListener, registry: Registry, health: Health) -> Result<ServerHandle, NodeError> {
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::Setup { what: "the metrics listener".into(), reason: e.to_string() })?;
    let state = web::Data::new(Endpoints { registry, health });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(|e| NodeError::MetricsBind { addr, reason: e.to_string() })?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}
