//! Reads the profile text format (described in docs/eep.md) into [`Profile`]s.
//!
//! One statement per line; `#` starts a comment line. Tokens are separated by spaces up to an
//! optional `|`, after which the rest of the line is free text (a name or a meaning):
//!
//! ```text
//! profile A5-02-05 Temperature Sensor Range 0°C to +40°C
//! case
//!   field TMP 16:8 temperature | Temperature
//!     lin 255 0 0 40 unit=°C
//! ```

use super::Eep;
use super::model::{
    BitRange, Case, Condition, Direction, FieldDef, Item, Linear, Profile, Source,
    default_decimals, step,
};

/// A profile as read, before `ref` profiles get their cases.
pub struct Parsed {
    pub profile: Profile,
    /// The EEP whose cases this profile shares.
    pub reference: Option<Eep>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("profile data line {line}: {message}")]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole profile file.
pub fn parse(text: &'static str) -> Result<Vec<Parsed>, FormatError> {
    let mut parser = Parser::default();
    for (index, line) in text.lines().enumerate() {
        parser.line(line.trim()).map_err(|message| FormatError {
            line: index + 1,
            message,
        })?;
    }
    parser.finish().map_err(|message| FormatError {
        line: text.lines().count(),
        message,
    })?;
    Ok(parser.done)
}

