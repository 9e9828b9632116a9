//! Settings from the environment (IoTC's variable names where IoTC has one), checked once at
//! start so that a bad value stops the process with one line naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};

/// EnOcean IoT Connector ingress: Aruba APs connect here over WebSocket.
#[derive(Parser, Debug, Clone)]
#[command(name = "iotc-ingress", version, about)]
pub struct Settings {
    /// Port of the listener for /auth/aruba, the AP WebSocket (/aruba), /healthz, /readyz
    /// and /metrics.
    #[arg(long, env = "IOTC_INGRESS_PORT", default_value_t = 7070)]
    pub port: u16,

    /// Address to listen on.
    #[arg(long, env = "IOTC_INGRESS_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,

    /// Redis: a host name (`redis`), `host:port` or a `redis://` URL; a Redis Cluster as
    /// several addresses separated by commas or `redis-cluster://host:port`.
    #[arg(long, env = "REDIS_URL", default_value = "localhost")]
    pub redis_url: String,

    /// Partitions of the telegram stream (one engine reads each at a time); the same value
    /// on every ingress and engine (docs/scaling.md).
    #[arg(long, env = "IOTC_PARTITIONS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=iotc_core::partition::MAX_PARTITIONS as i64))]
    pub partitions: u16,

    /// User name the APs authenticate with at /auth/aruba.
    #[arg(long, env = "IOT_GATEWAY_USERNAME", hide_env_values = true)]
    pub gateway_username: Option<String>,

    /// Password the APs authenticate with at /auth/aruba.
    #[arg(long, env = "IOT_GATEWAY_PASSWORD", hide_env_values = true)]
    pub gateway_password: Option<String>,

    /// Deprecated name of IOT_GATEWAY_USERNAME (used when that is not set).
    #[arg(long, env = "IOT_ARUBA_USERNAME", hide_env_values = true)]
    pub aruba_username: Option<String>,

    /// Deprecated name of IOT_GATEWAY_PASSWORD (used when that is not set).
    #[arg(long, env = "IOT_ARUBA_PASSWORD", hide_env_values = true)]
    pub aruba_password: Option<String>,

    /// A static access token, for APs configured with an endpointToken and no
    /// authenticationURL. Accepted in addition to the tokens issued at /auth/aruba.
    #[arg(long, env = "IOT_GATEWAY_TOKEN", hide_env_values = true)]
    pub gateway_token: Option<String>,

    /// Lifetime of issued access tokens, in seconds.
    #[arg(long, env = "TOKEN_EXP_INTERVAL", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..=31 * 24 * 3600))]
    pub token_exp_interval: u64,

    /// Public `host:port` of the WebSocket (as the APs reach it, e.g. through nginx). When set,
    /// /auth/aruba answers `api_url` = `wss://<value>/aruba` (a `ws://` or `wss://` URL is used
    /// as it is), which the AP then uses instead of its configured endpoint URL.
    #[arg(long, env = "IOT_AUTH_CALLBACK")]
    pub auth_callback: Option<String>,

    /// The de-duplication window, applied by iotc-engine since the engines drop the copies;
    /// still accepted (and checked) here so that existing settings keep working.
    #[arg(long, env = "IOT_DEDUP_WINDOW_MS", default_value_t = 500, hide = true,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub dedup_window_ms: u64,

    /// Bound of the telegram stream in entries the engines have not acknowledged yet. At the
    /// bound the ingress stops reading from the APs (backpressure); acknowledged entries are
    /// trimmed, unacknowledged ones never. About 100 bytes of Redis memory per entry.
    #[arg(long, env = "IOTC_TELEGRAM_STREAM_MAXLEN", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub telegram_stream_maxlen: u64,

    /// Bound of the gateway event stream in events not yet acknowledged; acknowledged ones
    /// are trimmed. At the bound further events are dropped and counted (the gateway
    /// registry is still updated).
    #[arg(long, env = "IOTC_GATEWAY_EVENT_STREAM_MAXLEN", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub gateway_event_stream_maxlen: u64,

    /// PEM certificate chain: serve HTTPS/wss directly (without nginx in front).
    #[arg(long, env = "IOTC_INGRESS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of IOTC_INGRESS_TLS_CERT.
    #[arg(long, env = "IOTC_INGRESS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Close an AP connection silent for this many seconds (APs send a health update every
    /// 120 s and WebSocket pings more often).
    #[arg(long, env = "IOTC_INGRESS_IDLE_TIMEOUT_S", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_s: u64,

    /// How long a message waits for Redis to come back before the AP connection is closed
    /// (1011) and the message counted as lost.
    #[arg(long, env = "IOTC_INGRESS_REDIS_RETRY_S", default_value_t = 30)]
    pub redis_retry_s: u64,

