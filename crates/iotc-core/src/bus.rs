//! The telegram stream entry: how ingress hands one radio telegram to the engine.
//!
//! Compact binary in one stream field ([`FIELD`]), so an entry costs a few dozen bytes:
//!
//! ```text
//! version(1)=1 | gateway MAC(6) | received unix ms (8, BE) | dBm (1, i8; 0 = unknown)
//! | USB id length (1) | USB id (UTF-8) | ESP3 frame (rest)
//! ```

use thiserror::Error;

/// The single field of a telegram stream entry.
pub const FIELD: &str = "t";
const VERSION: u8 = 1;
const FIXED: usize = 1 + 6 + 8 + 1 + 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramEntry {
    pub gateway_mac: [u8; 6],
    pub received_ms: u64,
    /// Received signal strength in dBm (negative), 0 when unknown.
    pub dbm: i8,
    /// The AP's USB stick identifier (`ENOCEAN_USB:<hash>`); [`encode`](Self::encode) keeps
    /// at most 255 bytes of it, cut on a character boundary.
    pub usb_id: String,
    /// One complete ESP3 frame as it came from the stick.
    pub esp3: Vec<u8>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("telegram entry too short ({0} bytes)")]
    TooShort(usize),
    #[error("unknown telegram entry version {0}")]
    Version(u8),
}

impl TelegramEntry {
    pub fn encode(&self) -> Vec<u8> {
        let usb = crate::text::cut(&self.usb_id, crate::text::MAX_USB_ID).as_bytes();
        let mut out = Vec::with_capacity(FIXED + usb.len() + self.esp3.len());
        out.push(VERSION);
        out.extend_from_slice(&self.gateway_mac);
        out.extend_from_slice(&self.received_ms.to_be_bytes());
        out.push(self.dbm as u8);
        out.push(usb.len() as u8);
        out.extend_from_slice(usb);
        out.extend_from_slice(&self.esp3);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        if bytes.len() < FIXED {
            return Err(EntryError::TooShort(bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(EntryError::Version(bytes[0]));
        }
        let gateway_mac = bytes[1..7].try_into().expect("6 bytes");
        let received_ms = u64::from_be_bytes(bytes[7..15].try_into().expect("8 bytes"));
        let dbm = bytes[15] as i8;
        let usb_len = bytes[16] as usize;
        let rest = &bytes[FIXED..];
        if rest.len() < usb_len {
            return Err(EntryError::TooShort(bytes.len()));
        }
        // Lossy: a damaged identifier must not cost the telegram.
        let usb_id = String::from_utf8_lossy(&rest[..usb_len]).into_owned();
        Ok(TelegramEntry {
            gateway_mac,
            received_ms,
            dbm,
            usb_id,
            esp3: rest[usb_len..].to_vec(),
        })
    }

    /// The gateway MAC as IoTC writes it: 12 lower-case hex digits.
    pub fn mac_hex(&self) -> String {
        mac_hex(&self.gateway_mac)
    }
}

pub fn mac_hex(mac: &[u8; 6]) -> String {
    hex::encode(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = TelegramEntry {
            gateway_mac: [0x24, 0xf2, 0x7f, 0xca, 0x1b, 0xa4],
            received_ms: 1_700_000_000_123,
            dbm: -64,
            usb_id: "ENOCEAN_USB:deb480d77718bbbe5253896b9300acfd".into(),
            esp3: vec![0x55, 0x00, 0x07, 0x07, 0x01, 0x7a],
        };
        let bytes = e.encode();
        assert_eq!(TelegramEntry::decode(&bytes).unwrap(), e);
        assert_eq!(e.mac_hex(), "24f27fca1ba4");
    }

    #[test]
    fn long_multibyte_usb_id_is_cut_on_a_character_boundary() {
        // 100 three-byte characters: byte 255 is the end of the 85th, 256 would split one;
        // with a one-byte prefix the 255-byte limit falls inside a character.
        let usb_id = format!("x{}", "€".repeat(100));
        let e = TelegramEntry {
            gateway_mac: [1; 6],
            received_ms: 1,
            dbm: -50,
            usb_id,
            esp3: vec![0x55, 1, 2],
        };
        let back = TelegramEntry::decode(&e.encode()).unwrap();
        assert_eq!(back.usb_id, format!("x{}", "€".repeat(84)));
        assert_eq!(back.esp3, e.esp3);
    }

    #[test]
    fn damaged_usb_id_does_not_cost_the_telegram() {
        let mut bytes = TelegramEntry {
            gateway_mac: [1; 6],
            received_ms: 1,
            dbm: 0,
            usb_id: "ab".into(),
            esp3: vec![0x55],
        }
        .encode();
        bytes[FIXED] = 0xff;
        let back = TelegramEntry::decode(&bytes).unwrap();
        assert_eq!(back.usb_id, "\u{fffd}b");
        assert_eq!(back.esp3, vec![0x55]);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(TelegramEntry::decode(&[1, 2]), Err(EntryError::TooShort(2)));
        let mut bytes = vec![9; 20];
        assert_eq!(TelegramEntry::decode(&bytes), Err(EntryError::Version(9)));
        bytes[0] = 1;
        bytes[16] = 200;
        assert!(TelegramEntry::decode(&bytes).is_err());
    }
}
