#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| events::fuzzing::cluster_key(data));
