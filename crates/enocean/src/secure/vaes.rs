//! VAES: the EnOcean keystream mode of AES-128.
//!
//! `VIV = VAES_INIT xor RLC` (the RLC big-endian at its full width, left-aligned,
//! zero-padded to 16 bytes). The keystream is `KS1 = AES(VIV)`, `KSn+1 = AES(VIV xor KSn)`,
//! so any length works; ciphertext = plaintext xor keystream. Encryption and decryption are
//! the same operation and only ever use the AES forward direction.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

/// The public VAES initialisation vector of the Security specification.
pub const VAES_INIT: [u8; 16] = [
    0x34, 0x10, 0xDE, 0x8F, 0x1A, 0xBA, 0x3E, 0xFF, 0x9F, 0x5A, 0x11, 0x71, 0x72, 0xEA, 0xCA, 0xBD,
];

/// XORs `data` with the VAES keystream for `key` and `rlc` (at most 16 bytes; in practice
/// 0, 2, 3 or 4).
pub fn apply(key: &[u8; 16], rlc: &[u8], data: &mut [u8]) {
    let cipher = Aes128::new(&Array::from(*key));
    let mut viv = VAES_INIT;
    viv.iter_mut().zip(rlc).for_each(|(v, r)| *v ^= r);
    let mut stream = Array::from(viv);
    cipher.encrypt_block(&mut stream);
    let mut chunks = data.chunks_mut(16).peekable();
    while let Some(chunk) = chunks.next() {
        chunk
            .iter_mut()
            .zip(stream.iter())
            .for_each(|(d, k)| *d ^= k);
        if chunks.peek().is_some() {
            stream.iter_mut().zip(viv).for_each(|(k, v)| *k ^= v);
            cipher.encrypt_block(&mut stream);
        }
    }
}
