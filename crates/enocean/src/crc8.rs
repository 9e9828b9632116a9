//! crc8
