//! Generated policy sets for benchmarks and load tests: realistic rule shapes at any size.

use std::fmt::Write as _;

const VERBS: [&str; 12] = [
    "Get", "Set", "New", "Remove", "Add", "Enable", "Disable", "Test", "Start", "Stop", "Update",
    "Search",
];

/// TOML text of `n_rules` rules: mostly exact names (`Set-Noun123`), every 10th a prefix glob
/// (`Get-Noun123*`), every 25th a suffix glob, every 7th with a `params` constraint and every
/// 11th with `when.any_param`; a third of them are approval rules with approvers. Ids are
/// `r0`, `r1`, ...; rule `r0` allows `Get-*` so ordinary read commands match something.
pub fn synthetic_policy_set(n_rules: usize) -> String {
    let mut s = String::with_capacity(n_rules * 160 + 256);
    s.push_str("[defaults]\nunmatched = \"deny\"\ndynamic = \"deny\"\n");
    for i in 0..n_rules {
        let verb = VERBS.get(i % VERBS.len()).copied().unwrap_or("Get");
        let task = if i == 0 {
            "Get-*".to_string()
        } else if i % 25 == 0 {
            format!("*-Thing{i}")
        } else if i % 10 == 0 {
            format!("{verb}-Noun{i}*")
        } else {
            format!("{verb}-Noun{i}")
        };
        let effect = match i % 3 {
            0 => "allow",
            1 => "approval",
            _ => "deny",
        };
        // `write!` into a String cannot fail.
        let _ = write!(
            s,
            "\n[[rule]]\nid = \"r{i}\"\neffect = \"{effect}\"\ntasks = [\"{task}\"]\n"
        );
        if effect == "approval" {
            s.push_str("approvers = [\"mbmanagers\"]\nmax_duration = \"4h\"\n");
        }
        if i % 7 == 3 {
            s.push_str("params.only = [\"Identity\", \"DisplayName\"]\n");
            s.push_str("params.Identity = { glob = \"*@contoso.com\" }\n");
        } else if i % 11 == 5 {
            s.push_str("when.any_param = [\"ForwardingSmtpAddress\", \"ForwardingAddress\"]\n");
        } else if i % 97 == 13 {
            s.push_str("params.Identity = { regex = \"[a-z]+\\\\.[a-z]+@contoso\\\\.com\" }\n");
        }
    }
    s
}
