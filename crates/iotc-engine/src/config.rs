//! Command line and environment settings of the engine.

use clap::Parser;

use crate::egress::EgressArgs;

/// iotc-engine: decodes EnOcean telegrams from the Redis stream and publishes IoTC's JSON.
#[derive(Parser)]
#[command(name = "iotc-engine", version, about)]
pub struct Args {
    /// Redis address: a host name (`redis`), `host:port`, or a `redis://` URL; a Redis
    /// Cluster as several addresses separated by commas or `redis-cluster://host:port`.
    #[arg(long, env = "REDIS_URL", default_value = "localhost")]
    pub redis_url: String,

    /// Partitions of the telegram stream; the same value on every ingress and engine
    /// (docs/scaling.md).
    #[arg(long, env = "IOTC_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=iotc_core::partition::MAX_PARTITIONS as i64))]
    pub partitions: u16,

    /// Lifetime of a partition lease (ms): an engine that stops renewing its leases has its
    /// partitions taken over after at most this plus a third of it.
    #[arg(long, env = "IOTC_ENGINE_LEASE_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(300..=600_000))]
    pub lease_ms: u32,

    /// Port of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "IOTC_ENGINE_HTTP_PORT", default_value_t = 9187)]
    pub http_port: u16,

    /// Consumer name in the engine group; defaults to the host name. Keep it stable across
    /// restarts so that a restarted engine picks up its own unacknowledged entries at once.
    #[arg(long, env = "IOTC_ENGINE_CONSUMER")]
    pub consumer: Option<String>,

    /// Most stream entries read (and published) per batch.
    #[arg(long, env = "IOTC_ENGINE_BATCH", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,

    /// How long one read waits for new entries, in milliseconds.
    #[arg(long, env = "IOTC_ENGINE_BLOCK_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub block_ms: u32,

    /// Entries another consumer left unacknowledged this long (ms) are taken over.
    #[arg(long, env = "IOTC_ENGINE_CLAIM_IDLE_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u32).range(1000..))]
    pub claim_idle_ms: u32,

    /// Devices whose counters the engine keeps in memory (about 50 bytes each); the copy
    /// starts over when full, at the cost of reading the counters again.
    #[arg(long, env = "IOTC_ENGINE_COUNTER_CACHE", default_value_t = 200_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub counter_cache: u32,

    /// A telegram whose copy (heard by another AP, or repeated) was appended within this many
    /// milliseconds before is a duplicate and is dropped (docs/engine.md, "De-duplication").
    #[arg(long, env = "IOT_DEDUP_WINDOW_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub dedup_window_ms: u64,

    /// Time (ms) allowed between the first and the last part of a chained telegram.
    #[arg(long, env = "IOTC_ENGINE_CHAIN_TIMEOUT_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u32).range(1..=600_000))]
    pub chain_timeout_ms: u32,

    #[command(flatten)]
    pub egress: EgressArgs,

    #[command(flatten)]
    pub secure: crate::secure::SecureArgs,

    #[command(flatten)]
    pub ha: crate::egress::ha::HaArgs,

    #[command(flatten)]
    pub control: crate::control::ControlArgs,
}

impl Args {
    pub fn consumer_name(&self) -> String {
        if let Some(c) = self.consumer.as_deref().filter(|c| !c.trim().is_empty()) {
            return c.trim().to_string();
        }
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "engine".to_string())
    }
}

/// Parses the command line and environment. `--help` and `--version` print and exit 0; a
/// bad setting prints one line naming its environment variable and exits with 2.
pub fn parse_or_exit() -> Args {
    use clap::CommandFactory;
    match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            eprintln!("{}", one_line(&e, &Args::command()));
            std::process::exit(2);
        }
    }
}

/// `invalid configuration: IOTC_ENGINE_BATCH (--batch): invalid value 'x' ...`.
fn one_line(e: &clap::Error, cmd: &clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue};
    let flag = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split_whitespace().next().unwrap_or("").to_string(),
        _ => String::new(),
    };
    let env = cmd
        .get_arguments()
        .find(|a| a.get_long().is_some_and(|l| format!("--{l}") == flag))
        .and_then(|a| a.get_env())
        .map(|v| v.to_string_lossy().into_owned());
    let text = e.to_string();
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid configuration")
        .trim_start_matches("error: ");
    match env {
        Some(var) => format!("invalid configuration: {var} ({flag}): {first}"),
        None => format!("invalid configuration: {first}"),
    }
}

/// One line for a setting that parsed but cannot be used.
pub fn fail(var: &str, problem: impl std::fmt::Display) -> ! {
    eprintln!("invalid configuration: {var}: {problem}");
    std::process::exit(2);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn bad_value_names_the_variable() {
        let e = Args::try_parse_from(["iotc-engine", "--batch", "zero"])
            .err()
            .unwrap();
        let line = one_line(&e, &Args::command());
        assert!(
            line.starts_with("invalid configuration: IOTC_ENGINE_BATCH (--batch): "),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn help_lists_the_variables() {
        let help = Args::command().render_long_help().to_string();
        for var in [
            "REDIS_URL",
            "IOTC_ENGINE_HTTP_PORT",
            "MQTT_CONNSTRING",
            "IOT_ENABLE_MQTT",
        ] {
            assert!(help.contains(var), "{var} missing from --help");
        }
    }
}
