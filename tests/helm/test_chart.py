"""The chart, offline: lint, render every variant, validate every manifest against the Kubernetes
schemas, and check what the manifests promise (probes, ports, security, drain arithmetic, mounts).
"""

from __future__ import annotations

import base64
import copy
import re
import shutil
import tomllib

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from helmtest import CHART_DIR, KUBE_VERSIONS, NAMESPACE, REPO_ROOT, VARIANTS, merge

# Custom resources whose schemas kubernetes-validate does not ship; checked by hand below.
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def arg(container: dict, flag: str) -> str | None:
    """The value of `--flag=value` (or `--flag value`) in the container's args."""
    args = container["args"]
    for i, a in enumerate(args):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
        if a == flag:
            return args[i + 1]
    return None


def env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mount_of(container: dict, path: str) -> tuple[dict, str]:
    """The volumeMount whose directory holds `path`, and the file's path inside the volume."""
    best = None
    for m in container["volumeMounts"]:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    assert best is not None, f"{path} is on no volume of {[m['mountPath'] for m in container['volumeMounts']]}"
    return best, path[len(best["mountPath"].rstrip("/")) + 1 :]


def volume(pod: dict, name: str) -> dict:
    (v,) = [v for v in pod["volumes"] if v["name"] == name]
    return v


# ------------------------------------------------------------------------------------------------
# Lint, render, schemas
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_lint_is_clean(variant):
    report = helm.lint(CHART_DIR, VARIANTS[variant], strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["errors"] == [], report
    # Info findings (e.g. "icon is recommended") are allowed; warnings and errors are not.
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_manifest_is_valid_kubernetes(render, variant, kube):
    rendered = render(VARIANTS[variant])
    kinds = set()
    for obj in rendered.manifests():
        kinds.add(obj["kind"])
        if (obj["apiVersion"], obj["kind"]) in CRDS:
            continue
        try:
            kubernetes_validate.validate(obj, kube, strict=True)
        except ValidationError as e:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} is not valid Kubernetes {kube}: {e}")
        except SchemaNotFoundError as e:
            pytest.fail(f"{obj['kind']} {obj['apiVersion']} does not exist in Kubernetes {kube}: {e}")
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount", "PodDisruptionBudget"} <= kinds


def test_validation_is_not_vacuous(render):
    """The strict schemas reject what a template typo would produce."""
    dep = next(o for o in render().manifests() if o["kind"] == "Deployment")
    kubernetes_validate.validate(dep, "1.30.0", strict=True)
    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)
    broken = copy.deepcopy(dep)
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "40"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)


def test_labels_and_names_follow_helm_conventions(render):
    r = render()
    dep = r.one("Deployment")
    assert dep["metadata"]["name"] == "rs-reward-server"
    for obj in r.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "rs", obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", obj["kind"]
        assert labels["helm.sh/chart"].startswith("reward-server-"), obj["kind"]
        assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
    # The selector must not carry labels that change on upgrade (the chart version).
    assert set(dep["spec"]["selector"]["matchLabels"]) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# ------------------------------------------------------------------------------------------------
# The container
# ------------------------------------------------------------------------------------------------


def test_probes_and_ports(render):
    r = render()
    c = r.container
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"grpc": 50051, "http": 8080}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http", "scheme": "HTTP"}
    # The listeners bind every interface on exactly the declared ports.
    assert arg(c, "--grpc-addr") == "0.0.0.0:50051"
    assert arg(c, "--http-addr") == "0.0.0.0:8080"
    # Startup budget covers plugin compilation (tens of seconds for a Python plugin at worst).
    s = c["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] >= 60


def test_ports_follow_values(render):
    r = render({"server": {"grpcPort": 9000, "httpPort": 9001}, "service": {"grpcPort": 443, "httpPort": 80}})
    c = r.container
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"grpc": 9000, "http": 9001}
    assert arg(c, "--grpc-addr") == "0.0.0.0:9000" and arg(c, "--http-addr") == "0.0.0.0:9001"
    svc = r.named("Service", "rs-reward-server")
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "grpc": (443, "grpc"),
        "http": (80, "http"),
    }


