//! Joins the telegrams of a secure teach-in, per sender.
//!
//! Devices split a teach-in at different points (7/9, 8/8, 5/11 key bytes have all been
//! seen), and telegrams relayed by several gateways may arrive out of order, so parts are
//! kept by IDX and joined once the first part (which gives CNT) and all others are there.

use std::collections::HashMap;
use std::fmt;

use super::{SecureError, SecureTeachIn, TeachInInfo};

const MAX_PARTS: usize = 4;

/// Collects secure teach-in telegrams (R-ORG 0x35) until a teach-in is complete.
///
/// `Debug` shows only the settings and the number of pending senders: the parts hold keys.
pub struct TeachInAssembler {
    timeout_ms: u64,
    max_open: usize,
    open: HashMap<u32, Pending>,
}

struct Pending {
    started_ms: u64,
    /// Part 0 with its TeachInInfo byte, later parts without theirs.
    parts: [Option<Vec<u8>>; MAX_PARTS],
}

impl TeachInAssembler {
    /// Teach-ins not complete within `timeout_ms` of their first telegram are dropped; at
    /// most `max_open` senders are tracked at once (the oldest is dropped for a new one).
    pub fn new(timeout_ms: u64, max_open: usize) -> Self {
        Self {
            timeout_ms,
            max_open: max_open.max(1),
            open: HashMap::new(),
        }
    }

    /// Adds one teach-in telegram of `sender` (`payload`: bytes after R-ORG 0x35).
    ///
    /// Returns the teach-in once complete, `Ok(None)` while parts are missing, and an error
    /// for a part that cannot belong to a teach-in (the sender's parts are then dropped).
    pub fn push(
        &mut self,
        sender: u32,
        payload: &[u8],
        now_ms: u64,
        psk: Option<&[u8; 16]>,
    ) -> Result<Option<SecureTeachIn>, SecureError> {
        let Some((&info, rest)) = payload.split_first() else {
            return Err(SecureError::Malformed("empty teach-in telegram"));
        };
        self.expire(now_ms);
        self.make_room(sender);
        let pending = self
            .open
            .entry(sender)
            .or_insert_with(|| Pending::new(now_ms));
        let idx = usize::from(TeachInInfo(info).idx());
        let part = if idx == 0 { payload } else { rest };
        if idx == 0 && pending.parts[0].as_deref().is_some_and(|old| old != part) {
            // A different first part: the device started over.
            *pending = Pending::new(now_ms);
        }
        pending.parts[idx] = Some(part.to_vec());
        match pending.joined() {
            Ok(None) => Ok(None),
            Ok(Some(joined)) => {
                self.open.remove(&sender);
                SecureTeachIn::parse(&joined, psk).map(Some)
            }
            Err(err) => {
                self.open.remove(&sender);
                Err(err)
            }
        }
    }

    /// Senders with an incomplete teach-in.
    pub fn pending(&self) -> usize {
        self.open.len()
    }

    fn expire(&mut self, now_ms: u64) {
        let timeout = self.timeout_ms;
        self.open
            .retain(|_, p| now_ms.saturating_sub(p.started_ms) <= timeout);
    }

    fn make_room(&mut self, sender: u32) {
        if self.open.contains_key(&sender) || self.open.len() < self.max_open {
            return;
        }
        let oldest = self
            .open
            .iter()
            .min_by_key(|(_, p)| p.started_ms)
            .map(|(&s, _)| s);
        if let Some(oldest) = oldest {
            self.open.remove(&oldest);
        }
    }
}

impl fmt::Debug for TeachInAssembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeachInAssembler")
            .field("timeout_ms", &self.timeout_ms)
            .field("max_open", &self.max_open)
            .field("pending", &self.open.len())
            .finish()
    }
}

impl Pending {
    fn new(started_ms: u64) -> Self {
        Self {
            started_ms,
            parts: Default::default(),
        }
    }

    /// The joined teach-in when all parts are there.
    fn joined(&self) -> Result<Option<Vec<u8>>, SecureError> {
        let Some(first) = &self.parts[0] else {
            return Ok(None);
        };
        let cnt = usize::from(TeachInInfo(first[0]).cnt()).max(1);
        if self.parts[cnt..].iter().any(Option::is_some) {
            return Err(SecureError::Malformed("teach-in part beyond its CNT"));
        }
        if self.parts[..cnt].iter().any(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(
            self.parts[..cnt]
                .iter()
                .flatten()
                .flatten()
                .copied()
                .collect(),
        ))
    }
}
