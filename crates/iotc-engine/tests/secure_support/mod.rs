//! Shared by the secure tests: a real redis-server on a free port, killed on drop, and
//! secure telegrams built with the protocol crate.

#![allow(dead_code)]

use enocean::secure::{self, SecureContext};
use enocean::telegram::{BROADCAST, Telegram};

/// A redis-server without persistence (test-support); killed on drop.
pub struct Redis {
    pub port: u16,
    inner: test_support::Redis,
}

impl Redis {
    pub fn start() -> Redis {
        let inner = test_support::Redis::start_temp();
        Redis {
            port: inner.port,
            inner,
        }
    }

    pub fn client(&self) -> redis::Client {
        self.inner.client()
    }

    pub async fn manager(&self) -> redis::aio::ConnectionManager {
        self.inner.manager().await
    }
}

/// A received ERP1 telegram as the stick reports it (security level 0: not processed).
pub fn telegram(rorg: u8, data: Vec<u8>, sender: u32, status: u8) -> Telegram {
    Telegram {
        rorg,
        data,
        sender,
        destination: BROADCAST,
        status,
        sub_tel_num: Some(1),
        dbm: Some(-60),
        security_level: Some(0),
    }
}

/// The ESP3 frame of a telegram.
pub fn frame(t: &Telegram) -> Vec<u8> {
    t.to_erp1_packet().encode()
}

/// A 0x31 telegram carrying `inner_rorg` + `data` under code `rlc`.
pub fn sec_r(ctx: &SecureContext, rlc: u32, inner_rorg: u8, data: &[u8], sender: u32) -> Telegram {
    let payload = secure::encrypt_sec_r(ctx, rlc, inner_rorg, data).expect("encrypt");
    telegram(secure::SEC_R, payload, sender, 0)
}
