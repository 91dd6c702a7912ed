//! PowerShell's default alias table.
//!
//! Every alias a fresh Windows PowerShell 5.1 or PowerShell 7 session defines, plus those a
//! module exports on autoload, with the shells and platforms that define it (PowerShell's
//! `InitialSessionState.cs`: `#if !UNIX` leaves aliases that shadow native tools out on Linux
//! and macOS, `#if !CORECLR` keeps some to Windows PowerShell 5.1). What a name means on the
//! runspace's [`Platform`] is [`Shell::on`]. Targets are canonical command names; a few name
//! functions (`help`, `mkdir`) or an application (`powershell_ise.exe`) rather than cmdlets.

use std::sync::OnceLock;

use serde::Serialize;

/// The operating system the runspace runs on, as far as name resolution depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// Windows: Windows PowerShell 5.1 (the Exchange Management Shell) or PowerShell 7.
    Windows,
    /// Linux or macOS: PowerShell 7, where `sort`, `ls`, `ps`, `kill` … are native programs.
    Unix,
    /// Not known: a name whose meaning depends on the platform is uncertain.
    #[default]
    Unknown,
}

impl Platform {
    /// The platform as written in a policy or on the command line.
    pub fn parse(text: &str) -> Option<Platform> {
        match text {
            "windows" => Some(Platform::Windows),
            "unix" => Some(Platform::Unix),
            "unknown" => Some(Platform::Unknown),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Windows => "windows",
            Platform::Unix => "unix",
            Platform::Unknown => "unknown",
        }
    }
}

/// What a default alias name runs on a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasUse {
    /// The alias's target command.
    Alias,
    /// Not an alias there: the native program of that name on `PATH`.
    Program,
    /// Either, depending on the platform or the shell, which are not known.
    Uncertain,
}

impl Shell {
    /// What an alias defined by this shell runs on `platform`. On Linux and macOS only
    /// PowerShell 7 exists, without the Windows-only aliases and modules. On Windows an alias
    /// only Windows PowerShell 5.1 defines is uncertain: PowerShell 7 runs the native program
    /// of that name (`sc` is `sc.exe`, `curl` is `curl.exe`), and the platform setting does not
    /// say which shell runs.
    pub fn on(self, platform: Platform) -> AliasUse {
        match (self, platform) {
            (Shell::Both, _) => AliasUse::Alias,
            (Shell::WindowsPowerShell51, Platform::Windows) => AliasUse::Uncertain,
            (_, Platform::Windows) => AliasUse::Alias,
            (_, Platform::Unix) => AliasUse::Program,
            (_, Platform::Unknown) => AliasUse::Uncertain,
        }
    }
}

/// The default alias named `name` (case-insensitive), if there is one.
///
/// Asked for every command of every line, and most commands are no alias: one hashed probe,
/// case folded as the name is hashed, instead of a scan of the table. Every alias is ASCII,
/// so a name that is not equals none of them ignoring ASCII case; for an ASCII name, folding
/// both sides is exactly `eq_ignore_ascii_case`. The first entry of a name wins, as a scan in
/// table order would find it.
pub fn builtin_alias(name: &str) -> Option<&'static AliasEntry> {
    static BY_LOWER: OnceLock<super::ci_map::CiMap<&'static AliasEntry>> = OnceLock::new();
    let by_lower = BY_LOWER.get_or_init(|| {
        let mut map = super::ci_map::CiMap::with_capacity(DEFAULT_ALIASES.len());
        for e in DEFAULT_ALIASES {
            map.insert_first(e.alias, e);
        }
        map
    });
    if !name.is_ascii() {
        return None;
    }
    by_lower.get(name).copied()
}

/// Which shell defines an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// Windows PowerShell 5.1 and PowerShell 7, on every platform.
    Both,
    /// Windows PowerShell 5.1 and PowerShell 7 on Windows; not PowerShell 7 on Linux or macOS.
    Windows,
    /// Windows PowerShell 5.1 only.
    WindowsPowerShell51,
    /// The CimCmdlets module (both shells, on autoload).
    CimCmdletsModule,
}

/// One default alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasEntry {
    pub alias: &'static str,
    pub target: &'static str,
    pub shell: Shell,
}

const fn a(alias: &'static str, target: &'static str, shell: Shell) -> AliasEntry {
    AliasEntry {
        alias,
        target,
        shell,
    }
}

/// The table, sorted by alias within each group.
pub const DEFAULT_ALIASES: &[AliasEntry] = &[
    // Built into Windows PowerShell 5.1 and PowerShell 7 on every platform.
    a("%", "ForEach-Object", Shell::Both),
    a("?", "Where-Object", Shell::Both),
    a("cd", "Set-Location", Shell::Both),
    a("chdir", "Set-Location", Shell::Both),
    a("clc", "Clear-Content", Shell::Both),
    a("clhy", "Clear-History", Shell::Both),
    a("cli", "Clear-Item", Shell::Both),
    a("clp", "Clear-ItemProperty", Shell::Both),
    a("cls", "Clear-Host", Shell::Both),
    a("clv", "Clear-Variable", Shell::Both),
    a("copy", "Copy-Item", Shell::Both),
    a("cpi", "Copy-Item", Shell::Both),
    a("cvpa", "Convert-Path", Shell::Both),
    a("dbp", "Disable-PSBreakpoint", Shell::Both),
    a("del", "Remove-Item", Shell::Both),
    a("dir", "Get-ChildItem", Shell::Both),
    a("ebp", "Enable-PSBreakpoint", Shell::Both),
    a("echo", "Write-Output", Shell::Both),
    a("epal", "Export-Alias", Shell::Both),
    a("epcsv", "Export-Csv", Shell::Both),
    a("erase", "Remove-Item", Shell::Both),
    a("etsn", "Enter-PSSession", Shell::Both),
    a("exsn", "Exit-PSSession", Shell::Both),
    a("fc", "Format-Custom", Shell::Both),
    a("fhx", "Format-Hex", Shell::Both),
    a("fl", "Format-List", Shell::Both),
    a("foreach", "ForEach-Object", Shell::Both),
    a("ft", "Format-Table", Shell::Both),
    a("fw", "Format-Wide", Shell::Both),
    a("gal", "Get-Alias", Shell::Both),
    a("gbp", "Get-PSBreakpoint", Shell::Both),
    a("gc", "Get-Content", Shell::Both),
    a("gcb", "Get-Clipboard", Shell::Both),
    a("gci", "Get-ChildItem", Shell::Both),
    a("gcm", "Get-Command", Shell::Both),
    a("gcs", "Get-PSCallStack", Shell::Both),
    a("gdr", "Get-PSDrive", Shell::Both),
    a("ghy", "Get-History", Shell::Both),
    a("gi", "Get-Item", Shell::Both),
    a("gin", "Get-ComputerInfo", Shell::Both),
    a("gjb", "Get-Job", Shell::Both),
    a("gl", "Get-Location", Shell::Both),
    a("gm", "Get-Member", Shell::Both),
    a("gmo", "Get-Module", Shell::Both),
    a("gp", "Get-ItemProperty", Shell::Both),
    a("gps", "Get-Process", Shell::Both),
    a("gpv", "Get-ItemPropertyValue", Shell::Both),
    a("group", "Group-Object", Shell::Both),
    a("gsn", "Get-PSSession", Shell::Both),
    a("gtz", "Get-TimeZone", Shell::Both),
    a("gu", "Get-Unique", Shell::Both),
    a("gv", "Get-Variable", Shell::Both),
    a("h", "Get-History", Shell::Both),
    a("history", "Get-History", Shell::Both),
    a("icm", "Invoke-Command", Shell::Both),
    a("iex", "Invoke-Expression", Shell::Both),
    a("ihy", "Invoke-History", Shell::Both),
    a("ii", "Invoke-Item", Shell::Both),
    a("ipal", "Import-Alias", Shell::Both),
    a("ipcsv", "Import-Csv", Shell::Both),
    a("ipmo", "Import-Module", Shell::Both),
    a("irm", "Invoke-RestMethod", Shell::Both),
    a("iwr", "Invoke-WebRequest", Shell::Both),
    a("md", "mkdir", Shell::Both),
    a("measure", "Measure-Object", Shell::Both),
    a("mi", "Move-Item", Shell::Both),
    a("move", "Move-Item", Shell::Both),
    a("mp", "Move-ItemProperty", Shell::Both),
    a("nal", "New-Alias", Shell::Both),
    a("ndr", "New-PSDrive", Shell::Both),
    a("ni", "New-Item", Shell::Both),
    a("nmo", "New-Module", Shell::Both),
    a("nsn", "New-PSSession", Shell::Both),
    a("nv", "New-Variable", Shell::Both),
    a("oh", "Out-Host", Shell::Both),
    a("popd", "Pop-Location", Shell::Both),
    a("pushd", "Push-Location", Shell::Both),
    a("pwd", "Get-Location", Shell::Both),
    a("r", "Invoke-History", Shell::Both),
    a("rbp", "Remove-PSBreakpoint", Shell::Both),
    a("rcjb", "Receive-Job", Shell::Both),
    a("rcsn", "Receive-PSSession", Shell::Both),
    a("rd", "Remove-Item", Shell::Both),
    a("rdr", "Remove-PSDrive", Shell::Both),
    a("ren", "Rename-Item", Shell::Both),
    a("ri", "Remove-Item", Shell::Both),
    a("rjb", "Remove-Job", Shell::Both),
    a("rmo", "Remove-Module", Shell::Both),
    a("rni", "Rename-Item", Shell::Both),
    a("rnp", "Rename-ItemProperty", Shell::Both),
    a("rp", "Remove-ItemProperty", Shell::Both),
    a("rsn", "Remove-PSSession", Shell::Both),
    a("rv", "Remove-Variable", Shell::Both),
    a("rvpa", "Resolve-Path", Shell::Both),
    a("sajb", "Start-Job", Shell::Both),
    a("sal", "Set-Alias", Shell::Both),
    a("saps", "Start-Process", Shell::Both),
    a("sbp", "Set-PSBreakpoint", Shell::Both),
    a("scb", "Set-Clipboard", Shell::Both),
    a("select", "Select-Object", Shell::Both),
    a("set", "Set-Variable", Shell::Both),
    a("si", "Set-Item", Shell::Both),
    a("sl", "Set-Location", Shell::Both),
    a("sls", "Select-String", Shell::Both),
    a("sp", "Set-ItemProperty", Shell::Both),
    a("spjb", "Stop-Job", Shell::Both),
    a("spps", "Stop-Process", Shell::Both),
    a("stz", "Set-TimeZone", Shell::Both),
    a("sv", "Set-Variable", Shell::Both),
    a("type", "Get-Content", Shell::Both),
    a("where", "Where-Object", Shell::Both),
    a("wjb", "Wait-Job", Shell::Both),
    // Built into Windows PowerShell 5.1 and PowerShell 7 on Windows only: PowerShell 7 on
    // Linux and macOS leaves them out (`#if !UNIX` in PowerShell's InitialSessionState.cs), so
    // there the name runs the native program of that name (`sort`, `ls`, `ps`, `kill`).
    a("ac", "Add-Content", Shell::Windows),
    a("cat", "Get-Content", Shell::Windows),
    a("clear", "Clear-Host", Shell::Windows),
    a("cnsn", "Connect-PSSession", Shell::Windows),
    a("compare", "Compare-Object", Shell::Windows),
    a("cp", "Copy-Item", Shell::Windows),
    a("cpp", "Copy-ItemProperty", Shell::Windows),
    a("diff", "Compare-Object", Shell::Windows),
    a("dnsn", "Disconnect-PSSession", Shell::Windows),
    a("gsv", "Get-Service", Shell::Windows),
    a("kill", "Stop-Process", Shell::Windows),
    a("ls", "Get-ChildItem", Shell::Windows),
    a("man", "help", Shell::Windows),
    a("mount", "New-PSDrive", Shell::Windows),
    a("mv", "Move-Item", Shell::Windows),
    a("ogv", "Out-GridView", Shell::Windows),
    a("ps", "Get-Process", Shell::Windows),
    a("rm", "Remove-Item", Shell::Windows),
    a("rmdir", "Remove-Item", Shell::Windows),
    a("sasv", "Start-Service", Shell::Windows),
    a("shcm", "Show-Command", Shell::Windows),
    a("sleep", "Start-Sleep", Shell::Windows),
    a("sort", "Sort-Object", Shell::Windows),
    a("spsv", "Stop-Service", Shell::Windows),
    a("start", "Start-Process", Shell::Windows),
    a("tee", "Tee-Object", Shell::Windows),
    a("write", "Write-Output", Shell::Windows),
    // Windows PowerShell 5.1 only (PowerShell 7 dropped them with their cmdlets, or to let
    // the native `curl`/`wget`/`sc.exe` run).
    a("asnp", "Add-PSSnapin", Shell::WindowsPowerShell51),
    a("epsn", "Export-PSSession", Shell::WindowsPowerShell51),
    a("ipsn", "Import-PSSession", Shell::WindowsPowerShell51),
    a(
        "npssc",
        "New-PSSessionConfigurationFile",
        Shell::WindowsPowerShell51,
    ),
    a("rujb", "Resume-Job", Shell::WindowsPowerShell51),
    a("sujb", "Suspend-Job", Shell::WindowsPowerShell51),
    a("trcm", "Trace-Command", Shell::WindowsPowerShell51),
    a("CFS", "ConvertFrom-String", Shell::WindowsPowerShell51),
    a("curl", "Invoke-WebRequest", Shell::WindowsPowerShell51),
    a("gsnp", "Get-PSSnapin", Shell::WindowsPowerShell51),
    a("gwmi", "Get-WmiObject", Shell::WindowsPowerShell51),
    a("ise", "powershell_ise.exe", Shell::WindowsPowerShell51),
    a("iwmi", "Invoke-WmiMethod", Shell::WindowsPowerShell51),
    a("lp", "Out-Printer", Shell::WindowsPowerShell51),
    a("rsnp", "Remove-PSSnapin", Shell::WindowsPowerShell51),
    a("rwmi", "Remove-WmiObject", Shell::WindowsPowerShell51),
    a("sc", "Set-Content", Shell::WindowsPowerShell51),
    a("swmi", "Set-WmiInstance", Shell::WindowsPowerShell51),
    a("wget", "Invoke-WebRequest", Shell::WindowsPowerShell51),
    // Exported by the CimCmdlets module, which both shells load on first use.
    a("gcai", "Get-CimAssociatedInstance", Shell::CimCmdletsModule),
    a("gcim", "Get-CimInstance", Shell::CimCmdletsModule),
    a("gcls", "Get-CimClass", Shell::CimCmdletsModule),
    a("gcms", "Get-CimSession", Shell::CimCmdletsModule),
    a("icim", "Invoke-CimMethod", Shell::CimCmdletsModule),
    a("ncim", "New-CimInstance", Shell::CimCmdletsModule),
    a("ncms", "New-CimSession", Shell::CimCmdletsModule),
    a("ncso", "New-CimSessionOption", Shell::CimCmdletsModule),
    a(
        "rcie",
        "Register-CimIndicationEvent",
        Shell::CimCmdletsModule,
    ),
    a("rcim", "Remove-CimInstance", Shell::CimCmdletsModule),
    a("rcms", "Remove-CimSession", Shell::CimCmdletsModule),
    a("scim", "Set-CimInstance", Shell::CimCmdletsModule),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The table scan the hashed lookup stands for.
    fn scanned(name: &str) -> Option<&'static AliasEntry> {
        DEFAULT_ALIASES
            .iter()
            .find(|e| e.alias.eq_ignore_ascii_case(name))
    }

    #[test]
    fn every_alias_is_found_in_any_ascii_case_and_nothing_else_is() {
        for e in DEFAULT_ALIASES {
            assert!(
                e.alias.len() <= 32,
                "`{}` is longer than the lookup's buffer",
                e.alias
            );
            let mixed: String = e
                .alias
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            for name in [
                e.alias.to_string(),
                e.alias.to_ascii_uppercase(),
                e.alias.to_ascii_lowercase(),
                mixed,
            ] {
                let found = builtin_alias(&name);
                assert_eq!(found, scanned(&name), "`{name}`");
                assert!(found.is_some(), "`{name}` is a default alias");
            }
        }
        let long = "g".repeat(40);
        for name in [
            "",
            "Get-Mailbox",
            "gcix",
            "lss",
            " ls",
            "ls ",
            "l\u{17f}",
            "\u{130}ex",
            "K\u{212a}",
            "\u{fb00}",
            long.as_str(),
        ] {
            assert_eq!(builtin_alias(name), scanned(name), "`{name}`");
        }
        assert_eq!(builtin_alias("\u{17f}c"), None, "no Unicode case folding");
    }
}
