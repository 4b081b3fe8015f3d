//! Serving HTTP/1.1 connections: at most `http_max_connections` at once (more wait in the
//! kernel's backlog), headers read under a time-out that also closes idle keep-alive
//! connections, bodies under an idle time-out (408), websocket upgrades, and a graceful stop
//! that lets requests in flight finish.

use std::{convert::Infallible, future::Future, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tally_core::config::HttpSettings;

use crate::bare_refusals::Shaped;
use tokio::{net::TcpListener, sync::Semaphore};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// Serves `router` on `listener` until `shutdown` completes, then waits for open connections to
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(Duration::from_secs(
        settings.http_body_timeout,
    )));
    let slots = Arc::new(Semaphore::new(settings.http_max_connections.max(1)));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (done, mut all_done) = tokio::sync::mpsc::channel::<Infallible>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, as axum does.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            router
                .clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(remote));
                    request.map(Body::new)
                });
        let mut stopping = stopping.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(settings.http_header_timeout));
            let connection = builder
                .serve_connection(
                    TokioIo::new(Shaped::new(stream)),
                    TowerToHyperService::new(service),
                )
                .with_upgrades();
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %remote, "a connection ended with an error");
            }
            drop((permit, done));
        });
    }
    let _ = stop.send(true);
    drop(done);
    // Every connection task holds a sender: `None` once the last one has finished.
    let _ = all_done.recv().await;
}
