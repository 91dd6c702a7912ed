//! The .NET types the gate knows by name, and what converting to them or calling their static
//! methods can do. A type not listed here is unknown: a call or conversion involving it cannot
//! be named as a task and takes the dynamic decision.
//!
//! Names resolve the way PowerShell's type resolver does (TypeResolver.cs): a type accelerator
//! (`[int]`, `[adsi]`, `[xml]`, from its `CoreTypes` and `TypeAccelerators` tables), else the
//! name as written, else the name with `System.` put in front (`[IO.File]` is
//! `System.IO.File`). Array types (`[string[]]`) are their element type's arrays. Generic types
//! are not resolved (unknown).

/// What calling into a type can do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Calls {
    /// Each static method is a task a policy decides (`[System.IO.File]::ReadAllBytes`).
    Tasks,
    /// As `Tasks`, but some static methods take a delegate: PowerShell turns a script block
    /// argument into one, and it runs. A call whose arguments are not all written out in the
    /// line may hand over code the line does not show, so it is dynamic.
    Delegates,
    /// Calls and conversions turn text into code, run code, or reach any code by reflection
    /// (`[scriptblock]::Create`, `[powershell]`, `[type]`, `[System.Reflection.Assembly]`):
    /// always dynamic, whatever a policy says.
    Code,
}

/// A type the gate knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownType {
    /// The full name PowerShell resolves the written name to (`System.IO.File`).
    pub(crate) full: String,
    /// A conversion to it (cast, `-as`, typed variable, hashtable cast) only builds a value in
    /// memory: parsing text, collecting items. Otherwise a conversion runs a constructor or
    /// setters that may act, and is the task `[Full.Name]::new`.
    pub(crate) pure_conversion: bool,
    pub(crate) calls: Calls,
}

/// PowerShell's type accelerators, lowercase, with the full names they stand for.
const ACCELERATORS: &[(&str, &str)] = &[
    ("adsi", "System.DirectoryServices.DirectoryEntry"),
    ("adsisearcher", "System.DirectoryServices.DirectorySearcher"),
    ("array", "System.Array"),
    ("bigint", "System.Numerics.BigInteger"),
    ("bool", "System.Boolean"),
    ("byte", "System.Byte"),
    ("char", "System.Char"),
    ("cimclass", "Microsoft.Management.Infrastructure.CimClass"),
    (
        "cimconverter",
        "Microsoft.Management.Infrastructure.CimConverter",
    ),
    (
        "ciminstance",
        "Microsoft.Management.Infrastructure.CimInstance",
    ),
    (
        "cimsession",
        "Microsoft.Management.Infrastructure.CimSession",
    ),
    ("cimtype", "Microsoft.Management.Infrastructure.CimType"),
    ("cultureinfo", "System.Globalization.CultureInfo"),
    ("datetime", "System.DateTime"),
    ("decimal", "System.Decimal"),
    ("double", "System.Double"),
    ("float", "System.Single"),
    ("guid", "System.Guid"),
    ("hashtable", "System.Collections.Hashtable"),
    (
        "initialsessionstate",
        "System.Management.Automation.Runspaces.InitialSessionState",
    ),
    ("int", "System.Int32"),
    ("int16", "System.Int16"),
    ("int32", "System.Int32"),
    ("int64", "System.Int64"),
    ("ipaddress", "System.Net.IPAddress"),
    ("ipendpoint", "System.Net.IPEndPoint"),
    ("long", "System.Int64"),
    ("mailaddress", "System.Net.Mail.MailAddress"),
    (
        "nullstring",
        "System.Management.Automation.Language.NullString",
    ),
    (
        "objectsecurity",
        "System.Security.AccessControl.ObjectSecurity",
    ),
    (
        "ordered",
        "System.Collections.Specialized.OrderedDictionary",
    ),
    (
        "physicaladdress",
        "System.Net.NetworkInformation.PhysicalAddress",
    ),
    ("powershell", "System.Management.Automation.PowerShell"),
    ("pscredential", "System.Management.Automation.PSCredential"),
    ("pscustomobject", "System.Management.Automation.PSObject"),
    (
        "pslistmodifier",
        "System.Management.Automation.PSListModifier",
    ),
    ("psmoduleinfo", "System.Management.Automation.PSModuleInfo"),
    (
        "psaliasproperty",
        "System.Management.Automation.PSAliasProperty",
    ),
    (
        "psnoteproperty",
        "System.Management.Automation.PSNoteProperty",
    ),
    ("psobject", "System.Management.Automation.PSObject"),
    (
        "psprimitivedictionary",
        "System.Management.Automation.PSPrimitiveDictionary",
    ),
    (
        "pspropertyexpression",
        "Microsoft.PowerShell.Commands.PSPropertyExpression",
    ),
    (
        "psscriptmethod",
        "System.Management.Automation.PSScriptMethod",
    ),
    (
        "psscriptproperty",
        "System.Management.Automation.PSScriptProperty",
    ),
    ("psvariable", "System.Management.Automation.PSVariable"),
    (
        "psvariableproperty",
        "System.Management.Automation.PSVariableProperty",
    ),
    ("ref", "System.Management.Automation.PSReference"),
    ("regex", "System.Text.RegularExpressions.Regex"),
    (
        "runspace",
        "System.Management.Automation.Runspaces.Runspace",
    ),
    (
        "runspacefactory",
        "System.Management.Automation.Runspaces.RunspaceFactory",
    ),
    ("sbyte", "System.SByte"),
    ("scriptblock", "System.Management.Automation.ScriptBlock"),
    ("securestring", "System.Security.SecureString"),
    ("semver", "System.Management.Automation.SemanticVersion"),
    ("short", "System.Int16"),
    ("single", "System.Single"),
    ("string", "System.String"),
    ("switch", "System.Management.Automation.SwitchParameter"),
    ("timespan", "System.TimeSpan"),
    ("type", "System.Type"),
    ("uint", "System.UInt32"),
    ("uint16", "System.UInt16"),
    ("uint32", "System.UInt32"),
    ("uint64", "System.UInt64"),
    ("ulong", "System.UInt64"),
    ("uri", "System.Uri"),
    ("ushort", "System.UInt16"),
    ("version", "System.Version"),
    ("void", "System.Void"),
    (
        "wildcardpattern",
        "System.Management.Automation.WildcardPattern",
    ),
    ("wmi", "System.Management.ManagementObject"),
    ("wmiclass", "System.Management.ManagementClass"),
    ("wmisearcher", "System.Management.ManagementObjectSearcher"),
    (
        "x500distinguishedname",
        "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
    ),
    (
        "x509certificate",
        "System.Security.Cryptography.X509Certificates.X509Certificate",
    ),
    ("xml", "System.Xml.XmlDocument"),
];