/// Field references by shortcut, resolved to indexes when the case is complete.
#[derive(Default)]
struct PendingRefs {
    scale_from: Vec<(usize, &'static str)>,
    unit_from: Vec<(usize, &'static str)>,
}

#[derive(Default)]
struct Parser {
    done: Vec<Parsed>,
    current: Option<Parsed>,
    refs: PendingRefs,
}

type Res<T> = Result<T, String>;

impl Parser {
    fn line(&mut self, line: &'static str) -> Res<()> {
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match keyword {
            "profile" => self.profile(rest),
            "ref" => {
                self.parsed()?.reference = Some(parse_eep(rest)?);
                Ok(())
            }
            "case" => self.case(rest),
            "dir" => self.direction(rest),
            "when" => self.condition(rest),
            "field" => self.field(rest),
            "dec" | "scale-from" | "unit-from" | "omit" => self.attribute(keyword, rest),
            "signed" => {
                self.field_mut()?.signed = true;
                Ok(())
            }
            // The Alliance's shortcut where it holds a space (`TMP Sp`); the field token has `_`.
            "shortcut" => {
                let (_, text) = split_text(rest);
                if text.is_empty() {
                    return Err("expected `shortcut | <shortcut>`".into());
                }
                self.field_mut()?.shortcut = text;
                Ok(())
            }
            "val" | "rng" | "mask" | "lin" => self.item(keyword, rest),
            other => Err(format!("unknown statement {other:?}")),
        }
    }

    fn parsed(&mut self) -> Res<&mut Parsed> {
        self.current
            .as_mut()
            .ok_or_else(|| "statement before any profile".to_string())
    }

    fn case_mut(&mut self) -> Res<&mut Case> {
        self.parsed()?
            .profile
            .cases
            .last_mut()
            .ok_or_else(|| "statement before any case".to_string())
    }

    fn field_mut(&mut self) -> Res<&mut FieldDef> {
        self.case_mut()?
            .fields
            .last_mut()
            .ok_or_else(|| "statement before any field".to_string())
    }

    fn profile(&mut self, rest: &'static str) -> Res<()> {
        self.close_profile()?;
        let (eep, title) = rest.split_once(' ').unwrap_or((rest, ""));
        self.current = Some(Parsed {
            profile: Profile {
                eep: parse_eep(eep)?,
                title: title.trim(),
                cases: Vec::new(),
            },
            reference: None,
        });
        Ok(())
    }

    fn case(&mut self, title: &'static str) -> Res<()> {
        self.close_case()?;
        self.parsed()?.profile.cases.push(Case {
            title,
            direction: None,
            conditions: Vec::new(),
            fields: Vec::new(),
            min_len: 0,
        });
        Ok(())
    }

    fn direction(&mut self, rest: &str) -> Res<()> {
        self.case_mut()?.direction = Some(match rest {
            "1" => Direction::FromDevice,
            "2" => Direction::ToDevice,
            other => return Err(format!("direction {other:?} is not 1 or 2")),
        });
        Ok(())
    }

    fn condition(&mut self, rest: &'static str) -> Res<()> {
        let tokens: Vec<&'static str> = rest.split_whitespace().collect();
        let (source, bits, value, name) = match tokens.as_slice() {
            ["data", bits, value] => (Source::Data, *bits, *value, ""),
            ["status", bits, value] => (Source::Status, *bits, *value, ""),
            ["status", bits, value, name] => (Source::Status, *bits, *value, *name),
            _ => {
                return Err(format!(
                    "expected `when data|status <bits> <value> [name]`: {rest:?}"
                ));
            }
        };
        let bits = parse_bit_range(bits)?;
        let value = parse_raw(value)? as u64;
        if source == Source::Status && bits.end() > 8 {
            return Err("status condition beyond the status byte".into());
        }
        self.case_mut()?.conditions.push(Condition {
            source,
            bits,
            value,
            name,
        });
        Ok(())
    }

    fn field(&mut self, rest: &'static str) -> Res<()> {
        let (head, name) = split_text(rest);
        let tokens: Vec<&'static str> = head.split_whitespace().collect();
        let [shortcut, bits, key] = tokens.as_slice() else {
            return Err(format!(
                "expected `field <shortcut> <bits> <key> [| name]`: {rest:?}"
            ));
        };
        let bits = bits
            .split('+')
            .map(parse_bit_range)
            .collect::<Res<Vec<_>>>()?;
        let size: u32 = bits.iter().map(|b| b.size as u32).sum();
        if size == 0 || size > 48 {
            return Err(format!(
                "field {shortcut} has {size} bits; 1 to 48 are supported"
            ));
        }
        self.case_mut()?.fields.push(FieldDef {
            shortcut,
            key,
            name,
            bits,
            items: Vec::new(),
            decimals: None,
            scale_from: None,
            unit_from: None,
            omit: None,
            signed: false,
        });
        Ok(())
    }

    fn attribute(&mut self, keyword: &str, value: &'static str) -> Res<()> {
        let index = self
            .case_mut()?
            .fields
            .len()
            .checked_sub(1)
            .ok_or("attribute before any field")?;
        match keyword {
            "dec" => {
                self.field_mut()?.decimals = Some(
                    value
                        .parse()
                        .map_err(|_| format!("bad decimals {value:?}"))?,
                )
            }
            "omit" => self.field_mut()?.omit = Some(parse_raw(value)?),
            "scale-from" => self.refs.scale_from.push((index, value)),
            _ => self.refs.unit_from.push((index, value)),
        }
        Ok(())
    }

    fn item(&mut self, keyword: &str, rest: &'static str) -> Res<()> {
        let (head, meaning) = split_text(rest);
        let mut tokens = Vec::new();
        let mut attrs = Attrs::default();
        for token in head.split_whitespace() {
            match token.split_once('=') {
                Some((k, v)) => attrs.set(k, v)?,
                None => tokens.push(token),
            }
        }
        let item = match (keyword, tokens.as_slice()) {
            ("val", [raw, name]) => Item::Value {
                raw: parse_raw(raw)?,
                name,
                meaning,
                unit: attrs.unit,
                scale: attrs.scale,
                range: attrs.range,
            },
            ("rng", [min, max, name]) => Item::Range {
                min: parse_raw(min)?,
                max: parse_raw(max)?,
                name,
                meaning,
            },
            ("mask", [mask, value, name]) => Item::Mask {
                mask: parse_raw(mask)? as u64,
                value: parse_raw(value)? as u64,
                name,
                meaning,
            },
            ("lin", [raw_min, raw_max, min, max]) => {
                let (raw_min, raw_max) = (parse_raw(raw_min)?, parse_raw(raw_max)?);
                let (min, max) = (parse_f64(min)?, parse_f64(max)?);
                let decimals = default_decimals(step(raw_min, raw_max, min, max));
                Item::Linear(Linear {
                    raw_min,
                    raw_max,
                    min,
                    max,
                    unit: attrs.unit,
                    meaning,
                    decimals,
                })
            }
            _ => return Err(format!("malformed `{keyword}` item: {rest:?}")),
        };
        self.field_mut()?.items.push(item);
        Ok(())
    }

    fn close_case(&mut self) -> Res<()> {
        let refs = std::mem::take(&mut self.refs);
        let Some(parsed) = self.current.as_mut() else {
            return Ok(());
        };
        let Some(case) = parsed.profile.cases.last_mut() else {
            return Ok(());
        };
        for (index, shortcut) in refs.scale_from {
            case.fields[index].scale_from = Some(field_index(case, shortcut)?);
        }
        for (index, shortcut) in refs.unit_from {
            case.fields[index].unit_from = Some(field_index(case, shortcut)?);
        }
        let field_end = case
            .fields
            .iter()
            .flat_map(|f| f.bits.iter())
            .map(BitRange::end);
        let cond_end = case
            .conditions
            .iter()
            .filter(|c| c.source == Source::Data)
            .map(|c| c.bits.end());
        case.min_len = field_end.chain(cond_end).max().unwrap_or(0).div_ceil(8);
        Ok(())
    }

    fn close_profile(&mut self) -> Res<()> {
        self.close_case()?;
        if let Some(parsed) = self.current.take() {
            if parsed.profile.cases.is_empty() && parsed.reference.is_none() {
                return Err(format!("profile {} has no case", parsed.profile.eep));
            }
            self.done.push(parsed);
        }
        Ok(())
    }

    fn finish(&mut self) -> Res<()> {
        self.close_profile()
    }
}

#[derive(Default)]
struct Attrs {
    unit: Option<&'static str>,
    scale: Option<(f64, f64)>,
    range: Option<(i64, i64)>,
}

impl Attrs {
    fn set(&mut self, key: &str, value: &'static str) -> Res<()> {
        let pair = || {
            value
                .split_once(':')
                .ok_or_else(|| format!("expected a:b in {key}={value}"))
        };
        match key {
            "unit" => self.unit = Some(value),
            "scale" => {
                let (a, b) = pair()?;
                self.scale = Some((parse_f64(a)?, parse_f64(b)?));
            }
            "range" => {
                let (a, b) = pair()?;
                self.range = Some((parse_raw(a)?, parse_raw(b)?));
            }
            other => return Err(format!("unknown attribute {other:?}")),
        }
        Ok(())
    }
}

fn field_index(case: &Case, shortcut: &str) -> Res<usize> {
    case.fields
        .iter()
        .position(|f| f.shortcut == shortcut)
        .ok_or_else(|| format!("no field {shortcut:?} in case {:?}", case.title))
}

/// Splits `tokens | text` into its two parts (the text may be empty).
fn split_text(rest: &'static str) -> (&'static str, &'static str) {
    match rest.split_once('|') {
        Some((head, text)) => (head.trim(), text.trim()),
        None => (rest.trim(), ""),
    }
}

fn parse_eep(s: &str) -> Res<Eep> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_bit_range(s: &str) -> Res<BitRange> {
    let (offset, size) = s
        .split_once(':')
        .ok_or_else(|| format!("expected offset:size, got {s:?}"))?;
    Ok(BitRange {
        offset: offset
            .parse()
            .map_err(|_| format!("bad bit offset {offset:?}"))?,
        size: size.parse().map_err(|_| format!("bad bit size {size:?}"))?,
    })
}

/// A raw value: decimal (negative for signed fields), `0x..` or `0b..`.
fn parse_raw(s: &str) -> Res<i64> {
    let parsed = if let Some(hex) = s.strip_prefix("0x") {
        i64::from_str_radix(hex, 16)
    } else if let Some(bin) = s.strip_prefix("0b") {
        i64::from_str_radix(bin, 2)
    } else {
        s.parse()
    };
    parsed.map_err(|_| format!("bad raw value {s:?}"))
}

fn parse_f64(s: &str) -> Res<f64> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_profile_with_cases_conditions_and_items() {
        let text = "\
# comment
profile A5-12-01 Electricity
case Data
  dir 1
  when data 4:4 0x4
  when status 2:1 1 T21
  field MR 0:24 meterReading | Meter reading
    scale-from DIV
    lin 0 16777215 0 16777215 unit=kWh
  field DIV 30:2 divisor | Divisor
    val 1 x10 scale=0:1677721.5 | x/10
    rng 2 3 other | Other
    mask 0b10 0b10 high
";
        let parsed = parse(text).unwrap();
        let profile = &parsed[0].profile;
        assert_eq!(profile.eep, Eep::new(0xA5, 0x12, 0x01));
        assert_eq!(profile.title, "Electricity");
        let case = &profile.cases[0];
        assert_eq!(case.direction, Some(Direction::FromDevice));
        assert_eq!(case.conditions.len(), 2);
        assert_eq!(case.conditions[1].name, "T21");
        assert_eq!(case.min_len, 4);
        assert_eq!(case.fields[0].scale_from, Some(1));
        assert_eq!(case.fields[0].name, "Meter reading");
        assert!(
            matches!(case.fields[1].items[0], Item::Value { raw: 1, scale: Some((_, m)), .. } if m == 1677721.5)
        );
        assert!(matches!(
            case.fields[1].items[2],
            Item::Mask {
                mask: 2,
                value: 2,
                ..
            }
        ));
    }

    #[test]
    fn reports_the_line_of_a_mistake() {
        let err = parse("profile A5-02-05 T\ncase\n  field TMP 16:8\n")
            .err()
            .unwrap();
        assert_eq!(err.line, 3);
        assert!(parse("profile A5-02-05 T\ncase\n  field A 0:8 a\n  scale-from NOPE\n").is_err());
        assert!(parse("case\n").is_err());
        assert!(parse("profile A5-02-05 T\n").is_err());
        assert!(parse("profile A5-02-05 T\ncase\n  field A 0:49 a\n").is_err());
    }
}
