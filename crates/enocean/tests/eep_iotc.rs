//! IoTC's EEPs: exact output (key, value, unit or meaning) from ESP3 bytes to IoTC's JSON.
//!
//! The first three telegrams are IoTC's published telemetry samples (product documentation,
//! "telemetry -> data"); their `data` arrays are compared verbatim. The others were worked out
//! by hand from the EEP formulas; where a public decoder has the same telegram, its source is
//! named.

// 3.14 below is a measured battery voltage, not an approximation of π.
#![allow(clippy::approx_constant)]

use enocean::eep;
use enocean::esp3::encode_frame;
use enocean::telegram::Telegram;
use serde_json::{Value, json};

/// ESP3 RADIO_ERP1 frame for `rorg | data`, sender 0x04138BB4, `status`.
fn frame(rorg_and_data: &str, status: u8) -> Vec<u8> {
    let mut erp1 = hex::decode(rorg_and_data).unwrap();
    erp1.extend_from_slice(&[0x04, 0x13, 0x8B, 0xB4, status]);
    encode_frame(0x01, &erp1, &[0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x40, 0x00])
}

fn decode(eep: &str, rorg_and_data: &str, status: u8) -> Value {
    let telegram = Telegram::from_esp3(&frame(rorg_and_data, status)).unwrap();
    let fields = eep::decode(
        eep.parse().unwrap(),
        telegram.rorg,
        &telegram.data,
        telegram.status,
    )
    .unwrap_or_else(|e| panic!("{eep} {rorg_and_data}: {e}"));
    serde_json::to_value(&fields).unwrap()
}

fn assert_decodes(eep: &str, rorg_and_data: &str, status: u8, expected: Value) {
    assert_eq!(
        decode(eep, rorg_and_data, status),
        expected,
        "{eep} {rorg_and_data}"
    );
}

fn data_telegram() -> Value {
    json!({"key": "learn", "value": "notPressed", "meaning": "Data telegram"})
}

#[test]
fn iotc_multisensor_sample() {
    assert_decodes(
        "D2-14-41",
        "d29fce800863b502a620",
        0x80,
        json!([
            {"key": "temperature", "value": 23.9, "unit": "°C"},
            {"key": "humidity", "value": 29.0, "unit": "%"},
            {"key": "illumination", "value": 67.0, "unit": "lx"},
            {"key": "accelerationStatus", "value": "heartbeat", "meaning": "Heartbeat"},
            {"key": "accelerationX", "value": -0.13, "unit": "g"},
            {"key": "accelerationY", "value": 0.08, "unit": "g"},
            {"key": "accelerationZ", "value": -0.97, "unit": "g"},
            {"key": "contact", "value": "open", "meaning": "Window opened"}
        ]),
    );
}

#[test]
fn iotc_co2_sample() {
    assert_decodes(
        "A5-09-09",
        "a500005008",
        0x01,
        json!([
            {"key": "co2", "value": 627.45, "unit": "ppm"},
            {"key": "learn", "value": "notPressed", "meaning": "Data telegram"},
            {"key": "powerFailureDetected", "value": "False", "meaning": "Power failure not detected"}
        ]),
    );
}

#[test]
fn iotc_ptm215_sample() {
    assert_decodes(
        "F6-02-04",
        "f600",
        0x20,
        json!([{"key": "energybow", "value": "released", "meaning": "Energy Bow released"}]),
    );
    assert_decodes(
        "F6-02-04",
        "f681",
        0x30,
        json!([
            {"key": "energybow", "value": "pressed", "meaning": "Energy Bow pressed"},
            {"key": "buttonA0", "value": "pressed", "meaning": "pressed"}
        ]),
    );
}