use Calls::{Code, Delegates, Tasks};

/// Known full names: (name, pure conversion, calls). Each `true` in the second column is a
/// claim that converting a value to the type only parses or collects in memory (README "Casts
/// and conversions" gives the reasons).
const TYPES: &[(&str, bool, Calls)] = &[
    // Values parsed from text or numbers.
    ("System.String", true, Delegates),
    ("System.Char", true, Tasks),
    ("System.Boolean", true, Tasks),
    ("System.Byte", true, Tasks),
    ("System.SByte", true, Tasks),
    ("System.Int16", true, Tasks),
    ("System.Int32", true, Tasks),
    ("System.Int64", true, Tasks),
    ("System.UInt16", true, Tasks),
    ("System.UInt32", true, Tasks),
    ("System.UInt64", true, Tasks),
    ("System.Single", true, Tasks),
    ("System.Double", true, Tasks),
    ("System.Decimal", true, Tasks),
    ("System.Numerics.BigInteger", true, Tasks),
    ("System.DateTime", true, Tasks),
    ("System.DateTimeOffset", true, Tasks),
    ("System.TimeSpan", true, Tasks),
    ("System.Guid", true, Tasks),
    ("System.Version", true, Tasks),
    ("System.Management.Automation.SemanticVersion", true, Tasks),
    // `Regex.Replace(…, MatchEvaluator)` takes a delegate.
    ("System.Text.RegularExpressions.Regex", true, Delegates),
    // .NET's XmlDocument resolves no external entities (no XmlResolver by default).
    ("System.Xml.XmlDocument", true, Tasks),
    ("System.Net.IPAddress", true, Tasks),
    ("System.Net.IPEndPoint", true, Tasks),
    ("System.Net.Mail.MailAddress", true, Tasks),
    ("System.Net.NetworkInformation.PhysicalAddress", true, Tasks),
    ("System.Uri", true, Tasks),
    ("System.Globalization.CultureInfo", true, Tasks),
    (
        "System.Security.Cryptography.X509Certificates.X500DistinguishedName",
        true,
        Tasks,
    ),
    ("System.Management.Automation.WildcardPattern", true, Tasks),
    ("System.Security.SecureString", true, Tasks),
    ("System.Management.Automation.PSCredential", true, Tasks),
    ("System.Net.NetworkCredential", true, Tasks),
    ("System.Management.Automation.SwitchParameter", true, Tasks),
    (
        "System.Management.Automation.Language.NullString",
        true,
        Tasks,
    ),
    ("System.Void", true, Tasks),
    ("System.Object", true, Tasks),
    ("System.Text.StringBuilder", true, Tasks),
    // Collections built from the items given (no setters of other types run).
    ("System.Array", true, Delegates),
    ("System.Collections.Hashtable", true, Tasks),
    ("System.Collections.ArrayList", true, Tasks),
    (
        "System.Collections.Specialized.OrderedDictionary",
        true,
        Tasks,
    ),
    ("System.Management.Automation.PSObject", true, Tasks),
    ("System.Management.Automation.PSReference", true, Tasks),
    ("System.Management.Automation.PSListModifier", true, Tasks),
    (
        "System.Management.Automation.PSPrimitiveDictionary",
        true,
        Tasks,
    ),
    // Static helpers: each call is a task.
    ("System.Math", false, Tasks),
    ("System.Convert", false, Tasks),
    ("System.BitConverter", false, Tasks),
    ("System.Enum", false, Tasks),
    ("System.Environment", false, Tasks),
    ("System.Console", false, Tasks),
    ("System.GC", false, Tasks),
    ("System.TimeZoneInfo", false, Tasks),
    ("System.Text.Encoding", false, Tasks),
    ("System.Net.WebUtility", false, Tasks),
    ("System.Web.HttpUtility", false, Tasks),
    ("System.Net.Dns", false, Tasks),
    ("System.Net.ServicePointManager", false, Tasks),
    ("System.Security.Principal.WindowsIdentity", false, Tasks),
    ("Microsoft.Win32.Registry", false, Tasks),
    ("Microsoft.Management.Infrastructure.CimType", true, Tasks),
    (
        "Microsoft.Management.Infrastructure.CimConverter",
        false,
        Tasks,
    ),
    // Files, streams, network and directories: constructors and conversions act.
    ("System.IO.File", false, Tasks),
    ("System.IO.Directory", false, Tasks),
    ("System.IO.Path", false, Tasks),
    ("System.IO.FileInfo", false, Tasks),
    ("System.IO.DirectoryInfo", false, Tasks),
    ("System.IO.StreamWriter", false, Tasks),
    ("System.IO.StreamReader", false, Tasks),
    ("System.IO.FileStream", false, Tasks),
    ("System.IO.MemoryStream", false, Tasks),
    ("System.IO.BinaryWriter", false, Tasks),
    ("System.IO.BinaryReader", false, Tasks),
    ("System.IO.Pipes.NamedPipeClientStream", false, Tasks),
    ("System.IO.Pipes.NamedPipeServerStream", false, Tasks),
    ("System.IO.Compression.ZipFile", false, Tasks),
    ("System.Net.WebClient", false, Tasks),
    ("System.Net.WebRequest", false, Tasks),
    ("System.Net.Http.HttpClient", false, Tasks),
    ("System.Net.Sockets.TcpClient", false, Tasks),
    ("System.Net.Sockets.TcpListener", false, Tasks),
    ("System.Net.Sockets.UdpClient", false, Tasks),
    ("System.Net.Sockets.Socket", false, Tasks),
    ("System.Net.NetworkInformation.Ping", false, Tasks),
    ("System.Net.Mail.SmtpClient", false, Tasks),
    (
        "System.Security.Cryptography.X509Certificates.X509Certificate",
        false,
        Tasks,
    ),
    (
        "System.Security.Cryptography.X509Certificates.X509Certificate2",
        false,
        Tasks,
    ),
    ("System.Security.AccessControl.ObjectSecurity", false, Tasks),
    ("System.DirectoryServices.DirectoryEntry", false, Tasks),
    ("System.DirectoryServices.DirectorySearcher", false, Tasks),
    ("System.Management.ManagementObject", false, Tasks),
    ("System.Management.ManagementClass", false, Tasks),
    ("System.Management.ManagementObjectSearcher", false, Tasks),
    (
        "Microsoft.Management.Infrastructure.CimSession",
        false,
        Tasks,
    ),
    (
        "Microsoft.Management.Infrastructure.CimInstance",
        false,
        Tasks,
    ),
    ("Microsoft.Management.Infrastructure.CimClass", false, Tasks),
    // Delegates: a script block argument runs per item.
    ("System.Linq.Enumerable", false, Delegates),
    // Code: text to code, code runners, reflection, processes.
    ("System.Management.Automation.ScriptBlock", false, Code),
    ("System.Management.Automation.PowerShell", false, Code),
    (
        "System.Management.Automation.Runspaces.Runspace",
        false,
        Code,
    ),
    (
        "System.Management.Automation.Runspaces.RunspaceFactory",
        false,
        Code,
    ),
    (
        "System.Management.Automation.Runspaces.InitialSessionState",
        false,
        Code,
    ),
    ("System.Management.Automation.PSModuleInfo", false, Code),
    ("System.Management.Automation.PSScriptMethod", false, Code),
    ("System.Management.Automation.PSScriptProperty", false, Code),
    ("System.Management.Automation.PSNoteProperty", false, Code),
    ("System.Management.Automation.PSAliasProperty", false, Code),
    ("System.Management.Automation.PSVariable", false, Code),
    (
        "System.Management.Automation.PSVariableProperty",
        false,
        Code,
    ),
    (
        "Microsoft.PowerShell.Commands.PSPropertyExpression",
        false,
        Code,
    ),
    (
        "System.Management.Automation.LanguagePrimitives",
        false,
        Code,
    ),
    ("System.Type", false, Code),
    ("System.Activator", false, Code),
    ("System.AppDomain", false, Code),
    ("System.Delegate", false, Code),
    ("System.Reflection.Assembly", false, Code),
    ("System.Runtime.InteropServices.Marshal", false, Code),
    ("System.Threading.Thread", false, Code),
    ("System.Threading.ThreadPool", false, Code),
    ("System.Threading.Tasks.Task", false, Code),
    ("System.Threading.Tasks.Parallel", false, Code),
    ("System.Diagnostics.Process", false, Code),
];

