//! Property tests for the parser: no panics on arbitrary input, and print+reparse keeps the
//! invocations.

use jitsh::syntax::{parse, print};

#[test]
fn corpus_quick() {
    let Ok(text) = std::fs::read_to_string("/work/shared/corpus/exchange-examples.jsonl") else { return };
    let mut fails = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = v["text"].as_str().unwrap();
        match parse(t) {
            Ok(s) => { let p = print(&s); if let Err(e) = parse(&p) { println!("REPRINT {} {:?}\n{}\n", v["id"], e, p); } }
            Err(e) => { fails += 1; println!("FAIL {} {:?}\n{}\n", v["id"], e, t); }
        }
    }
    println!("fails {fails}");
}