    /// Enforce the AP register (managed at the API's /aps): only registered APs log in, each
    /// with its own user name and password, and each only for its own MAC. The shared gateway
    /// login and the static token are then not accepted.
    #[arg(long, env = "IOTC_AP_REGISTER", default_value_t = false,
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub ap_register: bool,

    /// How long a message waits for room in a full telegram stream (the connection reads
    /// nothing meanwhile) before the connection is closed with 1013 (try again later).
    #[arg(long, env = "IOTC_INGRESS_BACKPRESSURE_WAIT_S", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub backpressure_wait_s: u64,

    /// Most TCP connections served at once (AP WebSockets, /auth/aruba, probes); further
    /// ones wait in the listen queue until one closes.
    #[arg(long, env = "IOTC_INGRESS_MAX_CONNECTIONS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Seconds after accepting a connection by which it must have sent a message with a
    /// valid access token (text frames and pings do not count); else it is closed (1008).
    /// Connections that never become a WebSocket are closed then too.
    #[arg(long, env = "IOTC_INGRESS_AUTH_DEADLINE_S", default_value_t = 150,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub auth_deadline_s: u64,

    /// Most USB sticks (AP MAC and nbDeviceId pairs) one connection may report; data of
    /// further sticks is dropped and counted.
    #[arg(long, env = "IOTC_INGRESS_MAX_STICKS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_sticks: u64,

    /// Largest ESP3 frame of a packet type other than RADIO_ERP1/ERP2 (whose size the
    /// radio protocol bounds), in bytes; a longer frame is counted as broken.
    #[arg(long, env = "IOTC_INGRESS_MAX_FRAME_BYTES", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(64..=65_542))]
    pub max_frame_bytes: u64,

    /// Largest WebSocket message accepted from an AP, in bytes (an AP's messages are a few
    /// KiB). Each connection may hold about three times this while it decodes a message.
    #[arg(long, env = "IOTC_INGRESS_MAX_MESSAGE_BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(256..=64 << 20))]
    pub max_message_bytes: u64,

    /// This instance's name for southbound messages (docs/control.md): commands for the APs
    /// connected here arrive on `iotc:south:<name>`. Random at each start when not set.
    #[arg(long, env = "IOTC_INGRESS_INSTANCE")]
    pub instance: Option<String>,
}

/// How the APs prove who they are.
#[derive(Clone)]
pub struct Credentials {
    /// User name and password for /auth/aruba.
    pub login: Option<(String, String)>,
    pub static_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login.as_ref().map(|(user, _)| user))
            .field("static_token", &self.static_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: std::net::SocketAddr,
    pub redis_url: String,
    pub partitions: u16,
    pub credentials: Credentials,
    pub token_lifetime: Duration,
    pub api_url: Option<String>,
    pub telegram_stream_maxlen: u64,
    pub gateway_event_stream_maxlen: u64,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub idle_timeout: Duration,
    pub redis_retry: Duration,
    pub max_message_bytes: usize,
    pub ap_register: bool,
    pub backpressure_wait: Duration,
    pub limits: Limits,
    pub instance: String,
}

/// What one AP connection may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub auth_deadline: Duration,
    pub max_sticks: usize,
    pub max_frame_bytes: usize,
}

