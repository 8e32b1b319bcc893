"""Regenerate the protobuf and gRPC Python code (with mypy stubs) from protos/ into bridge/api/gen.

Also compiles the uplink's Sparkplug B payload schema (bridge/uplink/proto/sparkplug_b.proto) next to itself.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "bridge" / "api" / "gen"
PACKAGE = "linebridge.api.gen"
# Compiled from the repository root so its registered name ("bridge/uplink/proto/...") is unique in the
# process-wide descriptor pool, even next to another Sparkplug library.
SPARKPLUG = "bridge/uplink/proto/sparkplug_b.proto"

# protoc writes imports relative to the proto root ("from linebridge.v1 import x_pb2"); the code
# lives inside our package, so those imports are rewritten to absolute package imports.
_IMPORT_LINE = re.compile(r"^(\s*)(from|import) linebridge\.v1", re.MULTILINE)
_STUB_REF = re.compile(r"(?<=[\s\[(,])linebridge\.v1\.(\w+_pb2)")


def _fix(path: Path) -> None:
    text = path.read_text()
    text = _IMPORT_LINE.sub(rf"\1\2 {PACKAGE}.linebridge.v1", text)
    if path.suffix == ".pyi":
        text = _STUB_REF.sub(rf"{PACKAGE}.linebridge.v1.\1", text)
    path.write_text(text)


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    # The mypy plugins are console scripts installed next to this interpreter.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    include = str(resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *files,
    ]
    if protoc.main(args) != 0:
        print("protoc failed", file=sys.stderr)
        return 1
    for directory in [OUT, *[p for p in OUT.rglob("*") if p.is_dir()]]:
        (directory / "__init__.py").write_text('"""Generated code; run `make protos` to refresh."""\n')
    for path in OUT.rglob("*.py*"):
        if path.name != "__init__.py":
            _fix(path)
    sparkplug = ["protoc", f"-I{ROOT}", f"--python_out={ROOT}", f"--mypy_out={ROOT}", SPARKPLUG]
    if protoc.main(sparkplug) != 0:
        print("protoc failed on the Sparkplug schema", file=sys.stderr)
        return 1
    print(f"generated {len(files)} proto files into {OUT.relative_to(ROOT)}, and {SPARKPLUG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
