"""The stand-in's IAM evaluation, as pure functions: conditions, principals, trust, policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pytest

from shiftsync.local.iam.evaluation import (
    check_session_duration,
    conditions_hold,
    evaluate_identity_policies,
    principal_matches,
    service_trusted,
    trust_allows,
)
from shiftsync.local.standin import (
    BUCKET,
    GUIDE_ACTIONS,
    S3_ACTIONS,
    guide_permission_policy,
    guide_trust_policy,
)

PLATFORM: Final = "111111111111"
CUSTOMER: Final = "222222222222"
USER_ARN: Final = f"arn:aws:iam::{PLATFORM}:user/shiftsync-runner"
ROOT: Final = f"arn:aws:iam::{PLATFORM}:root"
WORKGROUP_ARN: Final = f"arn:aws:redshift-serverless:us-east-1:{CUSTOMER}:workgroup/1234"
EXTERNAL_ID: Final = "shiftsync-0000"


# -- conditions_hold ---------------------------------------------------------------------------


def test_no_condition_holds() -> None:
    assert conditions_hold({}, {})


def test_string_equals_matches_exactly() -> None:
    block = {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}
    assert conditions_hold(block, {"sts:ExternalId": EXTERNAL_ID})
    assert not conditions_hold(block, {"sts:ExternalId": EXTERNAL_ID.upper()})
    assert not conditions_hold(block, {"sts:ExternalId": "other"})


def test_a_missing_key_fails_a_positive_operator() -> None:
    assert not conditions_hold({"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}, {})
    assert not conditions_hold({"StringLike": {"s3:prefix": "runs/*"}}, {})


def test_a_missing_key_satisfies_a_negated_operator() -> None:
    # AWS: "StringNotEquals" with the key absent is true (a Deny on it then applies).
    assert conditions_hold({"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}, {})
    assert conditions_hold({"ArnNotLike": {"aws:PrincipalArn": "arn:*:role/x"}}, {})


def test_if_exists_lets_a_missing_key_pass_but_checks_a_present_one() -> None:
    block = {"StringEqualsIfExists": {"sts:ExternalId": EXTERNAL_ID}}
    assert conditions_hold(block, {})
    assert conditions_hold(block, {"sts:ExternalId": EXTERNAL_ID})
    assert not conditions_hold(block, {"sts:ExternalId": "other"})


def test_condition_keys_are_case_insensitive() -> None:
    assert conditions_hold({"StringEquals": {"STS:EXTERNALID": "x"}}, {"sts:ExternalId": "x"})


def test_a_list_of_values_matches_any_of_them() -> None:
    block = {"StringEquals": {"sts:ExternalId": ["a", "b"]}}
    assert conditions_hold(block, {"sts:ExternalId": "b"})
    assert not conditions_hold(block, {"sts:ExternalId": "c"})


def test_a_negated_operator_with_a_list_needs_all_to_differ() -> None:
    block = {"StringNotEquals": {"aws:userid": ["a", "b"]}}
    assert conditions_hold(block, {"aws:userid": "c"})
    assert not conditions_hold(block, {"aws:userid": "b"})


def test_every_operator_and_key_must_hold() -> None:
    block: dict[str, Any] = {
        "StringEquals": {"sts:ExternalId": "x", "aws:PrincipalAccount": PLATFORM},
        "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"},
    }
    context = {
        "sts:ExternalId": "x",
        "aws:PrincipalAccount": PLATFORM,
        "aws:PrincipalArn": USER_ARN,
    }
    assert conditions_hold(block, context)
    assert not conditions_hold(block, {**context, "aws:PrincipalAccount": CUSTOMER})
    assert not conditions_hold(block, {**context, "aws:PrincipalArn": "arn:aws:sts::1:x"})


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("StringEqualsIgnoreCase", "ABC", "abc", True),
        ("StringNotEqualsIgnoreCase", "ABC", "abc", False),
        ("StringLike", "runs/*/part-?", "runs/2024/part-1", True),
        ("StringLike", "runs/*", "other/x", False),
        ("StringNotLike", "runs/*", "other/x", True),
        ("StringLike", "*", "shiftsync-anything", True),
        ("StringLike", "shiftsync-*", "shiftsync-probe-0a1b", True),
        ("StringLike", "shiftsync-????", "shiftsync-0a1b", True),
        ("StringLike", "shiftsync-????", "shiftsync-0a1b2", False),
        # Only * and ? are wildcards in IAM: a bracket is itself.
        ("StringLike", "t[1]", "t1", False),
        ("StringLike", "t[1]", "t[1]", True),
        ("StringLike", "a.b", "axb", False),
        ("ArnEquals", USER_ARN, USER_ARN, True),
        ("ArnNotEquals", USER_ARN, USER_ARN, False),
        ("Bool", "true", "True", True),
        ("Bool", "false", "true", False),
    ],
)
def test_string_and_arn_operators(operator: str, expected: str, actual: str, holds: bool) -> None:
    assert conditions_hold({operator: {"k": expected}}, {"k": actual}) is holds


def test_null_tests_whether_the_key_is_there() -> None:
    assert conditions_hold({"Null": {"sts:ExternalId": "true"}}, {})
    assert not conditions_hold({"Null": {"sts:ExternalId": "true"}}, {"sts:ExternalId": "x"})
    assert conditions_hold({"Null": {"sts:ExternalId": "false"}}, {"sts:ExternalId": "x"})
    assert not conditions_hold({"Null": {"sts:ExternalId": "false"}}, {})


@pytest.mark.parametrize(
    "operator", ["NumericLessThan", "DateGreaterThan", "IpAddress", "ForAnyValue:StringEquals"]
)
def test_unknown_operators_fail_closed(operator: str) -> None:
    assert not conditions_hold({operator: {"k": "1"}}, {"k": "1"})


def test_policy_variables_are_substituted() -> None:
    block = {"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}}
    context = {"aws:userid": "AROA1:s", "redshift-data:statement-owner-iam-userid": "AROA1:s"}
    assert conditions_hold(block, context)
    assert not conditions_hold(block, {**context, "aws:userid": "AROA2:s"})


# -- principal_matches -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ROOT},
        {"AWS": PLATFORM},
        {"AWS": USER_ARN},
        {"AWS": ["arn:aws:iam::999999999999:root", USER_ARN]},
    ],
)
def test_principals_that_name_the_caller(principal: Any) -> None:
    assert principal_matches(principal, USER_ARN, PLATFORM)


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::333333333333:root"},
        {"AWS": "333333333333"},
        {"AWS": f"arn:aws:iam::{PLATFORM}:user/someone-else"},
        {"Service": "redshift.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
        None,
        "arn:aws:iam::111111111111:root",  # a bare string other than "*" is not a principal
    ],
)
def test_principals_that_do_not_name_the_caller(principal: Any) -> None:
    assert not principal_matches(principal, USER_ARN, PLATFORM)


def test_an_assumed_role_caller_matches_its_role_arn() -> None:
    caller = f"arn:aws:sts::{CUSTOMER}:assumed-role/reader/session-1"
    assert principal_matches({"AWS": f"arn:aws:iam::{CUSTOMER}:role/reader"}, caller, CUSTOMER)
    assert not principal_matches({"AWS": f"arn:aws:iam::{CUSTOMER}:role/other"}, caller, CUSTOMER)


# -- trust_allows ------------------------------------------------------------------------------


def _trusts(trust: dict[str, Any], context: dict[str, str]) -> bool:
    return trust_allows(trust, "sts:AssumeRole", USER_ARN, PLATFORM, context)


def test_the_guide_trust_needs_the_external_id() -> None:
    trust = guide_trust_policy(ROOT, EXTERNAL_ID)
    assert _trusts(trust, {"sts:ExternalId": EXTERNAL_ID})
    assert not _trusts(trust, {"sts:ExternalId": "wrong"})
    assert not _trusts(trust, {})


def test_a_trust_without_external_id_lets_the_account_in() -> None:
    trust = guide_trust_policy(ROOT, None)
    assert _trusts(trust, {})
    assert _trusts(trust, {"sts:ExternalId": "anything"})


def test_trust_is_for_its_action_only() -> None:
    trust = guide_trust_policy(ROOT, None)
    assert not trust_allows(trust, "sts:AssumeRoleWithWebIdentity", USER_ARN, PLATFORM, {})
    assert trust_allows(trust, "STS:ASSUMEROLE", USER_ARN, PLATFORM, {})


def test_an_explicit_deny_in_the_trust_wins() -> None:
    trust = guide_trust_policy(ROOT, None)
    trust["Statement"].append(
        {"Effect": "Deny", "Principal": {"AWS": USER_ARN}, "Action": "sts:AssumeRole"}
    )
    assert not _trusts(trust, {})


def test_a_trust_of_another_account_refuses() -> None:
    trust = guide_trust_policy("arn:aws:iam::333333333333:root", EXTERNAL_ID)
    assert not _trusts(trust, {"sts:ExternalId": EXTERNAL_ID})


def test_an_empty_trust_refuses() -> None:
    assert not _trusts({"Version": "2012-10-17", "Statement": []}, {})


def test_service_trusted_finds_redshift() -> None:
    trust = guide_trust_policy(ROOT, EXTERNAL_ID)
    assert service_trusted(trust, "redshift.amazonaws.com")
    assert not service_trusted(trust, "glue.amazonaws.com")
    trust["Statement"] = trust["Statement"][:1]
    assert not service_trusted(trust, "redshift.amazonaws.com")


# -- evaluate_identity_policies ----------------------------------------------------------------


def _evaluate(documents: list[Mapping[str, Any]], action: str, resource: str = "*") -> str:
    return evaluate_identity_policies(documents, action, resource, {"aws:userid": "AROA1:s"})


def test_the_guide_policy_allows_its_actions_and_nothing_else() -> None:
    policy = guide_permission_policy(BUCKET)
    for action in GUIDE_ACTIONS:
        assert _evaluate([policy], action, WORKGROUP_ARN) == "allow", action
    assert _evaluate([policy], "redshift-data:BatchExecuteStatement") == "neutral"
    assert _evaluate([policy], "redshift-data:ListStatements") == "neutral"


def test_the_guide_policy_scopes_s3_to_the_bucket() -> None:
    policy = guide_permission_policy(BUCKET)
    for action in S3_ACTIONS:
        assert _evaluate([policy], action, f"arn:aws:s3:::{BUCKET}/runs/x") == "allow", action
    assert _evaluate([policy], "s3:ListBucket", f"arn:aws:s3:::{BUCKET}") == "allow"
    assert _evaluate([policy], "s3:GetObject", "arn:aws:s3:::another-bucket/x") == "neutral"
    assert _evaluate([policy], "s3:CreateBucket", f"arn:aws:s3:::{BUCKET}") == "neutral"


def test_deny_leaves_actions_out_of_the_guide_policy() -> None:
    policy = guide_permission_policy(BUCKET, deny=["redshift-data:ListTables", "S3:DELETEOBJECT"])
    assert _evaluate([policy], "redshift-data:ListTables") == "neutral"
    assert _evaluate([policy], "s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/x") == "neutral"
    assert _evaluate([policy], "redshift-data:ListSchemas") == "allow"


def test_actions_match_case_insensitively_with_wildcards() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "Redshift-Data:List*", "Resource": "*"}]}
    assert _evaluate([policy], "redshift-data:ListTables") == "allow"
    assert _evaluate([policy], "redshift-data:ExecuteStatement") == "neutral"


def test_resources_match_case_sensitively() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]}
    assert _evaluate([policy], "s3:GetObject", "arn:aws:s3:::b/k") == "allow"
    assert _evaluate([policy], "s3:GetObject", "arn:aws:s3:::B/k") == "neutral"


def test_an_explicit_deny_wins_over_any_allow() -> None:
    allow = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    deny = {
        "Statement": [
            {"Effect": "Deny", "Action": "redshift-data:ExecuteStatement", "Resource": "*"}
        ]
    }
    assert _evaluate([allow, deny], "redshift-data:ExecuteStatement") == "deny"
    assert _evaluate([deny, allow], "redshift-data:ExecuteStatement") == "deny"
    assert _evaluate([allow, deny], "redshift-data:ListTables") == "allow"


def test_not_action_and_not_resource() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "NotAction": "redshift-data:ExecuteStatement",
                "NotResource": "arn:aws:s3:::secret/*",
            }
        ]
    }
    assert _evaluate([policy], "redshift-data:ListTables") == "allow"
    assert _evaluate([policy], "redshift-data:ExecuteStatement") == "neutral"
    assert _evaluate([policy], "s3:GetObject", "arn:aws:s3:::secret/x") == "neutral"


def test_a_statement_whose_condition_fails_does_not_count() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "redshift-data:GetStatementResult",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}
                },
            }
        ]
    }
    owner = {"aws:userid": "AROA1:s", "redshift-data:statement-owner-iam-userid": "AROA1:s"}
    stranger = {**owner, "redshift-data:statement-owner-iam-userid": "AROA2:s"}
    action = "redshift-data:GetStatementResult"
    assert evaluate_identity_policies([policy], action, "*", owner) == "allow"
    assert evaluate_identity_policies([policy], action, "*", stranger) == "neutral"


def test_a_single_statement_object_is_accepted() -> None:
    policy = {"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}}
    assert _evaluate([policy], "sts:AssumeRole") == "allow"


def test_no_policy_is_neutral() -> None:
    assert _evaluate([], "redshift-data:ListTables") == "neutral"


# -- check_session_duration --------------------------------------------------------------------


@pytest.mark.parametrize(("duration", "role_max"), [(900, 3600), (3600, 3600), (43200, 43200)])
def test_session_durations_within_bounds(duration: int, role_max: int) -> None:
    assert check_session_duration(duration, role_max) is None


def test_a_session_below_900_seconds_is_refused() -> None:
    assert check_session_duration(899, 3600) == (
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
        "constraint: Member must have value greater than or equal to 900"
    )


def test_a_session_above_twelve_hours_is_refused() -> None:
    message = check_session_duration(43201, None)
    assert message is not None
    assert "less than or equal to 43200" in message


def test_a_session_above_the_role_maximum_is_refused() -> None:
    assert check_session_duration(3601, 3600) == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )
