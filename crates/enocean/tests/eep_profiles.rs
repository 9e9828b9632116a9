//! Consistency of the compiled-in profile tables.

use std::collections::HashSet;

use enocean::eep::{self, Eep, Item, Source};

fn eep(s: &str) -> Eep {
    s.parse().unwrap()
}

#[test]
fn profile_files_parse_and_hold_every_converted_profile() {
    let count = eep::check_profiles().expect("profile files parse");
    // 217 converted from the EEP 2.6.5 data plus the hand-written ones.
    assert!(count >= 217 + 5, "only {count} profiles");
    assert_eq!(eep::profiles().count(), count);
    let eeps: Vec<Eep> = eep::profiles().map(|p| p.eep).collect();
    let mut sorted = eeps.clone();
    sorted.sort();
    assert_eq!(eeps, sorted, "profiles() is sorted");
}

#[test]
fn every_iotc_eep_is_known() {
    let iotc = [
        "A5-02-05", "A5-04-01", "A5-04-03", "A5-06-02", "A5-06-03", "A5-07-01", "A5-07-03",
        "A5-08-01", "A5-08-02", "A5-08-03", "A5-09-04", "A5-09-09", "A5-12-00", "A5-12-01",
        "A5-14-05", "D1-07-10", "D1-07-11", "D1-09-01", "D2-01-0B", "D2-01-0F", "D2-14-40",
        "D2-14-41", "D2-14-52", "D2-15-00", "D2-32-00", "D2-32-01", "D2-32-02", "D2-B1-00",
        "D5-00-01", "F6-02-04",
    ];
    for name in iotc {
        let profile = eep::profile(eep(name)).unwrap_or_else(|| panic!("{name} missing"));
        assert!(!profile.cases.is_empty(), "{name} has no case");
    }
}

#[test]
fn ref_profiles_share_the_cases_they_point_to() {
    let base = eep::profile(eep("D2-01-00")).unwrap();
    let plug = eep::profile(eep("D2-01-0B")).unwrap();
    assert_eq!(plug.cases.len(), base.cases.len());
    assert_eq!(plug.cases[3].title, base.cases[3].title);
}

#[test]
fn unknown_eeps_are_absent() {
    assert!(eep::profile(eep("A5-FF-FF")).is_none());
}

/// Layout checks: fields fit the telegram, do not overlap, keys and value names are unique.
#[test]
fn every_case_is_well_formed() {
    let mut problems = Vec::new();
    for profile in eep::profiles() {
        let fixed_bits = match profile.eep.rorg {
            0xA5 => Some(32),
            0xD5 | 0xF6 => Some(8),
            _ => None,
        };
        for (ci, case) in profile.cases.iter().enumerate() {
            let at = format!("{} case {ci}", profile.eep);
            let mut used = HashSet::new();
            let mut keys = HashSet::new();
            for field in &case.fields {
                if !keys.insert(field.key) {
                    problems.push(format!("{at}: key {} twice", field.key));
                }
                if !field
                    .key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase())
                    || !field.key.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    problems.push(format!("{at}: key {:?} is not lowerCamelCase", field.key));
                }
                for part in &field.bits {
                    if fixed_bits.is_some_and(|n| part.end() > n) {
                        problems.push(format!(
                            "{at}: {} ends at bit {}",
                            field.shortcut,
                            part.end()
                        ));
                    }
                    for bit in part.offset as usize..part.end() {
                        if !used.insert(bit) {
                            problems
                                .push(format!("{at}: {} overlaps at bit {bit}", field.shortcut));
                        }
                    }
                }
                let n = field.size();
                let (min_raw, max_raw) = if field.signed {
                    (-(1i64 << (n - 1)), (1i64 << (n - 1)) - 1)
                } else {
                    (0, (1i64 << n) - 1)
                };
                let mut names = HashSet::new();
                for item in &field.items {
                    let (low, high, name) = match item {
                        Item::Value { raw, name, .. } => (*raw, *raw, Some(*name)),
                        Item::Range { min, max, name, .. } => (*min, *max, Some(*name)),
                        Item::Mask {
                            mask, value, name, ..
                        } => (*value as i64, *mask as i64, Some(*name)),
                        Item::Linear(l) => {
                            (l.raw_min.min(l.raw_max), l.raw_min.max(l.raw_max), None)
                        }
                    };
                    if high > max_raw || low < min_raw || low > high {
                        problems.push(format!(
                            "{at}: {} item {low}..{high} does not fit",
                            field.shortcut
                        ));
                    }
                    if let Some(name) = name
                        && !names.insert(name)
                    {
                        problems.push(format!("{at}: {} value name {name} twice", field.shortcut));
                    }
                }
            }
            for c in &case.conditions {
                if c.source == Source::Data && fixed_bits.is_some_and(|n| c.bits.end() > n) {
                    problems.push(format!("{at}: condition beyond the data"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
