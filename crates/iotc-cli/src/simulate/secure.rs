//! Secure simulated devices: the first `--secure` devices get a generated AES key and the
//! SLF of `--secure-slf`, and send each telegram as the Security of EnOcean Radio Networks
//! specifies: VAES-encrypted with the inner R-ORG, a rolling code that grows by one per
//! telegram, and a CMAC (R-ORG 0x31; chained 0x33 parts when it does not fit one ERP1
//! telegram). With `--secure-teach-in` each first sends its secure teach-in (0x35),
//! encrypted with `--secure-psk` when given.
//!
//! Keys are generated per run, so codes never clash with ones an engine stored earlier;
//! onboarding (`--onboard`) sends them with the devices, a teach-in announces them.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use enocean::secure::{self, SecureContext, SecureTeachIn, Slf, TeachInInfo};
use tokio::sync::mpsc;

use super::devices::{Content, Device};

/// Most data bytes after R-ORG 0x31 in one ERP1 telegram; longer ones are chained.
const ERP1_SECURE_MAX: usize = 14;
/// Signal strength of teach-in receptions (dBm as a positive number).
const TEACH_IN_DBM: u8 = 55;
/// Time the engine gets to apply teach-ins before the first data telegrams.
const TEACH_IN_SETTLE: Duration = Duration::from_secs(1);

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Secure devices")]
pub struct SecureArgs {
    /// How many of the devices (the first ones) send secure telegrams.
    #[arg(long, default_value_t = 0)]
    pub secure: u32,
    /// Their SLF (2 hex digits): f3 = 32-bit code sent, 4-byte CMAC, VAES; ab, cb, 8b, ...
    #[arg(long, default_value = "f3")]
    pub secure_slf: String,
    /// Send each secure device's teach-in (R-ORG 0x35) before the first telegrams.
    #[arg(long)]
    pub secure_teach_in: bool,
    /// Encrypt the teach-ins with this pre-shared key (32 hex digits; the engine's
    /// IOT_SECURE_PSK).
    #[arg(long, env = "IOT_SECURE_PSK", hide_env_values = true)]
    pub secure_psk: Option<String>,
}

/// One secure device: its settings and the next rolling code.
struct Sender {
    ctx: SecureContext,
    next_rlc: AtomicU32,
    /// Sequence number of the last chain (1..=3).
    seq: AtomicU8,
}

/// The secure part of the simulated devices, by device index.
pub struct Secure {
    senders: Vec<Sender>,
    psk: Option<[u8; 16]>,
    teach_in: bool,
}

impl Secure {
    /// Secure settings for the first `args.secure` of `devices` devices.
    pub fn new(args: &SecureArgs, devices: usize) -> anyhow::Result<Secure> {
        let slf: Slf = args
            .secure_slf
            .parse()
            .with_context(|| format!("--secure-slf {}", args.secure_slf))?;
        let psk = match args.secure_psk.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(hex) => {
                Some(secure::parse_key(hex).context("--secure-psk must be 32 hex digits")?)
            }
        };
        if args.secure as usize > devices {
            bail!("--secure {} is more than --devices {devices}", args.secure);
        }
        if args.secure > 0 && !args.secure_teach_in {
            eprintln!(
                "note: secure devices get new keys every run; the engine learns them through --onboard (or --secure-teach-in)"
            );
        }
        let senders = (0..args.secure)
            .map(|_| Sender {
                ctx: SecureContext {
                    key: rand::random(),
                    slf,
                    is_ptm: false,
                },
                next_rlc: AtomicU32::new(0),
                seq: AtomicU8::new(0),
            })
            .collect();
        Ok(Secure {
            senders,
            psk,
            teach_in: args.secure_teach_in,
        })
    }

    /// Adds `AESKey` and `slf` to the onboarding JSON of device `index` if it is secure.
    pub fn add_keys(&self, index: usize, device: &mut serde_json::Value) {
        if let Some(s) = self.senders.get(index) {
            device["AESKey"] = hex::encode(s.ctx.key).into();
            device["slf"] = format!("{:02x}", s.ctx.slf.byte()).into();
        }
    }

    /// The telegrams one transmission of device `index` puts on air: `content` itself for
    /// a plain device, else secured with the device's next code.
    pub fn on_air(&self, index: usize, content: &Content) -> Vec<Content> {
        let Some(s) = self.senders.get(index) else {
            return vec![content.clone()];
        };
        let mode = s.ctx.slf.rlc_mode();
        let rlc = s.next_rlc.fetch_add(1, Ordering::Relaxed) & mode.max();
        let Ok(payload) = secure::encrypt_sec_r(&s.ctx, rlc, content.rorg, &content.data) else {
            return vec![content.clone()];
        };
        if payload.len() <= ERP1_SECURE_MAX {
            return vec![Content {
                rorg: secure::SEC_R,
                data: payload,
                status: content.status,
            }];
        }
        let seq = s.seq.fetch_add(1, Ordering::Relaxed) % 3 + 1;
        secure::sec_cdm_parts(seq, &payload)
            .unwrap_or_default()
            .into_iter()
            .map(|data| Content {
                rorg: secure::SEC_CDM,
                data,
                status: content.status,
            })
            .collect()
    }

    /// The teach-in telegrams of device `index`, announcing its next code.
    fn teach_in_of(&self, index: usize) -> Vec<Content> {
        let Some(s) = self.senders.get(index) else {
            return Vec::new();
        };
        let teach_in = SecureTeachIn {
            info: TeachInInfo(0),
            slf: s.ctx.slf,
            rlc: s.next_rlc.load(Ordering::Relaxed) & s.ctx.slf.rlc_mode().max(),
            key: s.ctx.key,
        };
        teach_in
            .to_payloads(self.psk.as_ref(), secure::ERP1_PART_LEN)
            .unwrap_or_default()
            .into_iter()
            .map(|data| Content {
                rorg: secure::SEC_TI,
                data,
                status: 0,
            })
            .collect()
    }

    /// With `--secure-teach-in`: sends every secure device's teach-in through one gateway
    /// each, then gives the engine a moment to apply them.
    pub async fn send_teach_ins(&self, devices: &[Device], gateways: &[mpsc::Sender<Vec<u8>>]) {
        if !self.teach_in || self.senders.is_empty() || gateways.is_empty() {
            return;
        }
        for (index, device) in devices.iter().enumerate().take(self.senders.len()) {
            let gateway = &gateways[index % gateways.len()];
            for part in self.teach_in_of(index) {
                let _ = gateway.send(part.frame(device.id, TEACH_IN_DBM)).await;
            }
        }
        println!(
            "sent the teach-ins of {} secure devices",
            self.senders.len()
        );
        tokio::time::sleep(TEACH_IN_SETTLE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::chain::{ChainOutcome, Reassembler};
    use enocean::telegram::Telegram;

    fn args(count: u32, slf: &str, psk: Option<&str>) -> SecureArgs {
        SecureArgs {
            secure: count,
            secure_slf: slf.into(),
            secure_teach_in: true,
            secure_psk: psk.map(String::from),
        }
    }

    fn content(rorg: u8, data: &[u8], status: u8) -> Content {
        Content {
            rorg,
            data: data.to_vec(),
            status,
        }
    }

    /// What a receiver with the device's key gets back, in order.
    fn receive(ctx: &SecureContext, on_air: Vec<Content>, last: Option<u32>) -> secure::Plain {
        let mut chains = Reassembler::new(1000, 4);
        let mut result = None;
        for part in on_air {
            let t = Telegram::from_esp3(&part.frame(0x0510_0001, 60)).unwrap();
            if let ChainOutcome::NotChained(t) | ChainOutcome::Complete(t) = chains.push(t, 0) {
                result = Some(secure::verify_and_decrypt(ctx, t.rorg, &t.data, last).unwrap());
            }
        }
        result.expect("a complete telegram")
    }

    #[test]
    fn secure_devices_encrypt_with_a_growing_code() {
        let secure = Secure::new(&args(1, "f3", None), 2).unwrap();
        let ctx = secure.senders[0].ctx.clone();
        let plain = content(0xA5, &[0x00, 0x00, 0x80, 0x08], 0);

        let first = secure.on_air(0, &plain);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].rorg, secure::SEC_R);
        let got = receive(&ctx, first, None);
        assert_eq!((got.rorg, got.data.as_slice()), (0xA5, &plain.data[..]));
        assert_eq!(got.rlc, Some(0));
        let got = receive(&ctx, secure.on_air(0, &plain), got.rlc);
        assert_eq!(got.rlc, Some(1));

        // A long telegram goes out as a 0x33 chain.
        let long = content(0xD2, &[1, 2, 3, 4, 5, 6, 7, 8, 9], 0);
        let parts = secure.on_air(0, &long);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.rorg == secure::SEC_CDM));
        let got = receive(&ctx, parts, Some(1));
        assert_eq!((got.rorg, got.data), (0xD2, long.data.clone()));

        // The second device is plain.
        assert_eq!(secure.on_air(1, &plain), vec![plain]);
    }

    #[test]
    fn onboarding_and_teach_in_carry_the_key() {
        let psk = "3410de8f1aba3eff9f5a117172eacabd";
        let secure = Secure::new(&args(1, "AB", Some(psk)), 1).unwrap();
        let ctx = &secure.senders[0].ctx;
        let mut json = serde_json::json!({"sourceEurid": "05100001"});
        secure.add_keys(0, &mut json);
        assert_eq!(json["AESKey"], hex::encode(ctx.key));
        assert_eq!(json["slf"], "ab");

        secure.on_air(0, &content(0xA5, &[0, 0, 0, 8], 0));
        let parts = secure.teach_in_of(0);
        assert!(parts.len() >= 2 && parts.iter().all(|p| p.rorg == secure::SEC_TI));
        let mut assembler = secure::TeachInAssembler::new(1000, 4);
        let psk = secure::parse_key(psk).unwrap();
        let mut done = None;
        for p in &parts {
            done = assembler.push(1, &p.data, 0, Some(&psk)).unwrap();
        }
        let done = done.expect("teach-in complete");
        assert!(done.info.psk());
        assert_eq!(done.key, ctx.key);
        assert_eq!(done.rlc, 1, "announces the next code");
    }

    #[test]
    fn options_fit_the_simulate_command() {
        use clap::Args as _;
        let cmd = super::super::Args::augment_args(clap::Command::new("simulate"));
        cmd.clone().debug_assert();
        let m = cmd
            .try_get_matches_from(["simulate", "--secure", "2", "--secure-slf", "ab"])
            .unwrap();
        assert_eq!(m.get_one::<u32>("secure"), Some(&2));
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(Secure::new(&args(1, "00", None), 1).is_err());
        assert!(Secure::new(&args(1, "f3", Some("short")), 1).is_err());
        assert!(Secure::new(&args(3, "f3", None), 2).is_err());
    }
}