#[test]
fn temperature_and_humidity_profiles() {
    // kipe/enocean test_temperature (MIT): raw 85 -> 26.67 °C.
    assert_decodes(
        "A5-02-05",
        "a500005508",
        0,
        json!([data_telegram(), {"key": "temperature", "value": 26.67, "unit": "°C"}]),
    );
    assert_decodes(
        "A5-04-01",
        "a5007d640a",
        0,
        json!([
            data_telegram(),
            {"key": "humidity", "value": 50.0, "unit": "%"},
            {"key": "temperature", "value": 16.0, "unit": "°C"},
            {"key": "tSensor", "value": "available", "meaning": "available"}
        ]),
    );
    // reelyactive/advlib-eep-4bs (MIT) telegram; the EEP maps 0..1023 to -20..60 °C.
    assert_decodes(
        "A5-04-03",
        "a595020e09",
        0,
        json!([
            data_telegram(),
            {"key": "humidity", "value": 58.43, "unit": "%"},
            {"key": "temperature", "value": 21.13, "unit": "°C"},
            {"key": "telegramType", "value": "eventTriggered", "meaning": "Event triggered"}
        ]),
    );
}

#[test]
fn light_profiles_select_the_illumination_byte_by_range_select() {
    let supply = json!({"key": "supplyVoltage", "value": 3.0, "unit": "V"});
    let lux = json!({"key": "illumination", "value": 400.0, "unit": "lx"});
    assert_decodes(
        "A5-06-02",
        "a596006408",
        0,
        json!([data_telegram(), supply, lux,
            {"key": "rangeSelect", "value": "rangeAccToDB1", "meaning": "Range acc. to DB_1 (ILL1)"}]),
    );
    assert_decodes(
        "A5-06-02",
        "a596c80009",
        0,
        json!([data_telegram(), supply, lux,
            {"key": "rangeSelect", "value": "rangeAccToDB2", "meaning": "Range acc. to DB_2 (ILL2)"}]),
    );
    assert_decodes(
        "A5-06-03",
        "a5c87d0008",
        0,
        json!([data_telegram(),
            {"key": "supplyVoltage", "value": 4.0, "unit": "V"},
            {"key": "illumination", "value": 500.0, "unit": "lx"}]),
    );
}

#[test]
fn occupancy_profiles() {
    assert_decodes(
        "A5-07-01",
        "a5fa008009",
        0,
        json!([
            data_telegram(),
            {"key": "supplyVoltage", "value": 5.0, "unit": "V"},
            {"key": "pirStatus", "value": "pirOn", "meaning": "PIR on"},
            {"key": "supplyVoltageAvailability", "value": "supplyVoltageIsSupported", "meaning": "Supply voltage is supported"}
        ]),
    );
    // reelyactive/advlib-eep-4bs (MIT): 3.3 V, 999 lx, motion.
    assert_decodes(
        "A5-07-03",
        "a5a5f9c088",
        0,
        json!([
            data_telegram(),
            {"key": "supplyVoltage", "value": 3.3, "unit": "V"},
            {"key": "illumination", "value": 999.0, "unit": "lx"},
            {"key": "pirStatus", "value": "motionDetected", "meaning": "Motion detected"}
        ]),
    );
}

#[test]
fn light_temperature_occupancy_profiles() {
    for (eep, lux, temperature) in [
        ("A5-08-01", 200.0, 10.0),
        ("A5-08-02", 400.0, 10.0),
        ("A5-08-03", 600.0, -14.31),
    ] {
        assert_decodes(
            eep,
            "a57f64320b",
            0,
            json!([
                data_telegram(),
                {"key": "supplyVoltage", "value": 2.54, "unit": "V"},
                {"key": "illumination", "value": lux, "unit": "lx"},
                {"key": "temperature", "value": temperature, "unit": "°C"},
                {"key": "pirStatus", "value": "pirOff", "meaning": "PIR off"},
                {"key": "occupancyButton", "value": "buttonReleased", "meaning": "Button released"}
            ]),
        );
    }
}

#[test]
fn co2_profile_a5_09_04() {
    // reelyactive/advlib-eep-4bs (MIT): 990 ppm, 69 %, 15.2 °C.
    assert_decodes(
        "A5-09-04",
        "a58a634c09",
        0,
        json!([
            data_telegram(),
            {"key": "humidity", "value": 69.0, "unit": "%"},
            {"key": "co2", "value": 990.0, "unit": "ppm"},
            {"key": "temperature", "value": 15.2, "unit": "°C"},
            {"key": "hSensor", "value": "humiditySensorNotAvailable", "meaning": "Humidity Sensor not available"},
            {"key": "tSensor", "value": "temperatureSensorNotAvailable", "meaning": "Temperature Sensor not available"}
        ]),
    );
}

