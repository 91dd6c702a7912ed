use super::*;

#[test]
fn builtin_data_loads() {
    let catalog = build_builtin().unwrap();
    assert!(catalog.command("get-mailbox").is_some());
}
