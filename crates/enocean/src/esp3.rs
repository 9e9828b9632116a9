//! ESP3 (EnOcean Serial Protocol 3) framing.
//!
//! A frame is `0x55 | data length (2, big-endian) | optional length (1) | packet type (1) |
//! CRC8H | data | optional data | CRC8D`. CRC8H covers the four header bytes, CRC8D the data
//! and optional data.
//!
//! [`parse_frame`] checks one complete frame; [`StreamParser`] finds frames in an arbitrary
//! byte stream (serial port, concatenated buffers) and resynchronises after garbage, CRC
//! errors and false sync bytes.

use crate::crc8::{crc8, update};

/// The sync byte that starts every frame.
pub const SYNC: u8 = 0x55;
/// Sync byte plus the four header bytes plus CRC8H.
pub const HEADER_LEN: usize = 6;
/// Largest possible frame: header, 65535 data bytes, 255 optional bytes, CRC8D.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + u16::MAX as usize + u8::MAX as usize + 1;

/// ESP3 packet types (ESP3 v1.47).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    RadioErp1 = 0x01,
    Response = 0x02,
    RadioSubTel = 0x03,
    Event = 0x04,
    CommonCommand = 0x05,
    SmartAckCommand = 0x06,
    RemoteManCommand = 0x07,
    RadioMessage = 0x09,
    RadioErp2 = 0x0A,
    Radio802_15_4 = 0x10,
    Command2_4 = 0x11,
}

impl PacketType {
    /// The packet type of a type byte, `None` for reserved or vendor values.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x01 => Self::RadioErp1,
            0x02 => Self::Response,
            0x03 => Self::RadioSubTel,
            0x04 => Self::Event,
            0x05 => Self::CommonCommand,
            0x06 => Self::SmartAckCommand,
            0x07 => Self::RemoteManCommand,
            0x09 => Self::RadioMessage,
            0x0A => Self::RadioErp2,
            0x10 => Self::Radio802_15_4,
            0x11 => Self::Command2_4,
            _ => return None,
        })
    }

    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The specification's name, e.g. `RADIO_ERP1`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RadioErp1 => "RADIO_ERP1",
            Self::Response => "RESPONSE",
            Self::RadioSubTel => "RADIO_SUB_TEL",
            Self::Event => "EVENT",
            Self::CommonCommand => "COMMON_COMMAND",
            Self::SmartAckCommand => "SMART_ACK_COMMAND",
            Self::RemoteManCommand => "REMOTE_MAN_COMMAND",
            Self::RadioMessage => "RADIO_MESSAGE",
            Self::RadioErp2 => "RADIO_ERP2",
            Self::Radio802_15_4 => "RADIO_802_15_4",
            Self::Command2_4 => "COMMAND_2_4",
        }
    }
}

impl From<PacketType> for u8 {
    fn from(value: PacketType) -> u8 {
        value as u8
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Esp3Error {
    #[error("ESP3 frame incomplete: {needed} bytes needed, {got} present")]
    Incomplete { needed: usize, got: usize },
    #[error("ESP3 frame does not start with the sync byte 0x55")]
    NoSync,
    #[error("ESP3 header CRC mismatch: computed {computed:#04x}, frame has {found:#04x}")]
    HeaderCrc { computed: u8, found: u8 },
    #[error("ESP3 data CRC mismatch: computed {computed:#04x}, frame has {found:#04x}")]
    DataCrc { computed: u8, found: u8 },
    #[error("ESP3 header announces no data (data length 0)")]
    EmptyData,
    #[error("ESP3 packet type {0:#04x} is not defined by ESP3 v1.47")]
    UnknownPacketType(u8),
    #[error("ESP3 frame truncated: a complete frame starts before its announced end")]
    Truncated,
    #[error("{0} bytes after the end of the ESP3 frame")]
    TrailingBytes(usize),
    #[error("ESP3 payload too long: {data} data bytes (max 65535), {optional} optional (max 255)")]
    TooLong { data: usize, optional: usize },
    #[error("ESP3 frame of {len} bytes exceeds the parser's limit of {max}")]
    OverLimit { len: usize, max: usize },
}

/// One ESP3 packet, owning its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Packet {
    pub packet_type: u8,
    pub data: Vec<u8>,
    pub optional: Vec<u8>,
}

impl Packet {
    pub fn new(packet_type: u8, data: Vec<u8>, optional: Vec<u8>) -> Self {
        Packet {
            packet_type,
            data,
            optional,
        }
    }

