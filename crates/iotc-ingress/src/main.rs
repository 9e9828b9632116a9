use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use iotc_ingress::config::{Config, Settings};
use iotc_ingress::register::Register;
use iotc_ingress::status::Status;
use iotc_ingress::store::Store;
use iotc_ingress::tokens::TokenStore;
use iotc_ingress::{App, server, tls};

fn main() -> ExitCode {
    let config = match Settings::parse_or_explain() {
        Ok(settings) => settings.check().map_err(|e| e.to_string()),
        Err(line) => Err(line),
    };
    let config = match config {
        Ok(config) => config,
        Err(line) => {
            eprintln!("error: {line}");
            return ExitCode::from(2);
        }
    };
    let tls = match &config.tls {
        Some((cert, key)) => match tls::server_config(cert, key, config.ap_register) {
            Ok(tls) => Some(tls),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    iotc_core::ops::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, tls: Option<Arc<rustls::ServerConfig>>) -> anyhow::Result<()> {
    let _ = iotc_core::ops::metrics_handle();
    let options = iotc_core::redis::Options {
        retries: 3,
        ..Default::default()
    };
    let redis = iotc_core::redis::connect(&config.redis_url, options).context("REDIS_URL")?;
    let layout = iotc_core::partition::Layout::new(config.partitions, redis.is_cluster());
    let redis_for_check = redis.clone();
    let tcp = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("IOTC_INGRESS_PORT: cannot listen on {}", config.listen))?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        store: Store::new(
            redis.clone(),
            layout,
            config.telegram_stream_maxlen,
            config.gateway_event_stream_maxlen,
        ),
        register: config.ap_register.then(|| Register::start(redis.clone())),
        south: iotc_ingress::south::South::start(
            &config.redis_url,
            redis.clone(),
            &config.instance,
        )?,
        tokens: TokenStore::new(
            redis,
            config.token_lifetime,
            config.credentials.static_token.clone(),
        ),
        config,
        shutdown,
        status: Arc::default(),
    });
    tokio::spawn(heartbeat(app.store.clone(), app.status.clone()));
    tokio::spawn(check_partitions(redis_for_check, app.config.partitions));
    if std::env::var_os("IOT_DEDUP_WINDOW_MS").is_some() {
        tracing::info!("IOT_DEDUP_WINDOW_MS is applied by iotc-engine, which drops the copies");
    }
    tracing::info!(
        listen = %tcp.local_addr()?,
        tls = tls.is_some(),
        "ingress listening (/auth/aruba, /aruba)"
    );
    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    };
    server::serve(app, tcp, tls, signal)
        .await
        .context("server")?;
    Ok(())
}

/// Once Redis answers: stops the process when Redis holds another partition count (the
/// engines would not read the partitions this ingress writes).
async fn check_partitions(mut redis: iotc_core::redis::Redis, partitions: u16) {
    loop {
        match iotc_core::partition::disagreement(&mut redis, partitions).await {
            Ok(None) => return,
            Ok(Some(n)) => {
                tracing::error!(
                    "IOTC_PARTITIONS is {partitions}, but Redis holds {n} from the other services (docs/scaling.md)"
                );
                eprintln!(
                    "error: IOTC_PARTITIONS is {partitions}, but Redis holds {n} from the other services"
                );
                std::process::exit(2);
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// Every 10 s: `iotc:heartbeat:ingress`, which expires after 30 s.
async fn heartbeat(store: Store, status: Arc<Status>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        let value = status.heartbeat(iotc_core::ops::unix_seconds());
        if let Err(e) = store.heartbeat(&value).await {
            tracing::warn!(error = %e, "heartbeat not written");
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
