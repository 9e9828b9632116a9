//! Why a secure telegram was refused.

/// A secure telegram, teach-in or key that could not be used.
///
/// `MacMismatch` and `Replay` are the security outcomes the engine reports as events
/// (`MAC_VALIDATION_ERROR`, `RLC_REPLAY`); the others mean the bytes or the device
/// settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecureError {
    /// No rolling code in the accepted range gives the transmitted CMAC: a wrong key, a
    /// corrupted or forged telegram, or (implicit codes) a device that ran too far ahead.
    #[error("CMAC verification failed")]
    MacMismatch,
    /// The CMAC is valid but the rolling code is not newer than the last accepted one.
    #[error("rolling code {rlc:#x} replayed (last accepted {last:#x})")]
    Replay { rlc: u32, last: u32 },
    /// The bytes do not have the layout the SLF or the R-ORG demands.
    #[error("malformed secure telegram: {0}")]
    Malformed(&'static str),
    /// An SLF byte with undefined fields or a mode this crate cannot verify.
    #[error("unsupported SLF 0x{0:02X}")]
    UnsupportedSlf(u8),
    /// The R-ORG is not one `verify_and_decrypt` handles (0x30, 0x31, 0x33).
    #[error("R-ORG 0x{0:02X} is not a verifiable secure telegram")]
    NotSecure(u8),
    /// A key that is not 16 bytes (32 hex digits).
    #[error("invalid AES-128 key")]
    InvalidKey,
    /// The rolling code does not fit the width the SLF gives it.
    #[error("rolling code {0:#x} does not fit the SLF's rolling code width")]
    RlcOutOfRange(u32),
    /// The teach-in is encrypted with a pre-shared key and none was given.
    #[error("teach-in is encrypted with a pre-shared key, none given")]
    PskRequired,
}