/// The type written as `written` (inside the brackets of `[...]`), if the gate knows it.
pub(crate) fn lookup(written: &str) -> Option<KnownType> {
    let w = written.trim();
    if let Some(element) = w.strip_suffix("[]") {
        // An array of a known type is built from the items given, each converted.
        let inner = lookup(element)?;
        return Some(KnownType {
            full: format!("{}[]", inner.full),
            pure_conversion: inner.pure_conversion,
            calls: Calls::Tasks,
        });
    }
    if w.is_empty()
        || !w
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_'))
    {
        return None;
    }
    let lower = w.to_ascii_lowercase();
    let full = ACCELERATORS
        .iter()
        .find(|(a, _)| *a == lower)
        .map(|(_, full)| *full);
    let candidates = match full {
        Some(f) => vec![f.to_ascii_lowercase()],
        None => vec![lower.clone(), format!("system.{lower}")],
    };
    candidates.iter().find_map(|c| {
        TYPES
            .iter()
            .find(|(name, _, _)| name.eq_ignore_ascii_case(c))
            .map(|(name, pure, calls)| KnownType {
                full: (*name).to_string(),
                pure_conversion: *pure,
                calls: *calls,
            })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests report failure by panicking")]
mod tests {
    use super::*;

    #[test]
    fn accelerators_and_system_prefix_resolve() {
        assert_eq!(lookup("IO.File").unwrap().full, "System.IO.File");
        assert_eq!(lookup("system.io.file").unwrap().full, "System.IO.File");
        assert_eq!(lookup("int").unwrap().full, "System.Int32");
        assert_eq!(
            lookup("adsi").unwrap().full,
            "System.DirectoryServices.DirectoryEntry"
        );
        assert_eq!(lookup("string[]").unwrap().full, "System.String[]");
        assert!(lookup("Contoso.Tools.Thing").is_none());
        assert!(lookup("System.Collections.Generic.List[string]").is_none());
        assert_eq!(lookup("scriptblock").unwrap().calls, Calls::Code);
    }

    #[test]
    fn every_accelerator_target_is_classified() {
        for (acc, full) in ACCELERATORS {
            assert!(
                TYPES.iter().any(|(n, _, _)| n == full),
                "accelerator `{acc}` names `{full}`, which has no class"
            );
        }
    }
}
