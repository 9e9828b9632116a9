//! `StreamParser::with_limits`: a frame longer than the limit is refused as soon as its
//! header is read, and the buffer gives memory back after a burst.

use enocean::esp3::{self, Esp3Error, StreamParser};

/// vectors.json `esp3_rps_ptm215`.
const RPS: &str = "55000707017af600feee14ab2000ffffffff4700ad";

#[test]
fn over_limit_header_is_refused_at_once() {
    let mut parser = StreamParser::with_limits(1024, 100);
    let huge = esp3::encode_frame(5, &vec![0; 60_000], &[]);
    parser.push(&huge[..esp3::HEADER_LEN]);
    parser.push(&hex::decode(RPS).unwrap());
    let first = parser.next_frame().map(|r| r.map(|f| f.packet_type));
    assert_eq!(
        first,
        Some(Err(Esp3Error::OverLimit {
            len: 60_007,
            max: 100
        }))
    );
    let second = parser.next_packet().expect("the telegram behind it");
    assert_eq!(second.unwrap().packet_type, 1);
    assert!(parser.next_frame().is_none());
}

#[test]
fn buffer_shrinks_after_a_burst() {
    let mut parser = StreamParser::new();
    let frame = hex::decode(RPS).unwrap();
    let burst: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * 5000)
        .collect();
    parser.push(&burst);
    let mut frames = 0;
    while let Some(next) = parser.next_frame() {
        assert!(next.is_ok());
        frames += 1;
    }
    assert_eq!(frames, 5000);
    parser.push(&frame[..5]);
    parser.shrink();
    assert!(
        parser.capacity() <= esp3::KEEP_CAPACITY,
        "{}",
        parser.capacity()
    );
    assert_eq!(parser.buffered(), 5);
}
