"""A job's end told to its ``callback_url``: the job's body POSTed, signed per Standard
Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: ``v1,`` and an
HMAC-SHA256 by ``TEMPAUDIO_WEBHOOK_SECRET``), with the ``standardwebhooks`` package that
receivers verify with.

Each attempt is a queue message: an answer other than 2xx, or none, sends the next attempt
back to the queue with a delay that doubles (SQS holds it; the replica that delivers it may
be another). The record counts the attempts and keeps the last status. The message id is
the same for every attempt of one end, so a receiver can drop a repeat.

Where it is sent: the URL was under one of the policy's ``callbackUrlPrefixes`` at
submission, and still must be. Redirects are not followed. A host that resolves to a
link-local address (the cloud metadata service among them) is refused unless the
prefix names that address itself. The request goes to an address that was checked, never
to the name resolved again (a name whose answers change between the check and the
connection, DNS rebinding, cannot slip through): the URL's host is replaced by the
address, the ``Host`` header keeps the name, and over TLS the certificate is verified for
the name (SNI).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from tempaudio_api.jobs import callback_allowed
from tempaudio_service.core.config import ConfigError
from tempaudio_service.jobs import transitions
from tempaudio_service.jobs.engine import JobEngine, dumps
from tempaudio_service.jobs.job import Job
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)
Resolve = Callable[[str, int], Sequence[str]]
# The metadata services' addresses that are not link-local: AWS's IPv6 one, Alibaba's.
_METADATA = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _risky(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local or a metadata service, also as an IPv4-mapped or NAT64 IPv6 address."""
    inner: ipaddress.IPv4Address | ipaddress.IPv6Address = address
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            inner = address.ipv4_mapped
        elif address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.is_link_local or inner.is_link_local or {address, inner} & _METADATA != set()


def signer(secret: str | None) -> Webhook | None:
    """The key callbacks are signed with; a malformed one is a usage error at start."""
    if secret is None:
        return None
    if not secret.startswith("whsec_"):
        raise ConfigError("TEMPAUDIO_WEBHOOK_SECRET must be whsec_ and a base64 key")
    try:
        return Webhook(secret)
    except (ValueError, EmptyWebhookSecretError) as error:  # bad base64, or an empty key
        raise ConfigError(f"TEMPAUDIO_WEBHOOK_SECRET is not a usable key: {error}") from None


def resolve_host(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port)})


@dataclass(frozen=True)
class Destination:
    """Where one attempt connects: ``url`` with a checked address for its host."""

    url: str
    host_header: str  # the URL's host and port, as written
    tls_name: str | None  # the name the certificate is verified for (https to a name)


def _is_address(host: str) -> bool:
    """Whether ``host`` is written as an address (then nothing resolves it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def destination(
    url: str, prefixes: Sequence[str], resolve: Resolve, attempt: int = 1
) -> Destination | str | None:
    """Where ``url`` is called now: a checked address (the attempt's turn among them); or
    why it may not be (a refusal); or None when its host does not resolve now (the attempt
    fails and is retried)."""
    if not callback_allowed(prefixes, url):
        return "its URL is no longer under a prefix the policy allows"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    named = {urlsplit(prefix).hostname for prefix in prefixes if callback_allowed([prefix], url)}
    literal = _is_address(host)
    try:
        found = [host] if literal else resolve(host, port)
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in found]
    except (OSError, ValueError):
        return None
    if not addresses:
        return None
    for address in addresses:
        if _risky(address) and str(address) not in named:
            return f"its host resolves to {address}, a link-local or metadata address"
    if literal:
        return Destination(url, parts.netloc, None)
    chosen = str(addresses[(attempt - 1) % len(addresses)])
    return Destination(
        str(httpx.URL(url).copy_with(host=chosen)),
        parts.netloc,
        host if parts.scheme == "https" else None,
    )


def payload(job: Job, body: dict[str, Any]) -> tuple[str, bytes]:
    """The message id (one per end of a job) and the body sent."""
    return f"msg_{job.job_id}_{job.status}", dumps({"type": f"job.{job.status}", "data": body})


async def deliver(
    engine: JobEngine,
    policy: ServedPolicy,
    store: AudioStore,
    job: Job,
    body: dict[str, Any],
    attempt: int,
    *,
    resolve: Resolve | None = None,
) -> None:
    """One attempt; the next one queued when it fails and attempts are left."""
    settings = engine.settings
    metrics = engine.services.metrics.jobs
    signing = signer(settings.webhook_secret)
    if job.callback is None or job.callback.delivered_at is not None or signing is None:
        return
    url = job.callback.url
    prefixes = engine.spec_of(policy).callback_url_prefixes
    where = await anyio.to_thread.run_sync(
        destination, url, prefixes, resolve or resolve_host, attempt
    )
    if isinstance(where, str):  # refused
        logger.warning("job %s: callback not sent: %s", job.job_id, where)
        metrics.callbacks.labels("refused").inc()
        await engine.call(transitions.callback_tried, store.jobs, job.job_id, None, None, where)
        return
    message_id, data = payload(job, body)
    if job.callback.given_up is not None:
        return  # a forged or repeated message: what was given up stays given up
    sent_at = engine.services.clock()
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signing.sign(message_id, sent_at, data),
        "user-agent": "tempaudio-callbacks",
    }
    status: int | None = None
    deadline = settings.callback_timeout_seconds
    try:
        # One deadline for the whole attempt (httpx's timeouts are per read: a receiver
        # that trickles would hold the worker), and the answer's body is never read.
        if where is None:  # its host does not resolve now: a failed attempt
            raise httpx.ConnectError(f"{urlsplit(url).hostname} does not resolve")
        with anyio.fail_after(deadline):
            async with httpx.AsyncClient(
                follow_redirects=False, timeout=deadline, trust_env=False
            ) as client:
                request = client.build_request(
                    "POST",
                    where.url,
                    content=data,
                    headers={**headers, "host": where.host_header},
                    extensions={} if where.tls_name is None else {"sni_hostname": where.tls_name},
                )
                answer = await client.send(request, stream=True)
                status = answer.status_code
                await answer.aclose()
    except (httpx.HTTPError, TimeoutError) as error:
        logger.info("job %s: callback attempt %d failed: %r", job.job_id, attempt, error)
    if status is not None and 200 <= status < 300:
        metrics.callbacks.labels("delivered").inc()
        await engine.call(
            transitions.callback_tried, store.jobs, job.job_id, status, engine.now(), None
        )
        return
    if attempt >= settings.callback_attempts:
        metrics.callbacks.labels("given_up").inc()
        why = f"no 2xx answer in {attempt} attempts"
        await engine.call(transitions.callback_tried, store.jobs, job.job_id, status, None, why)
        return
    metrics.callbacks.labels("retried").inc()
    await engine.call(transitions.callback_tried, store.jobs, job.job_id, status, None, None)
    delay = min(900, settings.callback_backoff_seconds * 2 ** (attempt - 1))
    await engine.queue_call(
        engine.required_queue().send, [callback_message(job, attempt + 1)], delay
    )


def callback_message(job: Job, attempt: int) -> dict[str, Any]:
    return {"kind": "callback", "job": job.job_id, "policy": job.policy, "attempt": attempt}
