//! Simulated EnOcean devices: each sends real telegrams of its EEP, built by the EEP encoder
//! from random values within the profile's ranges, framed as ESP3 RADIO_ERP1.

use anyhow::{Context, bail};
use enocean::eep::{self, Direction, Eep, Input, Item, Source};
use rand::Rng;
use rand::seq::IndexedRandom;

/// One field the simulator varies.
#[derive(Debug, Clone)]
enum Vary {
    /// A measured value, drawn from `lo..=hi` (scaled units).
    Scaled {
        shortcut: &'static str,
        lo: f64,
        hi: f64,
    },
    /// An enumeration, drawn from its raw values.
    Choice {
        shortcut: &'static str,
        raws: Vec<i64>,
    },
}

#[derive(Debug, Clone)]
pub struct Device {
    pub id: u32,
    pub eep: Eep,
    /// Inputs that select the profile's first case (data and status conditions).
    fixed: Vec<(&'static str, i64)>,
    vary: Vec<Vary>,
}

/// A telegram's content before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub rorg: u8,
    pub data: Vec<u8>,
    pub status: u8,
}

impl Device {
    /// A device of `eep`; fails when the profile is unknown or cannot be encoded.
    pub fn new(id: u32, eep: Eep) -> anyhow::Result<Device> {
        let profile = eep::profile(eep).with_context(|| format!("EEP {eep} is not supported"))?;
        // The first message the device sends (not a controller's command or query).
        let Some(case) = profile
            .cases
            .iter()
            .find(|c| !eep::ha::is_controller_case(profile, c))
        else {
            bail!("EEP {eep} has no telegram a device sends");
        };
        let mut fixed = Vec::new();
        for c in &case.conditions {
            match c.source {
                Source::Status => fixed.push((c.name, c.value as i64)),
                Source::Data => {
                    if let Some(f) = case.fields.iter().find(|f| f.bits == [c.bits]) {
                        fixed.push((f.shortcut, c.value as i64));
                    }
                }
            }
        }
        let vary = case
            .fields
            .iter()
            .filter(|f| !f.shortcut.starts_with("LRN"))
            .filter(|f| !fixed.iter().any(|(s, _)| *s == f.shortcut))
            .filter_map(|f| {
                if eep::ha::is_channel_key(f.key) && eep::ha::addresses_channels(profile) {
                    // An actuator reports one of the output channels it has.
                    let raws = (0..i64::from(eep::ha::channels(profile))).collect();
                    return Some(Vary::Choice {
                        shortcut: f.shortcut,
                        raws,
                    });
                }
                if let Some(Item::Linear(l)) = f.items.iter().find(|i| matches!(i, Item::Linear(_)))
                {
                    return Some(Vary::Scaled {
                        shortcut: f.shortcut,
                        lo: l.min.min(l.max),
                        hi: l.min.max(l.max),
                    });
                }
                let raws: Vec<i64> = f
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Value { raw, .. } => Some(*raw),
                        _ => None,
                    })
                    .collect();
                (!raws.is_empty()).then_some(Vary::Choice {
                    shortcut: f.shortcut,
                    raws,
                })
            })
            .collect();
        let device = Device {
            id,
            eep,
            fixed,
            vary,
        };
        device
            .encode(&[])
            .with_context(|| format!("EEP {eep} cannot be encoded"))?;
        Ok(device)
    }

    /// A telegram with fresh random values (falls back to fewer varied fields when a random
    /// combination is not encodable).
    pub fn next_content(&self, rng: &mut impl Rng) -> Content {
        if let Some(own) = super::stick::own_telegram(self.id, self.eep) {
            return own;
        }
        for _ in 0..4 {
            let values: Vec<(&'static str, Input<'static>)> = self
                .vary
                .iter()
                .map(|v| match v {
                    Vary::Scaled { shortcut, lo, hi } => {
                        let x = if hi > lo {
                            rng.random_range(*lo..=*hi)
                        } else {
                            *lo
                        };
                        (*shortcut, Input::Value(x))
                    }
                    Vary::Choice { shortcut, raws } => {
                        (*shortcut, Input::Raw(*raws.choose(rng).unwrap_or(&0)))
                    }
                })
                .collect();
            if let Ok(content) = self.encode(&values) {
                return content;
            }
        }
        self.encode(&[]).expect("checked in Device::new")
    }

    fn encode(&self, values: &[(&'static str, Input<'static>)]) -> Result<Content, eep::EepError> {
        let mut inputs: Vec<(&str, Input<'_>)> = self
            .fixed
            .iter()
            .map(|(s, raw)| (*s, Input::Raw(*raw)))
            .collect();
        inputs.extend_from_slice(values);
        let (rorg, data, status) = eep::encode_inputs(self.eep, &inputs, Direction::FromDevice)?;
        Ok(Content { rorg, data, status })
    }
}

