//! EEP decoding: profiles are data, read by one interpreter.

mod id;

pub use id::{Eep, ParseEepError};
