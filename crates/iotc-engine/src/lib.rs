//! iotc-engine as a library, so that integration tests reach its modules.

pub mod egress;