    /// The known packet type, if it is one.
    pub fn kind(&self) -> Option<PacketType> {
        PacketType::from_u8(self.packet_type)
    }

    /// A borrowed view of this packet.
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            packet_type: self.packet_type,
            data: &self.data,
            optional: &self.optional,
        }
    }

    /// The complete ESP3 frame.
    pub fn encode(&self) -> Vec<u8> {
        encode_frame(self.packet_type, &self.data, &self.optional)
    }
}

/// One ESP3 packet borrowing the bytes it was parsed from (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame<'a> {
    pub packet_type: u8,
    pub data: &'a [u8],
    pub optional: &'a [u8],
}

impl Frame<'_> {
    pub fn kind(&self) -> Option<PacketType> {
        PacketType::from_u8(self.packet_type)
    }

    pub fn to_packet(&self) -> Packet {
        Packet::new(self.packet_type, self.data.to_vec(), self.optional.to_vec())
    }

    /// Length of the whole frame on the wire.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + self.data.len() + self.optional.len() + 1
    }
}

/// Checks a header (`bytes` holds at least [`HEADER_LEN`] bytes starting at the sync byte)
/// and returns the data length, the optional length and the packet type.
fn check_header(bytes: &[u8]) -> Result<(usize, usize, u8), Esp3Error> {
    let computed = crc8(&bytes[1..5]);
    if computed != bytes[5] {
        return Err(Esp3Error::HeaderCrc {
            computed,
            found: bytes[5],
        });
    }
    let data_len = u16::from_be_bytes([bytes[1], bytes[2]]) as usize;
    if data_len == 0 {
        return Err(Esp3Error::EmptyData);
    }
    // An undefined type is most likely a false sync byte whose header CRC matched by chance;
    // rejecting it here avoids waiting for the data it announces.
    if PacketType::from_u8(bytes[4]).is_none() {
        return Err(Esp3Error::UnknownPacketType(bytes[4]));
    }
    Ok((data_len, bytes[3] as usize, bytes[4]))
}

/// Checks the body of a frame whose header is valid; `bytes` holds the complete frame.
fn check_body(bytes: &[u8], data_len: usize, packet_type: u8) -> Result<Frame<'_>, Esp3Error> {
    let end = bytes.len() - 1;
    let computed = crc8(&bytes[HEADER_LEN..end]);
    if computed != bytes[end] {
        return Err(Esp3Error::DataCrc {
            computed,
            found: bytes[end],
        });
    }
    let split = HEADER_LEN + data_len;
    Ok(Frame {
        packet_type,
        data: &bytes[HEADER_LEN..split],
        optional: &bytes[split..end],
    })
}

/// Parses exactly one complete frame, borrowing its bytes.
pub fn parse_frame_ref(bytes: &[u8]) -> Result<Frame<'_>, Esp3Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Esp3Error::Incomplete {
            needed: HEADER_LEN,
            got: bytes.len(),
        });
    }
    if bytes[0] != SYNC {
        return Err(Esp3Error::NoSync);
    }
    let (data_len, optional_len, packet_type) = check_header(bytes)?;
    let total = HEADER_LEN + data_len + optional_len + 1;
    if bytes.len() < total {
        return Err(Esp3Error::Incomplete {
            needed: total,
            got: bytes.len(),
        });
    }
    if bytes.len() > total {
        return Err(Esp3Error::TrailingBytes(bytes.len() - total));
    }
    check_body(bytes, data_len, packet_type)
}

/// Parses exactly one complete frame.
pub fn parse_frame(bytes: &[u8]) -> Result<Packet, Esp3Error> {
    parse_frame_ref(bytes).map(|f| f.to_packet())
}

/// Builds a frame; errors if data exceeds 65535 or optional data 255 bytes.
pub fn try_encode_frame(
    packet_type: u8,
    data: &[u8],
    optional: &[u8],
) -> Result<Vec<u8>, Esp3Error> {
    let too_long = Esp3Error::TooLong {
        data: data.len(),
        optional: optional.len(),
    };
    let data_len = u16::try_from(data.len()).map_err(|_| too_long)?;
    let optional_len = u8::try_from(optional.len()).map_err(|_| too_long)?;
    let mut frame = Vec::with_capacity(HEADER_LEN + data.len() + optional.len() + 1);
    frame.push(SYNC);
    frame.extend_from_slice(&data_len.to_be_bytes());
    frame.push(optional_len);
    frame.push(packet_type);
    frame.push(crc8(&frame[1..5]));
    frame.extend_from_slice(data);
    frame.extend_from_slice(optional);
    frame.push(update(crc8(data), optional));
    Ok(frame)
}

