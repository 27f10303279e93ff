"""The vendored gRPC stubs are what grpcio-tools generates from proto/reward/v1/reward.proto today."""

import subprocess
import sys
from pathlib import Path

GEN = Path(__file__).resolve().parents[1] / "gen_stubs.py"


def test_vendored_stubs_match_the_proto():
    done = subprocess.run([sys.executable, str(GEN), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, f"{done.stderr}\nregenerate with: python3 {GEN}"
