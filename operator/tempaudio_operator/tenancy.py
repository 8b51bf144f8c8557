"""What a namespace may ask of the operator (pure): policy fields are untrusted input.

Whoever may create a TempAudioPolicy in a namespace would otherwise point the operator's
signed AWS calls at any listener, expire any prefix of a shared bucket, and run Jobs with
any image and ServiceAccount without holding pod-create rights; whoever may create a
TempAudioVoice would have it read any object it can. The platform team's operator
configuration bounds them all; this module decides, the handlers report.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from tempaudio_api.policy import Policy
from tempaudio_api.voice import S3Source, Voice

ANY = "*"


@dataclass(frozen=True)
class Tenancy:
    # Endpoints a policy may name, as scheme://host[:port] ("*": any). None named: AWS only.
    allowed_endpoints: tuple[str, ...] = ()
    # "bucket-glob/prefix-glob" entries; "{namespace}" stands for the policy's namespace.
    allowed_storage: tuple[str, ...] = (ANY,)
    # jobTemplate.image: only when the platform team allows it.
    allow_job_image: bool = False
    # jobTemplate.serviceAccountName: these (and "default") only.
    allowed_service_accounts: tuple[str, ...] = ()
    # Secrets jobTemplate.env / envFrom may reference (a Job would run with their values
    # although the policy's author may not read them): these only.
    allowed_secrets: tuple[str, ...] = ()


def endpoint_allowed(url: str, allowed: Iterable[str]) -> bool:
    """Scheme, host and port compared, never string prefixes (``http://ok@evil/``)."""
    target = urlsplit(url)
    if target.username is not None or target.password is not None:
        return False
    for entry in allowed:
        if entry == ANY:
            return True
        permitted = urlsplit(entry)
        if (target.scheme, target.hostname) != (permitted.scheme, permitted.hostname):
            continue
        if permitted.port is None or permitted.port == target.port:
            return True
    return False


def storage_allowed(policy: Policy, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry == ANY:
            return True
        bucket, _, prefix = entry.replace("{namespace}", policy.namespace).partition("/")
        if fnmatch.fnmatchcase(policy.bucket, bucket) and fnmatch.fnmatchcase(
            policy.prefix, prefix or ANY
        ):
            return True
    return False


def refusal(policy: Policy, tenancy: Tenancy) -> str | None:
    """Why the operator's configuration does not allow this policy, or None."""
    for field, url in (
        ("storage.endpointURL", policy.endpoint_url),
        ("dynamodb.endpointURL", policy.dynamodb_endpoint_url),
    ):
        if url and not endpoint_allowed(url, tenancy.allowed_endpoints):
            return f"{field} {url[:200]} is not among the endpoints the operator allows"
    if not storage_allowed(policy, tenancy.allowed_storage):
        return (
            f"bucket {policy.bucket} with prefix {policy.prefix} is not among the storage the"
            f" operator allows namespace {policy.namespace}"
        )
    if policy.job.image and not tenancy.allow_job_image:
        return "jobTemplate.image is not allowed by the operator's configuration"
    account = policy.job.service_account_name
    if account and account != "default" and account not in tenancy.allowed_service_accounts:
        return f"jobTemplate.serviceAccountName {account} is not allowed by the operator"
    for secret in referenced_secrets(policy):
        if secret not in tenancy.allowed_secrets:
            return f"jobTemplate Secret {secret[:253]} is not among the Secrets the operator allows"
    return None


def referenced_secrets(policy: Policy) -> list[str]:
    """Secrets the cleanup container's env and envFrom name."""
    names = [
        str(((entry.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") or "")
        for entry in policy.job.env
    ]
    names += [
        str((entry.get("secretRef") or {}).get("name") or "") for entry in policy.job.env_from
    ]
    return [name for name in names if name]


def object_allowed(bucket: str, key: str, namespace: str, allowed: Iterable[str]) -> bool:
    """An object the operator may read for ``namespace``: its bucket matches an entry's bucket
    glob and its key lies under the entry's prefix glob."""
    for entry in allowed:
        if entry == ANY:
            return True
        bucket_glob, _, prefix = entry.replace("{namespace}", namespace).partition("/")
        if fnmatch.fnmatchcase(bucket, bucket_glob) and fnmatch.fnmatchcase(key, prefix + ANY):
            return True
    return False


def voice_refusal(voice: Voice, tenancy: Tenancy) -> str | None:
    """Why the operator's configuration does not let it read this voice's objects, or None
    (a path voice's file is the service's, never read by the operator)."""
    source = voice.source
    if not isinstance(source, S3Source):
        return None
    url = source.endpoint_url
    if url and not endpoint_allowed(url, tenancy.allowed_endpoints):
        return f"source.s3.endpointURL {url[:200]} is not among the endpoints the operator allows"
    for key in (source.key, source.config_key):
        if not object_allowed(source.bucket, key, voice.namespace, tenancy.allowed_storage):
            return (
                f"s3://{source.bucket}/{key[:200]} is not among the storage the operator allows"
                f" namespace {voice.namespace}"
            )
    return None
