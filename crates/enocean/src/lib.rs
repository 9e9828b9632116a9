//! The EnOcean protocol, pure: no I/O, no async, no global state beyond compiled-in tables.
//!
//! From bytes to values: [`esp3`] finds frames in a serial byte stream, [`telegram`] turns
//! RADIO_ERP1 / RADIO_ERP2 packets into one [`telegram::Telegram`] ([`erp2`] for the ERP2
//! header), [`adt`] unwraps addressing encapsulation, [`chain`] reassembles chained
//! telegrams, [`secure`] verifies and decrypts secure telegrams, [`signal`] and [`eep`]
//! decode the payload into [`field::Field`]s, and [`teach_in`] recognises teach-in telegrams.

pub mod adt;
pub mod chain;
pub mod crc8;
pub mod eep;
pub mod erp2;
pub mod esp3;
pub mod field;
pub mod secure;
pub mod signal;
pub mod south;
pub mod teach_in;
pub mod telegram;

pub use eep::Eep;
pub use field::{Field, Value};
pub use telegram::Telegram;
