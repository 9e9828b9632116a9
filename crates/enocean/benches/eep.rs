//! From ESP3 bytes to decoded fields: frame parse, ERP1 telegram, EEP interpreter.
//!
//! `CARGO_TARGET_DIR=/work/target-proto cargo bench -p enocean --bench eep`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use enocean::eep::{self, Eep};
use enocean::esp3::encode_frame;
use enocean::telegram::Telegram;

/// RADIO_ERP1 frame for `rorg | data`, sender 0x04138BB4, status `status`.
fn frame(erp1_without_sender: &[u8], status: u8) -> Vec<u8> {
    let mut data = erp1_without_sender.to_vec();
    data.extend_from_slice(&[0x04, 0x13, 0x8B, 0xB4, status]);
    encode_frame(0x01, &data, &[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00])
}

fn esp3_to_fields(bytes: &[u8], eep: Eep) -> usize {
    let telegram = Telegram::from_esp3(bytes).expect("valid frame");
    let fields = eep::decode(eep, telegram.rorg, &telegram.data, telegram.status).expect("decodes");
    fields.len()
}

fn bench(c: &mut Criterion) {
    let cases = [
        // kipe/enocean's temperature telegram, 26.67 °C.
        ("A5-02-05", frame(&[0xA5, 0x00, 0x00, 0x55, 0x08], 0x00)),
        ("A5-04-01", frame(&[0xA5, 0x00, 0x7D, 0x64, 0x0A], 0x00)),
        // IoTC's published multisensor telegram.
        (
            "D2-14-41",
            frame(
                &[0xD2, 0x9F, 0xCE, 0x80, 0x08, 0x63, 0xB5, 0x02, 0xA6, 0x20],
                0x80,
            ),
        ),
    ];
    // Load the tables before measuring.
    assert!(eep::profiles().count() > 200);

    let mut group = c.benchmark_group("esp3_to_fields");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in &cases {
        let eep: Eep = name.parse().unwrap();
        group.bench_function(*name, |b| b.iter(|| esp3_to_fields(black_box(bytes), eep)));
    }
    group.finish();

    let mut group = c.benchmark_group("eep_decode_only");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in &cases {
        let eep: Eep = name.parse().unwrap();
        let telegram = Telegram::from_esp3(bytes).unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| {
                eep::decode(
                    eep,
                    telegram.rorg,
                    black_box(&telegram.data),
                    telegram.status,
                )
            })
        });
    }
    group.finish();
}

/// The one-time cost of reading the compiled-in tables (paid on first use).
fn load_tables(c: &mut Criterion) {
    c.bench_function("eep_tables_parse", |b| b.iter(eep::check_profiles));
}

criterion_group!(benches, bench, load_tables);
criterion_main!(benches);