def test_service_targets_the_pods(render):
    r = render(VARIANTS["headless"])
    pod_labels = r.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    container_ports = {p["name"] for p in r.container["ports"]}
    for svc in r.of_kind("Service"):
        assert svc["spec"]["selector"].items() <= pod_labels.items()
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= container_ports
    headless = r.named("Service", "rs-reward-server-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is False
    assert "rs-reward-server-headless.rewards.svc.cluster.local:50051" in r.notes


def test_tls_switches_probes_to_https(render):
    c = render(VARIANTS["tls"]).container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTPS"


def test_mutual_tls_probes_check_the_socket(render):
    """The kubelet has no client certificate: an HTTPS probe would fail the handshake."""
    c = render(VARIANTS["mtls"]).container
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert "httpGet" not in c[probe] and c[probe]["tcpSocket"] == {"port": "http"}


def test_security_context(render):
    r = render()
    pod, c = r.pod, r.container
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    assert r.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    # Every path the server writes is an emptyDir: the compiled-plugin cache and /tmp.
    for path in (arg(c, "--cache-dir"), "/tmp"):
        m, _ = mount_of(c, path)
        assert "emptyDir" in volume(pod, m["name"]), path
        assert not m.get("readOnly"), path
    assert "limits" in c["resources"] and "requests" in c["resources"]
    assert c["resources"]["limits"]["memory"]


def test_init_container_is_locked_down_too(render):
    pod = render(VARIANTS["plugins-s3"]).pod
    (init,) = pod["initContainers"]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert init["securityContext"]["allowPrivilegeEscalation"] is False
    # Its tools write under $HOME: that must be a writable emptyDir.
    home = env(init)["HOME"]
    m, _ = mount_of(init, home)
    assert "emptyDir" in volume(pod, m["name"])


# ------------------------------------------------------------------------------------------------
# Graceful scale-in
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "drain",
    [
        {},  # defaults: 5 + 30 + 5
        {"timeoutSeconds": 120},
        {"timeoutSeconds": 10, "preStopSleepSeconds": 15, "marginSeconds": 2},
        {"preStop": "none", "preStopSleepSeconds": 0, "timeoutSeconds": 45},
        {"preStop": "none", "preStopSleepSeconds": 20},  # a sleep that is switched off counts for nothing
    ],
)
def test_grace_period_covers_prestop_and_drain(chart, render, drain):
    values = merge(chart.values, {"drain": drain})
    d = values["drain"]
    r = render({"drain": drain})
    pod, c = r.pod, r.container
    drain_ms = int(arg(c, "--drain-timeout-ms"))
    assert drain_ms == d["timeoutSeconds"] * 1000
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    if d["preStop"] == "sleep":
        assert sleep == d["preStopSleepSeconds"] > 0
        assert "exec" not in c["lifecycle"]["preStop"]  # the image has no shell
    else:
        assert "lifecycle" not in c
    grace = pod["terminationGracePeriodSeconds"]
    assert grace == sleep + d["timeoutSeconds"] + d["marginSeconds"]
    assert grace >= sleep + drain_ms / 1000 + 1, "no margin left for the process to exit"
    assert f"terminationGracePeriodSeconds={grace}" in r.notes


