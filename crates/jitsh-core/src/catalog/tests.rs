use super::*;

#[test]
fn builtin_data_loads_without_fallback() {
    // `builtin()` swallows a load error (an empty catalog is the restrictive outcome); here it
    // must not happen, and the line index must be the path taken.
    let exchange = Catalog::from_embedded_lines(EXCHANGE_JSON).unwrap();
    let common = Catalog::from_embedded_lines(COMMON_JSON).unwrap();
    assert_eq!(exchange.commands.len(), 1437);
    assert!(common.commands.len() >= 80);
    let catalog = build_builtin().unwrap();
    assert_eq!(
        catalog.commands.len(),
        exchange.commands.len() + common.commands.len()
    );
}

#[test]
fn lazy_conversion_equals_eager_parse() {
    for text in [EXCHANGE_JSON, COMMON_JSON] {
        let lazy = Catalog::from_embedded_lines(text).unwrap();
        let eager = Catalog::from_json(text).unwrap();
        assert_eq!(lazy.commands.len(), eager.commands.len());
        for (l, e) in lazy.commands.iter().zip(&eager.commands) {
            assert!(matches!(l, Slot::Lazy { .. }));
            assert_eq!(l.meta(), e.meta(), "{}", l.name());
        }
    }
}

#[test]
fn embedded_layout_errors_are_reported() {
    let ok = "{\"format\":1,\"commands\":[\n{\"name\":\"A-B\",\"parameters\":[]}\n]}\n";
    assert_eq!(Catalog::from_embedded_lines(ok).unwrap().commands.len(), 1);
    for bad in [
        "",
        "{\"format\":1,\"commands\":[\n{\"name\":\"A-B\",\"parameters\":[]}\n",
        "{\"format\":1,\"commands\":[\n{\"parameters\":[],\"name\":\"A-B\"}\n]}\n",
        "{\"format\":1,\"commands\":[\n]}\n{}\n",
        "[\n]}\n",
    ] {
        assert!(Catalog::from_embedded_lines(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        Catalog::from_embedded_lines("{\"format\":9,\"commands\":[\n]}\n"),
        Err(CatalogError::Version { found: 9 })
    ));
    // A line whose object does not match its indexed name reads as unknown, not as the wrong
    // command.
    let lying =
        "{\"format\":1,\"commands\":[\n{\"name\":\"A-B\",\"parameters\":[],\"name\":\"C-D\"}\n]}\n";
    let c = Catalog::from_embedded_lines(lying).unwrap();
    assert!(c.command("A-B").is_none());
}

#[test]
fn string_like_and_script_block_types() {
    let p = |t: &str| ParamMeta {
        name: "P".into(),
        aliases: vec![],
        type_name: t.into(),
        switch: false,
        pipeline_by_value: false,
        pipeline_by_property_name: false,
    };
    for t in ["String", "string[]", "System.String", "System.String[]"] {
        assert!(p(t).is_string_like(), "{t}");
    }
    for t in [
        "MultiValuedProperty",
        "Object",
        "PSObject",
        "",
        "Strings",
        "ScriptBlock",
    ] {
        assert!(!p(t).is_string_like(), "{t}");
    }
    for t in [
        "ScriptBlock",
        "ScriptBlock[]",
        "System.Management.Automation.ScriptBlock",
    ] {
        assert!(p(t).is_script_block(), "{t}");
    }
    assert!(!p("String").is_script_block());
}

#[test]
fn debug_output_is_a_summary() {
    let text = format!("{:?}", Catalog::builtin());
    assert!(text.starts_with("Catalog { commands: "), "{text}");
    assert!(text.len() < 100);
}

/// Start-up cost of the embedded data (debug build):
/// `cargo test --lib catalog::tests::measure_parse_time -- --ignored --nocapture`
#[test]
#[ignore = "measurement, prints timings"]
fn measure_parse_time() {
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let c = build_builtin().unwrap();
        let init = t.elapsed();
        let t = std::time::Instant::now();
        let _ = c.command("Set-Mailbox").unwrap();
        let one = t.elapsed();
        let t = std::time::Instant::now();
        let n = c.command_names().filter_map(|n| c.command(n)).count();
        eprintln!(
            "index {init:?}; Set-Mailbox {one:?}; converting all {n} commands {:?}",
            t.elapsed()
        );
    }
}
