//! The compiled-in profile tables, read once on first use.

use std::sync::OnceLock;

use super::Eep;
use super::format::{self, FormatError, Parsed};
use super::model::Profile;

/// Profiles converted from the EEP 2.6.5 facts by tools/eep_import.py.
const ALLIANCE: &str = include_str!("profiles/alliance.eep");
/// Profiles written by hand from public decoders (newer than EEP 2.6.5).
const EXTRA: &str = include_str!("profiles/extra.eep");

/// All profiles, sorted by EEP.
pub fn all() -> &'static [Profile] {
    static PROFILES: OnceLock<Vec<Profile>> = OnceLock::new();
    PROFILES.get_or_init(|| {
        // The files are part of the crate and checked by its tests, so a failure here is a build
        // defect, not bad input.
        load().unwrap_or_else(|e| panic!("compiled-in EEP profiles are invalid: {e}"))
    })
}

/// The profile of `eep`.
pub fn find(eep: Eep) -> Option<&'static Profile> {
    let profiles = all();
    profiles
        .binary_search_by_key(&eep, |p| p.eep)
        .ok()
        .map(|i| &profiles[i])
}

/// Parses both files, gives `ref` profiles the cases they point to, and sorts by EEP.
pub fn load() -> Result<Vec<Profile>, FormatError> {
    let mut parsed = format::parse(ALLIANCE)?;
    parsed.extend(format::parse(EXTRA)?);
    resolve(parsed)
}

fn resolve(parsed: Vec<Parsed>) -> Result<Vec<Profile>, FormatError> {
    let error = |message: String| FormatError { line: 0, message };
    let mut profiles: Vec<Profile> = Vec::with_capacity(parsed.len());
    let mut references = Vec::new();
    for p in parsed {
        if let Some(target) = p.reference {
            references.push((profiles.len(), target));
        }
        profiles.push(p.profile);
    }
    for (index, target) in references {
        let source = profiles
            .iter()
            .find(|p| p.eep == target && !p.cases.is_empty())
            .ok_or_else(|| {
                error(format!(
                    "{} refers to {target}, which has no cases",
                    profiles[index].eep
                ))
            })?;
        profiles[index].cases = source.cases.clone();
    }
    profiles.sort_by_key(|p| p.eep);
    if let Some(pair) = profiles.windows(2).find(|w| w[0].eep == w[1].eep) {
        return Err(error(format!("{} is defined twice", pair[0].eep)));
    }
    Ok(profiles)
}