def test_rolling_update_surges_before_draining(render):
    strategy = render().one("Deployment")["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_pod_disruption_budget(render):
    r = render()
    pdb = r.one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= r.one("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    pdb = render({"podDisruptionBudget": {"minAvailable": "50%", "maxUnavailable": None}}).one("PodDisruptionBudget")
    assert pdb["spec"] == {**pdb["spec"], "minAvailable": "50%"} and "maxUnavailable" not in pdb["spec"]
    assert not render({"podDisruptionBudget": {"enabled": False}}).of_kind("PodDisruptionBudget")


# ------------------------------------------------------------------------------------------------
# Config, secrets, plugins
# ------------------------------------------------------------------------------------------------


def configmap_toml(r) -> dict:
    return tomllib.loads(r.named("ConfigMap", "rs-reward-server-rewards")["data"]["rewards.toml"])


def test_rewards_config_is_mounted_from_the_configmap(render):
    r = render()
    c, pod = r.container, r.pod
    m, inside = mount_of(c, arg(c, "--config"))
    vol = volume(pod, m["name"])
    # A directory mount: a subPath mount would never see ConfigMap updates (no hot reload).
    assert "subPath" not in m
    assert vol["configMap"]["name"] == "rs-reward-server-rewards"
    assert {"key": "rewards.toml", "path": inside} in vol["configMap"]["items"]
    assert int(arg(c, "--watch-interval-ms")) > 0
    # Without rolloutOnChange, a config change reloads in place instead of restarting the pods.
    assert "checksum/rewards" not in (r.one("Deployment")["spec"]["template"]["metadata"].get("annotations") or {})
    ann = render({"rewards": {"rolloutOnChange": True}}).one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/rewards"])


def test_default_rewards_are_the_repositorys(render):
    """The chart's default config is rewards.toml; only plugin_dir differs (the image's)."""
    repo = tomllib.loads((REPO_ROOT / "rewards.toml").read_text())
    chart = configmap_toml(render())
    assert chart.pop("plugin_dir") == "/opt/reward-server/plugins"
    repo.pop("plugin_dir")
    assert chart == repo, "helm/reward-server/values.yaml rewards.config has drifted from rewards.toml"


def test_existing_configmap_is_used_as_is(render):
    r = render({"rewards": {"existingConfigMap": "my-rewards"}})
    assert not r.of_kind("ConfigMap")
    assert volume(r.pod, "rewards")["configMap"]["name"] == "my-rewards"


@pytest.mark.parametrize("variant", ["default", "auth-existing-secret", "auth-chart-secret"])
def test_auth_token_file_comes_from_the_secret(render, variant):
    values = VARIANTS[variant]
    r = render(values)
    c, pod = r.container, r.pod
    token_file = arg(c, "--auth-token-file")
    m, inside = mount_of(c, token_file)
    assert m["readOnly"] is True
    secret = volume(pod, m["name"])["secret"]
    key = values.get("auth", {}).get("secretKey", "token")
    assert {"key": key, "path": inside} in secret["items"]
    assert secret["defaultMode"] & 0o007 == 0, "the token must not be world-readable"
    assert "REWARD_SERVER_AUTH_TOKEN" not in env(c), "the token must not sit in the pod spec"
    annotations = r.one("Deployment")["spec"]["template"]["metadata"].get("annotations") or {}
    if variant == "auth-existing-secret":
        assert secret["secretName"] == values["auth"]["existingSecret"]
        assert not r.of_kind("Secret")
    else:
        s = r.named("Secret", secret["secretName"])
        token = base64.b64decode(s["data"][key]).decode()
        if variant == "auth-chart-secret":
            assert token == values["auth"]["token"]
            assert "checksum/auth" in annotations
        else:
            assert re.fullmatch(r"[A-Za-z0-9]{48}", token), token
            # A checksum of a generated token would change the pods on every offline render.
            assert "checksum/auth" not in annotations
    assert "authorization: Bearer" in r.notes
    assert f"kubectl -n {NAMESPACE} get secret {secret['secretName']} -o jsonpath='{{.data.{key}}}' | base64 -d" in r.notes


def test_no_auth_means_no_token_flag(render):
    r = render({"auth": {"enabled": False}})
    assert arg(r.container, "--auth-token-file") is None
    # The server refuses to listen on 0.0.0.0 without a token unless told to serve it open.
    assert "--allow-unauthenticated" in r.container["args"]
    assert "--allow-unauthenticated" not in render({}).container["args"]
    assert not r.of_kind("Secret")
    assert not [v for v in r.pod["volumes"] if "secret" in v]


def test_secure_by_default(render):
    """The default install: a token is required (generated into a Secret the pods mount) and a
    NetworkPolicy admits only the release's namespace, on the pods' two ports."""
    r = render()
    c, pod = r.container, r.pod
    m, _ = mount_of(c, arg(c, "--auth-token-file"))
    secret = r.one("Secret")
    assert volume(pod, m["name"])["secret"]["secretName"] == secret["metadata"]["name"] == "rs-reward-server-auth"
    assert secret["type"] == "Opaque" and set(secret["data"]) == {"token"}
    np = r.one("NetworkPolicy")
    assert np["spec"]["podSelector"]["matchLabels"].items() <= r.one("Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert np["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = np["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {}}], "only the pods of the release's own namespace"
    assert {p["port"] for p in rule["ports"]} == {"grpc", "http"}
    assert "WARNING" not in r.notes


def test_generated_token_is_kept_on_upgrade(tmp_path):
    """The chart reads its Secret back with `lookup` and keeps the token in it. lookup returns
    nothing offline, so the helper is run here on a Secret handed to it, as lookup would return it
    on `helm upgrade`; secret-auth.yaml must hand it lookup's answer."""
    template = (CHART_DIR / "templates" / "secret-auth.yaml").read_text()
    assert re.search(r'\$existing := lookup "v1" "Secret" \.Release\.Namespace \$name', template)
    assert 'include "reward-server.authTokenB64" (dict "root" . "existing" $existing)' in template
    probe = tmp_path / "probe"
    (probe / "templates").mkdir(parents=True)
    shutil.copy(CHART_DIR / "templates" / "_helpers.tpl", probe / "templates")
    (probe / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (probe / "values.yaml").write_text("auth: {secretKey: token, token: ''}\n")
    (probe / "templates" / "probe.yaml").write_text(
        '{{- $kept := dict "data" (dict "token" ("kept-token" | b64enc) "other" ("x" | b64enc)) }}\n'
        'upgrade: {{ include "reward-server.authTokenB64" (dict "root" . "existing" $kept) | b64dec | quote }}\n'
        'install: {{ include "reward-server.authTokenB64" (dict "root" . "existing" dict) | b64dec | quote }}\n'
        'offline: {{ include "reward-server.authTokenB64" (dict "root" . "existing" (lookup "v1" "Secret" "ns" "x")) | b64dec | quote }}\n'
        '{{- $other := dict "data" (dict "other" ("x" | b64enc)) }}\n'
        'otherKey: {{ include "reward-server.authTokenB64" (dict "root" . "existing" $other) | b64dec | quote }}\n'
    )
    with helm.Chart.load(probe) as c:
        out = yaml.safe_load(c.render({}, name="rs", namespace=NAMESPACE)["probe/templates/probe.yaml"])
        given = yaml.safe_load(c.render({"auth": {"token": "from-values"}}, name="rs", namespace=NAMESPACE)["probe/templates/probe.yaml"])
    assert out["upgrade"] == "kept-token"
    for fresh in ("install", "offline", "otherKey"):
        assert re.fullmatch(r"[A-Za-z0-9]{48}", out[fresh]), (fresh, out[fresh])
    assert len({out["install"], out["offline"], out["otherKey"]}) == 3
    assert set(given.values()) == {"from-values"}, "auth.token wins over the Secret's token"


def test_offline_renders_generate_a_new_token_and_say_so(render):
    """Offline (no lookup) every render makes a new token, as README and NOTES.txt warn; nothing
    else in the manifests changes with it, so the pods do not roll."""
    a, b = render(), render()
    assert a.one("Secret")["data"] != b.one("Secret")["data"]
    strip = lambda r: [o for o in r.manifests() if o["kind"] != "Secret"]  # noqa: E731
    assert strip(a) == strip(b)
    assert "helm template" in a.notes and "auth.existingSecret" in a.notes
    readme = (CHART_DIR / "README.md").read_text()
    assert "lookup" in readme and "auth.existingSecret" in readme


def test_tls_files_come_from_the_secrets(render):
    r = render(VARIANTS["mtls"])
    c, pod = r.container, r.pod
    for flag, secret_name, key in (
        ("--tls-cert", "rs-tls", "tls.crt"),
        ("--tls-key", "rs-tls", "tls.key"),
        ("--tls-client-ca", "rs-client-ca", "ca.crt"),
    ):
        m, inside = mount_of(c, arg(c, flag))
        secret = volume(pod, m["name"])["secret"]
        assert secret["secretName"] == secret_name, flag
        assert {"key": key, "path": inside} in secret["items"], flag
    assert arg(render().container, "--tls-cert") is None


def test_plugins_from_the_image(render):
    r = render()
    assert "initContainers" not in r.pod
    assert configmap_toml(r)["plugin_dir"] == "/opt/reward-server/plugins"


def test_plugins_from_oci(render):
    values = VARIANTS["plugins-oci"]
    r = render(values)
    pod, c = r.pod, r.container
    (init,) = pod["initContainers"]
    assert init["image"].startswith("ghcr.io/oras-project/oras:")
    assert init["command"] == ["oras"]
    ref = values["plugins"]["oci"]["reference"]
    assert init["args"][:2] == ["pull", ref]
    out = init["args"][init["args"].index("--output") + 1]
    # The init container writes where the server's plugin_dir points, on a shared emptyDir.
    assert configmap_toml(r)["plugin_dir"] == out == "/var/lib/reward-server/plugins"
    m_init, _ = mount_of(init, out)
    m_srv, _ = mount_of(c, out)
    assert m_init["name"] == m_srv["name"] and "emptyDir" in volume(pod, m_init["name"])
    assert m_srv["readOnly"] is True
    cfg = init["args"][init["args"].index("--registry-config") + 1]
    m, inside = mount_of(init, cfg)
    assert volume(pod, m["name"])["secret"] == {
        "secretName": "ecr-pull",
        "defaultMode": 0o440,
        "items": [{"key": ".dockerconfigjson", "path": inside}],
    }


def test_plugins_from_s3(render):
    values = VARIANTS["plugins-s3"]
    r = render(values)
    pod, c = r.pod, r.container
    (init,) = pod["initContainers"]
    assert init["image"].startswith("public.ecr.aws/aws-cli/aws-cli:")
    assert init["command"] == ["aws"]
    a = init["args"]
    assert a[:3] == ["s3", "cp", "s3://my-rewards/plugins/v3/"]
    assert "--recursive" in a and a[a.index("--include") + 1] == "*.wasm"
    out = a[3]
    assert configmap_toml(r)["plugin_dir"] == out
    assert mount_of(init, out)[0]["name"] == mount_of(c, out)[0]["name"]
    assert env(init)["AWS_REGION"] == "us-west-2"
    # Credentials: IRSA on the ServiceAccount (its webhook adds its own token volume, so the
    # Kubernetes API token stays unmounted).
    sa = r.one("ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    assert pod["serviceAccountName"] == sa["metadata"]["name"]


# ------------------------------------------------------------------------------------------------
# Scaling, monitoring, network
# ------------------------------------------------------------------------------------------------


def test_hpa_owns_the_replica_count(render):
    r = render()
    hpa = r.one("HorizontalPodAutoscaler")
    dep = r.one("Deployment")
    assert "replicas" not in dep["spec"], "with an HPA, a replicas field would fight it on every upgrade"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (cpu,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu["resource"]["name"] == "cpu"
    # Utilisation needs a CPU request to be a percentage of.
    assert r.container["resources"]["requests"]["cpu"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 60


def test_hpa_off_fixes_the_replica_count(render):
    r = render(VARIANTS["hpa-off"])
    assert not r.of_kind("HorizontalPodAutoscaler")
    assert r.one("Deployment")["spec"]["replicas"] == 3


def test_servicemonitor_scrapes_the_metrics_endpoint(render):
    r = render(VARIANTS["servicemonitor"] | {"service": {"headless": {"enabled": True}}})
    sm = r.one("ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["path"] == "/metrics" and ep["scheme"] == "http"
    selected = [s for s in r.of_kind("Service") if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["rs-reward-server"], "scrape each pod once, not via the headless Service too"
    assert ep["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    tls = render(VARIANTS["everything"]).one("ServiceMonitor")["spec"]["endpoints"][0]
    assert tls["scheme"] == "https" and tls["tlsConfig"] == {"insecureSkipVerify": True}


def test_networkpolicy_admits_only_training_and_monitoring(render):
    r = render(VARIANTS["networkpolicy"])
    np = r.one("NetworkPolicy")
    pod_labels = r.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert np["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert np["spec"]["policyTypes"] == ["Ingress"]
    clients, monitoring = np["spec"]["ingress"]
    # The release's namespace (allowSameNamespace), then the training namespaces by name.
    assert clients["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "hyperpod-ns-team-a"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "openrlhf"}}},
    ], "no other podSelector/ipBlock widening"
    assert {p["port"] for p in clients["ports"]} == {"grpc", "http"}
    assert monitoring["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert [p["port"] for p in monitoring["ports"]] == ["http"]
    container_ports = {p["name"] for p in r.container["ports"]}
    assert {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]} <= container_ports
    for ns in ("hyperpod-ns-team-a", "openrlhf", "monitoring"):
        assert f"pods in namespace {ns}" in r.notes


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_ingress_rule_admits_everyone(render, variant):
    """An ingress rule without `from` (or with an empty one) admits every source."""
    for np in render(VARIANTS[variant]).of_kind("NetworkPolicy"):
        for rule in np["spec"]["ingress"]:
            assert rule.get("from"), f"{variant}: {rule}"


def test_networkpolicy_with_no_clients_admits_nothing(render):
    r = render({"networkPolicy": {"allowSameNamespace": False}})
    assert r.one("NetworkPolicy")["spec"]["ingress"] == []
    assert "nobody: no clients are configured" in r.notes


def test_networkpolicy_clients_are_peers_as_given(render):
    values = VARIANTS["networkpolicy-clients"]
    r = render(values)
    (rule,) = r.one("NetworkPolicy")["spec"]["ingress"]
    assert rule["from"] == values["networkPolicy"]["clients"]
    assert {p["port"] for p in rule["ports"]} == {"grpc", "http"}


def notes_values(notes: str) -> list[str]:
    """The `--set` and value names NOTES.txt tells the reader to use."""
    return re.findall(r"\b((?:auth|networkPolicy)(?:\.[A-Za-z]+)+)", notes)


@pytest.mark.parametrize(
    "values, check",
    [
        # What NOTES.txt says to set to let a training job in another namespace call the server.
        ({"networkPolicy": {"trainingNamespaces": ["job-ns"]}},
         lambda r: {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "job-ns"}}}
         in r.one("NetworkPolicy")["spec"]["ingress"][0]["from"] and r.of_kind("Secret")),
        ({"networkPolicy": {"clients": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]}},
         lambda r: {"namespaceSelector": {"matchLabels": {"team": "a"}}} in r.one("NetworkPolicy")["spec"]["ingress"][0]["from"]),
        ({"networkPolicy": {"extraIngress": [{"from": [{"ipBlock": {"cidr": "10.0.64.0/20"}}]}]}},
         lambda r: {"from": [{"ipBlock": {"cidr": "10.0.64.0/20"}}]} in r.one("NetworkPolicy")["spec"]["ingress"]),
        # Removing the policy, and dropping the token: both say what that risks.
        ({"networkPolicy": {"enabled": False}},
         lambda r: not r.of_kind("NetworkPolicy") and "WARNING: no NetworkPolicy" in r.notes
         and "every pod in the cluster can reach" in r.notes),
        ({"auth": {"enabled": False}},
         lambda r: arg(r.container, "--auth-token-file") is None and "WARNING: auth is off" in r.notes
         and "POST /v1/admin/reload" in r.notes and "Bearer" not in r.notes),
    ],
)
def test_opening_up_works_as_notes_say(render, values, check):
    default_notes = render().notes
    # Every key the values set is one NOTES.txt names.
    named = set(notes_values(default_notes) + notes_values(render({"auth": {"enabled": False}, "networkPolicy": {"enabled": False}}).notes))
    flat = {f"{top}.{k}" for top, sub in values.items() for k in sub}
    assert flat <= named, f"NOTES.txt does not tell of {flat - named}"
    assert check(render(values))


def test_notes_tell_how_to_call_it(render):
    notes = render().notes
    base = "http://rs-reward-server.rewards.svc.cluster.local:8080"
    assert f"{base}/v1/rewards/<REWARD>/lambda" in notes
    assert f"{base}/v1/rewards/<REWARD>/get_reward" in notes
    assert "rs-reward-server.rewards.svc.cluster.local:50051" in notes
    assert "https://rs-reward-server.rewards.svc.cluster.local:8080/v1/rewards" in render(VARIANTS["tls"]).notes


def test_server_knobs_become_env(render):
    c = render(VARIANTS["everything"]).container
    e = env(c)
    assert e["REWARD_SERVER_WORKERS"] == "4"
    assert e["REWARD_SERVER_JUDGE_WORKERS"] == "32"
    assert e["REWARD_SERVER_MAX_INFLIGHT_ROLLOUTS"] == "16384"
    assert e["REWARD_SERVER_MAX_INFLIGHT_JUDGE_ROLLOUTS"] == "8192"
    assert e["REWARD_SERVER_CACHE_ENTRIES"] == "0", "0 (cache off) must not be dropped as 'unset'"
    assert e["REWARD_SERVER_REQUEST_TIMEOUT_MS"] == "20000"
    d = env(render().container)
    assert [k for k in d if k.startswith("REWARD_SERVER_")] == ["REWARD_SERVER_LOG"], "unset knobs keep the server's defaults"


def test_log_level_is_the_variable_the_binary_reads(render):
    e = env(render({"server": {"logLevel": "info,reward_server=debug"}}).container)
    assert e["REWARD_SERVER_LOG"] == "info,reward_server=debug"
    assert "RUST_LOG" not in e
    main = (REPO_ROOT / "reward-server" / "src" / "main.rs").read_text()
    # The filter comes from REWARD_SERVER_LOG when it is set, RUST_LOG otherwise.
    assert re.search(r'var_os\("REWARD_SERVER_LOG"\)\.is_some\(\) \{ "REWARD_SERVER_LOG" \} else \{ "RUST_LOG" \}', main), main
    assert "EnvFilter::try_from_env(log_var)" in main


# ------------------------------------------------------------------------------------------------
# Wrong values fail, clearly
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        ({"plugins": {"source": "http"}}, "at '/plugins/source': value must be one of 'image', 'oci', 's3'"),
        ({"plugins": {"source": "oci"}}, "at '/plugins/oci/reference': minLength: got 0, want 1"),
        ({"plugins": {"source": "s3", "s3": {"uri": "https://bucket.s3.amazonaws.com/x"}}}, "at '/plugins/s3/uri'"),
        ({"plugins": {"source": "s3"}}, "at '/plugins/s3/uri': minLength"),
        ({"tls": {"enabled": True}}, "at '/tls/secretName': minLength: got 0, want 1"),
        ({"auth": {"enabled": "yes"}}, "at '/auth/enabled': got string, want boolean"),
        ({"auth": {"token": 12345}}, "at '/auth/token': got number, want string"),
        ({"drain": {"preStop": "exec"}}, "at '/drain/preStop': value must be one of 'sleep', 'none'"),
        ({"drain": {"timeoutSeconds": 0}}, "at '/drain/timeoutSeconds': minimum"),
        ({"networkPolicy": {"enabled": "true"}}, "at '/networkPolicy/enabled': got string, want boolean"),
        ({"networkPolicy": {"allowSameNamespace": 1}}, "at '/networkPolicy/allowSameNamespace': got number, want boolean"),
        ({"networkPolicy": {"clients": {"podSelector": {}}}}, "at '/networkPolicy/clients': got object, want array"),
        ({"networkPolicy": {"clients": [{}]}}, "at '/networkPolicy/clients/0': minProperties"),
        ({"networkPolicy": {"clients": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}}, "additional properties 'ipBlock' not allowed"),
        ({"networkPolicy": {"clients": [{"podSelector": {"matchLabels": {"app": 1}}}]}},
         "at '/networkPolicy/clients/0/podSelector/matchLabels/app': got number, want string"),
        ({"networkPolicy": {"clients": [{"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}]}},
         "at '/networkPolicy/clients/0/namespaceSelector/matchExpressions/0/operator'"),
        ({"networkPolicy": {"monitoringNamespace": "Monitoring"}}, "at '/networkPolicy/monitoringNamespace'"),
        ({"server": {"logLevel": 3}}, "at '/server/logLevel': got number, want string"),
        ({"networkPolicy": {"trainingNamespaces": ["Team_A"]}}, "at '/networkPolicy/trainingNamespaces/0'"),
        ({"server": {"grpcPort": 70000}}, "at '/server/grpcPort': maximum"),
        ({"server": {"workrs": 4}}, "additional properties 'workrs' not allowed"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"autoscaling": {"targetCPUUtilizationPercentage": 170}}, "at '/autoscaling/targetCPUUtilizationPercentage'"),
    ],
)
def test_wrong_values_fail_schema_validation(chart, values, message):
    with pytest.raises(helm.HelmValuesError) as e:
        chart.validate_schema(values)
    assert message in str(e.value)
    # The same check guards rendering (helm install / template).
    with pytest.raises(helm.HelmValuesError) as e:
        chart.render(values, name="rs", namespace=NAMESPACE)
    assert message in str(e.value)


def test_every_variant_passes_the_schema(chart):
    for name, values in VARIANTS.items():
        chart.validate_schema(values)  # raises on failure


@pytest.mark.parametrize(
    "config, message",
    [
        ('plugin_dir = "/x"\n[rewards.a]\nplugin = "format"\n', "rewards.config must not set plugin_dir"),
        ("# nothing here\n", "rewards.config defines no rewards"),
    ],
)
def test_template_checks_fail_clearly(chart, config, message):
    with pytest.raises(helm.HelmError) as e:
        chart.render({"rewards": {"config": config}}, name="rs", namespace=NAMESPACE)
    assert message in str(e.value)
