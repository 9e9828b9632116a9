//! Button events of rocker switches and push buttons: a press names its buttons; the release
//! telegram does not, so the buttons held are remembered per device until it comes.

use std::collections::HashMap;

use enocean::eep::ha;
use enocean::{Field, Value};

/// Buttons held down, by EURID (at most two per device).
#[derive(Debug, Default)]
pub struct Buttons {
    held: HashMap<String, Vec<String>>,
}

fn text<'a>(fields: &'a [Field], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| f.key == key)
        .and_then(|f| match &f.value {
            Value::Text(t) => Some(t.as_ref()),
            Value::Number(_) => None,
        })
}

impl Buttons {
    /// The (button, event type) pairs of one telegram.
    pub fn events(&mut self, eurid: &str, fields: &[Field]) -> Vec<(String, &'static str)> {
        if let Some(state) = text(fields, ha::PUSH_BUTTON) {
            let event = if state == "released" {
                "release"
            } else {
                "press"
            };
            return vec![(ha::PUSH_BUTTON.to_string(), event)];
        }
        match text(fields, ha::ENERGY_BOW) {
            Some("pressed") => {
                let mut buttons = vec![];
                if let Some(b) = text(fields, ha::ROCKER_KEYS[0]) {
                    buttons.push(b.to_string());
                }
                if text(fields, ha::SECOND_ACTION) == Some("2ndActionValid")
                    && let Some(b) = text(fields, ha::ROCKER_KEYS[1])
                {
                    buttons.push(b.to_string());
                }
                self.held.insert(eurid.to_string(), buttons.clone());
                buttons.into_iter().map(|b| (b, "press")).collect()
            }
            Some("released") => self
                .held
                .remove(eurid)
                .unwrap_or_default()
                .into_iter()
                .map(|b| (b, "release"))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn forget(&mut self, eurid: &str) {
        self.held.remove(eurid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use enocean::eep::{self, Eep};

    fn decode(values: &[(&str, f64)]) -> Vec<Field> {
        let id: Eep = "F6-02-01".parse().unwrap();
        let (rorg, data, status) = eep::encode(id, values).unwrap();
        eep::decode(id, rorg, &data, status).unwrap()
    }

    #[test]
    fn press_then_release_names_the_button() {
        let mut b = Buttons::default();
        let press = decode(&[("R1", 1.0), ("EB", 1.0), ("T21", 1.0), ("NU", 1.0)]);
        assert_eq!(
            b.events("x", &press),
            vec![("buttonA0".to_string(), "press")]
        );
        let release = decode(&[("EB", 0.0), ("T21", 1.0), ("NU", 0.0)]);
        assert_eq!(
            b.events("x", &release),
            vec![("buttonA0".to_string(), "release")]
        );
        assert!(b.events("x", &release).is_empty(), "released once");
    }
}
