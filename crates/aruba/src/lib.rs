//! Aruba IoT transport
