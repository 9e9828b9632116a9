//! erp2
