"""Shared helpers of the Helm chart tests: paths, the value variants, and `Rendered` (a rendering's
objects, parsed, with finders for the Deployment's pod and the reward-server container)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "reward-server"
SERVER_BIN = Path(os.environ.get("REWARD_SERVER_BIN", str(REPO_ROOT / "target" / "release" / "reward-server")))
PLUGIN_DIR = REPO_ROOT / "target" / "plugins"

RELEASE = "rs"
NAMESPACE = "rewards"
# The oldest Kubernetes the chart supports (the preStop sleep action is on by default from 1.30),
# and the newest schemas kubernetes-validate ships.
KUBE_VERSIONS = ["1.30.0", "1.37.0"]

# Value sets every test runs against: the default and one per optional feature.
VARIANTS: dict[str, dict] = {
    "default": {},
    "tls": {"tls": {"enabled": True, "secretName": "rs-tls"}},
    "mtls": {"tls": {"enabled": True, "secretName": "rs-tls", "clientCASecret": "rs-client-ca"}},
    "auth-existing-secret": {"auth": {"enabled": True, "existingSecret": "rs-token", "secretKey": "bearer"}},
    "auth-chart-secret": {"auth": {"enabled": True, "token": "t0ken"}},
    "plugins-oci": {
        "plugins": {
            "source": "oci",
            "oci": {"reference": "123456789012.dkr.ecr.us-west-2.amazonaws.com/rewards@sha256:" + "a" * 64,
                    "registryConfigSecret": "ecr-pull"},
        }
    },
    "plugins-s3": {
        "plugins": {"source": "s3", "s3": {"uri": "s3://my-rewards/plugins/v3/", "region": "us-west-2"}},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/rewards"}},
    },
    "hpa-off": {"autoscaling": {"enabled": False}, "replicaCount": 3},
    "servicemonitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "networkpolicy": {
        "networkPolicy": {"enabled": True, "trainingNamespaces": ["hyperpod-ns-team-a", "openrlhf"],
                          "monitoringNamespace": "monitoring"}
    },
    "networkpolicy-clients": {
        "networkPolicy": {"allowSameNamespace": False,
                          "clients": [{"namespaceSelector": {"matchLabels": {"team": "rft"}},
                                       "podSelector": {"matchExpressions": [{"key": "app", "operator": "In",
                                                                             "values": ["openrlhf", "verl"]}]}}]}
    },
    # Everything opened, as NOTES.txt says how (and warns).
    "open": {"auth": {"enabled": False}, "networkPolicy": {"enabled": False}},
    "headless": {"service": {"headless": {"enabled": True}}},
    "prestop-none": {"drain": {"preStop": "none", "preStopSleepSeconds": 0}},
    "everything": {
        "tls": {"enabled": True, "secretName": "rs-tls"},
        "auth": {"enabled": True, "existingSecret": "rs-token"},
        "plugins": {"source": "s3", "s3": {"uri": "s3://my-rewards/plugins/"}},
        "serviceMonitor": {"enabled": True, "tlsConfig": {"insecureSkipVerify": True}},
        "networkPolicy": {"enabled": True, "trainingNamespaces": ["train"], "monitoringNamespace": "monitoring"},
        "service": {"headless": {"enabled": True}},
        "server": {"workers": 4, "judgeWorkers": 32, "maxInflightRollouts": 16384, "maxInflightJudgeRollouts": 8192, "cacheEntries": 0, "requestTimeoutMs": 20000},
        "podAnnotations": {"example.com/team": "rft"},
    },
}


class Rendered:
    """One rendering of the chart: its objects and NOTES.txt."""

    def __init__(self, manifests: dict[str, str]):
        self.notes = ""
        self.objects: list[dict] = []
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc.setdefault("_template", path)
                    self.objects.append(doc)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> dict:
        found = self.of_kind(kind)
        assert len(found) == 1, f"expected one {kind}, found {len(found)}: {[o['metadata']['name'] for o in found]}"
        return found[0]

    def named(self, kind: str, name: str) -> dict:
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        raise AssertionError(f"no {kind} named {name!r}; have {[o['metadata']['name'] for o in self.of_kind(kind)]}")

    @property
    def pod(self) -> dict:
        return self.one("Deployment")["spec"]["template"]["spec"]

    @property
    def container(self) -> dict:
        (c,) = [c for c in self.pod["containers"] if c["name"] == "reward-server"]
        return c

    def manifests(self) -> list[dict]:
        """The objects as Kubernetes would receive them (without the test's bookkeeping key)."""
        return [{k: v for k, v in o.items() if k != "_template"} for o in self.objects]


def merge(base: dict, over: dict) -> dict:
    """Deep merge, as Helm coalesces values."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
