//! TEMPORARY stand-in for `crate::catalog` with exactly its agreed API, so the resolver compiles
//! and is tested before the real catalog lands. Deleted when `crate::catalog` is merged.

use std::sync::OnceLock;

#[derive(Debug)]
pub struct Catalog {
    commands: Vec<CommandMeta>,
    aliases: Vec<(String, String)>,
}

#[derive(Debug)]
pub struct CatalogError;

#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub name: String,
    pub module: String,
    pub parameters: Vec<ParamMeta>,
    pub parameter_sets: Vec<ParamSet>,
}

#[derive(Debug, Clone)]
pub struct ParamSet {
    pub name: String,
    pub positional: Vec<(String, usize)>,
}

#[derive(Debug, Clone)]
pub struct ParamMeta {
    pub name: String,
    pub aliases: Vec<String>,
    pub type_name: String,
    pub switch: bool,
    pub pipeline_by_value: bool,
    pub pipeline_by_property_name: bool,
}

#[derive(Debug)]
pub enum ParamLookup<'a> {
    Found(&'a ParamMeta),
    Ambiguous(Vec<&'a str>),
    NotFound,
}

impl ParamMeta {
    pub fn is_script_block(&self) -> bool {
        self.type_name.eq_ignore_ascii_case("ScriptBlock")
    }
    pub fn is_string_like(&self) -> bool {
        matches!(self.type_name.to_ascii_lowercase().as_str(), "string" | "system.string")
    }
}

fn p(name: &str, ty: &str, by_value: bool, by_prop: bool) -> ParamMeta {
    ParamMeta {
        name: name.into(),
        aliases: if name == "Confirm" { vec!["cf".into()] } else { vec![] },
        type_name: ty.into(),
        switch: ty == "SwitchParameter",
        pipeline_by_value: by_value,
        pipeline_by_property_name: by_prop,
    }
}

fn cmd(name: &str, params: Vec<ParamMeta>, positional: &[(&str, usize)]) -> CommandMeta {
    let mut parameters = params;
    for common in ["Confirm", "WhatIf", "Verbose", "Debug", "ErrorAction", "WarningAction", "OutVariable"] {
        let ty = if matches!(common, "Confirm" | "WhatIf" | "Verbose" | "Debug") { "SwitchParameter" } else { "String" };
        parameters.push(p(common, ty, false, false));
    }
    CommandMeta {
        name: name.into(),
        module: "ExchangePowerShell".into(),
        parameters,
        parameter_sets: vec![ParamSet {
            name: "(All)".into(),
            positional: positional.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
        }],
    }
}

impl Catalog {
    pub fn builtin() -> &'static Catalog {
        static C: OnceLock<Catalog> = OnceLock::new();
        C.get_or_init(|| Catalog {
            commands: vec![
                cmd("Get-Mailbox", vec![p("Identity", "MailboxIdParameter", true, false), p("Filter", "String", false, false), p("ResultSize", "Unlimited", false, false), p("Anr", "String", false, false)], &[("Identity", 0)]),
                cmd("Set-Mailbox", vec![p("Identity", "MailboxIdParameter", true, false), p("DisplayName", "String", false, false), p("ForwardingSmtpAddress", "ProxyAddress", false, false), p("ForwardingAddress", "RecipientIdParameter", false, false), p("EmailAddresses", "ProxyAddressCollection", false, false)], &[("Identity", 0)]),
                cmd("New-MoveRequest", vec![p("Identity", "MailboxOrMailUserIdParameter", true, false), p("TargetDatabase", "DatabaseIdParameter", false, false)], &[("Identity", 0)]),
                cmd("Get-Recipient", vec![p("Identity", "RecipientIdParameter", true, false), p("RecipientPreviewFilter", "String", false, false), p("Filter", "String", false, false)], &[("Identity", 0)]),
                cmd("Where-Object", vec![p("FilterScript", "ScriptBlock", false, false), p("InputObject", "PSObject", true, false)], &[("FilterScript", 0)]),
                cmd("ForEach-Object", vec![p("Process", "ScriptBlock[]", false, false), p("InputObject", "PSObject", true, false)], &[("Process", 0)]),
                cmd("Invoke-Command", vec![p("ScriptBlock", "ScriptBlock", false, false), p("ComputerName", "String[]", false, false)], &[("ScriptBlock", 0)]),
                cmd("Invoke-Expression", vec![p("Command", "String", true, false)], &[("Command", 0)]),
                cmd("Get-Date", vec![p("Date", "DateTime", true, false)], &[("Date", 0)]),
                cmd("Select-Object", vec![p("Property", "Object[]", false, false), p("First", "Int32", false, false), p("ExpandProperty", "String", false, false)], &[("Property", 0)]),
                cmd("Format-Table", vec![p("Property", "Object[]", false, false), p("AutoSize", "SwitchParameter", false, false)], &[("Property", 0)]),
                cmd("Set-User", vec![p("Identity", "UserIdParameter", true, false), p("Notes", "String", false, true)], &[("Identity", 0)]),
            ],
            aliases: [("?", "Where-Object"), ("where", "Where-Object"), ("%", "ForEach-Object"), ("foreach", "ForEach-Object"), ("iex", "Invoke-Expression"), ("icm", "Invoke-Command"), ("select", "Select-Object"), ("ft", "Format-Table")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        })
    }

    pub fn command(&self, name: &str) -> Option<&CommandMeta> {
        self.commands.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn resolve_alias(&self, name: &str) -> Option<&str> {
        self.aliases.iter().find(|(a, _)| a.eq_ignore_ascii_case(name)).map(|(_, t)| t.as_str())
    }
}

impl CommandMeta {
    pub fn lookup_param(&self, written: &str) -> ParamLookup<'_> {
        if let Some(p) = self.parameters.iter().find(|p| {
            p.name.eq_ignore_ascii_case(written) || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(written))
        }) {
            return ParamLookup::Found(p);
        }
        let lw = written.to_ascii_lowercase();
        let hits: Vec<&ParamMeta> = self.parameters.iter().filter(|p| p.name.to_ascii_lowercase().starts_with(&lw)).collect();
        match hits.as_slice() {
            [one] => ParamLookup::Found(one),
            [] => ParamLookup::NotFound,
            many => ParamLookup::Ambiguous(many.iter().map(|p| p.name.as_str()).collect()),
        }
    }

    pub fn positional_param(&self, index: usize, named: &[&str]) -> Option<&ParamMeta> {
        let set = self.parameter_sets.first()?;
        let (name, _) = set.positional.iter().find(|(n, i)| *i == index && !named.iter().any(|m| m.eq_ignore_ascii_case(n)))?;
        self.parameters.iter().find(|p| &p.name == name)
    }
}
