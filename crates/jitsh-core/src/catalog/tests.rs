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
        class: TypeClass::of(t),
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

#[test]
fn type_class_is_the_documented_types_reading() {
    let class = TypeClass::of;
    for t in [
        "ScriptBlock",
        "scriptblock[]",
        "System.Management.Automation.ScriptBlock",
        "System.Management.Automation.ScriptBlock[]",
        " ScriptBlock ",
    ] {
        let c = class(t);
        assert!(
            c.script_block && !c.string_like && !c.is_object() && !c.is_undocumented(),
            "{t}"
        );
    }
    for t in [
        "String",
        "string[]",
        "System.String",
        "System.String[]",
        " String ",
    ] {
        let c = class(t);
        assert!(c.string_like && !c.script_block && !c.is_object(), "{t}");
    }
    for t in [
        "Object",
        "object[]",
        "PSObject",
        "psobject[]",
        "System.Object",
        "SYSTEM.OBJECT[]",
        "System.PSObject",
        " Object ",
    ] {
        let c = class(t);
        assert!(c.is_object() && !c.script_block && !c.string_like, "{t}");
    }
    for t in ["", "  "] {
        assert!(class(t).is_undocumented(), "`{t}`");
    }
    let none = TypeClass {
        script_block: false,
        string_like: false,
        object: false,
        undocumented: false,
        value: ValueKind::Text,
    };
    for t in [
        "Strings",
        "ScriptBlocks",
        "MultiValuedProperty",
        "MailboxIdParameter",
        "Objects",
        "system.management.automation.scriptblock",
        "Microsoft.PowerShell.Object",
    ] {
        assert_eq!(class(t), none, "{t}");
    }
}

/// How a parameter converts its value follows its documented type, with or without `System.`,
/// in any case, and for arrays of a type; every other type takes the value as given.
#[test]
fn value_kinds_follow_the_documented_type() {
    for (t, want) in [
        ("Boolean", ValueKind::Boolean),
        ("System.Boolean", ValueKind::Boolean),
        ("SwitchParameter", ValueKind::Boolean),
        (
            "System.Management.Automation.SwitchParameter",
            ValueKind::Boolean,
        ),
        ("Int32", ValueKind::Integer),
        ("System.Int32", ValueKind::Integer),
        ("Int32[]", ValueKind::Integer),
        ("UInt32", ValueKind::Integer),
        ("System.UInt64", ValueKind::Integer),
        ("Int64[]", ValueKind::Integer),
        ("Int16", ValueKind::Integer),
        ("Byte[]", ValueKind::Integer),
        ("int32", ValueKind::Integer),
        ("Double", ValueKind::Float),
        ("Decimal", ValueKind::Float),
        ("Unlimited", ValueKind::Unlimited),
        ("UnlimitedInt", ValueKind::Unlimited),
        (
            "Microsoft.Exchange.Management.RestApiClient.Unlimited`1[System.UInt32]",
            ValueKind::Unlimited,
        ),
        ("ByteQuantifiedSize", ValueKind::Size),
        (
            "Microsoft.Exchange.Data.ByteQuantifiedSize",
            ValueKind::Size,
        ),
        ("String", ValueKind::Text),
        ("MailboxIdParameter", ValueKind::Text),
        ("LocalLongFullPath", ValueKind::Text),
        ("Int32Parameter", ValueKind::Text),
        ("", ValueKind::Text),
    ] {
        assert_eq!(TypeClass::of(t).value_kind(), want, "{t}");
    }
}

/// The class every loaded parameter carries is the one its type text gives: a parameter read
/// with a stale or missing class would let a computed script block pass as data.
#[test]
fn every_builtin_parameter_carries_its_types_class() {
    let catalog = Catalog::builtin();
    let mut checked = 0usize;
    let mut script_blocks = 0usize;
    for name in catalog.command_names() {
        let Some(meta) = catalog.command(name) else {
            continue;
        };
        for p in meta.parameters.iter().chain(common_parameters()) {
            assert_eq!(
                p.class,
                TypeClass::of(&p.type_name),
                "{name} -{} ({})",
                p.name,
                p.type_name
            );
            checked += 1;
            script_blocks += usize::from(p.is_script_block());
        }
    }
    assert!(checked > 10_000, "only {checked} parameters checked");
    assert!(
        script_blocks > 10,
        "only {script_blocks} script block parameters"
    );
}

/// The eight-bytes-at-a-time lowercasing agrees with `to_ascii_lowercase` for every ASCII byte
/// at every position of names from 1 to 64 bytes (`@`, `[`, `` ` `` and `{` included, just
/// outside the letters), whatever the buffer held before, and refuses names with a non-ASCII
/// character anywhere or longer than its buffer.
#[test]
fn ascii_lowering_eight_bytes_at_a_time_agrees_with_the_standard_one() {
    let mut buf = [0u8; 64];
    for len in 1..=64usize {
        for at in 0..len {
            for b in 0u8..=0x7f {
                let mut name = vec![b'q'; len];
                name[at] = b;
                name[len - 1 - at] = b'Q';
                let text = String::from_utf8(name).unwrap();
                assert_eq!(
                    ascii_lower(&text, &mut buf),
                    Some(text.to_ascii_lowercase().as_bytes()),
                    "{text:?}"
                );
            }
        }
        if len >= 2 {
            let wide = "x".repeat(len % 2) + &"É".repeat(len / 2);
            assert_eq!(ascii_lower(&wide, &mut buf), None, "{wide}");
        }
    }
    // Whatever the buffer held after the name does not count: here, high bytes.
    for len in 1..=64usize {
        let mut dirty = [0xffu8; 64];
        let name: String = "Get-MailboxStatistics-".chars().cycle().take(len).collect();
        assert_eq!(
            ascii_lower(&name, &mut dirty),
            Some(name.to_ascii_lowercase().as_bytes()),
            "{name}"
        );
    }
    let at_the_end = "get-mailbox".to_string() + "\u{e9}";
    assert_eq!(ascii_lower(&at_the_end, &mut buf), None);
    assert_eq!(ascii_lower(&"A".repeat(65), &mut buf), None);
    assert_eq!(ascii_lower("", &mut buf), Some(&b""[..]));
}
