//! Recognising teach-in telegrams: 1BS, 4BS (with or without EEP) and UTE (0xD4).
//!
//! RPS has no teach-in bit, VLD devices teach in with UTE, and secure teach-in (0x35) is
//! handled by [`crate::secure`].

use crate::eep::Eep;
use crate::telegram::Telegram;

/// Manufacturer ID bits (11).
const MANUFACTURER_MASK: u16 = 0x07FF;

/// What a UTE query asks for (DB6 bits 5..4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UteRequest {
    TeachIn,
    Deletion,
    /// Teach in, or delete if already taught in.
    Either,
    /// 0b11, not used by the specification.
    Reserved,
}

/// The kind of teach-in telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeachInKind {
    /// 1BS (D5) with DB0.3 = 0; the only 1BS profile is D5-00-01.
    OneBs,
    /// 4BS (A5) with DB0.3 = 0; `with_eep` when DB0.7 = 1 (FUNC, TYPE, manufacturer given).
    FourBs { with_eep: bool },
    /// UTE query (D4, CMD 0).
    Ute {
        /// DB6.7: the device communicates in both directions.
        bidirectional: bool,
        /// DB6.6 = 0: a response is expected.
        response_expected: bool,
        request: UteRequest,
        /// DB5: number of channels to teach in, 0xFF for all.
        channels: u8,
    },
}

/// A recognised teach-in telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TeachIn {
    pub kind: TeachInKind,
    pub eep: Option<Eep>,
    /// The 11-bit EnOcean manufacturer ID.
    pub manufacturer: Option<u16>,
}

/// The teach-in carried by a telegram, if it is one.
pub fn detect(t: &Telegram) -> Option<TeachIn> {
    match t.rorg {
        0xD5 => one_bs(&t.data),
        0xA5 => four_bs(&t.data),
        0xD4 => ute(&t.data),
        _ => None,
    }
}

fn one_bs(data: &[u8]) -> Option<TeachIn> {
    let &[db0] = data else { return None };
    (db0 & 0x08 == 0).then_some(TeachIn {
        kind: TeachInKind::OneBs,
        eep: Some(Eep::new(0xD5, 0x00, 0x01)),
        manufacturer: None,
    })
}

fn four_bs(data: &[u8]) -> Option<TeachIn> {
    let &[db3, db2, db1, db0] = data else {
        return None;
    };
    if db0 & 0x08 != 0 {
        return None;
    }
    if db0 & 0x80 == 0 {
        let kind = TeachInKind::FourBs { with_eep: false };
        return Some(TeachIn {
            kind,
            eep: None,
            manufacturer: None,
        });
    }
    let func = db3 >> 2;
    let typ = (db3 & 0x03) << 5 | db2 >> 3;
    let manufacturer = u16::from(db2 & 0x07) << 8 | u16::from(db1);
    Some(TeachIn {
        kind: TeachInKind::FourBs { with_eep: true },
        eep: Some(Eep::new(0xA5, func, typ)),
        manufacturer: Some(manufacturer),
    })
}

fn ute(data: &[u8]) -> Option<TeachIn> {
    let &[db6, db5, db4, db3, db2, db1, db0] = data else {
        return None;
    };
    if db6 & 0x0F != 0 {
        return None; // CMD 1 is a teach-in response, sent by the receiving side.
    }
    let request = match (db6 >> 4) & 0x03 {
        0b00 => UteRequest::TeachIn,
        0b01 => UteRequest::Deletion,
        0b10 => UteRequest::Either,
        _ => UteRequest::Reserved,
    };
    Some(TeachIn {
        kind: TeachInKind::Ute {
            bidirectional: db6 & 0x80 != 0,
            response_expected: db6 & 0x40 == 0,
            request,
            channels: db5,
        },
        eep: Some(Eep::new(db0, db1, db2)),
        manufacturer: Some((u16::from(db3) << 8 | u16::from(db4)) & MANUFACTURER_MASK),
    })
}
