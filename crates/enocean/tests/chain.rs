//! Chained telegrams: CDM (0x40) and SEC_CDM (0x33).

mod common;

use common::{bytes, cases};
use enocean::chain::{ChainError, ChainOutcome, Reassembler};
use enocean::telegram::{BROADCAST, Telegram};

fn part(rorg: u8, data: &[u8], sender: u32) -> Telegram {
    Telegram {
        rorg,
        data: data.to_vec(),
        sender,
        destination: BROADCAST,
        status: 0,
        sub_tel_num: Some(1),
        dbm: Some(-60),
        security_level: Some(0),
    }
}

/// A VLD message of 12 data bytes split as CDM: 40 | SEQ,IDX | LEN | D2 | data...
fn cdm_parts(seq: u8) -> Vec<Vec<u8>> {
    vec![
        vec![seq << 6, 0x00, 0x0C, 0xD2, 1, 2, 3, 4, 5],
        vec![seq << 6 | 1, 6, 7, 8, 9, 10],
        vec![seq << 6 | 2, 11, 12],
    ]
}

fn complete(outcome: ChainOutcome) -> Telegram {
    match outcome {
        ChainOutcome::Complete(t) => t,
        other => panic!("expected a complete message, got {other:?}"),
    }
}

#[test]
fn cdm_in_order() {
    let mut r = Reassembler::default();
    let parts = cdm_parts(1);
    assert_eq!(
        r.push(part(0x40, &parts[0], 7), 0),
        ChainOutcome::Incomplete
    );
    assert_eq!(
        r.push(part(0x40, &parts[1], 7), 10),
        ChainOutcome::Incomplete
    );
    let t = complete(r.push(part(0x40, &parts[2], 7), 20));
    assert_eq!(t.rorg, 0xD2);
    assert_eq!(t.data, (1..=12).collect::<Vec<u8>>());
    assert_eq!(t.sender, 7);
    assert_eq!(r.open_chains(), 0);
    assert_eq!(r.stats().completed, 1);
}

#[test]
fn cdm_in_any_order_with_duplicates() {
    let parts = cdm_parts(2);
    for order in [[2, 1, 0], [1, 0, 2], [2, 0, 1], [0, 2, 1], [1, 2, 0]] {
        let mut r = Reassembler::default();
        let mut done = None;
        for (n, &i) in order.iter().enumerate() {
            if n == 1 {
                // Every part may be heard twice.
                assert_eq!(
                    r.push(part(0x40, &parts[order[0]], 7), 1),
                    ChainOutcome::Incomplete
                );
            }
            if let ChainOutcome::Complete(t) = r.push(part(0x40, &parts[i], 7), 2) {
                done = Some(t);
            }
        }
        let t = done.unwrap_or_else(|| panic!("order {order:?} did not complete"));
        assert_eq!(t.data, (1..=12).collect::<Vec<u8>>(), "order {order:?}");
        assert_eq!(r.stats().duplicates, 1);
    }
}

#[test]
fn chains_of_different_senders_and_sequences_do_not_mix() {
    let mut r = Reassembler::default();
    let a = cdm_parts(1);
    let mut b = cdm_parts(2);
    b[1][1] = 0xEE;
    for (pa, pb) in a[..2].iter().zip(&b[..2]) {
        assert_eq!(r.push(part(0x40, pa, 1), 0), ChainOutcome::Incomplete);
        assert_eq!(r.push(part(0x40, pb, 1), 0), ChainOutcome::Incomplete);
        assert_eq!(r.push(part(0x40, pa, 2), 0), ChainOutcome::Incomplete);
    }
    assert_eq!(r.open_chains(), 3);
    let tb = complete(r.push(part(0x40, &b[2], 1), 0));
    assert_eq!(tb.data[5], 0xEE);
    let ta = complete(r.push(part(0x40, &a[2], 2), 0));
    assert_eq!((ta.sender, ta.data[5]), (2, 6));
}

#[test]
fn incomplete_chains_expire() {
    let mut r = Reassembler::new(3000, 16);
    let parts = cdm_parts(1);
    r.push(part(0x40, &parts[0], 7), 1000);
    r.push(part(0x40, &parts[1], 7), 2000);
    // The last part comes too late: the chain was dropped, the part opens a new one.
    assert_eq!(
        r.push(part(0x40, &parts[2], 7), 4001),
        ChainOutcome::Incomplete
    );
    assert_eq!(r.stats().expired, 1);
    r.expire(10_000);
    assert_eq!(r.open_chains(), 0);
    assert_eq!(r.stats().expired, 2);
}

