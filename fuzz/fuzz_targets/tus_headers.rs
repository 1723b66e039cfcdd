#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| monsoon_fuzzing::tus_headers(data));
