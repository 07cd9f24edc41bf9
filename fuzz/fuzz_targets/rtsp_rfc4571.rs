#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtsp::fuzzing::rfc4571(data));
