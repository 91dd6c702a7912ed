//! The .NET methods a line may call without being treated as dynamic: everyday read-only
//! conversions and formatting. Every other method call is reported as a dynamic invocation,
//! because a method can run code (`[scriptblock]::Create`, `.Invoke()`,
//! `[System.Diagnostics.Process]::Start`) and jitsh cannot know what an arbitrary object's method
//! does. The same list is documented in grammar/README.md.

/// Instance methods (any object), lowercase.
const INSTANCE: &[&str] = &[
    "tostring",
    "trim",
    "trimstart",
    "trimend",
    "split",
    "tolower",
    "toupper",
    "tolowerinvariant",
    "toupperinvariant",
    "replace",
    "substring",
    "contains",
    "startswith",
    "endswith",
    "indexof",
    "lastindexof",
    "padleft",
    "padright",
    "equals",
    "compareto",
    "gettype",
    "gethashcode",
    "adddays",
    "addhours",
    "addminutes",
    "addseconds",
    "addmilliseconds",
    "addmonths",
    "addyears",
    "addticks",
    "toshortdatestring",
    "tolongdatestring",
    "toshorttimestring",
    "tolongtimestring",
    "touniversaltime",
    "tolocaltime",
    // Text encoding conversions (`[System.Text.Encoding]::Unicode.GetBytes($s)`): pure.
    // Not collection mutators (`.Add`, `.Remove`, `.RemoveAt`): on an object of unknown type
    // they are not harmless (`([ADSI]'LDAP://…').Children.Remove($o)` deletes a directory
    // object at once).
    "getbytes",
    "getstring",
];

/// Static methods as `type::method`, lowercase, type without a leading `system.`.
const STATIC: &[&str] = &[
    "datetime::parse",
    "datetime::parseexact",
    "datetime::daysinmonth",
    "math::round",
    "math::floor",
    "math::ceiling",
    "math::abs",
    "math::max",
    "math::min",
    "math::pow",
    "math::truncate",
    "math::sqrt",
    "string::isnullorempty",
    "string::isnullorwhitespace",
    "string::join",
    "string::format",
    "string::concat",
    "string::compare",
    "string::equals",
    "int::parse",
    "int32::parse",
    "int64::parse",
    "long::parse",
    "double::parse",
    "decimal::parse",
    "guid::newguid",
    "guid::parse",
    "timespan::fromdays",
    "timespan::fromhours",
    "timespan::fromminutes",
    "timespan::fromseconds",
    "timespan::parse",
    "net.ipaddress::parse",
    "ipaddress::parse",
    "regex::escape",
    "regex::unescape",
    "regex::ismatch",
    "convert::frombase64string",
    "convert::tobase64string",
    "text.encoding::getencoding",
];

/// Whether calling instance method `method` is on the safe list.
pub(crate) fn instance_method_is_safe(method: &str) -> bool {
    INSTANCE.contains(&method.to_ascii_lowercase().as_str())
}

/// Safe-listed instance methods that some receiver type overloads with a delegate parameter
/// (`Regex.Replace(string, MatchEvaluator)`), lowercase: PowerShell converts a script block
/// argument to the delegate, so they are safe only with literal arguments.
const DELEGATE_OVERLOADS: &[&str] = &["replace"];

/// Whether instance method `method` has a delegate-taking overload on some receiver type.
pub(crate) fn has_delegate_overloads(method: &str) -> bool {
    DELEGATE_OVERLOADS.contains(&method.to_ascii_lowercase().as_str())
}

/// Whether calling static method `method` of type `type_name` (as written) is on the safe list.
pub(crate) fn static_method_is_safe(type_name: &str, method: &str) -> bool {
    let ty = type_name.trim().to_ascii_lowercase();
    let ty = ty.strip_prefix("system.").unwrap_or(&ty);
    let key = format!("{ty}::{}", method.to_ascii_lowercase());
    STATIC.contains(&key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_and_unsafe_calls() {
        assert!(instance_method_is_safe("AddDays"));
        assert!(!instance_method_is_safe("Invoke"));
        assert!(!instance_method_is_safe("InvokeScript"));
        assert!(static_method_is_safe("System.DateTime", "Parse"));
        assert!(static_method_is_safe("math", "Round"));
        assert!(!static_method_is_safe("scriptblock", "Create"));
        assert!(!static_method_is_safe(
            "System.Diagnostics.Process",
            "Start"
        ));
    }
}
