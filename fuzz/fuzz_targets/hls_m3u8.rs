#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hls::fuzzing::m3u8(data));
