//! The HTTP listener: each connection served by hyper with the api crate's routes, behind a
//! [`StallGuard`] so a viewer that stops reading an endless FLV body is cut off.

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
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = socket.set_nodelay(true);
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        let span = tracing::debug_span!("http", %peer);
        tokio::spawn(
            async move {
                let service =
                    tower::service_fn(move |mut req: axum::extract::Request<Incoming>| {
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
            .instrument(span),
        );
    }
}
