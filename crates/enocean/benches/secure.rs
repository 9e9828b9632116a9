//! Verify + decrypt cost per secure telegram.
//!
//! `CARGO_TARGET_DIR=/work/target-proto cargo bench -p enocean --bench secure`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use enocean::secure::{self, SecureContext, Slf};

const KEY: [u8; 16] = *b"EnOcean GmbH.13\0";

fn context(slf: Slf, is_ptm: bool) -> SecureContext {
    SecureContext {
        key: KEY,
        slf,
        is_ptm,
    }
}

fn verify_and_decrypt(c: &mut Criterion) {
    let mut group = c.benchmark_group("verify_and_decrypt");
    // The spec's A.4.1 telegram: 0x31, SLF AB, 4BS data.
    let ab = context(Slf::ENERGY_REDUCED_24, false);
    let a41 = [
        0x3E, 0xEA, 0xC4, 0xA2, 0xDF, 0xC0, 0xFF, 0xEE, 0xEA, 0xF2, 0x0E,
    ];
    group.bench_function("sec_r_0xAB_4bs", |b| {
        b.iter(|| secure::verify_and_decrypt(&ab, 0x31, black_box(&a41), Some(0xC0FFED)))
    });

    let f3 = context(Slf::STANDARD, false);
    let vld = secure::encrypt_sec_r(&f3, 1000, 0xD2, &[1, 2, 3, 4, 5, 6]).unwrap();
    group.bench_function("sec_r_0xF3_vld6", |b| {
        b.iter(|| secure::verify_and_decrypt(&f3, 0x31, black_box(&vld), Some(999)))
    });

    let chained = secure::encrypt_sec_r(&f3, 1000, 0xD1, &[7; 30]).unwrap();
    group.bench_function("sec_cdm_0xF3_30_bytes", |b| {
        b.iter(|| secure::verify_and_decrypt(&f3, 0x33, black_box(&chained), Some(999)))
    });

    let cb = context(Slf::ENERGY_REDUCED_32, false);
    let partial = secure::encrypt_sec_r(&cb, 0x0200_0001, 0xA5, &[1, 2, 3, 4]).unwrap();
    group.bench_function("sec_r_0xCB_carry", |b| {
        b.iter(|| secure::verify_and_decrypt(&cb, 0x31, black_box(&partial), Some(0x01FF_FFFF)))
    });

    let ptm = context(Slf::ULTRA_LOW_POWER, true);
    let press = secure::encrypt_ptm(&ptm, 100, 0x0E).unwrap();
    group.bench_function("ptm_0x8B_expected_code", |b| {
        b.iter(|| secure::verify_and_decrypt(&ptm, 0x30, black_box(&press), Some(99)))
    });
    let late = secure::encrypt_ptm(&ptm, 100 + 127, 0x0E).unwrap();
    group.bench_function("ptm_0x8B_window_end", |b| {
        b.iter(|| secure::verify_and_decrypt(&ptm, 0x30, black_box(&late), Some(99)))
    });
    let forged = {
        let mut f = press.clone();
        f[0] ^= 1;
        f
    };
    group.bench_function("ptm_0x8B_forged_rejected", |b| {
        b.iter(|| secure::verify_and_decrypt(&ptm, 0x30, black_box(&forged), Some(99)))
    });
    group.finish();
}

criterion_group!(benches, verify_and_decrypt);
criterion_main!(benches);