#[test]
fn meter_profiles_apply_divisor_and_unit_fields() {
    assert_decodes(
        "A5-12-00",
        "a50004d20a",
        0,
        json!([
            data_telegram(),
            {"key": "meterReading", "value": 12.34},
            {"key": "measurementChannel", "value": 0.0},
            {"key": "dataType", "value": "cumulativeValue", "meaning": "Cumulative value"},
            {"key": "divisor", "value": "x100", "meaning": "x/100"}
        ]),
    );
    assert_decodes(
        "A5-12-01",
        "a50004d209",
        0,
        json!([
            data_telegram(),
            {"key": "meterReading", "value": 123.4, "unit": "kWh"},
            {"key": "tariffInfo", "value": 0.0},
            {"key": "dataType", "value": "cumulativeValue", "meaning": "Cumulative value"},
            {"key": "divisor", "value": "x10", "meaning": "x/10"}
        ]),
    );
    // Current value (DT = 1) reads in W.
    let fields = decode("A5-12-01", "a50004d20d", 0);
    assert_eq!(
        fields[1],
        json!({"key": "meterReading", "value": 123.4, "unit": "W"})
    );
}

#[test]
fn vibration_profile_a5_14_05() {
    // reelyactive/advlib-eep-4bs (MIT): 3.3 V, vibration.
    assert_decodes(
        "A5-14-05",
        "a5a500000a",
        0,
        json!([
            data_telegram(),
            {"key": "supplyVoltage", "value": 3.3, "unit": "V"},
            {"key": "vibration", "value": "vibrationDetected", "meaning": "Vibration detected"}
        ]),
    );
}

#[test]
fn deuta_msc_profiles() {
    // reelyactive/advlib-eep-msc (MIT) telegrams.
    assert_decodes(
        "D1-07-10",
        "d10470a500007b",
        0x80,
        json!([{"key": "batteryVoltage", "value": 3.3, "unit": "V"}, {"key": "passageCount", "value": 123.0}]),
    );
    assert_decodes(
        "D1-07-11",
        "d104704ab8ad9d",
        0x80,
        json!([
            {"key": "soundPressure", "value": 74.0, "unit": "dB"},
            {"key": "capacitorVoltage", "value": 3.68, "unit": "V"},
            {"key": "solarVoltage", "value": 3.46, "unit": "V"},
            {"key": "batteryVoltage", "value": 3.14, "unit": "V"}
        ]),
    );
    assert_decodes(
        "D1-09-01",
        "d104700324456ca37298",
        0x80,
        json!([
            {"key": "co2", "value": 804.0, "unit": "ppm"},
            {"key": "humidity", "value": 34.5, "unit": "%"},
            {"key": "temperature", "value": 21.6, "unit": "°C"},
            {"key": "batteryVoltage", "value": 3.04, "unit": "V"}
        ]),
    );
}

#[test]
fn deuta_profiles_need_the_deuta_manufacturer_id() {
    let telegram = Telegram::from_esp3(&frame("d10570a500007b", 0x80)).unwrap();
    let result = eep::decode(
        "D1-07-10".parse().unwrap(),
        telegram.rorg,
        &telegram.data,
        telegram.status,
    );
    assert_eq!(
        result,
        Err(eep::EepError::Decode(eep::DecodeError::NoMatchingCase))
    );
}

#[test]
fn switch_actuator_status_d2_01() {
    // kipe/enocean test_vld (MIT): actuator status response, output 100 %.
    let expected = json!([
        {"key": "powerFailure", "value": "powerFailureDetectionDisabledNotSupported", "meaning": "Power Failure Detection disabled/not supported"},
        {"key": "powerFailureDetection", "value": "powerFailureNotDetectedNotSupportedDisabled", "meaning": "Power Failure not detected/not supported/disabled"},
        {"key": "commandID", "value": "id04", "meaning": "ID 04"},
        {"key": "overCurrentSwitchOff", "value": "overCurrentSwitchOffReadyNotSupported", "meaning": "Over current switch off: ready / not supported"},
        {"key": "errorLevel", "value": "errorLevel0", "meaning": "Error level 0: hardware OK"},
        {"key": "ioChannel", "value": 0.0},
        {"key": "localControl", "value": "localControlDisabledNotSupported", "meaning": "Local control disabled / not supported"},
        {"key": "outputValue", "value": 100.0}
    ]);
    assert_decodes("D2-01-0B", "d2040064", 0, expected.clone());
    assert_decodes("D2-01-0F", "d2040064", 0, expected);
}

