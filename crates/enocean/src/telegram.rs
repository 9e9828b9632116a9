//! One radio telegram, whether it arrived as RADIO_ERP1 or RADIO_ERP2.

use crate::erp2::{self, Erp2Error};
use crate::esp3::{self, Esp3Error, Frame, Packet, PacketType};

/// Destination ID of a broadcast telegram.
pub const BROADCAST: u32 = 0xFFFF_FFFF;

/// A radio telegram: R-ORG, payload, addresses, status and the receiver's radio information.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Telegram {
    pub rorg: u8,
    /// Payload between the R-ORG and the sender ID.
    pub data: Vec<u8>,
    /// Sender (originator) ID. For a 48-bit ERP2 originator: its low 32 bits.
    pub sender: u32,
    /// Destination ID, [`BROADCAST`] when none is given.
    pub destination: u32,
    /// ERP1 status byte (bits 3..0: repeater count; for RPS bits 5/4: T21/NU). ERP2 has no
    /// status byte: its repeater count is put in bits 3..0.
    pub status: u8,
    pub sub_tel_num: Option<u8>,
    /// Received signal strength in dBm (negative).
    pub dbm: Option<i16>,
    pub security_level: Option<u8>,
}

/// Why a packet is not a radio telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    #[error(transparent)]
    Esp3(#[from] Esp3Error),
    #[error(transparent)]
    Erp2(#[from] Erp2Error),
    #[error("ESP3 packet type {0:#04x} is not a radio telegram")]
    NotRadio(u8),
    #[error("ERP1 telegram too short: {0} bytes (R-ORG, sender and status need 6)")]
    TooShort(usize),
}

/// R-ORG, sender ID and status around an ERP1 payload.
const ERP1_OVERHEAD: usize = 6;

impl Telegram {
    /// Decodes a RADIO_ERP1 or RADIO_ERP2 packet.
    pub fn from_packet(packet: &Packet) -> Result<Telegram, TelegramError> {
        Self::from_frame(&packet.as_frame())
    }

    /// Decodes one complete ESP3 frame.
    pub fn from_esp3(bytes: &[u8]) -> Result<Telegram, TelegramError> {
        Self::from_frame(&esp3::parse_frame_ref(bytes)?)
    }

    /// Decodes a RADIO_ERP1 or RADIO_ERP2 frame.
    pub fn from_frame(frame: &Frame<'_>) -> Result<Telegram, TelegramError> {
        match frame.kind() {
            Some(PacketType::RadioErp1) => Self::from_erp1(frame.data, frame.optional),
            Some(PacketType::RadioErp2) => Self::from_erp2(frame.data, frame.optional),
            _ => Err(TelegramError::NotRadio(frame.packet_type)),
        }
    }

    /// ERP1: `R-ORG | data | sender(4) | status`; optional data `SubTelNum | destination(4) |
    /// dBm | security level`, any prefix of it.
    fn from_erp1(data: &[u8], optional: &[u8]) -> Result<Telegram, TelegramError> {
        if data.len() < ERP1_OVERHEAD {
            return Err(TelegramError::TooShort(data.len()));
        }
        let n = data.len();
        Ok(Telegram {
            rorg: data[0],
            data: data[1..n - 5].to_vec(),
            sender: u32::from_be_bytes([data[n - 5], data[n - 4], data[n - 3], data[n - 2]]),
            destination: optional
                .get(1..5)
                .map_or(BROADCAST, |d| u32::from_be_bytes([d[0], d[1], d[2], d[3]])),
            status: data[n - 1],
            sub_tel_num: optional.first().copied(),
            dbm: optional.get(5).map(|&d| -(d as i16)),
            security_level: optional.get(6).copied(),
        })
    }

    /// ERP2: the telegram without LENGTH; optional data `SubTelNum | dBm | security level?`.
    fn from_erp2(data: &[u8], optional: &[u8]) -> Result<Telegram, TelegramError> {
        let t = erp2::parse(data)?;
        Ok(Telegram {
            rorg: t.rorg,
            data: t.data.to_vec(),
            sender: t.sender(),
            destination: t.destination.unwrap_or(BROADCAST),
            status: t.repeater_count & 0x0F,
            sub_tel_num: optional.first().copied(),
            dbm: optional.get(1).map(|&d| -(d as i16)),
            security_level: optional.get(2).copied(),
        })
    }

    /// How many times the telegram was repeated (status bits 3..0).
    pub fn repeater_count(&self) -> u8 {
        self.status & 0x0F
    }

    /// The sender ID as 8 lower-case hex digits.
    pub fn sender_hex(&self) -> String {
        format!("{:08x}", self.sender)
    }

    /// The destination ID as 8 lower-case hex digits.
    pub fn destination_hex(&self) -> String {
        format!("{:08x}", self.destination)
    }

    pub fn is_broadcast(&self) -> bool {
        self.destination == BROADCAST
    }

    /// `R-ORG | data` as lower-case hex, IoTC's `raw.data`.
    pub fn data_hex(&self) -> String {
        let mut out = String::with_capacity(2 + 2 * self.data.len());
        for b in std::iter::once(&self.rorg).chain(&self.data) {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The telegram as a RADIO_ERP1 packet, as a receiving module would deliver it. Radio
    /// information missing here gets the values of a plain reception: sub-telegram 1,
    /// security level 0, and dBm 0xFF (unknown) when absent.
    pub fn to_erp1_packet(&self) -> Packet {
        let mut data = Vec::with_capacity(self.data.len() + ERP1_OVERHEAD);
        data.push(self.rorg);
        data.extend_from_slice(&self.data);
        data.extend_from_slice(&self.sender.to_be_bytes());
        data.push(self.status);
        let mut optional = Vec::with_capacity(7);
        optional.push(self.sub_tel_num.unwrap_or(1));
        optional.extend_from_slice(&self.destination.to_be_bytes());
        optional.push(self.dbm.map_or(0xFF, |d| d.unsigned_abs().min(0xFF) as u8));
        optional.push(self.security_level.unwrap_or(0));
        Packet::new(PacketType::RadioErp1.as_u8(), data, optional)
    }

    /// Bytes identifying this transmission, the same for every copy of it whichever gateway
    /// heard it and however often it was repeated: sender, R-ORG, status without the repeater
    /// count, payload length and payload (payloads over 9 bytes are hashed, FNV-1a 64).
    /// Radio information (sub-telegrams, dBm) is left out.
    pub fn dedup_key(&self) -> [u8; 16] {
        let mut key = [0u8; 16];
        key[..4].copy_from_slice(&self.sender.to_be_bytes());
        key[4] = self.rorg;
        key[5] = self.status & 0xF0;
        key[6] = self.data.len().min(0xFF) as u8;
        if self.data.len() <= 9 {
            key[7..7 + self.data.len()].copy_from_slice(&self.data);
        } else {
            key[7..15].copy_from_slice(&fnv1a64(&self.data).to_be_bytes());
            key[15] = self.data[0];
        }
        key
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telegram(hex: &str) -> Telegram {
        Telegram::from_esp3(&hex_bytes(hex)).unwrap()
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn erp1_fields() {
        let t = telegram("55000707017AF670018DF8BD3001FFFFFFFF55008B");
        assert_eq!(t.rorg, 0xF6);
        assert_eq!(t.data, vec![0x70]);
        assert_eq!(t.sender_hex(), "018df8bd");
        assert_eq!(t.status, 0x30);
        assert_eq!(t.sub_tel_num, Some(1));
        assert_eq!(t.destination, BROADCAST);
        assert_eq!(t.dbm, Some(-85));
        assert_eq!(t.security_level, Some(0));
        assert_eq!(t.data_hex(), "f670");
    }

    #[test]
    fn erp1_round_trip() {
        let t = telegram("55000A0701EBA5000055080181B7440001FFFFFFFF2D0075");
        let frame = t.to_erp1_packet().encode();
        assert_eq!(
            frame,
            hex_bytes("55000A0701EBA5000055080181B7440001FFFFFFFF2D0075")
        );
    }

    #[test]
    fn dedup_key_ignores_repeater_count_and_radio() {
        let mut a = telegram("55000A0701EBA5000055080181B7440001FFFFFFFF2D0075");
        let mut b = a.clone();
        b.status |= 0x02;
        b.dbm = Some(-90);
        b.sub_tel_num = Some(3);
        assert_eq!(a.dedup_key(), b.dedup_key());
        a.data[2] ^= 1;
        assert_ne!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn non_radio_packet_is_rejected() {
        let frame = hex_bytes("5500010005700838");
        assert_eq!(
            Telegram::from_esp3(&frame),
            Err(TelegramError::NotRadio(0x05))
        );
    }
}
