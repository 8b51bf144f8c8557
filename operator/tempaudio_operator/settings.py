"""Operator settings, read once from ``TEMPAUDIO_OPERATOR_*`` environment variables."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from tempaudio_api.values import parse_bool

from .tenancy import ANY, Tenancy


class SettingsError(ValueError):
    pass


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than zero")
    return value


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _port(env: Mapping[str, str], name: str) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) > 65535:
        raise SettingsError(f"{name}={raw!r} is not a port (0-65535)")
    return int(raw)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_bool(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw.lower()!r} is not a boolean") from None


@dataclass(frozen=True)
class OperatorSettings:
    # Image holding tempaudio-cleanup (the service image); a policy may override it.
    cleanup_image: str = "ghcr.io/tempaudio/tempaudio:0.1.0"
    cleanup_image_pull_policy: str = "IfNotPresent"
    # ServiceAccount of cleanup Jobs (cloud identity for S3), unless the policy names one.
    cleanup_service_account: str | None = None
    # Manage DynamoDB TTL and S3 lifecycle rules (needs AWS permissions).
    manage_aws: bool = True
    # Watched namespaces; empty means all namespaces.
    namespaces: tuple[str, ...] = ()
    # Every policy is fully reconciled this often (CronJob edits are repaired at once).
    drift_interval_seconds: float = 300.0
    aws_retry_seconds: float = 60.0
    # AWS allows about one TTL change per table per hour.
    ttl_throttle_retry_seconds: float = 900.0
    # How long the service may go on signing with a retention after it was edited (its
    # rollout or watch delay): that retention's promises count this much longer.
    retention_lag_seconds: float = 600.0
    # Port of the operator's Prometheus /metrics (0: none).
    metrics_port: int = 0
    # What a namespace's policy may ask for (endpoints, storage, Job image and account).
    tenancy: Tenancy = field(default_factory=Tenancy)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OperatorSettings:
        defaults = cls()
        return cls(
            cleanup_image=env.get("TEMPAUDIO_OPERATOR_CLEANUP_IMAGE", defaults.cleanup_image),
            cleanup_image_pull_policy=env.get(
                "TEMPAUDIO_OPERATOR_CLEANUP_IMAGE_PULL_POLICY", defaults.cleanup_image_pull_policy
            ),
            cleanup_service_account=env.get("TEMPAUDIO_OPERATOR_CLEANUP_SERVICE_ACCOUNT") or None,
            manage_aws=_bool(env, "TEMPAUDIO_OPERATOR_MANAGE_AWS", True),
            namespaces=tuple(
                n.strip()
                for n in env.get("TEMPAUDIO_OPERATOR_NAMESPACES", "").split(",")
                if n.strip()
            ),
            drift_interval_seconds=_float(
                env, "TEMPAUDIO_OPERATOR_DRIFT_INTERVAL", defaults.drift_interval_seconds
            ),
            aws_retry_seconds=_float(
                env, "TEMPAUDIO_OPERATOR_AWS_RETRY", defaults.aws_retry_seconds
            ),
            ttl_throttle_retry_seconds=_float(
                env, "TEMPAUDIO_OPERATOR_TTL_THROTTLE_RETRY", defaults.ttl_throttle_retry_seconds
            ),
            retention_lag_seconds=_float(
                env, "TEMPAUDIO_OPERATOR_RETENTION_LAG", defaults.retention_lag_seconds
            ),
            metrics_port=_port(env, "TEMPAUDIO_OPERATOR_METRICS_PORT"),
            tenancy=Tenancy(
                allowed_endpoints=_list(env, "TEMPAUDIO_OPERATOR_ALLOWED_ENDPOINTS", ()),
                allowed_storage=_list(env, "TEMPAUDIO_OPERATOR_ALLOWED_STORAGE", (ANY,)),
                allow_job_image=_bool(env, "TEMPAUDIO_OPERATOR_ALLOW_JOB_IMAGE", False),
                allowed_service_accounts=_list(
                    env, "TEMPAUDIO_OPERATOR_ALLOWED_SERVICE_ACCOUNTS", ()
                ),
                allowed_secrets=_list(env, "TEMPAUDIO_OPERATOR_ALLOWED_SECRETS", ()),
            ),
        )

    def with_scope(
        self, namespaces: Sequence[str] | None, *, all_namespaces: bool
    ) -> OperatorSettings:
        """Flags win over the environment: ``-A`` watches all, ``-n`` exactly those given."""
        if all_namespaces:
            return replace(self, namespaces=())
        if namespaces:
            return replace(self, namespaces=tuple(namespaces))
        return self

    def watches(self, namespace: str) -> bool:
        """Whether ``namespace`` is in scope (patterns may be globs, as kopf's are)."""
        return not self.namespaces or any(
            fnmatch.fnmatchcase(namespace, p) for p in self.namespaces
        )

    @property
    def plain_namespaces(self) -> bool:
        """Every watched namespace is a name, not a glob: each can be listed on its own."""
        return all(not any(c in p for c in "*?[") for p in self.namespaces)
