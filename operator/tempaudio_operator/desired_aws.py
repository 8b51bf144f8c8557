"""Desired AWS state as plain dicts: the table's TTL and the bucket's lifecycle rule (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tempaudio_api.policy import Policy
from tempaudio_api.storage import AUDIO_TAG_KEY, AUDIO_TAG_VALUE

from .desired import is_subset


def ttl_in_place(description: Mapping[str, Any], attribute: str) -> bool:
    """DescribeTimeToLive already shows TTL on ``attribute`` (or on its way there)."""
    return (
        description.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}
        and description.get("AttributeName") == attribute
    )


def lifecycle_rule_id(policy: Policy) -> str:
    return f"tempaudio-{policy.namespace}-{policy.name}"[:255]


# tempaudio-service tags every object it writes with this; the safety net expires only
# tagged objects, so a prefix shared with other data (say "logs/") loses nothing else.
AUDIO_TAG = {"Key": AUDIO_TAG_KEY, "Value": AUDIO_TAG_VALUE}


def lifecycle_rule(policy: Policy) -> dict[str, Any]:
    """Safety net: S3 expires the service's objects under the prefix a day after the
    retention, even if the cleanup stops. (S3 takes no AbortIncompleteMultipartUpload with
    a tag filter: the cleanup job aborts the multipart uploads a killed replica left.)"""
    return {
        "ID": lifecycle_rule_id(policy),
        "Filter": {"And": {"Prefix": policy.prefix, "Tags": [dict(AUDIO_TAG)]}},
        "Status": "Enabled",
        "Expiration": {"Days": policy.lifecycle_days},
    }


def merged_lifecycle_rules(
    existing: Sequence[Mapping[str, Any]], rule_id: str, rule: Mapping[str, Any] | None
) -> list[dict[str, Any]] | None:
    """The bucket's rules with ours set (or removed, for None); None if nothing changes.

    Rules of other owners are kept as they are, in their order.
    """
    others = [dict(r) for r in existing if r.get("ID") != rule_id]
    ours = [dict(r) for r in existing if r.get("ID") == rule_id]
    if rule is None:
        return others if ours else None
    if len(ours) == 1 and is_subset(rule, ours[0]):
        return None
    return [*others, dict(rule)]