#[test]
fn d2_01_cases_follow_the_command_field() {
    // CMD 7 (actuator measurement response): unit in UN, value 32 bits.
    let fields = decode("D2-01-0B", "d207600000012c", 0);
    assert_eq!(
        fields[0],
        json!({"key": "commandID", "value": "id07", "meaning": "ID 07"})
    );
    assert_eq!(
        fields[1],
        json!({"key": "unit", "value": "powerW", "meaning": "Power [W]"})
    );
    assert_eq!(
        fields[3],
        json!({"key": "measurementValue", "value": 300.0, "unit": "W"})
    );
}

#[test]
fn multisensor_without_contact_d2_14_40() {
    assert_decodes(
        "D2-14-40",
        "d29fce800863b502a620",
        0x80,
        json!([
            {"key": "temperature", "value": 23.9, "unit": "°C"},
            {"key": "humidity", "value": 29.0, "unit": "%"},
            {"key": "illumination", "value": 67.0, "unit": "lx"},
            {"key": "accelerationStatus", "value": "heartbeat", "meaning": "Heartbeat"},
            {"key": "accelerationX", "value": -0.13, "unit": "g"},
            {"key": "accelerationY", "value": 0.08, "unit": "g"},
            {"key": "accelerationZ", "value": -0.97, "unit": "g"}
        ]),
    );
}

#[test]
fn multisensor_error_and_threshold_values() {
    // Temperature 1023 = error, acceleration status 2, X = 1022 (over range), contact closed.
    let fields = decode("D2-14-41", "d2ffc0000017fcfa3e90", 0x80);
    assert_eq!(
        fields[0],
        json!({"key": "temperature", "value": "temperatureError", "meaning": "Error"})
    );
    assert_eq!(
        fields[3],
        json!({"key": "accelerationStatus", "value": "threshold2", "meaning": "Threshold 2 exceeded"})
    );
    assert_eq!(
        fields[4],
        json!({"key": "accelerationX", "value": "overrange", "meaning": "Out of Range positive"})
    );
    assert_eq!(
        fields[7],
        json!({"key": "contact", "value": "closed", "meaning": "Window closed"})
    );
}

#[test]
fn people_activity_counter_d2_15_00() {
    // reelyactive/advlib-eep-vld (MIT) telegram: present (advlib: motion), 12345 counts. The
    // EEP's first byte also holds energy storage 0 (high) and update rate raw 10 (11 s).
    assert_decodes(
        "D2-15-00",
        "d20a3039",
        0,
        json!([
            {"key": "presence", "value": "present", "meaning": "Present"},
            {"key": "energyStorage", "value": "high", "meaning": "High"},
            {"key": "pirUpdateRate", "value": 11.0, "unit": "s"},
            {"key": "pirUpdateCounter", "value": 12345.0}
        ]),
    );
    // 01 10 0000: not present, energy low, 1 s; counter 1.
    assert_decodes(
        "D2-15-00",
        "d2600001",
        0,
        json!([
            {"key": "presence", "value": "notPresent", "meaning": "Not present"},
            {"key": "energyStorage", "value": "low", "meaning": "Low"},
            {"key": "pirUpdateRate", "value": 1.0, "unit": "s"},
            {"key": "pirUpdateCounter", "value": 1.0}
        ]),
    );
    // 10 01 0000: not detectable, energy medium.
    let fields = decode("D2-15-00", "d2900000", 0);
    assert_eq!(
        fields[0],
        json!({"key": "presence", "value": "notDetectable", "meaning": "Not detectable"})
    );
    assert_eq!(
        fields[1],
        json!({"key": "energyStorage", "value": "medium", "meaning": "Medium"})
    );
    // 11 11 1111: detection error, energy critical, 16 s.
    let fields = decode("D2-15-00", "d2ffffff", 0);
    assert_eq!(
        fields[0],
        json!({"key": "presence", "value": "presenceDetectionError", "meaning": "Presence Detection Error"})
    );
    assert_eq!(
        fields[1],
        json!({"key": "energyStorage", "value": "critical", "meaning": "Critical"})
    );
    assert_eq!(
        fields[2],
        json!({"key": "pirUpdateRate", "value": 16.0, "unit": "s"})
    );
}

