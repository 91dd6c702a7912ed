//! Token decoding, verification and key-file parsing must never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jitsh::token::fuzz_decode(data);
});
