"""helm lint and helm template: the chart renders what platform teams expect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import CHART, CI_VALUES, by_kind, env_of, helm, one, render
from tests.controlplane import REPO


def test_chart_crds_are_byte_identical_to_top_level_crds() -> None:
    top = sorted(p.name for p in (REPO / "crds").iterdir())
    chart = sorted(p.name for p in (CHART / "crds").iterdir())
    assert top == chart
    for name in top:
        assert (REPO / "crds" / name).read_bytes() == (CHART / "crds" / name).read_bytes(), name


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_lint_and_render(values: Path | None) -> None:
    args = ["-f", str(values)] if values else []
    helm("lint", "--strict", str(CHART), *args)
    assert render(*args)


def test_default_render() -> None:
    objects = render()
    service = one(objects, "Deployment", "service")
    pod = service["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["tempaudio-service"]
    assert container["image"] == "ghcr.io/tempaudio/tempaudio:0.1.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The probes have a listener of their own, which the Service does not expose.
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 8080, "health": 8081}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
    env = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert env["TEMPAUDIO_HEALTH_PORT"] == "8081"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "topology.kubernetes.io/zone", "kubernetes.io/hostname",
    }  # fmt: skip
    assert env_of(container)["TEMPAUDIO_LOCAL_AWS"] == "false"

    operator = one(objects, "Deployment", "operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    op_container = operator["spec"]["template"]["spec"]["containers"][0]
    assert op_container["command"] == ["tempaudio-operator"]
    assert "livenessProbe" in op_container
    assert "readinessProbe" not in op_container
    assert "--all-namespaces" in op_container["args"]

    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    network = one(objects, "NetworkPolicy")
    sources = network["spec"]["ingress"][0]["from"]
    assert sources[0]["namespaceSelector"] == {"matchLabels": {"tempaudio.dev/client": "true"}}
    assert sources[1]["podSelector"] == {"matchLabels": {"tempaudio.dev/client": "true"}}
    assert not by_kind(objects, "HorizontalPodAutoscaler")
    assert not by_kind(objects, "ServiceMonitor")


def test_the_policy_is_the_services_one_source_of_truth() -> None:
    objects = render("--set", "retention=36h")
    service = one(objects, "Deployment", "service")
    env = env_of(service["spec"]["template"]["spec"]["containers"][0])
    # No second copy of what the policy declares, which could disagree with it.
    assert not {
        "TEMPAUDIO_RETENTION", "TEMPAUDIO_BUCKET", "TEMPAUDIO_PREFIX", "TEMPAUDIO_TABLE",
        "TEMPAUDIO_REGION", "TEMPAUDIO_S3_ENDPOINT_URL", "TEMPAUDIO_DYNAMODB_ENDPOINT_URL",
    } & set(env)  # fmt: skip
    assert env["TEMPAUDIO_POLICY_SOURCE"] == "kubernetes"
    assert env["TEMPAUDIO_POLICY_NAMESPACES"] == "tempaudio"  # the release namespace
    assert env["TEMPAUDIO_DEFAULT_POLICY"] == "tempaudio/rel-tempaudio"
    assert service["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    # Read-only access to the policies, in the namespaces served and nowhere else.
    role = one(objects, "Role", "service")
    assert role["rules"] == [
        {
            "apiGroups": ["tempaudio.dev"],
            "resources": ["tempaudiopolicies", "tempaudiolexicons", "tempaudiovoices"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    binding = one(objects, "RoleBinding", "service")
    assert (
        binding["subjects"][0]["name"] == service["spec"]["template"]["spec"]["serviceAccountName"]
    )
    policy = one(objects, "TempAudioPolicy")
    assert policy["spec"]["retention"] == "36h"
    assert policy["spec"]["storage"] == {
        "bucket": "tempaudio",
        "prefix": "temp-audio/",
        "region": "us-east-1",
    }
    assert policy["spec"]["jobTemplate"]["serviceAccountName"] == "rel-tempaudio-cleanup"


def test_operator_rbac_is_least_privilege() -> None:
    roles = {r["metadata"]["name"]: r for r in by_kind(render(), "ClusterRole")}
    application = roles["rel-tempaudio-operator-application"]["rules"]
    granted = {(g, r, v) for rule in application for g in rule["apiGroups"]
               for r in rule["resources"] for v in rule["verbs"]}  # fmt: skip
    assert ("tempaudio.dev", "tempaudiopolicies/status", "patch") in granted
    assert ("tempaudio.dev", "tempaudiolexicons/status", "patch") in granted
    assert ("tempaudio.dev", "tempaudiolexicons", "watch") in granted
    assert ("tempaudio.dev", "tempaudiovoices/status", "patch") in granted
    assert ("tempaudio.dev", "tempaudiovoices", "watch") in granted
    assert ("batch", "cronjobs", "create") in granted
    assert ("batch", "jobs", "watch") in granted
    assert ("", "events", "create") in granted
    # The one deletion: a deleted policy's final cleanup CronJob, once it has run.
    deletes = {(g, r) for g, r, v in granted if v in {"delete", "deletecollection"}}
    assert deletes == {("batch", "cronjobs")}
    assert not {v for _, _, v in granted} & {"deletecollection", "*", "escalate", "bind"}
    assert not {r for _, r, _ in granted} & {"secrets", "configmaps", "*"}
    framework = roles["rel-tempaudio-operator-framework"]["rules"]
    assert {v for rule in framework for v in rule["verbs"]} == {"list", "watch"}


MONITORING = ("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")


def test_full_values_render_every_optional_object() -> None:
    objects = render("-f", str(CHART / "ci" / "full-values.yaml"), *MONITORING)
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" not in one(objects, "Deployment", "service")["spec"]
    monitor = one(objects, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    service_account = next(
        sa
        for sa in by_kind(objects, "ServiceAccount")
        if sa["metadata"]["name"] == "rel-tempaudio-service"
    )
    assert "eks.amazonaws.com/role-arn" in service_account["metadata"]["annotations"]
    # The default policy lives in the release namespace: it is watched too (it was not, so
    # that policy never got a CronJob), and cleanup Jobs have their ServiceAccount everywhere.
    watched = {"ci-apps", "ci-team-b", "tempaudio"}
    bindings = [
        b for b in by_kind(objects, "RoleBinding")
        if b["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]  # fmt: skip
    assert {b["metadata"]["namespace"] for b in bindings} == watched
    operator_args = one(objects, "Deployment", "operator")["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert {a.split("=", 1)[1] for a in operator_args if a.startswith("--namespace=")} == watched
    cleanup_accounts = [
        sa for sa in by_kind(objects, "ServiceAccount")
        if sa["metadata"]["labels"].get("app.kubernetes.io/component") == "cleanup"
    ]  # fmt: skip
    assert {sa["metadata"]["namespace"] for sa in cleanup_accounts} == watched
    assert all(
        b["metadata"]["name"] != "rel-tempaudio-operator-application"
        for b in by_kind(objects, "ClusterRoleBinding")
    )
    container = one(objects, "Deployment", "service")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert "TEMPAUDIO_S3_ENDPOINT_URL" not in env  # the policy names it
    assert env["TEMPAUDIO_VOICES_DIR"] == "/voices"
    policy = one(objects, "TempAudioPolicy")
    assert policy["metadata"]["name"] == "team-audio"
    assert policy["spec"]["retention"] == "2d"
    assert policy["spec"]["storage"]["endpointURL"] == "http://minio.storage.svc:9000"


def test_grace_period_covers_pre_stop_and_drain() -> None:
    objects = render("--set", "service.drainSeconds=40", "--set", "service.preStopSeconds=7")
    pod = one(objects, "Deployment", "service")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "7"]
    assert env_of(container)["TEMPAUDIO_DRAIN_SECONDS"] == "40"
    assert pod["terminationGracePeriodSeconds"] == 7 + 40 + 20
    default = one(render(), "Deployment", "service")["spec"]["template"]["spec"]
    assert default["terminationGracePeriodSeconds"] == 45


def test_small_pod_profile_reaches_the_service() -> None:
    objects = render("--set", "service.synthWorkers=1", "--set", "service.onnxThreads=2")
    container = one(objects, "Deployment", "service")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert (env["TEMPAUDIO_SYNTH_WORKERS"], env["TEMPAUDIO_ONNX_THREADS"]) == ("1", "2")


def test_minimal_values_render_the_service_only() -> None:
    objects = render("-f", str(CHART / "ci" / "minimal-values.yaml"))
    # The Role lets the service read the policies that another release's operator accepts.
    kinds = {"Deployment", "Service", "ServiceAccount", "Pod", "Role", "RoleBinding"}
    assert {o["kind"] for o in objects} == kinds
    assert not by_kind(objects, "TempAudioPolicy")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("service.replicaCont=3", "additional properties 'replicaCont' not allowed"),
        ("retention=forever", "does not match pattern"),
        ("aws.prefix=noslash", "does not match pattern"),
        ("image.pullPolicy=Sometimes", "value must be one of"),
        ("operator.watchNamespace=x", "additional properties 'watchNamespace' not allowed"),
        ("service.onnxThreads=0", "minimum"),
    ],
)
def test_schema_rejects_typos_and_bad_values(override: str, message: str) -> None:
    result = helm("template", "rel", str(CHART), "--set", override, check=False)
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.k8s
def test_helm_test_hook_is_pinned_and_admitted(control_plane: object) -> None:
    # helm install --dry-run=client still asks a cluster whether it is reachable.
    objects = render()
    hook = next(
        o for o in by_kind(objects, "Pod") if "helm.sh/hook" in o["metadata"].get("annotations", {})
    )
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    image = hook["spec"]["containers"][0]["image"]
    assert ":" in image.rsplit("/", 1)[-1]  # pinned
    assert not image.endswith(":latest")
    assert hook["spec"]["containers"][0]["args"] == ["http://rel-tempaudio-service:8080/healthz"]
    # tempaudio's own image makes the call: no other image to pull.
    assert (
        hook["spec"]["containers"][0]["image"]
        == one(objects, "Deployment", "service")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
    )
    assert (
        hook["metadata"]["labels"]["tempaudio.dev/client"] == "true"
    )  # admitted by the NetworkPolicy
    notes = helm(
        "install", "rel", str(CHART), "--dry-run=client", "--namespace", "tempaudio"
    ).stdout
    assert "tts/sync" in notes
    assert "kubectl -n tempaudio get tempaudiopolicies" in notes


def test_operator_allow_lists_include_the_charts_own_endpoint_and_account() -> None:
    objects = render(
        "--set", "aws.endpointURL=http://minio.storage.svc:9000",
        "--set", "operator.allowedEndpoints={http://localstack:4566}",
        "--set-json", 'operator.allowedStorage=["shared/{namespace}/*"]',
    )  # fmt: skip
    container = one(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["TEMPAUDIO_OPERATOR_ALLOWED_ENDPOINTS"] == (
        "http://localstack:4566,http://minio.storage.svc:9000"
    )
    assert env["TEMPAUDIO_OPERATOR_ALLOWED_STORAGE"] == "shared/{namespace}/*"
    assert env["TEMPAUDIO_OPERATOR_ALLOW_JOB_IMAGE"] == "false"
    # The default policy names the cleanup account: the operator must allow it.
    policy = one(objects, "TempAudioPolicy")
    account = policy["spec"]["jobTemplate"]["serviceAccountName"]
    assert env["TEMPAUDIO_OPERATOR_ALLOWED_SERVICE_ACCOUNTS"] == account
    roles = {r["metadata"]["name"]: r for r in by_kind(objects, "ClusterRole")}
    assert (
        "rbac.authorization.k8s.io/aggregate-to-edit"
        not in (roles["rel-tempaudio-policy-edit"]["metadata"]["labels"])
    )
    assert (
        roles["rel-tempaudio-policy-view"]["metadata"]["labels"][
            "rbac.authorization.k8s.io/aggregate-to-view"
        ]
        == "true"
    )


def test_a_ttl_attribute_reaches_the_policy_the_service_follows() -> None:
    policy = one(render("--set", "policy.ttlAttribute=expires"), "TempAudioPolicy")
    assert policy["spec"]["dynamodb"]["ttlAttribute"] == "expires"
    result = helm("template", "rel", str(CHART), "--set", "policy.ttlAttribute=a b", check=False)
    assert result.returncode != 0
    assert "ttlAttribute" in result.stderr


def test_the_service_serves_the_namespaces_it_is_given() -> None:
    objects = render("--set", "service.policyNamespaces={team-a,team-b}",
                     "--set", "service.defaultPolicy=team-a/voicemail")  # fmt: skip
    env = env_of(one(objects, "Deployment", "service")["spec"]["template"]["spec"]["containers"][0])
    assert env["TEMPAUDIO_POLICY_NAMESPACES"] == "team-a,team-b"
    assert env["TEMPAUDIO_DEFAULT_POLICY"] == "team-a/voicemail"
    roles = [r for r in by_kind(objects, "Role") if r["metadata"]["name"].endswith("-policies")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # minAvailable 1 of 1 replica blocked every node drain before.
        (["service.replicaCount=1"], {"maxUnavailable": 1}),
        (
            ["service.autoscaling.enabled=true", "service.autoscaling.minReplicas=1"],
            {"maxUnavailable": 1},
        ),
        (["service.replicaCount=3"], {"minAvailable": 1}),
    ],
)
def test_the_disruption_budget_never_blocks_a_drain(
    overrides: list[str], expected: dict[str, int]
) -> None:
    args = [arg for override in overrides for arg in ("--set", override)]
    budget = one(render(*args), "PodDisruptionBudget")["spec"]
    assert {k: v for k, v in budget.items() if k != "selector"} == expected


def test_service_monitor_only_with_its_crd_and_admitted_by_the_network_policy() -> None:
    # Without the Prometheus Operator's CRD the kind does not exist: it would fail the install.
    assert not by_kind(render("--set", "service.serviceMonitor.enabled=true"), "ServiceMonitor")
    objects = render("--set", "service.serviceMonitor.enabled=true", *MONITORING)
    # Scraped on the health listener, which answers while client connections are exhausted.
    assert one(objects, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "health"
    ports = {p["name"]: p["targetPort"] for p in one(objects, "Service")["spec"]["ports"]}
    assert ports == {"http": "http", "health": "health"}
    rules = one(objects, "NetworkPolicy")["spec"]["ingress"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    } in [peer for rule in rules for peer in rule["from"]]


def test_an_existing_secret_reaches_the_service_the_operator_and_the_jobs() -> None:
    objects = render("--set", "aws.existingSecret=minio-keys")
    secret = {"secretRef": {"name": "minio-keys"}}
    for component in ("service", "operator"):
        pod = one(objects, "Deployment", component)["spec"]["template"]["spec"]
        assert secret in pod["containers"][0]["envFrom"]
    policy = one(objects, "TempAudioPolicy")
    assert policy["spec"]["jobTemplate"]["envFrom"] == [secret]
    operator = one(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(operator)["TEMPAUDIO_OPERATOR_ALLOWED_SECRETS"] == "minio-keys"
    # Without it, nothing is mounted and no Secret is allowed.
    plain = one(render(), "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in plain
    assert env_of(plain)["TEMPAUDIO_OPERATOR_ALLOWED_SECRETS"] == ""


def test_the_small_node_values_fit_two_cpus_beside_the_operator() -> None:
    objects = render("-f", str(CHART / "values-small.yaml"))
    service = one(objects, "Deployment", "service")
    assert service["spec"]["replicas"] == 1
    requests = [
        c["resources"]["requests"]
        for d in by_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    millicores = sum(
        int(r["cpu"][:-1]) if r["cpu"].endswith("m") else int(r["cpu"]) * 1000 for r in requests
    )
    assert millicores <= 1000
    assert not by_kind(objects, "PodDisruptionBudget")


def test_hooks_wait_for_the_operators_verdict_and_retire_the_policy_before_uninstall() -> None:
    """helm install of a policy the operator refused succeeded; helm uninstall deleted the
    policy and the operator at once, and the policy stayed Terminating (the real node)."""

    def hooks(objects: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
        return [o for o in objects if event in
                o["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(",")]  # fmt: skip

    objects = render()
    for event, hook in (("post-install", "accepted"), ("post-upgrade", "accepted"),
                        ("pre-delete", "retire")):  # fmt: skip
        found = hooks(objects, event)
        assert {o["kind"] for o in found} == {"ServiceAccount", "Role", "RoleBinding", "Job"}
        job = next(o for o in found if o["kind"] == "Job")
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == ["python3", "-m", "tempaudio_operator.hooks"]
        assert container["args"][:3] == [hook, "tempaudio", "rel-tempaudio"]
    role = next(o for o in hooks(objects, "pre-delete") if o["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": ["tempaudio.dev"], "resources": ["tempaudiopolicies"],
                              "resourceNames": ["rel-tempaudio"], "verbs": ["get", "delete"]}]  # fmt: skip
    # Without the operator or the policy there is nothing to wait for or retire.
    assert not hooks(render("--set", "operator.enabled=false"), "pre-delete")


def test_openai_voice_names_reach_the_service_and_are_validated() -> None:
    deployment = one(
        render("--set", "service.openaiVoices.nova=en_US-joe-medium", "--set",
               "service.openaiVoices.alloy=en_US-copy-medium"),
        "Deployment", "service",
    )  # fmt: skip
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert env_of(container)["TEMPAUDIO_OPENAI_VOICES"] == (
        "alloy=en_US-copy-medium,nova=en_US-joe-medium"
    )
    plain = one(render(), "Deployment", "service")["spec"]["template"]["spec"]["containers"][0]
    assert "TEMPAUDIO_OPENAI_VOICES" not in env_of(plain)
    refused = helm(
        "template", "rel", str(CHART), "--set-string", "service.openaiVoices.nova=a b", check=False
    )
    assert refused.returncode != 0
    assert "openaiVoices" in refused.stderr


def test_caller_authentication_is_off_by_default_and_wired_when_on() -> None:
    def service_env(objects: list[dict[str, Any]]) -> dict[str, str]:
        deployment = one(objects, "Deployment", "service")
        return env_of(deployment["spec"]["template"]["spec"]["containers"][0])

    default = render()
    assert service_env(default)["TEMPAUDIO_AUTH"] == "none"
    assert not [
        b
        for b in by_kind(default, "ClusterRoleBinding")
        if b["roleRef"]["name"] == "system:auth-delegator"
    ]
    on = render(
        "--set", "service.auth.mode=serviceaccount", "--set", "service.auth.cacheSeconds=30"
    )
    env = service_env(on)
    assert (env["TEMPAUDIO_AUTH"], env["TEMPAUDIO_AUTH_AUDIENCE"]) == (
        "serviceaccount",
        "tempaudio",
    )
    assert env["TEMPAUDIO_AUTH_CACHE_SECONDS"] == "30"
    account = one(on, "Deployment", "service")["spec"]["template"]["spec"]["serviceAccountName"]
    bindings = {b["roleRef"]["name"]: b for b in by_kind(on, "ClusterRoleBinding")}
    delegator = bindings["system:auth-delegator"]
    assert delegator["subjects"][0]["name"] == account
    namespaces = next(
        r
        for r in by_kind(on, "ClusterRole")
        if r["metadata"]["name"].endswith("-caller-namespaces")
    )
    assert namespaces["rules"] == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
    ]
    assert bindings[namespaces["metadata"]["name"]]["subjects"][0]["name"] == account


def test_the_web_console_is_on_by_default_and_one_value_turns_it_off() -> None:
    def console(*args: str, env: str = "TEMPAUDIO_CONSOLE") -> str:
        deployment = one(render(*args), "Deployment", "service")
        return env_of(deployment["spec"]["template"]["spec"]["containers"][0])[env]

    assert console() == "true"
    assert console("--set", "service.console.enabled=false") == "false"
    # The hosts a browser may name (DNS rebinding): the port-forward's by default.
    assert console(env="TEMPAUDIO_CONSOLE_HOSTS") == "localhost,127.0.0.1,[::1]"
    ingress = ("--set", "service.console.hosts={tts.example.com,localhost}")
    assert console(*ingress, env="TEMPAUDIO_CONSOLE_HOSTS") == "tts.example.com,localhost"
    for bad in ("service.console.hosts={http://tts.example.com}", "service.console.hosts=a.b"):
        assert helm("template", "rel", str(CHART), "--set", bad, check=False).returncode != 0
    typo = helm("template", "rel", str(CHART), "--set", "service.console.enable=false", check=False)
    assert typo.returncode != 0
    assert "additional properties 'enable' not allowed" in typo.stderr


@pytest.mark.k8s
def test_notes_show_callers_the_projected_token_when_authentication_is_on(
    control_plane: object,
) -> None:
    def notes(*args: str) -> str:
        command = ("install", "rel", str(CHART), "--dry-run=client", "--namespace", "tempaudio")
        return helm(*command, *args).stdout

    on = notes("--set", "service.auth.mode=serviceaccount")
    assert "serviceAccountToken:" in on
    assert "audience: tempaudio" in on
    assert "Authorization: Bearer" in on
    assert "serviceAccountToken" not in notes()


def test_default_resources_follow_the_capacity_table() -> None:
    """One core per synthesis worker, and memory above the 2-worker peak that
    ``python -m bench.capacity`` measured (BENCHMARKS.md "Capacity")."""
    capacity = (REPO / "BENCHMARKS.md").read_text().split("<!-- begin:capacity -->")[1]
    peaks = re.search(r"peak RSS with 1 / 2 / 4 workers[^|]*\| (\d+) / (\d+) / (\d+) MB", capacity)
    assert peaks is not None
    deployment = one(render(), "Deployment", "service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    workers = int(env_of(container)["TEMPAUDIO_SYNTH_WORKERS"])
    assert workers == 2  # the table's pod
    requests = container["resources"]["requests"]
    assert requests["cpu"] == str(workers)
    # bench's "MB" are 2**20 bytes, as Kubernetes' Mi.
    mebibytes = {"Mi": 1, "Gi": 1024}
    request = int(requests["memory"][:-2]) * mebibytes[requests["memory"][-2:]]
    limit = container["resources"]["limits"]["memory"]
    assert int(peaks.group(2)) <= request < int(limit[:-2]) * mebibytes[limit[-2:]]
