//! ERP2 radio telegrams (EnOcean Radio Protocol 2, ISO/IEC 14543-3-11), as carried by ESP3
//! RADIO_ERP2 packets: the telegram without its LENGTH byte, ending in the ERP2 CRC8.
//!
//! Layout: `HEADER | EXT_HEADER? | EXT_TYPE? | ORIGINATOR (3/4/6) | DESTINATION (0/4) |
//! DATA | OPTIONAL DATA | CRC`. The CRC8 (polynomial 0x07) covers HEADER up to the last byte
//! before the CRC; the LENGTH byte is not included.

use crate::crc8::crc8;

/// How originator and destination IDs are carried (HEADER bits 7..5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressControl {
    /// 0b000: 24-bit originator, no destination.
    Originator24,
    /// 0b001: 32-bit originator, no destination.
    Originator32,
    /// 0b010: 32-bit originator and 32-bit destination.
    Originator32Destination32,
    /// 0b011: 48-bit originator, no destination.
    Originator48,
}

impl AddressControl {
    pub const fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0b000 => Self::Originator24,
            0b001 => Self::Originator32,
            0b010 => Self::Originator32Destination32,
            0b011 => Self::Originator48,
            _ => return None,
        })
    }

    pub const fn bits(self) -> u8 {
        match self {
            Self::Originator24 => 0b000,
            Self::Originator32 => 0b001,
            Self::Originator32Destination32 => 0b010,
            Self::Originator48 => 0b011,
        }
    }

    /// Bytes of the originator ID.
    pub const fn originator_len(self) -> usize {
        match self {
            Self::Originator24 => 3,
            Self::Originator32 | Self::Originator32Destination32 => 4,
            Self::Originator48 => 6,
        }
    }

    /// Bytes of the destination ID.
    pub const fn destination_len(self) -> usize {
        match self {
            Self::Originator32Destination32 => 4,
            _ => 0,
        }
    }
}

/// HEADER telegram type 0xF: an extended telegram type byte follows.
pub const EXTENDED_TYPE: u8 = 0x0F;

/// The R-ORG of a HEADER telegram type (bits 3..0).
pub const fn rorg_of_type(telegram_type: u8) -> Option<u8> {
    Some(match telegram_type {
        0x0 => 0xF6,
        0x1 => 0xD5,
        0x2 => 0xA5,
        0x3 => 0xD0,
        0x4 => 0xD2,
        0x5 => 0xD4,
        0x6 => 0xD1,
        0x7 => 0x30,
        0x8 => 0x31,
        0x9 => 0x35,
        0xA => 0xB3,
        _ => return None,
    })
}

/// The R-ORG of an EXT_TYPE byte.
pub const fn rorg_of_extended_type(extended_type: u8) -> Option<u8> {
    Some(match extended_type {
        0x00 => 0xC5,
        0x01 => 0xC6,
        0x02 => 0xC7,
        0x03 => 0x40,
        0x04 => 0x32,
        0x05 => 0xB0,
        0x06 => 0xB1,
        0x07 => 0xB2,
        _ => return None,
    })
}

/// The HEADER telegram type, or the EXT_TYPE (with type 0xF), that carries an R-ORG.
pub fn type_of_rorg(rorg: u8) -> Option<(u8, Option<u8>)> {
    if let Some(t) = (0..=0x0A).find(|&t| rorg_of_type(t) == Some(rorg)) {
        return Some((t, None));
    }
    (0..=0x07)
        .find(|&t| rorg_of_extended_type(t) == Some(rorg))
        .map(|ext| (EXTENDED_TYPE, Some(ext)))
}

/// Why bytes are not a valid ERP2 telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Erp2Error {
    #[error("ERP2 telegram too short: {0} bytes")]
    TooShort(usize),
    #[error("ERP2 CRC mismatch: computed {computed:#04x}, telegram has {found:#04x}")]
    Crc { computed: u8, found: u8 },
    #[error("reserved ERP2 address control {0:#05b}")]
    AddressControl(u8),
    #[error("unknown ERP2 telegram type {0:#x}")]
    TelegramType(u8),
    #[error("unknown ERP2 extended telegram type {0:#04x}")]
    ExtendedType(u8),
}

/// A parsed ERP2 telegram borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erp2<'a> {
    pub address_control: AddressControl,
    /// Repeater count from the extended header, 0 without one.
    pub repeater_count: u8,
    /// The R-ORG the telegram type stands for.
    pub rorg: u8,
    /// The originator ID (24, 32 or 48 bits, right-aligned).
    pub originator: u64,
    pub destination: Option<u32>,
    pub data: &'a [u8],
    /// The telegram's own optional data (length from the extended header), usually empty.
    pub optional: &'a [u8],
}

