#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| outputs::fuzzing::webrtc_frame(data));
