//! Secure chained telegrams (R-ORG 0x33, SEC_CDM): splitting, for senders.
//!
//! The receiver side is [`super::verify_and_decrypt_chained`] on the bytes the chain
//! reassembler (`crate::chain`) produces. A SEC_CDM chain carries a 0x31-form payload
//! (`encrypted R-ORG + data | RLC | CMAC`, CMAC computed with R-ORG-S 0x31). Part 0 is
//! `SEQ<<6 | 0, LEN (2 bytes, the whole payload), up to 10 bytes`; part n is
//! `SEQ<<6 | n, up to 13 bytes` (the ERP1 broadcast sizes).

use super::SecureError;

/// Payload bytes in the first part of an ERP1 broadcast chain.
pub const ERP1_FIRST_PART: usize = 10;
/// Payload bytes in each later part of an ERP1 broadcast chain.
pub const ERP1_NEXT_PART: usize = 13;

/// Splits a 0x31-form secure payload into SEC_CDM telegram data (bytes after R-ORG 0x33).
/// `seq` is the chain's sequence number, 1..=3.
pub fn sec_cdm_parts(seq: u8, payload: &[u8]) -> Result<Vec<Vec<u8>>, SecureError> {
    if !(1..=3).contains(&seq) {
        return Err(SecureError::Malformed(
            "SEC_CDM sequence number must be 1..=3",
        ));
    }
    let len = u16::try_from(payload.len())
        .map_err(|_| SecureError::Malformed("SEC_CDM payload longer than 65535 bytes"))?;
    if payload.is_empty() {
        return Err(SecureError::Malformed("empty SEC_CDM payload"));
    }
    let head = payload.len().min(ERP1_FIRST_PART);
    let (first, rest) = payload.split_at(head);
    let tail: Vec<&[u8]> = rest.chunks(ERP1_NEXT_PART).collect();
    if tail.len() > 63 {
        return Err(SecureError::Malformed("SEC_CDM needs more than 64 parts"));
    }
    let mut parts = Vec::with_capacity(tail.len() + 1);
    let mut part0 = vec![seq << 6];
    part0.extend_from_slice(&len.to_be_bytes());
    part0.extend_from_slice(first);
    parts.push(part0);
    for (n, chunk) in tail.iter().enumerate() {
        let mut part = vec![(seq << 6) | (n as u8 + 1)];
        part.extend_from_slice(chunk);
        parts.push(part);
    }
    Ok(parts)
}
