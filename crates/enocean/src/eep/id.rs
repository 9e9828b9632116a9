//! The EEP identifier `RR-FF-TT` (R-ORG, FUNC, TYPE).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eep {
    pub rorg: u8,
    pub func: u8,
    pub typ: u8,
}

impl Eep {
    pub const fn new(rorg: u8, func: u8, typ: u8) -> Self {
        Eep { rorg, func, typ }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid EEP {0:?}: expected RR-FF-TT in hexadecimal, e.g. A5-02-05")]
pub struct ParseEepError(pub String);

impl FromStr for Eep {
    type Err = ParseEepError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseEepError(s.to_string());
        let mut parts = s.split('-');
        let mut next = || {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            u8::from_str_radix(p, 16).map_err(|_| err())
        };
        let eep = Eep::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(eep)
    }
}

impl fmt::Display for Eep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02X}-{:02X}-{:02X}", self.rorg, self.func, self.typ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let eep: Eep = "a5-02-05".parse().unwrap();
        assert_eq!(eep, Eep::new(0xA5, 0x02, 0x05));
        assert_eq!(eep.to_string(), "A5-02-05");
        assert!("A5-02".parse::<Eep>().is_err());
        assert!("A5-02-05-01".parse::<Eep>().is_err());
        assert!("G5-02-05".parse::<Eep>().is_err());
        assert!("A5-2-05".parse::<Eep>().is_err());
    }
}
