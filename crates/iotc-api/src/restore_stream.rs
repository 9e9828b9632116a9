//! `POST` / `PATCH /backup` without holding the backup in memory: the body is parsed as it
//! arrives (a blocking thread reads it through a small channel), each device is validated and
//! written in batches to a staging hash in Redis, and only a complete, valid backup is
//! committed in one step (`crate::staging`). A bad backup leaves the registry untouched.
//!
//! Memory per import is bounded: a few body chunks and device batches in flight, plus one
//! entry (16 bytes) per device to find duplicates.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, BufReader, Read};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use futures_util::StreamExt;
use iotc_core::aps::ApRecord;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::backup::{check_api_version, check_app_version, check_export_date};
use crate::error::ApiError;
use crate::restore::{SensorImport, report_unknown};
use crate::staging::Staging;
use crate::validate;

/// Devices written to Redis per batch.
const BATCH: usize = 1000;
/// Body chunks and device batches queued between the three parts.
const IN_FLIGHT: usize = 4;
/// Unknown field names kept for the log (all are counted).
const MAX_NAMES: usize = 20;

/// One registry entry: field and device JSON.
pub type Entry = (String, String);

/// What the backup says besides its devices.
#[derive(Debug, Default)]
pub struct Summary {
    pub devices: usize,
    pub access_points: Option<Vec<ApRecord>>,
    pub unknown_names: BTreeSet<String>,
    pub unknown_count: usize,
}

/// Restores the backup in `req`: replaces the registry (`replace`) or merges into it.
pub async fn restore(
    state: &AppState,
    req: Request,
    replace: bool,
) -> Result<StatusCode, ApiError> {
    if !crate::extract::is_json(req.headers()) {
        return Err(crate::extract::unsupported_content_type());
    }
    let (chunk_tx, chunk_rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
    let (batch_tx, mut batch_rx) = mpsc::channel::<Vec<Entry>>(IN_FLIGHT);
    let only_secure = state.only_secure;
    let parser = tokio::task::spawn_blocking(move || {
        let reader = BufReader::with_capacity(64 * 1024, ChannelReader::new(chunk_rx));
        parse(reader, only_secure, &mut |batch| {
            batch_tx.blocking_send(batch).is_ok()
        })
    });
    let mut staging = Staging::new(&state.store);
    let forward = forward(req.into_body(), chunk_tx, state.max_backup_bytes);
    let write = async {
        while let Some(batch) = batch_rx.recv().await {
            staging.write(&batch).await?;
        }
        Ok::<_, crate::store::StoreError>(())
    };
    let (forwarded, written) = tokio::join!(forward, write);
    let parsed = parser.await.unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("backup parser failed: {e}"),
        ))
    });
    let summary = match (forwarded, written, parsed) {
        (Ok(()), Ok(()), Ok(summary)) => summary,
        (Err(e), _, _) | (_, _, Err(e)) if !matches!(e.code, "STOPPED") => {
            staging.abort().await;
            return Err(e);
        }
        (_, written, _) => {
            staging.abort().await;
            return Err(written.err().map(ApiError::from).unwrap_or_else(stopped));
        }
    };
    for ap in summary.access_points.iter().flatten() {
        if let Err(e) = crate::aps::check_record(ap) {
            staging.abort().await;
            return Err(e);
        }
    }
    report_unknown(&summary.unknown_names, summary.unknown_count);
    staging.commit(replace).await?;
    if let Some(aps) = &summary.access_points {
        crate::aps::import(state, aps, replace).await?;
    }
    tracing::info!(devices = summary.devices, replace, "backup imported");
    Ok(StatusCode::OK)
}

/// The parser gave up because the writer went away (its own error is the one to report).
fn stopped() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "STOPPED",
        "the import stopped",
    )
}

/// Passes the body's chunks to the parser, at most `limit` bytes.
async fn forward(body: Body, tx: mpsc::Sender<Bytes>, limit: usize) -> Result<(), ApiError> {
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::bad_request("INVALID_BODY", format!("reading the body failed: {e}"))
        })?;
        total += chunk.len();
        if total > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!("length limit exceeded: a backup may have at most {limit} bytes"),
            ));
        }
        if tx.send(chunk).await.is_err() {
            // The parser stopped early and reports why.
            return Ok(());
        }
    }
    Ok(())
}

