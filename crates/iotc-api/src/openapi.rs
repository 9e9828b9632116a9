//! The OpenAPI document, generated from the handlers. `openapi/openapi.json` in the repository is
//! this document; a test fails when it is stale.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::Error;

/// The IoTC API version this API is compatible with (also a backup's `APIVersion`).
pub const API_VERSION: &str = "1.3.0";
/// Where the operations live.
pub const BASE_PATH: &str = "/api.beta/v1";
/// How to rewrite the committed copies.
pub const REGENERATE: &str = "cargo run -p iotc-api -- --print-openapi > openapi/openapi.json && \
    cargo run -p iotc-api -- --print-openapi-3-0 > openapi/openapi-3.0.json";
/// The OpenAPI version of [`document_v30_json`].
pub const V30: &str = "3.0.3";

/// Invalid input: the message names the field or parameter.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct BadRequest(Error);

/// No device with these IDs is onboarded.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct DeviceNotFound(Error);

/// Device exists, but has no associated data.
#[derive(ToResponse)]
pub struct DeviceExistsButNoData;

/// The request body is larger than the configured limit.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct PayloadTooLarge(Error);

/// Authentication credentials were not provided for the request.
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String, description = "Basic realm=\"API Area Restricted\"")))]
#[allow(dead_code)]
pub struct UnAuthorized(Error);

/// Unexpected failure.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct Internal(Error);

/// The device store (Redis) is not reachable.
#[derive(ToResponse)]
#[allow(dead_code)]
pub struct StoreUnavailable(Error);

/// Proxy did not receive a timely response to complete the request.
#[derive(ToResponse)]
pub struct GatewayTimeout;

/// Responses every operation may give, added to each by [`finish`].
const COMMON: [(&str, &str); 4] = [
    ("401", "UnAuthorized"),
    ("500", "Internal"),
    ("503", "StoreUnavailable"),
    ("504", "GatewayTimeout"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "iotc API",
        description = "REST API of iotc, compatible with the EnOcean IoT Connector API: onboard \
            EnOcean devices, back up and restore them, read telegram statistics, the most recent \
            telegrams, gateways and system health. HTTP Basic authentication \
            (BASIC_AUTH_USERNAME / BASIC_AUTH_PASSWORD).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/api.beta/v1")),
    components(
        schemas(Error),
        responses(
            BadRequest, DeviceNotFound, DeviceExistsButNoData, PayloadTooLarge, UnAuthorized,
            Internal, StoreUnavailable, GatewayTimeout
        )
    ),
    modifiers(&BasicAuth),
    security(("basicAuth" = [])),
    tags(
        (name = "devices", description = "Onboarded EnOcean devices and what they sent"),
        (name = "backup", description = "Dump, restore and merge the onboarded devices"),
        (name = "gateways", description = "Access points forwarding EnOcean telegrams"),
        (name = "system", description = "Health of the services"),
        (name = "aps", description = "Optional register of access points, each with its own login (enforced by the ingress with IOTC_AP_REGISTER=true)"),
    )
)]
pub struct ApiDoc;

struct BasicAuth;

impl Modify for BasicAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basicAuth",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// Completes the document collected from the routes: version and the common responses.
pub fn finish(mut doc: Document) -> Document {
    doc.info.version = API_VERSION.to_string();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            for (status, name) in COMMON {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
            }
        }
    }
    doc
}

/// The complete document as served and committed.
pub fn document() -> Document {
    let (_, doc) = crate::app::api_routes().split_for_parts();
    finish(doc)
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_json() -> String {
    let mut json = document()
        .to_pretty_json()
        .expect("the document serialises");
    json.push('\n');
    json
}

/// The same document as OpenAPI 3.0, for generators and gateways that do not read 3.1 yet
/// (IoTC's own document is 3.0). Only 3.1 forms the document uses are rewritten.
pub fn document_v30_json() -> String {
    let mut doc = serde_json::to_value(document()).expect("the document serialises");
    doc["openapi"] = serde_json::Value::from(V30);
    if let Some(license) = doc["info"]["license"].as_object_mut() {
        // 3.0 has no SPDX `identifier`; the name says it.
        license.remove("identifier");
    }
    to_v30(&mut doc);
    let mut json = serde_json::to_string_pretty(&doc).expect("JSON serialises");
    json.push('\n');
    json
}

/// `"type": ["string", "null"]` (3.1) becomes `"type": "string", "nullable": true` (3.0), and
/// `"oneOf": [X, {"type": "null"}]` becomes `"allOf": [X], "nullable": true`.
fn to_v30(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("oneOf")
                && items.len() == 2
                && items.iter().any(|i| i["type"] == "null")
            {
                let other: Vec<Value> = items
                    .iter()
                    .filter(|i| i["type"] != "null")
                    .cloned()
                    .collect();
                map.remove("oneOf");
                map.insert("allOf".into(), Value::Array(other));
                map.insert("nullable".into(), Value::Bool(true));
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let nullable = types.iter().any(|t| t == "null");
                let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if let [only] = rest.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                    if nullable {
                        map.insert("nullable".into(), Value::Bool(true));
                    }
                }
            }
            map.values_mut().for_each(to_v30);
        }
        Value::Array(items) => items.iter_mut().for_each(to_v30),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v30_has_no_31_forms() {
        let json = document_v30_json();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["openapi"], V30);
        assert!(!json.contains("\"null\""), "no null type left");
        assert!(doc["info"]["license"].get("identifier").is_none());
        assert_eq!(
            doc["components"]["schemas"]["EnOceanSensor"]["properties"]["location"]["nullable"],
            true
        );
    }
}
