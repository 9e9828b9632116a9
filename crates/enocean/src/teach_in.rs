//! teach_in
