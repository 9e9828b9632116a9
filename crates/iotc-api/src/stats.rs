//! IoTC's `TelegramStatistics`, read from a statistics hash (fields per `keys::stats`).

use std::collections::HashMap;

use iotc_core::keys::stats;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TelegramStatistics {
    /// Total count of received telegrams.
    #[serde(rename = "totalTelegramCount")]
    pub total_telegram_count: u64,
    /// Count of successfully processed telegrams & forwarded on egress.
    #[serde(rename = "succesfullyProcessed")]
    pub succesfully_processed: u64,
    /// Count of not processed telegrams due to various reasons & NOT forwarded on egress.
    #[serde(rename = "notProcessed")]
    pub not_processed: u64,
    /// Timestamp of last valid telegram from device in UTC seconds.
    #[serde(rename = "lastSeen", default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1619210854")]
    pub last_seen: Option<String>,
}

impl TelegramStatistics {
    /// `None` when nothing was counted yet (the hash does not exist).
    pub fn from_hash(hash: &HashMap<String, String>) -> Option<Self> {
        if hash.is_empty() {
            return None;
        }
        let count = |name: &str| {
            hash.get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(TelegramStatistics {
            total_telegram_count: count(stats::TOTAL),
            succesfully_processed: count(stats::OK),
            not_processed: count(stats::NOT_PROCESSED),
            last_seen: hash
                .get(stats::LAST_SEEN)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hash_with_iotc_spellings() {
        let hash: HashMap<String, String> = [
            ("totalTelegramCount", "12"),
            ("succesfullyProcessed", "10"),
            ("notProcessed", "2"),
            ("lastSeen", "1619210854"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = TelegramStatistics::from_hash(&hash).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"totalTelegramCount":12,"succesfullyProcessed":10,
                "notProcessed":2,"lastSeen":"1619210854"})
        );
        assert_eq!(TelegramStatistics::from_hash(&HashMap::new()), None);
    }
}
