use super::*;

#[test]
fn builtin_data_loads() {
    let catalog = build_builtin().unwrap();
    assert!(catalog.command("get-mailbox").is_some());
}

#[test]
fn parse_time_probe() {
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let c = build_builtin().unwrap();
        let init = t.elapsed();
        let t = std::time::Instant::now();
        let n = c.command_names().filter_map(|n| c.command(n)).count();
        eprintln!("init {:?} full {:?} {}", init, t.elapsed(), n);
    }
}