impl Erp2<'_> {
    /// The 32-bit sender ID: the originator, or the low 32 bits of a 48-bit originator.
    pub fn sender(&self) -> u32 {
        self.originator as u32
    }
}

/// Parses an ERP2 telegram without its LENGTH byte, CRC included.
pub fn parse(bytes: &[u8]) -> Result<Erp2<'_>, Erp2Error> {
    let too_short = Erp2Error::TooShort(bytes.len());
    let (&found, body) = bytes.split_last().ok_or(too_short)?;
    let computed = crc8(body);
    if computed != found {
        return Err(Erp2Error::Crc { computed, found });
    }
    let (&header, mut rest) = body.split_first().ok_or(too_short)?;
    let address_control =
        AddressControl::from_bits(header >> 5).ok_or(Erp2Error::AddressControl(header >> 5))?;
    let (repeater_count, optional_len) = if header & 0x10 != 0 {
        let ext = take(&mut rest, 1).ok_or(too_short)?[0];
        (ext >> 4, (ext & 0x0F) as usize)
    } else {
        (0, 0)
    };
    let telegram_type = header & 0x0F;
    let rorg = if telegram_type == EXTENDED_TYPE {
        let ext = take(&mut rest, 1).ok_or(too_short)?[0];
        rorg_of_extended_type(ext).ok_or(Erp2Error::ExtendedType(ext))?
    } else {
        rorg_of_type(telegram_type).ok_or(Erp2Error::TelegramType(telegram_type))?
    };
    let originator = take(&mut rest, address_control.originator_len())
        .ok_or(too_short)?
        .iter()
        .fold(0u64, |id, &b| (id << 8) | b as u64);
    let destination = match address_control.destination_len() {
        0 => None,
        n => Some(be_u32(take(&mut rest, n).ok_or(too_short)?)),
    };
    let data_len = rest.len().checked_sub(optional_len).ok_or(too_short)?;
    let data = take(&mut rest, data_len).ok_or(too_short)?;
    Ok(Erp2 {
        address_control,
        repeater_count,
        rorg,
        originator,
        destination,
        data,
        optional: rest,
    })
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
}

fn be_u32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |id, &b| (id << 8) | b as u32)
}

/// Builds an ERP2 telegram (without LENGTH, with CRC) with a 32-bit originator, an optional
/// destination and an extended header when `repeater_count` is not 0.
/// Returns `None` for an R-ORG ERP2 cannot carry.
pub fn encode(
    rorg: u8,
    data: &[u8],
    sender: u32,
    destination: Option<u32>,
    repeater_count: u8,
) -> Option<Vec<u8>> {
    let (telegram_type, extended_type) = type_of_rorg(rorg)?;
    let address_control = match destination {
        Some(_) => AddressControl::Originator32Destination32,
        None => AddressControl::Originator32,
    };
    let with_ext_header = repeater_count != 0;
    let mut out = Vec::with_capacity(data.len() + 12);
    out.push(address_control.bits() << 5 | (with_ext_header as u8) << 4 | telegram_type);
    if with_ext_header {
        out.push((repeater_count & 0x0F) << 4);
    }
    out.extend(extended_type);
    out.extend_from_slice(&sender.to_be_bytes());
    if let Some(destination) = destination {
        out.extend_from_slice(&destination.to_be_bytes());
    }
    out.extend_from_slice(data);
    out.push(crc8(&out));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_table_round_trips() {
        for rorg in [
            0xF6, 0xD5, 0xA5, 0xD0, 0xD2, 0xD4, 0xD1, 0x30, 0x31, 0x35, 0xB3, 0x40, 0x32,
        ] {
            let (t, ext) = type_of_rorg(rorg).unwrap();
            let back = match ext {
                Some(e) => rorg_of_extended_type(e),
                None => rorg_of_type(t),
            };
            assert_eq!(back, Some(rorg));
        }
        assert_eq!(type_of_rorg(0xA6), None);
    }

    #[test]
    fn encode_then_parse() {
        let bytes = encode(
            0x40,
            &[0x40, 0x00, 0x02, 0xA5, 1, 2],
            0x0102_0304,
            Some(0xAABB_CCDD),
            3,
        )
        .unwrap();
        let t = parse(&bytes).unwrap();
        assert_eq!(t.rorg, 0x40);
        assert_eq!(t.repeater_count, 3);
        assert_eq!(t.sender(), 0x0102_0304);
        assert_eq!(t.destination, Some(0xAABB_CCDD));
        assert_eq!(t.data, &[0x40, 0x00, 0x02, 0xA5, 1, 2]);
        assert!(t.optional.is_empty());
    }

    #[test]
    fn reserved_address_control_is_an_error() {
        let mut bytes = vec![0x80, 1, 2, 3, 4, 5];
        bytes.push(crc8(&bytes));
        assert_eq!(parse(&bytes), Err(Erp2Error::AddressControl(0b100)));
    }
}
