//! Device availability: `online` while a device keeps its rhythm, `offline` once it has been
//! silent for longer than its timeout. The timeout is `factor` × the interval the device
//! really keeps (smoothed), between a floor and a ceiling; before an interval is known it is
//! the ceiling. Switches that send only when pressed (R-ORG F6) have no rhythm and no
//! availability of their own (docs/home-assistant.md).

use std::collections::HashMap;
use std::time::Duration;

/// Intervals shorter than this are bursts (a press and its release, repeated telegrams), not
/// the device's rhythm.
const MIN_INTERVAL_MS: u64 = 1000;
/// Weight of a new interval in the smoothed one.
const SMOOTHING: f64 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rhythm {
    pub last_ms: u64,
    pub interval_ms: Option<u64>,
    pub online: bool,
}

/// Rhythms of the devices that sent, by EURID; one entry per onboarded device at most.
#[derive(Debug)]
pub struct Availability {
    devices: HashMap<String, Rhythm>,
    /// Timeouts set through the API, by EURID; they replace the learned ones.
    set: HashMap<String, Duration>,
    min: Duration,
    max: Duration,
    factor: f64,
}

impl Availability {
    pub fn new(min: Duration, max: Duration, factor: f64) -> Availability {
        Availability {
            devices: HashMap::new(),
            set: HashMap::new(),
            min,
            max,
            factor,
        }
    }

    /// Whether a device of this EEP keeps a rhythm.
    pub fn applies(eep: &str) -> bool {
        !eep.trim().to_ascii_uppercase().starts_with("F6")
    }

    /// Records a telegram; `true` when the device was not known to be online (publish
    /// `online`).
    pub fn heard(&mut self, eurid: &str, now_ms: u64) -> bool {
        let r = self.devices.entry(eurid.to_string()).or_insert(Rhythm {
            last_ms: now_ms,
            interval_ms: None,
            online: false,
        });
        let gap = now_ms.saturating_sub(r.last_ms);
        if gap >= MIN_INTERVAL_MS {
            r.interval_ms = Some(match r.interval_ms {
                None => gap,
                Some(old) => (old as f64 * (1.0 - SMOOTHING) + gap as f64 * SMOOTHING) as u64,
            });
        }
        r.last_ms = r.last_ms.max(now_ms);
        let was_online = r.online;
        r.online = true;
        !was_online
    }

    /// Seeds a device from what Redis kept (engine start): considered online until its
    /// timeout passes, as the retained message says.
    pub fn seed(&mut self, eurid: &str, last_ms: u64, interval_ms: Option<u64>) {
        self.devices.entry(eurid.to_string()).or_insert(Rhythm {
            last_ms,
            interval_ms,
            online: true,
        });
    }

    pub fn get(&self, eurid: &str) -> Option<Rhythm> {
        self.devices.get(eurid).copied()
    }

    /// Replaces the timeouts set through the API.
    pub fn set_timeouts(&mut self, set: HashMap<String, Duration>) {
        self.set = set;
    }

    pub fn forget(&mut self, eurid: &str) {
        self.devices.remove(eurid);
    }

    /// The timeout of a device with this interval.
    pub fn timeout(&self, interval_ms: Option<u64>) -> Duration {
        timeout(interval_ms, self.min, self.max, self.factor)
    }

    /// Devices that just went silent for longer than their timeout; marked offline.
    pub fn expired(&mut self, now_ms: u64) -> Vec<String> {
        let mut out = Vec::new();
        let (min, max, factor) = (self.min, self.max, self.factor);
        for (eurid, r) in self.devices.iter_mut() {
            let limit = match self.set.get(eurid) {
                Some(t) => *t,
                None => timeout(r.interval_ms, min, max, factor),
            };
            let limit = limit.as_millis() as u64;
            if r.online && now_ms.saturating_sub(r.last_ms) > limit {
                r.online = false;
                out.push(eurid.clone());
            }
        }
        out
    }
}

/// `factor` × the interval between `min` and `max`; `max` while the interval is unknown.
fn timeout(interval_ms: Option<u64>, min: Duration, max: Duration, factor: f64) -> Duration {
    match interval_ms {
        None => max,
        Some(i) => Duration::from_millis((i as f64 * factor) as u64).clamp(min, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn av() -> Availability {
        Availability::new(Duration::from_secs(60), Duration::from_secs(3600), 3.0)
    }

    #[test]
    fn learns_the_interval_within_bounds() {
        let mut a = av();
        assert!(a.heard("x", 0), "first telegram: online");
        assert!(!a.heard("x", 100_000));
        assert_eq!(a.get("x").unwrap().interval_ms, Some(100_000));
        assert_eq!(a.timeout(Some(100_000)), Duration::from_secs(300));
        assert_eq!(a.timeout(Some(1000)), Duration::from_secs(60), "floor");
        assert_eq!(
            a.timeout(Some(10_000_000)),
            Duration::from_secs(3600),
            "ceiling"
        );
        assert_eq!(a.timeout(None), Duration::from_secs(3600));
        // A burst does not change the rhythm.
        a.heard("x", 100_200);
        assert_eq!(a.get("x").unwrap().interval_ms, Some(100_000));
    }

    #[test]
    fn goes_offline_after_the_timeout_and_online_again() {
        let mut a = av();
        a.heard("x", 0);
        a.heard("x", 100_000);
        assert!(a.expired(300_000).is_empty());
        assert_eq!(a.expired(400_001), vec!["x".to_string()]);
        assert!(a.expired(500_000).is_empty(), "reported once");
        assert!(a.heard("x", 500_000), "back online");
    }

    #[test]
    fn seeded_devices_expire_too() {
        let mut a = av();
        a.seed("y", 0, Some(100_000));
        assert_eq!(a.expired(400_001), vec!["y".to_string()]);
        assert!(!Availability::applies("F6-02-01"));
    }

    #[test]
    fn a_timeout_set_by_hand_wins() {
        let mut a = av();
        a.heard("z", 0);
        a.set_timeouts(HashMap::from([("z".to_string(), Duration::from_secs(5))]));
        assert_eq!(
            a.expired(5_001),
            vec!["z".to_string()],
            "5 s, not the ceiling"
        );
        assert!(Availability::applies("D2-14-41"));
    }
}
