//! The HTTP endpoint: `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (every pipeline has its assignment, the catalog answers, and no pipeline's last
//! checkpoint is older than `metrics.readiness_max_checkpoint_age`).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use icefall_table::{Catalog, TableIdent};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::{Metrics, PipelineMetrics};
use crate::{Error, Result};

/// How long `/readyz` waits for the catalog.
const CATALOG_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the endpoint answers from.
pub struct Probes {
    pub metrics: Arc<Metrics>,
    /// Every pipeline started so far (routing adds pipelines for topics created later).
    pub pipelines: Arc<std::sync::RwLock<Vec<(PipelineMetrics, TableIdent)>>>,
    /// Set once the catalog is connected.
    pub catalog: Arc<OnceLock<Catalog>>,
    pub max_checkpoint_age: Duration,
}

/// Binds the endpoint now (a taken port fails start-up), then serves until `stop`.
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!("metrics.listen = \"{addr}\": cannot listen there ({e}); pick a free address or port"))
    })
}

pub async fn serve(listener: TcpListener, probes: Arc<Probes>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "metrics endpoint: accept failed");
                continue;
            }
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let probes = probes.clone();
                async move { Ok::<_, Infallible>(probes.respond(&request).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "metrics endpoint: connection ended with an error");
            }
        });
    }
}

impl Probes {
    async fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".into());
        }
        match request.uri().path() {
            "/metrics" => {
                // Readiness as a gauge too, fresh at every scrape: alerts see what the probe sees.
                self.readiness().await;
                reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    self.metrics.encode(),
                )
            }
            "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            "/readyz" => {
                let (ready, report) = self.readiness().await;
                let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                reply(status, "text/plain", report)
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "try /metrics, /healthz or /readyz\n".into()),
        }
    }

    /// Each check on its own line, `ok` or `fail` first; each pipeline's verdict also goes to
    /// its `pipeline_ready` gauge. Pipelines are checked at once (one catalog probe each).
    async fn readiness(&self) -> (bool, String) {
        let pipelines = self.pipelines.read().map(|p| p.clone()).unwrap_or_else(|e| e.into_inner().clone());
        let checks = pipelines.iter().map(|(pipeline, table)| async move {
            let (ready, report) = self.pipeline_readiness(pipeline, table).await;
            pipeline.readiness_checked(ready);
            (ready, report)
        });
        let results = futures::future::join_all(checks).await;
        if results.is_empty() {
            return (false, "fail no pipeline has started yet (catalog, or topics for topics_regex)\n".into());
        }
        (results.iter().all(|(ready, _)| *ready), results.into_iter().map(|(_, report)| report).collect())
    }

    async fn pipeline_readiness(&self, pipeline: &PipelineMetrics, table: &TableIdent) -> (bool, String) {
        let mut ready = true;
        let mut report = String::new();
        let mut line = |ok: bool, text: String| {
            ready &= ok;
            let _ = writeln!(report, "{} {text}", if ok { "ok" } else { "fail" });
        };
        {
            let name = pipeline.name();
            if pipeline.is_assigned() {
                line(true, format!("pipeline {name}: partitions assigned"));
            } else {
                line(false, format!("pipeline {name}: waiting for the consumer group's assignment"));
            }
            let age = pipeline.since_progress();
            line(
                age <= self.max_checkpoint_age,
                format!(
                    "pipeline {name}: last checkpoint {}s ago (bound {}s)",
                    age.as_secs(),
                    self.max_checkpoint_age.as_secs()
                ),
            );
            let Some(catalog) = self.catalog.get() else {
                line(false, format!("pipeline {name}: catalog not connected yet"));
                return (ready, report);
            };
            let probe = tokio::time::timeout(CATALOG_PROBE_TIMEOUT, catalog.metadata_location(table)).await;
            match probe {
                Ok(Ok(Some(_))) => line(true, format!("pipeline {name}: catalog answers")),
                Ok(Ok(None)) => line(false, format!("pipeline {name}: table is missing from the catalog")),
                Ok(Err(e)) => line(false, format!("pipeline {name}: catalog unreachable: {e}")),
                Err(_) => {
                    line(false, format!("pipeline {name}: catalog did not answer within {CATALOG_PROBE_TIMEOUT:?}"))
                }
            }
        }
        (ready, report)
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response
}
