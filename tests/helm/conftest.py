"""Fixtures for the Helm chart tests.

The chart (`helm/reward-server`) is linted and rendered offline through helm-python-sdk, which embeds
Helm v4 (no helm binary, no cluster). Rendered manifests are parsed into dicts (`helmtest.Rendered`).
"""

from __future__ import annotations

import helm_python as helm
import pytest

from helmtest import CHART_DIR, NAMESPACE, RELEASE, Rendered


@pytest.fixture(scope="session")
def chart():
    with helm.Chart.load(CHART_DIR) as c:
        yield c


@pytest.fixture(scope="session")
def render(chart):
    """render(values) -> Rendered, as `helm template rs helm/reward-server -n rewards` would."""

    def do(values: dict | None = None) -> Rendered:
        return Rendered(chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True))

    return do
