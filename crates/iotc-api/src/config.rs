//! Settings, from IoTC's environment variables (or the matching options).

use std::net::IpAddr;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "iotc-api",
    version,
    about = "iotc REST API (IoTC-compatible, /api.beta/v1)"
)]
pub struct Config {
    /// Port of the API, /healthz, /readyz and /metrics.
    #[arg(long, env = "IOTC_API_PORT", default_value_t = 1887)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "IOTC_API_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Redis: a host name (IoTC's `redis`), host:port, or a redis:// URL.
    #[arg(long, env = "REDIS_URL", default_value = "localhost")]
    pub redis_url: String,
    /// User name for HTTP Basic authentication (required).
    #[arg(long, env = "BASIC_AUTH_USERNAME", hide_env_values = true)]
    pub basic_auth_username: Option<String>,
    /// Password for HTTP Basic authentication (required).
    #[arg(long, env = "BASIC_AUTH_PASSWORD", hide_env_values = true)]
    pub basic_auth_password: Option<String>,
    /// Accept only devices with an AESKey and an slf (1/true to enable).
    #[arg(long, env = "ONLY_SECURE_DEVICES", default_value = "0", value_parser = flag, action = clap::ArgAction::Set)]
    pub only_secure_devices: bool,
    /// Largest accepted request body in bytes (a backup of 10,000 devices is about 2.5 MB).
    #[arg(long, env = "IOTC_API_MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest backup body for POST/PATCH /backup in bytes; it is read as it arrives, not kept
    /// (1,000,000 devices are about 200 MB).
    #[arg(long, env = "IOTC_API_MAX_BACKUP_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_backup_bytes: usize,
    /// A gateway not heard for this many seconds is reported `offline` by /system/health.
    #[arg(long, env = "IOTC_GATEWAY_TIMEOUT_SECONDS", default_value_t = 300)]
    pub gateway_timeout_seconds: u64,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    pub print_openapi: bool,
    /// Print the OpenAPI document as OpenAPI 3.0 and exit.
    #[arg(long = "print-openapi-3-0")]
    pub print_openapi_v30: bool,
}

/// The Basic auth pair, once checked.
pub struct AuthPair {
    pub username: String,
    pub password: String,
}

impl Config {
    /// Both credentials, or the one line to print before exiting.
    pub fn auth(&self) -> Result<AuthPair, String> {
        let (Some(username), Some(password)) =
            (&self.basic_auth_username, &self.basic_auth_password)
        else {
            return Err("BASIC_AUTH_USERNAME and BASIC_AUTH_PASSWORD must be set".into());
        };
        if username.is_empty() || password.is_empty() {
            return Err("BASIC_AUTH_USERNAME and BASIC_AUTH_PASSWORD must not be empty".into());
        }
        if username.contains(':') {
            return Err("BASIC_AUTH_USERNAME must not contain ':'".into());
        }
        Ok(AuthPair {
            username: username.clone(),
            password: password.clone(),
        })
    }
}

/// IoTC's switches: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`/empty.
fn flag(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("ONLY_SECURE_DEVICES={other:?}: expected 1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_flags() {
        let c = Config::try_parse_from(["iotc-api", "--only-secure-devices", "True"]).unwrap();
        assert_eq!(c.port, 1887);
        assert!(c.only_secure_devices);
        assert!(c.auth().is_err());
        assert!(Config::try_parse_from(["iotc-api", "--only-secure-devices", "maybe"]).is_err());
    }

    #[test]
    fn auth_pair_rules() {
        let mut c = Config::try_parse_from(["iotc-api"]).unwrap();
        c.basic_auth_username = Some("a:b".into());
        c.basic_auth_password = Some("p".into());
        assert!(c.auth().err().unwrap().contains("':'"));
        c.basic_auth_username = Some("admin".into());
        assert_eq!(c.auth().ok().unwrap().username, "admin");
    }
}
