"""Who is calling: a projected ServiceAccount token, vouched for by the Kubernetes API.

With ``TEMPAUDIO_AUTH=serviceaccount`` every synthesis and read carries
``Authorization: Bearer <token>``, a token for the audience ``tempaudio``. The API server
checks it (TokenReview: signature, expiry, audience, and that its ServiceAccount and bound
pod still exist); the verdict is cached for ``TEMPAUDIO_AUTH_CACHE_SECONDS``, never past
the token's own ``exp``, so a warm request costs no round trip, and an expired or revoked
token stops working within the cache lifetime. When the API cannot answer, cached callers
keep working and new ones get 503: never an open door.

Namespace labels (for ``namespaceSelector`` rules) are read and cached the same way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.to_thread

from tempaudio_api.access import Caller
from tempaudio_service.core.errors import AuthUnavailable, Unauthenticated
from tempaudio_service.core.lru import LruIndex

# A refused token is remembered briefly, so a flood of one bad token costs one review.
REFUSAL_SECONDS = 10.0
CACHE_ENTRIES = 10_000
# Reviews and namespace reads in flight at once (each holds a thread).
CONCURRENT_LOOKUPS = 8
T = TypeVar("T")


class LookupUnavailable(Exception):
    """The Kubernetes API did not answer (down, timed out, 5xx)."""


class TokenReviewer(Protocol):
    def review(self, token: str, audience: str) -> str | None:
        """The username the API server vouches for, for ``audience``; None if it does not.
        Raises ``LookupUnavailable``."""
        ...


class NamespaceReader(Protocol):
    def labels(self, namespace: str) -> Mapping[str, str]:
        """A namespace's labels ({} if it does not exist). Raises ``LookupUnavailable``."""
        ...


class Lookups(TokenReviewer, NamespaceReader, Protocol):
    """Both lookups, as ``KubernetesLookups`` makes them."""


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without checking the signature: it only shortens how
    long the API server's verdict is kept, never lengthens it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


@dataclass(frozen=True)
class Cached(Generic[T]):
    value: T
    until: float  # epoch seconds


class ExpiringCache(Generic[T]):
    """Bounded (least recently used first), each entry with its own end; thread-safe."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._index: LruIndex[str, Cached[T]] = LruIndex(entries)

    def get(self, key: str, now: float) -> Cached[T] | None:
        return self._index.get(key, keep=lambda entry: now < entry.until)

    def put(self, key: str, value: T, until: float) -> None:
        self._index.put(key, Cached(value, until))


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class Authenticator:
    """Callers from tokens, and namespace labels, each cached; ``clock`` gives epoch seconds."""

    def __init__(
        self,
        *,
        audience: str,
        cache_seconds: float,
        lookups: Lookups,
        clock: Callable[[], float],
        on_lookup: Callable[[str], None] = lambda result: None,
    ) -> None:
        self.audience = audience
        self._cache_seconds = cache_seconds
        self._lookups = lookups
        self._clock = clock
        self._on_lookup = on_lookup
        self._callers: ExpiringCache[Caller | None] = ExpiringCache()
        self._labels: ExpiringCache[Mapping[str, str]] = ExpiringCache()
        self._limiter = anyio.CapacityLimiter(CONCURRENT_LOOKUPS)

    async def caller(self, authorization: str | None) -> Caller:
        token = bearer_token(authorization)
        if token is None:
            self._on_lookup("missing")
            raise Unauthenticated(
                f"send a ServiceAccount token for the audience {self.audience!r}:"
                " Authorization: Bearer <token> (docs/concepts/tenancy.md)"
            )
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        cached = self._callers.get(key, now)
        if cached is None:
            username = await self._lookup(self._lookups.review, token, self.audience)
            caller = Caller.from_username(username) if username else None
            if caller is None:
                until = now + min(REFUSAL_SECONDS, self._cache_seconds)
            else:
                until = min(now + self._cache_seconds, token_expiry(token) or float("inf"))
            self._callers.put(key, caller, until)
            self._on_lookup("reviewed" if caller else "refused")
        else:
            caller = cached.value
            self._on_lookup("cached" if caller else "refused")
        if caller is None:
            raise Unauthenticated(
                f"the token is not a valid ServiceAccount token for the audience {self.audience!r}"
                " (expired, revoked, or for another audience)"
            )
        return caller

    async def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        now = self._clock()
        cached = self._labels.get(namespace, now)
        if cached is not None:
            return cached.value
        labels = await self._lookup(self._lookups.labels, namespace)
        self._labels.put(namespace, labels, now + self._cache_seconds)
        return labels

    async def _lookup(self, func: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(lambda: func(*args), limiter=self._limiter)
        except LookupUnavailable as error:
            self._on_lookup("unavailable")
            raise AuthUnavailable(
                f"the Kubernetes API cannot vouch for callers now ({error}); retry later"
            ) from None


class KubernetesLookups:
    """TokenReview and namespace reads through the API (RBAC: system:auth-delegator, and
    get on namespaces)."""

    def __init__(self, api_client: Any, timeout_seconds: float) -> None:
        self._api_client = api_client
        self._timeout = timeout_seconds

    def review(self, token: str, audience: str) -> str | None:
        from kubernetes import client

        body = client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=[audience])
        )
        api = client.AuthenticationV1Api(self._api_client)
        try:
            answer: Any = self._call(
                lambda: api.create_token_review(body, _request_timeout=self._timeout)
            )
        except LookupError:
            raise LookupUnavailable("the API serves no TokenReview") from None
        status = answer.status
        if not status or not status.authenticated or audience not in (status.audiences or []):
            return None
        return str(status.user.username) if status.user and status.user.username else None

    def labels(self, namespace: str) -> Mapping[str, str]:
        from kubernetes import client

        api = client.CoreV1Api(self._api_client)
        try:
            found: Any = self._call(
                lambda: api.read_namespace(namespace, _request_timeout=self._timeout)
            )
        except LookupError:
            return {}
        return dict(found.metadata.labels or {})

    @staticmethod
    def _call(request: Callable[[], T]) -> T:
        from kubernetes.client.exceptions import ApiException

        try:
            return request()
        except ApiException as error:
            if error.status == 404:
                raise LookupError("not found") from None
            raise LookupUnavailable(f"{error.status} {error.reason}") from None
        except Exception as error:  # noqa: BLE001 - connection refused, timeouts, TLS
            raise LookupUnavailable(type(error).__name__) from None
