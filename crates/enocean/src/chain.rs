//! Chained data messages: CDM (R-ORG 0x40) and secure chained SEC_CDM (R-ORG 0x33).
//!
//! Every part is `R-ORG | SEQ(2 bits) IDX(6 bits) | ...`. Part 0 carries a 16-bit LEN:
//! - CDM 0x40: `40 | SEQ,0 | LEN(2) | inner R-ORG | data...`, LEN counts the data bytes
//!   after the inner R-ORG. The result is the inner telegram (`inner R-ORG`, data).
//! - SEC_CDM 0x33: `33 | SEQ,0 | LEN(2) | secure bytes...`, LEN counts all secure bytes
//!   (encrypted R-ORG and payload, RLC, CMAC). The result keeps R-ORG 0x33 and carries the
//!   reassembled secure bytes, which [`crate::secure`] verifies and decrypts as a 0x31 payload.
//!
//! Later parts are `R-ORG | SEQ,IDX | data...`. Parts are collected per sender, R-ORG and SEQ
//! in any order until part 0 and every following part up to LEN bytes are present.

use crate::telegram::Telegram;

pub const RORG_CDM: u8 = 0x40;
pub const RORG_SEC_CDM: u8 = 0x33;
/// Time a chain may stay incomplete, counted from its first part.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
/// Chains open at the same time before the oldest is dropped.
pub const DEFAULT_MAX_OPEN: usize = 256;

/// Why a chained part was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("chained part too short: {0} bytes")]
    TooShort(usize),
    #[error("chained message announces length 0")]
    ZeroLength,
}

/// What became of a telegram pushed into the [`Reassembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOutcome {
    /// Not a chained telegram: process it as it is.
    NotChained(Telegram),
    /// A part was stored (or was a duplicate); the message is not complete yet.
    Incomplete,
    /// The last missing part arrived: the reassembled telegram.
    Complete(Telegram),
    Rejected(ChainError),
}

/// Counters kept by a [`Reassembler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainStats {
    pub completed: u64,
    /// Parts already held, ignored.
    pub duplicates: u64,
    /// Chains dropped incomplete after the timeout.
    pub expired: u64,
    /// Chains dropped incomplete to make room for a new one.
    pub evicted: u64,
    pub rejected: u64,
}

/// What identifies one chain: its sender, R-ORG and sequence counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainKey {
    pub sender: u32,
    pub rorg: u8,
    pub seq: u8,
}

impl ChainKey {
    /// The chain a telegram is a part of; `None` when it is not a chained part.
    pub fn of(t: &Telegram) -> Option<ChainKey> {
        if t.rorg != RORG_CDM && t.rorg != RORG_SEC_CDM {
            return None;
        }
        let control = *t.data.first()?;
        Some(ChainKey {
            sender: t.sender,
            rorg: t.rorg,
            seq: control >> 6,
        })
    }
}

#[derive(Debug, Clone)]
struct OpenChain {
    key: ChainKey,
    started_ms: u64,
    /// From part 0: announced length and, for CDM, the inner R-ORG.
    len: Option<usize>,
    inner_rorg: Option<u8>,
    /// Parts by index (at most 64), each its data after the header.
    parts: Vec<(u8, Vec<u8>)>,
}

impl OpenChain {
    fn has(&self, idx: u8) -> bool {
        self.parts.iter().any(|(i, _)| *i == idx)
    }

    /// The reassembled bytes once part 0 and all parts up to LEN bytes are present.
    fn assemble(&mut self) -> Option<Vec<u8>> {
        let len = self.len?;
        let held: usize = self.parts.iter().map(|(_, d)| d.len()).sum();
        if held < len {
            return None;
        }
        self.parts.sort_unstable_by_key(|(i, _)| *i);
        let contiguous = self
            .parts
            .iter()
            .enumerate()
            .all(|(n, (i, _))| n == *i as usize);
        if !contiguous {
            return None;
        }
        let mut out = Vec::with_capacity(held);
        for (_, d) in &self.parts {
            out.extend_from_slice(d);
        }
        out.truncate(len);
        Some(out)
    }
}

/// Reassembles chained telegrams. Pure: the caller passes the current time in milliseconds.
#[derive(Debug, Clone)]
pub struct Reassembler {
    timeout_ms: u64,
    max_open: usize,
    open: Vec<OpenChain>,
    stats: ChainStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT_MS, DEFAULT_MAX_OPEN)
    }
}

impl Reassembler {
    /// `max_open` is raised to at least 1.
    pub fn new(timeout_ms: u64, max_open: usize) -> Self {
        Reassembler {
            timeout_ms,
            max_open: max_open.max(1),
            open: Vec::new(),
            stats: ChainStats::default(),
        }
    }

