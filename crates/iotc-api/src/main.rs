use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use iotc_api::app::{AppState, HttpSettings, app};
use iotc_api::auth::Credentials;
use iotc_api::config::Config;
use iotc_api::store::Store;
use iotc_api::{heartbeat, openapi};

fn main() -> ExitCode {
    let config = match Config::try_parse() {
        Ok(config) => config,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => return fail(e.to_string().lines().next().unwrap_or("bad configuration")),
    };
    if config.print_openapi {
        print!("{}", openapi::document_json());
        return ExitCode::SUCCESS;
    }
    if config.print_openapi_v30 {
        print!("{}", openapi::document_v30_json());
        return ExitCode::SUCCESS;
    }
    let auth = match config.auth() {
        Ok(auth) => auth,
        Err(line) => return fail(&line),
    };
    iotc_core::ops::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(serve(
        config,
        Credentials::new(&auth.username, &auth.password),
    )) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(line: &str) -> ExitCode {
    eprintln!("iotc-api: {}", line.trim_start_matches("error: "));
    ExitCode::from(2)
}

async fn serve(config: Config, credentials: Credentials) -> anyhow::Result<()> {
    use anyhow::Context;
    let store =
        Store::connect(&config.redis_url).context("REDIS_URL is not a valid Redis address")?;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (IOTC_API_PORT / IOTC_API_BIND)"))?;
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "redis not reachable yet; retrying on each request");
    }
    tokio::spawn(heartbeat::run(store.clone()));
    let state = AppState {
        store,
        only_secure: config.only_secure_devices,
        gateway_timeout_secs: config.gateway_timeout_seconds,
        max_backup_bytes: config.max_backup_bytes,
    };
    let http = HttpSettings {
        credentials,
        max_body_bytes: config.max_body_bytes,
    };
    tracing::info!(%addr, only_secure = config.only_secure_devices, "iotc-api listening");
    axum::serve(listener, app(state, http))
        .with_graceful_shutdown(shutdown())
        .await
        .context("server failed")
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    iotc_api::console::close_all();
}
