//! The HTTP listener: each connection served by hyper with the api crate's routes, behind a
//! [`StallGuard`] so a viewer that stops reading an endless FLV body is cut off.

use crate::limits::{Limits, Listener};
use crate::stall::StallGuard;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;
use tracing::Instrument;

/// Serves `app` on `listener` until `shutdown` turns true. Open responses end with it: live
/// bodies never end by themselves, so there is nothing to drain.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    write_timeout: Duration,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) {
    let sessions = shutdown.clone();
    crate::limits::accept_loop(
        listener,
        Listener::Http,
        limits,
        shutdown,
        move |socket, peer, guard| {
            let _ = socket.set_nodelay(true);
            let app = app.clone();
            let mut shutdown = sessions.clone();
            let span = tracing::debug_span!("http", %peer);
            async move {
                let guard = std::sync::Arc::new(guard);
                let service =
                    tower::service_fn(move |mut req: axum::extract::Request<Incoming>| {
                        // A request head arrived: the connection is no longer a silent one.
                        guard.established();
                        // What `into_make_service_with_connect_info` would insert.
                        req.extensions_mut().insert(ConnectInfo(peer));
                        app.clone().oneshot(req)
                    });
                let io = TokioIo::new(StallGuard::new(socket, write_timeout));
                let builder = auto::Builder::new(TokioExecutor::new());
                let conn =
                    builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!("HTTP connection ended: {e}");
                    },
                    _ = shutdown.changed() => {}
                }
            }
            .instrument(span)
        },
    )
    .await;
}