    /// Takes one telegram. Chained parts are stored; everything else is handed back.
    /// The reassembled telegram keeps the sender, destination, status and radio
    /// information of the part that completed it.
    pub fn push(&mut self, telegram: Telegram, now_ms: u64) -> ChainOutcome {
        if telegram.rorg != RORG_CDM && telegram.rorg != RORG_SEC_CDM {
            return ChainOutcome::NotChained(telegram);
        }
        self.expire(now_ms);
        match self.store(&telegram, now_ms) {
            Err(e) => {
                self.stats.rejected += 1;
                ChainOutcome::Rejected(e)
            }
            Ok(None) => ChainOutcome::Incomplete,
            Ok(Some((rorg, data))) => {
                self.stats.completed += 1;
                ChainOutcome::Complete(Telegram {
                    rorg,
                    data,
                    ..telegram
                })
            }
        }
    }

    /// Stores a part; returns the R-ORG and data of the message it completes.
    fn store(&mut self, t: &Telegram, now_ms: u64) -> Result<Option<(u8, Vec<u8>)>, ChainError> {
        let (&control, rest) = t
            .data
            .split_first()
            .ok_or(ChainError::TooShort(t.data.len()))?;
        let key = ChainKey {
            sender: t.sender,
            rorg: t.rorg,
            seq: control >> 6,
        };
        let idx = control & 0x3F;
        let (len, inner_rorg, payload) = if idx == 0 {
            first_part(t.rorg, rest)?
        } else {
            (None, None, rest)
        };

        let pos = match self.open.iter().position(|c| c.key == key) {
            Some(pos) => pos,
            None => self.open_chain(key, now_ms),
        };
        let chain = &mut self.open[pos];
        if chain.has(idx) {
            let same = chain.parts.iter().any(|(i, d)| *i == idx && d == payload);
            if idx != 0 || (same && chain.len == len && chain.inner_rorg == inner_rorg) {
                self.stats.duplicates += 1;
                return Ok(None);
            }
            // A different part 0 under the same SEQ: the sender started a new message.
            *chain = OpenChain {
                key,
                started_ms: now_ms,
                len: None,
                inner_rorg: None,
                parts: Vec::new(),
            };
        }
        if idx == 0 {
            chain.len = len;
            chain.inner_rorg = inner_rorg;
        }
        chain.parts.push((idx, payload.to_vec()));
        let Some(data) = chain.assemble() else {
            return Ok(None);
        };
        let rorg = chain.inner_rorg.unwrap_or(t.rorg);
        self.open.swap_remove(pos);
        Ok(Some((rorg, data)))
    }

    /// Opens a chain, dropping the oldest one when `max_open` are open already.
    fn open_chain(&mut self, key: ChainKey, now_ms: u64) -> usize {
        if self.open.len() >= self.max_open
            && let Some(oldest) = (0..self.open.len()).min_by_key(|&i| self.open[i].started_ms)
        {
            self.open.swap_remove(oldest);
            self.stats.evicted += 1;
        }
        self.open.push(OpenChain {
            key,
            started_ms: now_ms,
            len: None,
            inner_rorg: None,
            parts: Vec::new(),
        });
        self.open.len() - 1
    }

    /// Drops chains older than the timeout. [`push`](Self::push) does this too; call it
    /// periodically to free memory when no chained telegrams arrive.
    pub fn expire(&mut self, now_ms: u64) {
        let timeout = self.timeout_ms;
        let before = self.open.len();
        self.open
            .retain(|c| now_ms.saturating_sub(c.started_ms) <= timeout);
        self.stats.expired += (before - self.open.len()) as u64;
    }

    /// Chains waiting for parts.
    pub fn open_chains(&self) -> usize {
        self.open.len()
    }

    pub fn stats(&self) -> ChainStats {
        self.stats
    }
}

/// LEN, inner R-ORG (CDM only) and data of a part.
type PartHeader<'a> = (Option<usize>, Option<u8>, &'a [u8]);

/// Reads part 0 after its control byte: LEN, the inner R-ORG for CDM, and the data.
fn first_part(rorg: u8, rest: &[u8]) -> Result<PartHeader<'_>, ChainError> {
    let header = if rorg == RORG_CDM { 3 } else { 2 };
    if rest.len() < header {
        return Err(ChainError::TooShort(rest.len() + 1));
    }
    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    if len == 0 {
        return Err(ChainError::ZeroLength);
    }
    let inner_rorg = (rorg == RORG_CDM).then(|| rest[2]);
    Ok((Some(len), inner_rorg, &rest[header..]))
}
