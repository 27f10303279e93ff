"""Regenerates the vendored gRPC stubs in reward_client/_proto from proto/reward/v1/reward.proto.

    python3 clients/python/gen_stubs.py          # rewrite the stubs
    python3 clients/python/gen_stubs.py --check  # exit 1 if they differ from what the proto generates

Needs grpcio-tools (the `test` extra). The stubs keep the proto's file name
(`reward/v1/reward.proto`), so they coexist with stubs a user generates from the same proto; only
the one absolute import in the `_grpc` module becomes relative.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[1] / "proto"
PROTO = "reward/v1/reward.proto"
OUT = HERE / "reward_client" / "_proto"
FILES = ("reward_pb2.py", "reward_pb2_grpc.py")


def generate() -> dict[str, str]:
    """The stub files, by name, as protoc generates them today (with the import made relative)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={tmp}", f"--grpc_python_out={tmp}", PROTO]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr}")
        gen = Path(tmp) / "reward" / "v1"
        files = {name: (gen / name).read_text() for name in FILES}
    absolute = "from reward.v1 import reward_pb2 as"
    if absolute not in files["reward_pb2_grpc.py"]:
        raise RuntimeError(f"the generated reward_pb2_grpc.py no longer has `{absolute}`; update gen_stubs.py")
    files["reward_pb2_grpc.py"] = files["reward_pb2_grpc.py"].replace(absolute, "from . import reward_pb2 as")
    return files


def main() -> int:
    files = generate()
    if sys.argv[1:] == ["--check"]:
        stale = [n for n, text in files.items() if not (OUT / n).is_file() or (OUT / n).read_text() != text]
        if stale:
            print(f"stale stubs in {OUT}: {', '.join(stale)}; run python3 {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
