"""foundation is a leaf: it imports no other ganas package, and importing it does not import torch."""
import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "foundation"
PROJECT = {"supernet", "imagedata", "distill", "evaluators", "nas", "dashboards"}


def test_foundation_imports_no_other_ganas_package():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert not roots & PROJECT, f"{path.name} imports {roots & PROJECT}"


def test_importing_every_foundation_module_leaves_torch_unimported():
    modules = sorted(f"foundation.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "False"
