//! Decodes arbitrary data with an EEP chosen by the first two input bytes; the third is the
//! status byte.
#![no_main]

use enocean::eep;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [hi, lo, status, data @ ..] = input else {
        return;
    };
    let profiles: Vec<_> = eep::profiles().collect();
    if profiles.is_empty() {
        return;
    }
    let profile = profiles[usize::from(u16::from_be_bytes([*hi, *lo])) % profiles.len()];
    let _ = eep::decode(profile.eep, profile.eep.rorg, data, *status);
});
