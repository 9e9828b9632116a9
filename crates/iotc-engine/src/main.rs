//! iotc-engine: reads the telegram stream, decodes, publishes IoTC's JSON (see docs/engine.md).

use std::sync::Arc;
use std::time::Duration;

use iotc_core::ops;
use iotc_core::redis::Redis;
use iotc_engine::config::{self, Args};
use iotc_engine::decode::Decoder;
use iotc_engine::devices::Devices;
use iotc_engine::egress::Egress;
use iotc_engine::engine::Engine;
use iotc_engine::stream::{Reader, Settings};
use iotc_engine::{heartbeat, periodic};
use tokio::sync::watch;
use tracing::{info, warn};

fn main() -> std::process::ExitCode {
    let args = config::parse_or_exit();
    ops::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let seeds = iotc_core::redis::cluster_seeds(&args.redis_url);
    // Device changes arrive by pub/sub, which a cluster forwards to every node: the first
    // seed is enough.
    let first = seeds.as_ref().and_then(|s| s.first().cloned());
    let client = redis::Client::open(first.unwrap_or_else(|| ops::redis_url(&args.redis_url)))
        .unwrap_or_else(|e| config::fail("REDIS_URL", e));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", args.http_port))
        .await
        .unwrap_or_else(|e| config::fail("IOTC_ENGINE_HTTP_PORT", format!("cannot listen: {e}")));
    let secure = iotc_engine::secure::Settings::from_args(&args.secure)
        .unwrap_or_else(|(var, problem)| config::fail(var, problem));
    let egress = match Egress::start(&args.egress).await {
        Ok(e) => Arc::new(e),
        Err(e) => config::fail("egress", format!("{e:#}")),
    };
    ops::metrics_handle();

    let redis = manager(&args.redis_url, Duration::from_secs(5))?;
    // Reads wait up to block_ms on the server: allow for that in the response timeout.
    let reader_redis = manager(
        &args.redis_url,
        Duration::from_millis(args.block_ms as u64) + Duration::from_secs(5),
    )?;
    let layout = iotc_core::partition::Layout::new(args.partitions, redis.is_cluster());

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(stop_on_signal(stop_tx));
    tokio::spawn(serve_ops(listener, redis.clone(), egress.clone()));
    tokio::spawn(heartbeat::run(redis.clone(), egress.clone()));
    // Stats, health and device info messages at the configured intervals.
    let _periodic = periodic::spawn_periodic(egress.clone(), redis.clone(), &args.egress);

    let consumer = args.consumer_name();
    let partitions = iotc_engine::lease::spawn(
        redis.clone(),
        layout,
        consumer.clone(),
        Duration::from_millis(args.lease_ms as u64),
    );
    let mut reader = Reader::new(
        reader_redis,
        Settings {
            consumer: consumer.clone(),
            count: args.batch as usize,
            block_ms: args.block_ms as usize,
            claim_idle_ms: args.claim_idle_ms as usize,
            claim_every: Duration::from_millis((args.claim_idle_ms / 2) as u64),
            layout,
            partitions,
        },
        iotc_engine::dedup::Dedup::new(args.dedup_window_ms, iotc_engine::dedup::MAX_KEYS),
    );
    let devices = Devices::default();
    // Devices first: a telegram read before they are known would be dropped as unknown.
    let mut stop = stop_rx.clone();
    if !until_ok("loading devices", &mut stop, || {
        let devices = devices.clone();
        let mut redis = redis.clone();
        async move { devices.load_all(&mut redis).await }
    })
    .await
    {
        return Ok(());
    }
    check_partitions(&redis, args.partitions, &mut stop).await;
    while let Err(e) = reader.ensure_groups().await {
        warn!(error = %e, "creating the consumer group failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    tokio::spawn(devices.clone().watch(client.clone(), redis.clone()));
    let ha = iotc_engine::egress::ha::Shared::new(&args.ha, &args.egress);
    if let Some(shared) = &ha {
        let sync = iotc_engine::egress::ha::sync::run(
            shared.clone(),
            client.clone(),
            redis.clone(),
            egress.clone(),
        );
        tokio::spawn(sync);
    }
    iotc_engine::control::spawn(
        &args.redis_url,
        redis.clone(),
        devices.clone(),
        egress.clone(),
        &args,
    )?;
    info!(%consumer, devices = devices.len(), "engine started");

    Engine {
        redis,
        reader,
        decoder: Decoder::new(devices, args.chain_timeout_ms as u64),
        secure: iotc_engine::secure::Stage::new(secure),
        egress,
        shutdown: stop_rx,
        ha: ha.map(iotc_engine::egress::ha::Ha::new),
        counter_cache: args.counter_cache as usize,
    }
    .run()
    .await;
    Ok(())
}

/// A connection that reconnects by itself; created without waiting for Redis.
fn manager(url: &str, response: Duration) -> anyhow::Result<Redis> {
    let options = iotc_core::redis::Options {
        response_timeout: response,
        ..Default::default()
    };
    Ok(iotc_core::redis::connect(url, options)?)
}

/// Stops with a configuration error when Redis holds another partition count.
async fn check_partitions(redis: &Redis, partitions: u16, stop: &mut watch::Receiver<bool>) {
    let mut redis = redis.clone();
    loop {
        match iotc_core::partition::disagreement(&mut redis, partitions).await {
            Ok(None) => return,
            Ok(Some(n)) => config::fail(
                "IOTC_PARTITIONS",
                format!(
                    "{partitions}, but Redis holds {n} from the other services (docs/scaling.md)"
                ),
            ),
            Err(e) => warn!(error = %e, "checking the partition count failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Retries `call` every second until it succeeds; `false` when asked to stop.
async fn until_ok<F, Fut>(what: &str, stop: &mut watch::Receiver<bool>, mut call: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis::RedisResult<()>>,
{
    loop {
        match call().await {
            Ok(()) => return true,
            Err(e) => warn!(error = %e, "{what} failed; Redis not reachable? retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return false,
        }
    }
}

async fn serve_ops(listener: tokio::net::TcpListener, redis: Redis, egress: Arc<Egress>) {
    let ready: ops::ReadyCheck = Arc::new(move || {
        let mut redis = redis.clone();
        let egress = egress.clone();
        Box::pin(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut redis)
                .await
                .map_err(|e| format!("redis: {e}"))?;
            if !egress.connected() {
                return Err("egress: not connected".into());
            }
            Ok(())
        })
    });
    if let Err(e) = axum::serve(listener, ops::ops_router(ready)).await {
        warn!(error = %e, "ops server stopped");
    }
}

async fn stop_on_signal(stop: watch::Sender<bool>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    let _ = stop.send(true);
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
    info!("stopping");
    let _ = stop.send(true);
}
