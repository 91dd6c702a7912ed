//! The .NET methods a line may call without being treated as a task or as dynamic: everyday
//! read-only conversions and formatting. A method name on the instance list must be harmless
//! for EVERY .NET type that has a method of that name, because the receiver's type is not
//! known statically (`.Replace()` is also `FileInfo.Replace`, which moves files; `.Add()` on a
//! directory entry's children changes the directory). Static methods are listed by full type
//! name, after accelerators are resolved (`[math]` is `System.Math`). Other static calls on
//! known types are tasks (see `types.rs`); other instance calls are dynamic. The same lists are
//! documented in grammar/README.md.

/// Instance methods safe on any receiver, lowercase. Audited against the BCL types a session
/// can hold (FileInfo, DirectoryInfo, Process, streams, DirectoryEntry, CimInstance, Regex,
/// StringBuilder, collections): every type with one of these names uses it for a pure
/// comparison, search, formatting or conversion. `Replace` is not here (`FileInfo.Replace`
/// moves files, `Regex.Replace` takes a delegate): it is safe only on a receiver that is
/// certainly a string (see [`instance_method_is_safe`]).
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

/// Static methods as `Full.Type.Name::method`, lowercase: pure functions of their arguments
/// (parsing, formatting, arithmetic), none with a delegate-taking overload.
const STATIC: &[&str] = &[
    "system.datetime::parse",
    "system.datetime::parseexact",
    "system.datetime::daysinmonth",
    "system.math::round",
    "system.math::floor",
    "system.math::ceiling",
    "system.math::abs",
    "system.math::max",
    "system.math::min",
    "system.math::pow",
    "system.math::truncate",
    "system.math::sqrt",
    "system.string::isnullorempty",
    "system.string::isnullorwhitespace",
    "system.string::join",
    "system.string::format",
    "system.string::concat",
    "system.string::compare",
    "system.string::equals",
    "system.int32::parse",
    "system.int64::parse",
    "system.double::parse",
    "system.decimal::parse",
    "system.guid::newguid",
    "system.guid::parse",
    "system.timespan::fromdays",
    "system.timespan::fromhours",
    "system.timespan::fromminutes",
    "system.timespan::fromseconds",
    "system.timespan::parse",
    "system.net.ipaddress::parse",
    "system.text.regularexpressions.regex::escape",
    "system.text.regularexpressions.regex::unescape",
    "system.text.regularexpressions.regex::ismatch",
    "system.convert::frombase64string",
    "system.convert::tobase64string",
    "system.text.encoding::getencoding",
];

/// Instance methods that are `String` methods with literal-only effects when the receiver is
/// certainly a string, lowercase.
const STRING_ONLY: &[&str] = &["replace"];

/// Whether calling instance method `method` is on the safe list; `string_receiver` says the
/// receiver is certainly a string.
pub(crate) fn instance_method_is_safe(method: &str, string_receiver: bool) -> bool {
    let m = method.to_ascii_lowercase();
    INSTANCE.contains(&m.as_str()) || (string_receiver && STRING_ONLY.contains(&m.as_str()))
}

/// Instance methods safe on a receiver of a certain type, lowercase: in-memory list edits and
/// string methods. Used only where the receiver's type is certain (a variable assigned a
/// conversion to that type in the line and written no other way). A conversion hands back
/// the object itself when it already has the type, so the type must be one no session object
/// with side effects has: not `Hashtable` (`[hashtable]$PSDefaultParameterValues` is the
/// session's own table, and `.Add()` on it gives later commands parameters unseen).
const TYPED: &[(&str, &[&str])] = &[
    (
        "system.collections.arraylist",
        &[
            "add",
            "addrange",
            "insert",
            "insertrange",
            "remove",
            "removeat",
            "removerange",
            "clear",
            "reverse",
            "toarray",
            "getrange",
        ],
    ),
    ("system.string", STRING_ONLY),
];

/// Whether `method` is safe on some receiver type in the typed list (so a call on a variable
/// is worth deciding once the variable's type is known).
pub(crate) fn typed_method_may_be_safe(method: &str) -> bool {
    let m = method.to_ascii_lowercase();
    TYPED.iter().any(|(_, ms)| ms.contains(&m.as_str()))
}

/// Whether `method` is safe on a receiver whose type is certainly `full_type`.
pub(crate) fn typed_method_is_safe(full_type: &str, method: &str) -> bool {
    let (t, m) = (full_type.to_ascii_lowercase(), method.to_ascii_lowercase());
    instance_method_is_safe(&m, t == "system.string")
        || TYPED
            .iter()
            .any(|(ty, ms)| *ty == t && ms.contains(&m.as_str()))
}

/// Whether calling static method `method` of the type with full name `full_type` is on the
/// safe list.
pub(crate) fn static_method_is_safe(full_type: &str, method: &str) -> bool {
    let key = format!(
        "{}::{}",
        full_type.to_ascii_lowercase(),
        method.to_ascii_lowercase()
    );
    STATIC.contains(&key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_and_unsafe_calls() {
        assert!(instance_method_is_safe("AddDays", false));
        assert!(!instance_method_is_safe("Invoke", false));
        assert!(!instance_method_is_safe("InvokeScript", false));
        assert!(!instance_method_is_safe("Replace", false));
        assert!(instance_method_is_safe("Replace", true));
        assert!(!instance_method_is_safe("Delete", false));
        assert!(static_method_is_safe("System.DateTime", "Parse"));
        assert!(static_method_is_safe("System.Math", "Round"));
        assert!(!static_method_is_safe(
            "System.Management.Automation.ScriptBlock",
            "Create"
        ));
        assert!(!static_method_is_safe(
            "System.Diagnostics.Process",
            "Start"
        ));
    }

    #[test]
    fn static_list_names_known_types() {
        for key in STATIC {
            let (ty, _) = key.split_once("::").unwrap_or_default();
            assert!(
                super::super::types::lookup(ty).is_some_and(|t| t.full.eq_ignore_ascii_case(ty)),
                "`{key}` names a type the gate does not know by that full name"
            );
        }
    }
}
