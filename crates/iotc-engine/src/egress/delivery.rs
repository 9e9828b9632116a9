//! What one batch's messages became on each egress: confirmed, refused for good (a dead
//! letter), or still to send. Retries send only the last kind, so a confirmed message is not
//! published twice because another one of its batch failed.

use super::{EgressError, OutMessage};

/// Egress slots: 0 MQTT, 1 IoT Hub.
const SLOTS: usize = 2;

/// A message a broker refused for good; kept in the dead-letter stream with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub egress: &'static str,
    pub topic: String,
    pub reason: String,
    pub payload: bytes::Bytes,
}

impl DeadLetter {
    /// A short label for the metric: the reason up to its first `:`.
    pub fn reason_label(&self) -> &str {
        self.reason.split(':').next().unwrap_or_default()
    }
}

/// Messages being delivered and, per egress, which are settled.
#[derive(Debug, Default)]
pub struct Delivery {
    messages: Vec<OutMessage>,
    settled: Vec<[bool; SLOTS]>,
    dead: Vec<DeadLetter>,
}

impl Delivery {
    pub fn new(messages: Vec<OutMessage>) -> Delivery {
        // Slot 1 (IoT Hub) never gets MQTT-only messages.
        let settled = messages.iter().map(|m| [false, m.mqtt_only]).collect();
        Delivery {
            messages,
            settled,
            dead: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, in the order they were given.
    pub fn messages(&self) -> &[OutMessage] {
        &self.messages
    }

    /// Messages refused for good so far.
    pub fn dead_letters(&self) -> &[DeadLetter] {
        &self.dead
    }

    /// Messages not yet settled on `slot`, with their index.
    pub(super) fn unsettled(&self, slot: usize) -> impl Iterator<Item = (usize, &OutMessage)> {
        self.messages
            .iter()
            .enumerate()
            .filter(move |(i, _)| !self.settled[*i][slot])
    }

    /// Records the result of publishing message `i` on `slot`; returns the error when the
    /// message must be sent again.
    pub(super) fn settle(
        &mut self,
        slot: usize,
        i: usize,
        result: Result<(), EgressError>,
    ) -> Option<EgressError> {
        match result {
            Ok(()) => {}
            Err(EgressError::Rejected {
                egress,
                reason,
                permanent: true,
            }) => {
                let msg = &self.messages[i];
                self.dead.push(DeadLetter {
                    egress,
                    topic: msg.topic.clone(),
                    reason,
                    payload: msg.payload.clone(),
                });
            }
            Err(e) => return Some(e),
        }
        self.settled[i][slot] = true;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> EgressError {
        EgressError::Timeout {
            egress: "mqtt",
            connected: true,
        }
    }

    #[test]
    fn only_unsettled_messages_are_sent_again() {
        let msgs = (0..3)
            .map(|i| OutMessage::new(format!("t{i}"), "x"))
            .collect();
        let mut d = Delivery::new(msgs);
        assert!(d.settle(0, 0, Ok(())).is_none());
        let refused = EgressError::Rejected {
            egress: "mqtt",
            reason: "PacketTooLarge: 9 bytes, limit 8".into(),
            permanent: true,
        };
        assert!(d.settle(0, 1, Err(refused)).is_none());
        assert!(d.settle(0, 2, Err(timeout())).is_some());
        let left: Vec<usize> = d.unsettled(0).map(|(i, _)| i).collect();
        assert_eq!(left, vec![2]);
        assert_eq!(d.unsettled(1).count(), 3, "the other egress is independent");
        assert_eq!(d.dead_letters().len(), 1);
        assert_eq!(d.dead_letters()[0].topic, "t1");
        assert_eq!(d.dead_letters()[0].reason_label(), "PacketTooLarge");
    }

    #[test]
    fn a_refusal_that_may_change_is_retried() {
        let mut d = Delivery::new(vec![OutMessage::new("t", "x")]);
        let refused = EgressError::Rejected {
            egress: "mqtt",
            reason: "NotAuthorized".into(),
            permanent: false,
        };
        assert!(d.settle(0, 0, Err(refused)).is_some());
        assert_eq!(d.unsettled(0).count(), 1);
        assert!(d.dead_letters().is_empty());
    }
}
