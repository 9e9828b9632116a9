//! Onboards the simulated devices through the API (PATCH /backup merges them into the
//! registry in one request), so that the engine processes their telegrams.

use anyhow::{Context, bail};

use super::devices::Device;
use super::secure::Secure;

pub async fn onboard(
    http: &reqwest::Client,
    api_url: &str,
    credentials: Option<(&str, &str)>,
    devices: &[Device],
    secure: &Secure,
) -> anyhow::Result<()> {
    let base = api_url.trim_end_matches('/').trim_end_matches("/devices");
    let url = format!("{base}/backup");
    let connections: Vec<serde_json::Value> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut device = serde_json::json!({
                "sourceEurid": format!("{:08x}", d.id),
                "friendlyID": format!("simulated {:08x}", d.id),
                "eep": d.eep.to_string(),
                "customTag": "iotc-simulate",
            });
            secure.add_keys(i, &mut device);
            device
        })
        .collect();
    let body = serde_json::json!({
        "APIVersion": "1.2.0",
        "ExportDate": utc_now(),
        "Connections": connections,
    });
    let mut request = http.patch(&url).json(&body);
    if let Some((user, password)) = credentials {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("PATCH {url}"))?;
    if !response.status().is_success() {
        let status = response.status();
        bail!(
            "PATCH {url}: {status} {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = iotc_core::ops::unix_seconds();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