/// Builds a frame.
///
/// # Panics
/// If `data` is longer than 65535 or `optional` longer than 255 bytes, which no ESP3 frame
/// can carry; use [`try_encode_frame`] for lengths that come from outside.
pub fn encode_frame(packet_type: u8, data: &[u8], optional: &[u8]) -> Vec<u8> {
    match try_encode_frame(packet_type, data, optional) {
        Ok(frame) => frame,
        Err(e) => panic!("{e}"),
    }
}

/// Counters kept by a [`StreamParser`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Valid frames returned.
    pub frames: u64,
    /// Sync bytes whose header CRC did not match (false 0x55 or corrupted header).
    pub header_crc_errors: u64,
    /// Frames whose header was valid but whose data CRC did not match.
    pub data_crc_errors: u64,
    /// Headers with a valid CRC announcing zero data bytes.
    pub empty_frames: u64,
    /// Headers with a valid CRC but a packet type ESP3 v1.47 does not define.
    pub unknown_packet_types: u64,
    /// Headers whose frame was still incomplete when a complete valid frame followed them:
    /// a false sync byte, or a frame that lost bytes.
    pub truncated_frames: u64,
    /// Bytes that were not part of any valid frame.
    pub skipped_bytes: u64,
    /// Bytes dropped unexamined because the buffer limit was reached.
    pub dropped_bytes: u64,
}

impl StreamStats {
    /// Header and data CRC errors together.
    pub fn crc_errors(&self) -> u64 {
        self.header_crc_errors + self.data_crc_errors
    }
}

/// Buffer capacity a [`StreamParser`] keeps when it shrinks after a burst.
pub const KEEP_CAPACITY: usize = 1024;

/// Default bound of the bytes a [`StreamParser`] keeps: sixteen largest frames.
pub const DEFAULT_MAX_BUFFER: usize = 16 * MAX_FRAME_LEN;

/// Finds ESP3 frames in a byte stream fed in arbitrary pieces.
///
/// Push bytes with [`push`](Self::push), then call [`next_packet`](Self::next_packet) (or the
/// allocation-free [`next_frame`](Self::next_frame)) until it returns `None`. A frame split
/// across pushes is kept until it is complete. After garbage, a false sync byte or a CRC
/// error the parser continues at the next 0x55 after the failed sync byte, so a valid frame
/// starting inside a broken one is still found. Errors are returned (and counted) so the
/// caller can report them; parsing simply continues with the next call.
#[derive(Debug, Clone)]
pub struct StreamParser {
    buf: Vec<u8>,
    /// Start of the unexamined bytes in `buf`.
    start: usize,
    /// Where the search for a complete frame behind an incomplete one resumes.
    lookahead: usize,
    max_buffer: usize,
    /// Longest frame accepted; a header announcing more is rejected at once.
    max_frame: usize,
    stats: StreamStats,
}

impl Default for StreamParser {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamParser {
    pub fn new() -> Self {
        Self::with_max_buffer(DEFAULT_MAX_BUFFER)
    }

    /// A parser keeping at most `max_buffer` unexamined bytes (at least one largest frame);
    /// when more are pushed without being read, the oldest are dropped and counted.
    pub fn with_max_buffer(max_buffer: usize) -> Self {
        Self::with_limits(max_buffer, MAX_FRAME_LEN)
    }

