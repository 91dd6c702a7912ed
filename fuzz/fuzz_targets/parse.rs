//! Parse arbitrary bytes; parse its canonical print again. Must never panic or overflow.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jitsh::syntax::fuzz_parse(data));
