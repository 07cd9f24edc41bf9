#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| media::fuzzing::annex_b(data));
