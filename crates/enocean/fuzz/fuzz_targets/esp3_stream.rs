//! Feeds arbitrary bytes, cut into arbitrary pieces, through the ESP3 stream parser and every
//! telegram stage behind it.
#![no_main]

use enocean::chain::{ChainOutcome, Reassembler};
use enocean::telegram::Telegram;
use enocean::{adt, esp3, signal, teach_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&cut, bytes)) = input.split_first() else {
        return;
    };
    let piece = usize::from(cut).max(1);
    let mut parser = esp3::StreamParser::with_max_buffer(0);
    let mut chains = Reassembler::new(3000, 8);
    for (now, chunk) in (0u64..).zip(bytes.chunks(piece)) {
        parser.push(chunk);
        while let Some(result) = parser.next_frame() {
            let Ok(frame) = result else { continue };
            let Ok(telegram) = Telegram::from_frame(&frame) else {
                continue;
            };
            let _ = telegram.dedup_key();
            let _ = esp3::parse_frame(&telegram.to_erp1_packet().encode());
            if let ChainOutcome::NotChained(t) | ChainOutcome::Complete(t) =
                chains.push(adt::unwrap(telegram), now * 100)
            {
                let _ = teach_in::detect(&t);
                if t.rorg == signal::RORG_SIGNAL {
                    let _ = signal::decode(&t.data);
                }
            }
        }
    }
    let _ = esp3::parse_frame(bytes);
});
