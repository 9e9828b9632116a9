//! Addressing encapsulation (R-ORG 0xA6).

use enocean::adt::{self, AdtError};
use enocean::esp3;
use enocean::telegram::{BROADCAST, Telegram};

#[test]
fn addressed_telegram_unwraps_to_inner_rorg_and_destination() {
    // A6 | A5 | 4 data bytes | destination 0x01020304 | sender | status
    let data = [
        0xA6, 0xA5, 0x00, 0x00, 0x55, 0x08, 0x01, 0x02, 0x03, 0x04, 0x01, 0x81, 0xB7, 0x44, 0x00,
    ];
    let t = Telegram::from_esp3(&esp3::encode_frame(1, &data, &[])).unwrap();
    assert_eq!(t.rorg, 0xA6);
    let inner = adt::unwrap(t.clone());
    assert_eq!(inner.rorg, 0xA5);
    assert_eq!(inner.data, vec![0x00, 0x00, 0x55, 0x08]);
    assert_eq!(inner.destination, 0x0102_0304);
    assert_eq!(inner.sender, 0x0181_B744);
    assert_eq!(
        adt::wrap(inner, 0x0102_0304).data,
        t.data,
        "wrap is the inverse"
    );
}

#[test]
fn other_and_malformed_telegrams_are_unchanged() {
    let t = Telegram {
        rorg: 0xF6,
        data: vec![0x30],
        sender: 1,
        destination: BROADCAST,
        status: 0x30,
        sub_tel_num: None,
        dbm: None,
        security_level: None,
    };
    assert_eq!(adt::unwrap(t.clone()), t);
    let short = Telegram {
        rorg: 0xA6,
        data: vec![0xF6, 1, 2, 3],
        ..t
    };
    assert_eq!(adt::unwrap(short.clone()), short);
    assert_eq!(adt::try_unwrap(short), Err(AdtError::TooShort(4)));
}
