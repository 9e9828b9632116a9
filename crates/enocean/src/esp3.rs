//! esp3