/// The body as a blocking reader, for serde_json on the parser's thread.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Parses and validates a backup, handing its devices to `sink` in batches (`sink` answers
/// false when it can take no more). Checks as the fields arrive, so a bad backup stops early.
pub fn parse<R: Read>(
    reader: R,
    only_secure: bool,
    sink: &mut dyn FnMut(Vec<Entry>) -> bool,
) -> Result<Summary, ApiError> {
    let mut ctx = Ctx {
        only_secure,
        sink,
        seen: HashMap::new(),
        batch: Vec::with_capacity(BATCH),
        failure: None,
        bad_device: None,
        summary: Summary::default(),
        api_version: false,
        export_date: false,
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let result = BackupSeed(&mut ctx)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Some(failure) = ctx.failure.take() {
        return Err(failure);
    }
    if let Err(e) = result {
        // A device that did not deserialise is named with its path; bad syntax is not its fault.
        return Err(match ctx.bad_device.take() {
            Some(bad) if e.classify() == serde_json::error::Category::Data => bad,
            _ => json_error(e),
        });
    }
    for (seen, name) in [
        (ctx.api_version, "APIVersion"),
        (ctx.export_date, "ExportDate"),
    ] {
        if !seen {
            return Err(ApiError::bad_request(
                "INVALID_BODY",
                format!(
                    "Failed to deserialize the JSON body into the target type: missing field `{name}`"
                ),
            ));
        }
    }
    ctx.flush()?;
    Ok(ctx.summary)
}

/// A serde_json error as IoTC `Error`, worded as for every other JSON body.
fn json_error(e: serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::bad_request(
            "INVALID_BODY",
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        ),
        _ => ApiError::bad_request(
            "MALFORMED_JSON",
            format!("Failed to parse the request body as JSON: {e}"),
        ),
    }
}

struct Ctx<'a> {
    only_secure: bool,
    sink: &'a mut dyn FnMut(Vec<Entry>) -> bool,
    /// (source, destination) → index of its first entry, to name both on a duplicate.
    seen: HashMap<u64, u32>,
    batch: Vec<Entry>,
    /// Why parsing was stopped, when it was our decision rather than a JSON error.
    failure: Option<ApiError>,
    /// The path and reason of a device that did not deserialise.
    bad_device: Option<ApiError>,
    summary: Summary,
    api_version: bool,
    export_date: bool,
}

impl Ctx<'_> {
    /// Records why parsing stops; the error handed to serde only unwinds it.
    fn fail<E: de::Error>(&mut self, e: ApiError) -> E {
        self.failure = Some(e);
        E::custom("backup refused")
    }

    fn unknown(&mut self, name: String) {
        self.summary.unknown_count += 1;
        if self.summary.unknown_names.len() < MAX_NAMES {
            self.summary.unknown_names.insert(name);
        }
    }

    fn device(&mut self, i: usize, dev: SensorImport) -> Result<(), ApiError> {
        for name in dev.unknown.keys() {
            self.unknown(format!("Connections[].{name}"));
        }
        let at = format!("Connections[{i}].");
        let dev = validate::sensor(SensorImport::into_sensor(dev), self.only_secure, &at)?;
        let field = iotc_core::keys::device_field(&dev.source_eurid, dev.destination());
        if let Some(first) = self.seen.insert(key_of(&field), i as u32) {
            return Err(ApiError::bad_request(
                "DUPLICATE_DEVICE",
                format!("Connections[{first}] and Connections[{i}] both name device {field}"),
            ));
        }
        let json = serde_json::to_string(&dev).expect("a device serialises");
        self.batch.push((field, json));
        self.summary.devices += 1;
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ApiError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if (self.sink)(batch) {
            Ok(())
        } else {
            Err(stopped())
        }
    }
}

/// A validated field `<8 hex>:<8 hex>` as one number.
fn key_of(field: &str) -> u64 {
    let hex = field.replace(':', "");
    u64::from_str_radix(&hex, 16).expect("a validated device field")
}

/// The top-level object.
struct BackupSeed<'a, 'b>(&'a mut Ctx<'b>);

impl<'de> DeserializeSeed<'de> for BackupSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BackupSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a backup object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "APIVersion" => {
                    let v: String = map.next_value()?;
                    check_api_version(&v).map_err(|e| ctx.fail(e))?;
                    ctx.api_version = true;
                }
                "APPVersion" => {
                    if let Some(v) = map.next_value::<Option<String>>()? {
                        check_app_version(&v).map_err(|e| ctx.fail(e))?;
                    }
                }
                "ExportDate" => {
                    let v: String = map.next_value()?;
                    check_export_date(&v).map_err(|e| ctx.fail(e))?;
                    ctx.export_date = true;
                }
                "Connections" => map.next_value_seed(Connections(ctx))?,
                "AccessPoints" => ctx.summary.access_points = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    ctx.unknown(key);
                }
            }
        }
        Ok(())
    }
}