#[test]
fn sound_illumination_presence_temperature_d2_14_52() {
    // Temperature 9 bits (0..500 = 0..50 °C), illumination 17 bits (lx), presence 2 bits,
    // sound pressure 11 bits (0..2046 = 0..204.6 dB), 1 reserved bit.
    // 011100001 00000001000001000 00 00111000101 0 = 225, 520, 0, 453.
    assert_decodes(
        "D2-14-52",
        "d2708082038a",
        0,
        json!([
            {"key": "temperature", "value": 22.5, "unit": "°C"},
            {"key": "illumination", "value": 520.0, "unit": "lx"},
            {"key": "presence", "value": "present", "meaning": "Present"},
            {"key": "soundPressure", "value": 45.3, "unit": "dB"}
        ]),
    );
    // Range ends: 0 °C, 100000 lx, not present, 204.6 dB.
    assert_decodes(
        "D2-14-52",
        "d20061a81ffc",
        0,
        json!([
            {"key": "temperature", "value": 0.0, "unit": "°C"},
            {"key": "illumination", "value": 100000.0, "unit": "lx"},
            {"key": "presence", "value": "notPresent", "meaning": "Not present"},
            {"key": "soundPressure", "value": 204.6, "unit": "dB"}
        ]),
    );
    // 50 °C, 0 lx, not detectable, 0 dB.
    assert_decodes(
        "D2-14-52",
        "d2fa00002000",
        0,
        json!([
            {"key": "temperature", "value": 50.0, "unit": "°C"},
            {"key": "illumination", "value": 0.0, "unit": "lx"},
            {"key": "presence", "value": "notDetectable", "meaning": "Not detectable"},
            {"key": "soundPressure", "value": 0.0, "unit": "dB"}
        ]),
    );
    // All ones: temperature 511 and sound 2047 are errors, illumination reserved.
    assert_decodes(
        "D2-14-52",
        "d2fffffffffe",
        0,
        json!([
            {"key": "temperature", "value": "error", "meaning": "Error"},
            {"key": "illumination", "value": "reserved", "meaning": "Reserved"},
            {"key": "presence", "value": "presenceDetectorError", "meaning": "Presence Detector error"},
            {"key": "soundPressure", "value": "error", "meaning": "Error"}
        ]),
    );
}

#[test]
fn d2_14_52_reports_undefined_temperatures_and_rejects_short_data() {
    // Temperature raw 501 (1 1111 0101) is neither a reading nor the error value: reported as
    // reserved with its raw value, the other fields kept (issue 15).
    let out = decode("D2-14-52", "d2fa80000000", 0);
    assert_eq!(
        out[0],
        json!({"key": "temperature", "value": 501.0, "meaning": "reserved"})
    );
    assert_eq!(out.as_array().unwrap().len(), 4, "{out}");
    let result = eep::decode(
        "D2-14-52".parse().unwrap(),
        0xD2,
        &[0x70, 0x80, 0x82, 0x03],
        0,
    );
    assert!(
        matches!(
            result,
            Err(eep::EepError::Decode(eep::DecodeError::Length { .. }))
        ),
        "{result:?}"
    );
}

