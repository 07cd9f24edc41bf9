#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mp4::fuzzing::boxes(data));
