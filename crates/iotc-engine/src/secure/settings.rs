//! Settings of secure telegram handling: the pre-shared key of teach-ins and which
//! teach-ins may change a device's key.

use std::fmt;

use enocean::secure::parse_key;

/// Command line and environment settings (flattened into the engine's arguments).
#[derive(clap::Args, Clone)]
pub struct SecureArgs {
    /// Pre-shared key (32 hex digits) that decrypts secure teach-ins sent with the PSK bit.
    #[arg(long = "secure-psk", env = "IOT_SECURE_PSK", hide_env_values = true)]
    pub psk: Option<String>,

    /// Which secure teach-ins (R-ORG 0x35) of onboarded devices may set their key and SLF:
    /// `learn` (inside a learn window opened through the API, or encrypted with
    /// IOT_SECURE_PSK), `psk` (only teach-ins encrypted with IOT_SECURE_PSK), `any` (every
    /// teach-in: lets anyone in radio range take a device over) or `off`. A key set through
    /// the API is replaced only inside a learn window, whatever the policy.
    #[arg(
        long = "secure-teach-in",
        env = "IOT_SECURE_TEACH_IN",
        default_value = "learn"
    )]
    pub teach_in: TeachInPolicy,

    /// Publish only telegrams verified with a device key (1/true): telegrams of devices
    /// onboarded without `AESKey` and `slf` are dropped (set it on the API too).
    #[arg(
        long = "only-secure-devices",
        env = "ONLY_SECURE_DEVICES",
        default_value = "0",
        value_parser = flag,
        action = clap::ArgAction::Set
    )]
    pub only_secure: bool,
}

/// IoTC's switches: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`/empty.
fn flag(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected 1 or 0".into()),
    }
}

/// Which secure teach-ins are applied (see docs/security.md, "Secure teach-in").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TeachInPolicy {
    Learn,
    Psk,
    Any,
    Off,
}

/// What is known about one complete secure teach-in when it is judged.
#[derive(Debug, Clone, Copy)]
pub struct TeachInFacts {
    /// Encrypted with the pre-shared key.
    pub psk: bool,
    /// A learn window is open for the device (or for all devices).
    pub window: bool,
    /// The device's present key was set through the API (not by an earlier teach-in).
    pub api_key: bool,
}

impl TeachInPolicy {
    /// `Ok` when the teach-in may set the device's key; else why not.
    pub fn judge(self, t: TeachInFacts) -> Result<(), &'static str> {
        match self {
            TeachInPolicy::Off => return Err("secure teach-ins are off (IOT_SECURE_TEACH_IN=off)"),
            TeachInPolicy::Psk if !t.psk => {
                return Err("only teach-ins with the pre-shared key (IOT_SECURE_TEACH_IN=psk)");
            }
            _ => {}
        }
        if t.window {
            return Ok(());
        }
        if t.api_key {
            return Err("the key was set through the API; open a learn window to replace it");
        }
        if t.psk || self == TeachInPolicy::Any {
            return Ok(());
        }
        Err("no learn window is open for the device")
    }
}

/// Checked settings.
#[derive(Clone)]
pub struct Settings {
    pub psk: Option<[u8; 16]>,
    pub teach_in: TeachInPolicy,
    /// Drop telegrams of devices without key and SLF (`ONLY_SECURE_DEVICES`).
    pub only_secure: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            psk: None,
            teach_in: TeachInPolicy::Learn,
            only_secure: false,
        }
    }
}

