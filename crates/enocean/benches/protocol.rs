//! The protocol core without EEP tables: ESP3 stream parsing, telegram decoding, signal and
//! chained telegrams.
//!
//! `CARGO_TARGET_DIR=/work/target-proto cargo bench -p enocean --bench protocol`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enocean::chain::{ChainOutcome, Reassembler};
use enocean::esp3::{StreamParser, encode_frame};
use enocean::telegram::{BROADCAST, Telegram};
use enocean::{signal, teach_in};

const OPTIONAL: [u8; 7] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00];

/// A 4BS RADIO_ERP1 frame (kipe/enocean's temperature telegram).
fn four_bs() -> Vec<u8> {
    encode_frame(
        0x01,
        &[0xA5, 0x00, 0x00, 0x55, 0x08, 0x01, 0x81, 0xB7, 0x44, 0x00],
        &OPTIONAL,
    )
}

fn bench(c: &mut Criterion) {
    let frame = four_bs();

    let mut group = c.benchmark_group("telegram");
    group.throughput(Throughput::Elements(1));
    group.bench_function("from_esp3 (4BS)", |b| {
        b.iter(|| Telegram::from_esp3(black_box(&frame)).unwrap())
    });
    let t = Telegram::from_esp3(&frame).unwrap();
    group.bench_function("teach_in::detect", |b| {
        b.iter(|| teach_in::detect(black_box(&t)))
    });
    group.bench_function("dedup_key", |b| b.iter(|| black_box(&t).dedup_key()));
    group.bench_function("signal::decode (energy)", |b| {
        b.iter(|| signal::decode(black_box(&[0x06, 0x38])).unwrap())
    });
    group.finish();

    // 1000 frames in one buffer, pushed in 64-byte pieces as a serial port would deliver them.
    let stream: Vec<u8> = (0..1000).flat_map(|_| frame.clone()).collect();
    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("StreamParser 1000 frames, 64-byte reads", |b| {
        b.iter(|| {
            let mut parser = StreamParser::new();
            let mut n = 0;
            for piece in stream.chunks(64) {
                parser.push(piece);
                while let Some(Ok(f)) = parser.next_frame() {
                    n += Telegram::from_frame(&f).is_ok() as usize;
                }
            }
            assert_eq!(n, 1000);
        })
    });
    group.finish();

    let part = |data: &[u8]| Telegram {
        rorg: 0x40,
        data: data.to_vec(),
        sender: 0x0102_0304,
        destination: BROADCAST,
        status: 0,
        sub_tel_num: Some(1),
        dbm: Some(-60),
        security_level: Some(0),
    };
    let parts = [
        part(&[0x40, 0x00, 0x0C, 0xD2, 1, 2, 3, 4, 5]),
        part(&[0x41, 6, 7, 8, 9, 10]),
        part(&[0x42, 11, 12]),
    ];
    let mut group = c.benchmark_group("chain");
    group.throughput(Throughput::Elements(1));
    group.bench_function("reassemble 3 parts", |b| {
        let mut r = Reassembler::default();
        b.iter(|| {
            r.push(parts[0].clone(), 0);
            r.push(parts[1].clone(), 0);
            assert!(matches!(
                r.push(parts[2].clone(), 0),
                ChainOutcome::Complete(_)
            ));
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
