//! Secure telegrams