impl Settings {
    /// Checks the arguments. The error is the variable and the problem; it never repeats
    /// the key.
    pub fn from_args(args: &SecureArgs) -> Result<Settings, (&'static str, String)> {
        let psk = match args.psk.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(hex) => Some(parse_key(hex).map_err(|_| {
                (
                    "IOT_SECURE_PSK",
                    "must be 32 hex digits (16 bytes)".to_string(),
                )
            })?),
        };
        if args.teach_in == TeachInPolicy::Psk && psk.is_none() {
            return Err((
                "IOT_SECURE_TEACH_IN",
                "`psk` needs IOT_SECURE_PSK".to_string(),
            ));
        }
        Ok(Settings {
            psk,
            teach_in: args.teach_in,
            only_secure: args.only_secure,
        })
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("psk", &self.psk.map(|_| "<redacted>"))
            .field("teach_in", &self.teach_in)
            .field("only_secure", &self.only_secure)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(psk: Option<&str>, teach_in: TeachInPolicy) -> SecureArgs {
        SecureArgs {
            psk: psk.map(String::from),
            teach_in,
            only_secure: false,
        }
    }

    #[test]
    fn psk_is_checked_without_echoing_it() {
        let ok = Settings::from_args(&args(
            Some("3410DE8F1ABA3EFF9F5A117172EACABD"),
            TeachInPolicy::Psk,
        ))
        .unwrap();
        assert_eq!(ok.psk.unwrap()[0], 0x34);
        assert!(!format!("{ok:?}").contains("34"));
        let err = Settings::from_args(&args(Some("secret-but-wrong"), TeachInPolicy::Any))
            .err()
            .unwrap();
        assert_eq!(err.0, "IOT_SECURE_PSK");
        assert!(!err.1.contains("secret"));
        assert!(
            Settings::from_args(&args(Some(" "), TeachInPolicy::Any))
                .unwrap()
                .psk
                .is_none()
        );
    }

    #[test]
    fn only_secure_devices_reads_iotc_switches() {
        use clap::{Args as _, FromArgMatches};
        let cmd = SecureArgs::augment_args(clap::Command::new("engine"));
        let parse = |v: &str| {
            let m = cmd
                .clone()
                .try_get_matches_from(["engine", "--only-secure-devices", v])
                .map_err(|e| e.to_string())?;
            SecureArgs::from_arg_matches(&m)
                .map(|a| a.only_secure)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("1"), Ok(true));
        assert_eq!(parse("true"), Ok(true));
        assert_eq!(parse("0"), Ok(false));
        assert!(parse("maybe").is_err());
    }

    #[test]
    fn teach_ins_need_a_window_or_the_psk() {
        let facts = |psk, window, api_key| TeachInFacts {
            psk,
            window,
            api_key,
        };
        use TeachInPolicy::*;
        // The default: a window or the PSK.
        assert!(Learn.judge(facts(false, false, false)).is_err());
        assert!(Learn.judge(facts(false, true, false)).is_ok());
        assert!(Learn.judge(facts(true, false, false)).is_ok());
        // A key set through the API: only inside a window, whatever the policy.
        for policy in [Learn, Psk, Any] {
            assert!(
                policy.judge(facts(true, false, true)).is_err(),
                "{policy:?}"
            );
            assert!(policy.judge(facts(true, true, true)).is_ok(), "{policy:?}");
        }
        assert!(Any.judge(facts(false, false, false)).is_ok());
        assert!(Psk.judge(facts(false, true, false)).is_err());
        assert!(Off.judge(facts(true, true, false)).is_err());
    }

    #[test]
    fn the_default_policy_is_learn() {
        use clap::{Args as _, FromArgMatches};
        let cmd = SecureArgs::augment_args(clap::Command::new("engine"));
        let m = cmd.try_get_matches_from(["engine"]).unwrap();
        let args = SecureArgs::from_arg_matches(&m).unwrap();
        assert_eq!(args.teach_in, TeachInPolicy::Learn);
        assert_eq!(Settings::default().teach_in, TeachInPolicy::Learn);
    }

    #[test]
    fn psk_policy_needs_a_psk() {
        let err = Settings::from_args(&args(None, TeachInPolicy::Psk))
            .err()
            .unwrap();
        assert_eq!(err.0, "IOT_SECURE_TEACH_IN");
        assert!(err.1.contains("IOT_SECURE_PSK"));
    }
}