#[test]
fn level_sensor_dispenser_d2_b1_00() {
    // Channel 2, level raw 191 of 255 (74.9 %), error code 0, reserved bit.
    assert_decodes(
        "D2-B1-00",
        "d202bf00",
        0,
        json!([
            {"key": "channelNumber", "value": 2.0},
            {"key": "levelOfMaterial", "value": 74.9, "unit": "%"},
            {"key": "errorCode", "value": "noError", "meaning": "No Error"}
        ]),
    );
    // Channel 0, empty (level 0), error code 2 in bits 16-22 (byte 0x04).
    assert_decodes(
        "D2-B1-00",
        "d2000004",
        0,
        json!([
            {"key": "channelNumber", "value": 0.0},
            {"key": "levelOfMaterial", "value": 0.0, "unit": "%"},
            {"key": "errorCode", "value": "deviceEmpty", "meaning": "Device empty"}
        ]),
    );
    // Full on channel 255; the other error codes.
    let fields = decode("D2-B1-00", "d2ffff0b", 0);
    assert_eq!(fields[0], json!({"key": "channelNumber", "value": 255.0}));
    assert_eq!(
        fields[1],
        json!({"key": "levelOfMaterial", "value": 100.0, "unit": "%"})
    );
    assert_eq!(
        fields[2],
        json!({"key": "errorCode", "value": "communicationErrorWithSensors", "meaning": "Communication error with sensors"})
    );
    for (byte, name, meaning) in [
        ("02", "measurementsNotReliable", "Measurements not reliable"),
        ("06", "loopLineAtGround", "Loop line at ground"),
        (
            "08",
            "malfunctionOfInternalIRSensor",
            "malfunction of internal IR-sensor",
        ),
    ] {
        let fields = decode("D2-B1-00", &format!("d20180{byte}"), 0);
        assert_eq!(
            fields[2],
            json!({"key": "errorCode", "value": name, "meaning": meaning})
        );
    }
}

#[test]
fn d2_b1_00_reports_undefined_error_codes() {
    // Error code 6 (byte 0x0C) is not defined: reported as reserved, channel and level kept.
    let out = decode("D2-B1-00", "d202bf0c", 0);
    assert_eq!(
        out[2],
        json!({"key": "errorCode", "value": 6.0, "meaning": "reserved"})
    );
    assert_eq!(out[1]["key"], "levelOfMaterial", "{out}");
}

#[test]
fn new_profiles_encode_to_the_bytes_decoded_above() {
    let (rorg, data, _) = eep::encode(
        "D2-14-52".parse().unwrap(),
        &[("TMP", 22.5), ("ILL", 520.0), ("PS", 0.0), ("SPL", 45.3)],
    )
    .unwrap();
    assert_eq!((rorg, hex::encode(data)), (0xD2, "708082038a".to_string()));
    let (rorg, data, _) = eep::encode(
        "D2-B1-00".parse().unwrap(),
        &[("CH", 2.0), ("LVL", 74.9), ("ERR", 0.0)],
    )
    .unwrap();
    assert_eq!((rorg, hex::encode(data)), (0xD2, "02bf00".to_string()));
    let (_, data, _) = eep::encode(
        "D2-15-00".parse().unwrap(),
        &[("PS", 0.0), ("ES", 0.0), ("PUR", 11.0), ("PAC", 12345.0)],
    )
    .unwrap();
    assert_eq!(hex::encode(data), "0a3039");
}

#[test]
fn current_clamps_d2_32() {
    // reelyactive/advlib-eep-vld (MIT) telegrams.
    let power_ok = json!({"key": "powerFail", "value": "false", "meaning": "False"});
    assert_decodes(
        "D2-32-00",
        "d2004d20",
        0,
        json!([power_ok, {"key": "divisor", "value": "x1", "meaning": "x/1"},
            {"key": "channel1", "value": 1234.0, "unit": "A"}]),
    );
    assert_decodes(
        "D2-32-01",
        "d2404d2141",
        0,
        json!([power_ok, {"key": "divisor", "value": "x10", "meaning": "x/10"},
            {"key": "channel1", "value": 123.4, "unit": "A"}, {"key": "channel2", "value": 32.1, "unit": "A"}]),
    );
    assert_decodes(
        "D2-32-02",
        "d2004d21410010",
        0,
        json!([power_ok, {"key": "divisor", "value": "x1", "meaning": "x/1"},
            {"key": "channel1", "value": 1234.0, "unit": "A"}, {"key": "channel2", "value": 321.0, "unit": "A"},
            {"key": "channel3", "value": 1.0, "unit": "A"}]),
    );
}

#[test]
fn single_input_contact_d5_00_01() {
    assert_decodes(
        "D5-00-01",
        "d509",
        0,
        json!([
            {"key": "contact", "value": "closed", "meaning": "closed"},
            {"key": "learn", "value": "notPressed", "meaning": "not pressed"}
        ]),
    );
}