/// The `Connections` array (or `null`), device by device.
struct Connections<'a, 'b>(&'a mut Ctx<'b>);

impl<'de> DeserializeSeed<'de> for Connections<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for Connections<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of devices")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        let mut i = 0;
        loop {
            let mut bad = None;
            match seq.next_element_seed(OneDevice(i, &mut bad)) {
                Ok(Some(dev)) => ctx.device(i, dev).map_err(|e| ctx.fail(e))?,
                Ok(None) => return Ok(()),
                Err(e) => {
                    ctx.bad_device = bad;
                    return Err(e);
                }
            }
            i += 1;
        }
    }
}

/// One device; a device that does not deserialise is reported with its path.
struct OneDevice<'a>(usize, &'a mut Option<ApiError>);

impl<'de> DeserializeSeed<'de> for OneDevice<'_> {
    type Value = SensorImport;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<SensorImport, D::Error> {
        serde_path_to_error::deserialize(d).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = match path.as_str() {
                "." => format!("Connections[{}]", self.0),
                p => format!("Connections[{}].{p}", self.0),
            };
            *self.1 = Some(ApiError::bad_request(
                "INVALID_BODY",
                format!("Failed to deserialize the JSON body into the target type: {at}: {inner}"),
            ));
            inner
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses `body`; the error code and message, or the entries handed over.
    fn run(body: serde_json::Value) -> Result<Vec<Entry>, ApiError> {
        let mut got = Vec::new();
        let text = body.to_string();
        parse(text.as_bytes(), false, &mut |batch| {
            got.extend(batch);
            true
        })?;
        Ok(got)
    }

    fn backup(connections: serde_json::Value) -> serde_json::Value {
        json!({"APIVersion": "1.3.0", "ExportDate": "2026-01-01T00:00:00Z", "Connections": connections})
    }

    #[test]
    fn rejects_duplicates_and_names_the_bad_entry() {
        let dev = json!({"eep":"A5-04-05","friendlyID":"a","sourceEurid":"a1b2c3d4"});
        let dup = json!({"eep":"A5-04-05","friendlyID":"b","sourceEurid":"A1B2C3D4"});
        let err = run(backup(json!([dev, dup]))).unwrap_err();
        assert_eq!(err.code, "DUPLICATE_DEVICE");
        assert!(
            err.message.contains("Connections[0] and Connections[1]"),
            "{err:?}"
        );

        let bad = json!([{"eep":"A5-04","friendlyID":"b","sourceEurid":"a1b2c3d4"}]);
        let err = run(backup(bad)).unwrap_err();
        assert!(err.message.starts_with("Connections[0].eep"), "{err:?}");

        let err = run(json!({"APIVersion":"1.3.0","ExportDate":"yesterday"})).unwrap_err();
        assert!(err.message.starts_with("ExportDate"), "{err:?}");

        let err = run(json!({"ExportDate":"2026-01-01T00:00:00Z"})).unwrap_err();
        assert_eq!(err.code, "INVALID_BODY");
        assert!(err.message.contains("APIVersion"), "{err:?}");
    }

    #[test]
    fn hands_over_batches_in_order_and_tells_bad_syntax_apart() {
        let devices: Vec<_> = (0..2500)
            .map(|i| json!({"eep":"A5-02-05","friendlyID":"d","sourceEurid":format!("{i:08x}")}))
            .collect();
        let got = run(backup(json!(devices))).unwrap();
        assert_eq!(got.len(), 2500);
        assert_eq!(got[2499].0, "000009c3:ffffffff");
        assert!(run(backup(serde_json::Value::Null)).unwrap().is_empty());

        let text = r#"{"APIVersion":"1.3.0","Connections":[{"eep":"A5-02-05","#;
        let err = parse(text.as_bytes(), false, &mut |_| true).unwrap_err();
        assert_eq!(err.code, "MALFORMED_JSON");
        let err = parse(&b"[1]"[..], false, &mut |_| true).unwrap_err();
        assert_eq!(err.code, "INVALID_BODY");
    }

    #[test]
    fn stops_when_the_writer_stops() {
        let devices: Vec<_> = (0..1500)
            .map(|i| json!({"eep":"A5-02-05","friendlyID":"d","sourceEurid":format!("{i:08x}")}))
            .collect();
        let text = backup(json!(devices)).to_string();
        let err = parse(text.as_bytes(), false, &mut |_| false).unwrap_err();
        assert_eq!(err.code, "STOPPED");
    }
}