    /// A parser that rejects frames longer than `max_frame` bytes (sync byte to CRC8D) as
    /// soon as their header is read, instead of waiting for up to 64 KiB of them, and keeps
    /// at most `max_buffer` bytes (at least `max_frame`).
    pub fn with_limits(max_buffer: usize, max_frame: usize) -> Self {
        let max_frame = max_frame.clamp(HEADER_LEN + 2, MAX_FRAME_LEN);
        StreamParser {
            buf: Vec::new(),
            start: 0,
            lookahead: 0,
            max_buffer: max_buffer.max(max_frame),
            max_frame,
            stats: StreamStats::default(),
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        let mut bytes = bytes;
        if self.buf.is_empty() {
            // Nothing pending: garbage before the first sync byte need not be stored.
            let skip = bytes.iter().position(|&b| b == SYNC).unwrap_or(bytes.len());
            self.stats.skipped_bytes += skip as u64;
            bytes = &bytes[skip..];
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > self.max_buffer {
            let excess = self.buf.len() - self.max_buffer;
            self.stats.dropped_bytes += excess as u64;
            self.start = excess;
            self.compact();
        }
    }

    /// The next packet, an error for a broken frame, or `None` when more bytes are needed.
    pub fn next_packet(&mut self) -> Option<Result<Packet, Esp3Error>> {
        self.next_frame().map(|r| r.map(|f| f.to_packet()))
    }

    /// Like [`next_packet`](Self::next_packet) but borrows the frame from the buffer.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, Esp3Error>> {
        let pending = &self.buf[self.start..];
        let Some(sync) = pending.iter().position(|&b| b == SYNC) else {
            self.stats.skipped_bytes += pending.len() as u64;
            self.buf.clear();
            self.start = 0;
            self.lookahead = 0;
            self.release();
            return None;
        };
        self.stats.skipped_bytes += sync as u64;
        self.start += sync;
        let pending = &self.buf[self.start..];
        if pending.len() < HEADER_LEN {
            return None;
        }
        let (data_len, optional_len, packet_type) = match check_header(pending) {
            Ok(header) => header,
            Err(e) => return Some(Err(self.reject(e))),
        };
        let total = HEADER_LEN + data_len + optional_len + 1;
        if total > self.max_frame {
            let max = self.max_frame;
            return Some(Err(self.reject(Esp3Error::OverLimit { len: total, max })));
        }
        if pending.len() < total {
            if self.complete_frame_ahead() {
                return Some(Err(self.reject(Esp3Error::Truncated)));
            }
            return None;
        }
        if let Err(e) = check_body(&pending[..total], data_len, packet_type) {
            return Some(Err(self.reject(e)));
        }
        let begin = self.start;
        self.start += total;
        self.stats.frames += 1;
        let bytes = &self.buf[begin..begin + total];
        let split = HEADER_LEN + data_len;
        Some(Ok(Frame {
            packet_type,
            data: &bytes[HEADER_LEN..split],
            optional: &bytes[split..total - 1],
        }))
    }

    /// Counts an error and skips the failed sync byte.
    fn reject(&mut self, error: Esp3Error) -> Esp3Error {
        match error {
            Esp3Error::HeaderCrc { .. } => self.stats.header_crc_errors += 1,
            Esp3Error::DataCrc { .. } => self.stats.data_crc_errors += 1,
            Esp3Error::EmptyData => self.stats.empty_frames += 1,
            Esp3Error::UnknownPacketType(_) => self.stats.unknown_packet_types += 1,
            Esp3Error::Truncated => self.stats.truncated_frames += 1,
            _ => {}
        }
        self.stats.skipped_bytes += 1;
        self.start += 1;
        error
    }

    /// Moves unexamined bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.lookahead = self.lookahead.saturating_sub(self.start);
            self.start = 0;
            self.release();
        }
    }

    /// Gives memory back after a burst: a buffer that grew for a large push shrinks once
    /// it holds little, so an idle parser costs at most [`KEEP_CAPACITY`] bytes.
    fn release(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() <= self.buf.capacity() / 4 {
            self.buf.shrink_to(self.buf.len().max(KEEP_CAPACITY));
        }
    }

    /// Drops the bytes already examined and gives spare memory back.
    pub fn shrink(&mut self) {
        self.compact();
        self.release();
    }

    /// Bytes of buffer memory held (capacity), for bounds checks.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether a complete, valid frame starts after the sync byte at `start` (whose own
    /// frame is incomplete). Each position is examined once: the search stops at a frame
    /// that is itself incomplete and resumes there on the next call.
    fn complete_frame_ahead(&mut self) -> bool {
        let mut pos = self.lookahead.max(self.start + 1);
        while let Some(offset) = self.buf[pos..].iter().position(|&b| b == SYNC) {
            let candidate = &self.buf[pos + offset..];
            if candidate.len() < HEADER_LEN {
                self.lookahead = pos + offset;
                return false;
            }
            if let Ok((data_len, optional_len, packet_type)) = check_header(candidate) {
                let total = HEADER_LEN + data_len + optional_len + 1;
                if candidate.len() < total {
                    self.lookahead = pos + offset;
                    return false;
                }
                if check_body(&candidate[..total], data_len, packet_type).is_ok() {
                    self.lookahead = pos + offset;
                    return true;
                }
            }
            pos += offset + 1;
        }
        self.lookahead = self.buf.len();
        false
    }

    pub fn stats(&self) -> StreamStats {
        self.stats
    }

    /// Header and data CRC errors so far.
    pub fn crc_errors(&self) -> u64 {
        self.stats.crc_errors()
    }

    /// Bytes so far that were not part of a valid frame.
    pub fn skipped_bytes(&self) -> u64 {
        self.stats.skipped_bytes
    }

    /// Bytes held, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}
