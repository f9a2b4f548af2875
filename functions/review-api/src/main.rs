//! The review function. Thin: logging, configuration, the real adapters, and the choice of
//! how requests arrive.
//!
//! - In AWS Lambda (`AWS_LAMBDA_RUNTIME_API` is set): API Gateway HTTP API events through
//!   `lambda_http`.
//! - Elsewhere: a plain HTTP server on `HASHGATE_REVIEW_BIND` (default 127.0.0.1:8790).

use std::net::SocketAddr;

use anyhow::Context;
use hashgate_review_api::{config::Config, deployed, routes};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    hashgate_aws::logging::init(in_lambda)?;
    let config = Config::from_env()?;
    let router = routes::router(deployed::connect(&config).await);
    if in_lambda {
        lambda_http::run(router)
            .await
            .map_err(|e| anyhow::anyhow!("lambda runtime: {e}"))
    } else {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("listening on {}", config.bind))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "review queue listening on http://{address}");
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving the review queue")
    }
}