/// A configuration error: names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn config_error(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// Treats empty variables as unset (compose files often carry `VAR=`).
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Settings {
    /// Parses the command line and environment. Help and version print and exit; any other
    /// problem becomes one line naming the variable.
    pub fn parse_or_explain() -> Result<Settings, String> {
        match Settings::try_parse() {
            Ok(settings) => Ok(settings),
            Err(e) if !e.use_stderr() => e.exit(),
            Err(e) => Err(explain_clap_error(&e)),
        }
    }

    pub fn check(self) -> Result<Config, ConfigError> {
        let username = non_empty(self.gateway_username).or_else(|| non_empty(self.aruba_username));
        let password = non_empty(self.gateway_password).or_else(|| non_empty(self.aruba_password));
        let login = match (username, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (Some(_), None) => {
                return Err(config_error(
                    "IOT_GATEWAY_PASSWORD",
                    "not set but IOT_GATEWAY_USERNAME is",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "IOT_GATEWAY_USERNAME",
                    "not set but IOT_GATEWAY_PASSWORD is",
                ));
            }
            (None, None) => None,
        };
        let static_token = non_empty(self.gateway_token);
        if login.is_none() && static_token.is_none() && !self.ap_register {
            return Err(config_error(
                "IOT_GATEWAY_USERNAME",
                "set IOT_GATEWAY_USERNAME and IOT_GATEWAY_PASSWORD (or IOT_GATEWAY_TOKEN) so APs can authenticate",
            ));
        }
        let redis_url = self.redis_url.clone();
        iotc_core::redis::check(&redis_url)
            .map_err(|e| config_error("REDIS_URL", format!("not a usable Redis address: {e}")))?;
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (Some(_), None) => {
                return Err(config_error(
                    "IOTC_INGRESS_TLS_KEY",
                    "not set but IOTC_INGRESS_TLS_CERT is",
                ));
            }
            (None, Some(_)) => {
                return Err(config_error(
                    "IOTC_INGRESS_TLS_CERT",
                    "not set but IOTC_INGRESS_TLS_KEY is",
                ));
            }
            (None, None) => None,
        };
        Ok(Config {
            listen: std::net::SocketAddr::new(self.bind, self.port),
            redis_url,
            partitions: self.partitions,
            credentials: Credentials {
                login,
                static_token,
            },
            token_lifetime: Duration::from_secs(self.token_exp_interval),
            api_url: non_empty(self.auth_callback).map(|c| api_url(&c)),
            telegram_stream_maxlen: self.telegram_stream_maxlen,
            gateway_event_stream_maxlen: self.gateway_event_stream_maxlen,
            tls,
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            redis_retry: Duration::from_secs(self.redis_retry_s),
            max_message_bytes: self.max_message_bytes as usize,
            ap_register: self.ap_register,
            backpressure_wait: Duration::from_secs(self.backpressure_wait_s),
            limits: Limits {
                max_connections: self.max_connections as usize,
                auth_deadline: Duration::from_secs(self.auth_deadline_s),
                max_sticks: self.max_sticks as usize,
                max_frame_bytes: self.max_frame_bytes as usize,
            },
            instance: non_empty(self.instance)
                .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>())),
        })
    }
}

/// The WebSocket URL returned to the AP for an `IOT_AUTH_CALLBACK` value.
fn api_url(callback: &str) -> String {
    let callback = callback.trim();
    if callback.starts_with("ws://") || callback.starts_with("wss://") {
        callback.to_string()
    } else {
        format!("wss://{}/aruba", callback.trim_end_matches('/'))
    }
}

/// One line naming the environment variable behind the argument clap complains about.
fn explain_clap_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    let command = Settings::command();
    let variable = command.get_arguments().find_map(|arg| {
        let long = arg.get_long()?;
        let env = arg.get_env()?;
        text.contains(&format!("'--{long} "))
            .then(|| env.to_string_lossy().into_owned())
    });
    match variable {
        Some(var) => format!("{var}: {first}"),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        let mut all = vec!["iotc-ingress"];
        all.extend_from_slice(args);
        Settings::try_parse_from(all).unwrap()
    }

    #[test]
    fn needs_some_credentials() {
        let err = settings(&[]).check().unwrap_err();
        assert_eq!(err.variable, "IOT_GATEWAY_USERNAME");
        let err = settings(&["--gateway-username", "u"]).check().unwrap_err();
        assert_eq!(err.variable, "IOT_GATEWAY_PASSWORD");
        let ok = settings(&["--gateway-token", "t"]).check().unwrap();
        assert_eq!(ok.credentials.static_token.as_deref(), Some("t"));
    }

    #[test]
    fn register_needs_no_shared_login() {
        let cfg = settings(&["--ap-register", "true"]).check().unwrap();
        assert!(cfg.ap_register);
        assert!(
            !settings(&["--gateway-token", "t"])
                .check()
                .unwrap()
                .ap_register
        );
    }

    #[test]
    fn deprecated_names_fill_in() {
        let cfg = settings(&["--aruba-username", "u", "--aruba-password", "p"])
            .check()
            .unwrap();
        assert_eq!(cfg.credentials.login, Some(("u".into(), "p".into())));
    }

    #[test]
    fn tls_needs_both_files() {
        let err = settings(&["--gateway-token", "t", "--tls-cert", "c.pem"])
            .check()
            .unwrap_err();
        assert_eq!(err.variable, "IOTC_INGRESS_TLS_KEY");
    }

    #[test]
    fn callback_becomes_websocket_url() {
        assert_eq!(
            api_url("iotc.example:8080"),
            "wss://iotc.example:8080/aruba"
        );
        assert_eq!(api_url("ws://h:1/x"), "ws://h:1/x");
    }

    #[test]
    fn bad_value_names_the_variable() {
        let err = Settings::try_parse_from(["iotc-ingress", "--port", "x"]).unwrap_err();
        let line = explain_clap_error(&err);
        assert!(line.starts_with("IOTC_INGRESS_PORT: "), "{line}");
        assert!(!line.contains('\n'));
    }
}
