//! Which AP sends a command: among the APs that heard the device (records the ingress keeps per
//! device, `keys::device_heard`), those that heard its latest telegram (within
//! [`SAME_TELEGRAM_MS`] of the newest reception) come first, best signal first; then the
//! others, most recent first. An AP is used only while its ingress registration lives.

/// Receptions this close to the newest one count as the same telegram.
pub const SAME_TELEGRAM_MS: u64 = 10_000;

/// One AP's last reception of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub mac: String,
    pub ms: u64,
    pub dbm: i8,
    pub stick: String,
}

impl Heard {
    /// Reads a `<ms>,<dBm>,<stick>` record.
    pub fn parse(mac: &str, value: &str) -> Option<Heard> {
        let mut parts = value.splitn(3, ',');
        Some(Heard {
            mac: mac.to_string(),
            ms: parts.next()?.parse().ok()?,
            dbm: parts.next()?.parse().ok()?,
            stick: parts.next()?.to_string(),
        })
    }
}

/// The APs in the order they are tried.
pub fn rank(mut heard: Vec<Heard>) -> Vec<Heard> {
    let newest = heard.iter().map(|h| h.ms).max().unwrap_or(0);
    let fresh = |h: &Heard| h.ms + SAME_TELEGRAM_MS >= newest;
    heard.sort_by(|a, b| {
        fresh(b)
            .cmp(&fresh(a))
            .then_with(|| match fresh(a) {
                // dBm 0 means unknown: after every measured signal.
                true => signal(b.dbm).cmp(&signal(a.dbm)),
                false => b.ms.cmp(&a.ms),
            })
            .then_with(|| a.mac.cmp(&b.mac))
    });
    heard
}

fn signal(dbm: i8) -> i16 {
    if dbm == 0 { i16::MIN } else { dbm as i16 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(mac: &str, ms: u64, dbm: i8) -> Heard {
        Heard {
            mac: mac.into(),
            ms,
            dbm,
            stick: "s".into(),
        }
    }

    #[test]
    fn best_signal_of_the_latest_telegram_then_recency() {
        let ranked = rank(vec![
            h("old", 1_000, -40),
            h("weak", 100_000, -80),
            h("strong", 100_500, -55),
            h("older", 50_000, -30),
        ]);
        let order: Vec<&str> = ranked.iter().map(|h| h.mac.as_str()).collect();
        assert_eq!(order, ["strong", "weak", "older", "old"]);
    }

    #[test]
    fn record_format() {
        assert_eq!(
            Heard::parse("aa", "17,-61,ENOCEAN_USB:01,x"),
            Some(Heard {
                mac: "aa".into(),
                ms: 17,
                dbm: -61,
                stick: "ENOCEAN_USB:01,x".into()
            })
        );
        assert_eq!(Heard::parse("aa", "x"), None);
    }
}
