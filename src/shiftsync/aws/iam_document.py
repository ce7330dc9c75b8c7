"""The shape of the IAM policy documents shiftsync writes (the permission and trust policies).

Only the elements shiftsync uses are named; a document is plain JSON once built, so it goes
to `json.dumps`, YAML and HCL as it is.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# A value of a condition or principal: one string, or a list meaning any of them.
OneOrMore = str | list[str]


class Statement(TypedDict):
    """One statement: who (trust policies) may do what on which resources, under what test."""

    Sid: str
    Effect: Literal["Allow", "Deny"]
    Action: OneOrMore
    Principal: NotRequired[dict[str, OneOrMore]]
    Resource: NotRequired[OneOrMore]
    # operator -> condition key -> value(s), e.g. {"StringEquals": {"sts:ExternalId": "..."}}
    Condition: NotRequired[dict[str, dict[str, OneOrMore]]]


class PolicyDocument(TypedDict):
    Version: str
    Statement: list[Statement]


__all__ = ["OneOrMore", "PolicyDocument", "Statement"]