impl Content {
    /// The telegram as a receiving stick delivers it: an ESP3 RADIO_ERP1 frame with
    /// sub-telegram 1, broadcast destination, the given signal strength (dBm as a positive
    /// number) and security level 0.
    pub fn frame(&self, sender: u32, dbm: u8) -> Vec<u8> {
        let mut data = Vec::with_capacity(self.data.len() + 6);
        data.push(self.rorg);
        data.extend_from_slice(&self.data);
        data.extend_from_slice(&sender.to_be_bytes());
        data.push(self.status);
        let mut optional = vec![1];
        optional.extend_from_slice(&u32::MAX.to_be_bytes());
        optional.extend_from_slice(&[dbm, 0]);
        enocean::esp3::encode_frame(
            enocean::esp3::PacketType::RadioErp1.as_u8(),
            &data,
            &optional,
        )
    }

    /// What the end-to-end check matches a published message with (IoTC's `raw.sender`
    /// and `raw.data`).
    pub fn key(&self, sender: u32) -> super::mqtt::Key {
        super::mqtt::Key::sent(sender, self.rorg, &self.data)
    }
}

/// Parses `A5-02-05,F6-02-01`.
pub fn parse_eeps(list: &str) -> anyhow::Result<Vec<Eep>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Eep>()
                .map_err(|e| anyhow::anyhow!("--eep {s}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::telegram::Telegram;

    #[test]
    fn telegrams_decode_with_their_own_eep() {
        let mut rng = rand::rng();
        for name in ["A5-02-05", "A5-04-01", "D5-00-01", "F6-02-01", "D2-14-41"] {
            let eep: Eep = name.parse().unwrap();
            let device = Device::new(0x0510_0001, eep).unwrap();
            let mut distinct = std::collections::HashSet::new();
            for _ in 0..20 {
                let content = device.next_content(&mut rng);
                let frame = content.frame(device.id, 70);
                let t = Telegram::from_esp3(&frame).unwrap();
                assert_eq!(t.sender, 0x0510_0001);
                assert_eq!(t.dbm, Some(-70));
                eep::decode(eep, t.rorg, &t.data, t.status)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                distinct.insert(content.data);
            }
            assert!(distinct.len() > 1, "{name} values vary");
        }
    }

    #[test]
    fn actuators_report_status_on_their_own_channels() {
        let mut rng = rand::rng();
        let eep: Eep = "D2-01-12".parse().unwrap();
        let device = Device::new(0x0510_0002, eep).unwrap();
        let mut channels = std::collections::HashSet::new();
        for _ in 0..40 {
            let c = device.next_content(&mut rng);
            let fields = eep::decode(eep, c.rorg, &c.data, c.status).unwrap();
            let raw = |key: &str| fields.iter().find(|f| f.key == key).map(|f| f.raw);
            // D2-01 CMD 4, Actuator Status Response: not a controller's Set Output.
            assert_eq!(raw("commandID"), Some(4));
            channels.insert(raw("ioChannel").unwrap());
        }
        assert_eq!(channels, [0, 1].into(), "D2-01-12 has two channels");
    }

    #[test]
    fn unknown_eep_is_refused() {
        assert!(Device::new(1, "A5-FF-FF".parse().unwrap()).is_err());
    }
}