#[test]
fn open_chains_are_capped_dropping_the_oldest() {
    let mut r = Reassembler::new(3000, 2);
    let parts = cdm_parts(1);
    for (sender, now) in [(1, 0), (2, 1), (3, 2)] {
        r.push(part(0x40, &parts[0], sender), now);
    }
    assert_eq!(r.open_chains(), 2);
    assert_eq!(r.stats().evicted, 1);
    r.push(part(0x40, &parts[1], 1), 3);
    assert_eq!(
        r.push(part(0x40, &parts[2], 1), 3),
        ChainOutcome::Incomplete,
        "sender 1 was dropped"
    );
    r.push(part(0x40, &parts[1], 3), 3);
    assert!(matches!(
        r.push(part(0x40, &parts[2], 3), 3),
        ChainOutcome::Complete(_)
    ));
}

#[test]
fn a_new_first_part_restarts_the_chain() {
    let mut r = Reassembler::default();
    let parts = cdm_parts(1);
    r.push(part(0x40, &parts[0], 7), 0);
    r.push(part(0x40, &parts[1], 7), 0);
    // Same SEQ, different first part: a new message of 3 bytes in one part.
    let t = complete(r.push(part(0x40, &[0x40, 0x00, 0x03, 0xA5, 9, 8, 7], 7), 0));
    assert_eq!((t.rorg, t.data), (0xA5, vec![9, 8, 7]));
}

#[test]
fn malformed_parts_are_rejected_and_others_pass_through() {
    let mut r = Reassembler::default();
    assert_eq!(
        r.push(part(0x40, &[], 7), 0),
        ChainOutcome::Rejected(ChainError::TooShort(0))
    );
    assert_eq!(
        r.push(part(0x40, &[0x40, 0x00], 7), 0),
        ChainOutcome::Rejected(ChainError::TooShort(2))
    );
    assert_eq!(
        r.push(part(0x40, &[0x40, 0x00, 0x00, 0xD2], 7), 0),
        ChainOutcome::Rejected(ChainError::ZeroLength)
    );
    let plain = part(0xA5, &[1, 2, 3, 4], 7);
    assert_eq!(r.push(plain.clone(), 0), ChainOutcome::NotChained(plain));
    assert_eq!(r.stats().rejected, 3);
}

#[test]
fn sec_cdm_reassembles_the_published_secure_payload() {
    // Security of EnOcean Radio Networks A.4.3: four SEC_CDM parts, LEN 39.
    let case = &cases("sec_cdm_parts")[0];
    let parts: Vec<Vec<u8>> = case["parts_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| bytes(p.as_str().unwrap()))
        .collect();
    let expected = bytes(case["expected"]["secure_payload"].as_str().unwrap());
    assert_eq!(
        expected.len() as u64,
        case["expected"]["length"].as_u64().unwrap()
    );
    for order in [[0, 1, 2, 3], [3, 1, 0, 2]] {
        let mut r = Reassembler::default();
        let mut done = None;
        for i in order {
            assert_eq!(parts[i][0], 0x33);
            if let ChainOutcome::Complete(t) = r.push(part(0x33, &parts[i][1..], 0x0102_0304), 0) {
                done = Some(t);
            }
        }
        let t = done.expect("complete");
        assert_eq!(
            t.rorg, 0x33,
            "the secure layer decrypts it as a 0x31 payload"
        );
        assert_eq!(t.data, expected);
    }
}

/// A sender announcing a 64 KiB message, or sending more part bytes than a message may
/// have, is refused; the memory held by open chains stays bounded.
#[test]
fn chain_memory_is_bounded_in_bytes() {
    use enocean::chain::{DEFAULT_MAX_OPEN, MAX_MESSAGE_LEN};
    let mut r = Reassembler::default();
    let huge = part(0x40, &[0x00, 0xFF, 0xFF, 0xD2, 1, 2, 3], 7);
    assert_eq!(r.push(huge, 0), ChainOutcome::Rejected(ChainError::TooLong));
    assert_eq!(r.open_chains(), 0);

    // Parts without a part 0, 60 bytes each, on many senders and sequences.
    let mut refused = 0;
    for sender in 0..2_000u32 {
        for idx in 1..40u8 {
            let mut data = vec![0x40 | idx];
            data.extend([0xAB; 60]);
            if let ChainOutcome::Rejected(ChainError::TooLong) =
                r.push(part(0x40, &data, sender), 0)
            {
                refused += 1;
            }
        }
    }
    assert!(refused > 0);
    assert!(r.open_chains() <= DEFAULT_MAX_OPEN);
    assert!(
        r.held_bytes() <= DEFAULT_MAX_OPEN * MAX_MESSAGE_LEN,
        "{}",
        r.held_bytes()
    );
}
