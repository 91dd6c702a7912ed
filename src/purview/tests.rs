#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::format::{render, Object};
use super::*;

fn rec(line: &str) -> Option<Result<PurviewLine, PurviewError>> {
    recognise(line, Catalog::builtin(), Platform::Unknown)
}

fn plan_of(line: &str) -> PurviewLine {
    rec(line).expect("recognised").expect("accepted")
}

fn refused(line: &str) -> PurviewError {
    match rec(line).expect("recognised") {
        Ok(p) => panic!("`{line}` was accepted: {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn lines_without_purview_commands_are_left_to_the_gate() {
    assert!(rec("Get-Mailbox bob").is_none());
    assert!(rec("Get-Help New-ElevatedAccessRequest").is_none());
    assert!(rec("'unclosed").is_none());
}

#[test]
fn parameters_bind_as_powershell_binds_them() {
    let p = plan_of(
        "new-elevatedaccessrequest -task 'Exchange\\New-MoveRequest' -Reas:\"move bob\" -DurationHours 2",
    );
    assert_eq!(p.cmdlet, Cmdlet::NewRequest);
    assert_eq!(
        p.text_arg("Task").as_deref(),
        Some("Exchange\\New-MoveRequest")
    );
    assert_eq!(p.text_arg("Reason").as_deref(), Some("move bob"));
    assert_eq!(p.text_arg("DurationHours").as_deref(), Some("2"));
    let p = plan_of("Get-ElevatedAccessRequest abc123");
    assert_eq!(p.text_arg("Identity").as_deref(), Some("abc123"));
    let p = plan_of("Enable-ElevatedAccessControl -AdminGroup pam -SystemAccounts @('a@x','b@x')");
    assert_eq!(
        p.arg("SystemAccounts").map(Value::list),
        Some(vec!["a@x".to_string(), "b@x".to_string()])
    );
    let p = plan_of(
        "Exchange\\Approve-ElevatedAccessRequest -RequestId r1 -Comment ok -Confirm:$false",
    );
    assert_eq!(p.cmdlet, Cmdlet::ApproveRequest);
    assert_eq!(p.args.len(), 2);
}

#[test]
fn values_computed_at_run_time_are_refused() {
    for line in [
        "New-ElevatedAccessRequest -Task $t -Reason x",
        "New-ElevatedAccessRequest -Task \"$(Remove-Mailbox bob)\" -Reason x",
        "Approve-ElevatedAccessRequest -RequestId (Get-Content id.txt)",
        "Enable-ElevatedAccessControl -SystemAccounts @(Get-Content accounts.txt)",
        "Get-ElevatedAccessRequest -Identity \"r-$x\"",
    ] {
        let e = refused(line);
        assert!(
            matches!(
                e,
                PurviewError::NotLiteral { .. } | PurviewError::Mixed { .. }
            ),
            "{line}: {e:?}"
        );
    }
}

#[test]
fn unknown_ambiguous_and_repeated_parameters_are_refused() {
    assert!(matches!(
        refused("New-ElevatedAccessRequest -Task t -ErrorAction Stop"),
        PurviewError::UnknownParameter { .. }
    ));
    assert!(matches!(
        refused("New-ElevatedAccessApprovalPolicy -Role x -R y"),
        PurviewError::AmbiguousParameter { .. }
    ));
    assert!(matches!(
        refused("Deny-ElevatedAccessRequest r1 r2"),
        PurviewError::Positional { .. }
    ));
    assert!(matches!(
        refused("Deny-ElevatedAccessRequest r1 -RequestId r2"),
        PurviewError::Repeated { .. }
    ));
    assert!(matches!(
        refused("Deny-ElevatedAccessRequest -RequestId"),
        PurviewError::MissingArgument { .. }
    ));
}

#[test]
fn lines_mixing_them_with_runspace_commands_are_refused_whole() {
    for line in [
        "Get-ElevatedAccessRequest; Remove-Mailbox bob",
        "Remove-Mailbox bob; Get-ElevatedAccessRequest",
        "Get-ElevatedAccessRequest | ForEach-Object { Remove-Mailbox bob }",
        "Get-ElevatedAccessRequest | Where-Object { Remove-Mailbox bob }",
        "Get-ElevatedAccessRequest | Out-File x.txt",
        "Get-ElevatedAccessRequest > x.txt",
        "Get-ElevatedAccessRequest && Remove-Mailbox bob",
        "$r = Get-ElevatedAccessRequest",
        "Get-Mailbox | Get-ElevatedAccessRequest",
        "(Get-ElevatedAccessRequest).Count",
        "& { Get-ElevatedAccessRequest }",
        "Get-ElevatedAccessRequest | Approve-ElevatedAccessRequest",
        "Write-Output \"$(Get-ElevatedAccessRequest)\"",
    ] {
        let e = refused(line);
        assert!(matches!(e, PurviewError::Mixed { .. }), "{line}: {e:?}");
        assert_eq!(e.ids().0, "JitshGateOnlyCommand");
    }
}

#[test]
fn pipeline_stages_are_read() {
    let p = plan_of("Get-ElevatedAccessRequest | Where-Object {$_.RequestStatus -eq 'Approved'} | select RequestId,RequestStatus | fl");
    assert_eq!(
        p.stages,
        vec![
            Stage::Where(Filter {
                property: "RequestStatus".into(),
                op: FilterOp::Eq { case: false },
                value: "Approved".into()
            }),
            Stage::Select(vec!["RequestId".into(), "RequestStatus".into()]),
            Stage::List(vec![]),
        ]
    );
    let p = plan_of("Get-ElevatedAccessRequest | ? RequestStatus -EQ Approved");
    assert!(matches!(p.stages.as_slice(), [Stage::Where(f)] if f.value == "Approved"));
    let p = plan_of("Get-ElevatedAccessRequest | Where-Object -Property Task -Like -Value 'New-*'");
    assert!(
        matches!(p.stages.as_slice(), [Stage::Where(f)] if f.op == FilterOp::Like { case: false })
    );
    for line in [
        "Get-ElevatedAccessRequest | Where-Object { $_.RequestStatus -match 'A' }",
        "Get-ElevatedAccessRequest | Where-Object { $_.RequestStatus -eq $x }",
        "Get-ElevatedAccessRequest | Select-Object -First 1",
        "Get-ElevatedAccessRequest | Select-Object @{n='x';e={1}}",
    ] {
        assert!(
            matches!(
                refused(line),
                PurviewError::Stage { .. } | PurviewError::Mixed { .. }
            ),
            "{line}"
        );
    }
}

fn objects() -> Vec<Object> {
    let o = |id: &str, st: &str| Object {
        props: vec![
            ("RequestId".into(), id.into()),
            ("Task".into(), "New-MoveRequest".into()),
            ("RequestStatus".into(), st.into()),
            ("Reason".into(), "move".into()),
        ],
        table: vec!["RequestId", "RequestStatus"],
    };
    vec![o("r1", "Pending"), o("r22", "Approved")]
}

#[test]
fn objects_render_as_powershell_shows_them() {
    assert_eq!(
        render(objects(), &[]),
        "\nRequestId RequestStatus\n--------- -------------\nr1        Pending\nr22       Approved\n\n"
    );
    let p =
        plan_of("Get-ElevatedAccessRequest | ? {$_.RequestStatus -eq 'approved'} | Format-List");
    assert_eq!(
        render(objects(), &p.stages),
        "\nRequestId     : r22\nTask          : New-MoveRequest\nRequestStatus : Approved\nReason        : move\n\n"
    );
    let p = plan_of("Get-ElevatedAccessRequest | select RequestStatus");
    assert_eq!(
        render(objects(), &p.stages),
        "\nRequestStatus\n-------------\nPending\nApproved\n\n"
    );
    let p = plan_of(
        "Get-ElevatedAccessRequest | Where-Object RequestStatus -ne Pending | Format-Table Task,R*",
    );
    assert_eq!(
        render(objects(), &p.stages),
        "\nTask            RequestId RequestStatus Reason\n----            --------- ------------- ------\nNew-MoveRequest r22       Approved      move\n\n"
    );
}

#[test]
fn wildcards_match_as_powershell_does() {
    assert!(format::wildcard("new-*", "new-moverequest"));
    assert!(format::wildcard("*req*", "new-moverequest"));
    assert!(format::wildcard("r?", "r1"));
    assert!(!format::wildcard("r?", "r12"));
    assert!(!format::wildcard("a*b", "ac"));
}
