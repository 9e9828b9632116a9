//! Loads the published vectors in `tests/data/protocol_vectors.json`.
#![allow(dead_code)]

use serde_json::Value;

pub fn cases(kind: &str) -> Vec<Value> {
    let text = include_str!("../data/protocol_vectors.json");
    let doc: Value = serde_json::from_str(text).expect("vector file is JSON");
    let cases: Vec<Value> = doc["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no vectors of kind {kind}");
    cases
}

pub fn bytes(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("valid hex in vector")
}

/// `01:81:B7:44` or `018DF8BD` as a number.
pub fn id(text: &str) -> u32 {
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    u32::from_str_radix(&clean, 16).expect("hex id")
}

pub fn source(case: &Value) -> &str {
    case["source"].as_str().unwrap_or("?")
}
