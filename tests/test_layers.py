"""The package's import layers: lowest first, a module imports only its own layer or lower ones,
at module level or inside a function alike (an import inside a function must not dodge a
cycle); the module-level import graph has no cycle; and commands that need no tensor never
import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gankit"

# Lowest first. A module belongs to the most specific prefix that matches its dotted name (the one
# with the most parts; "=name" beats a prefix of as many): the module and its submodules; "=name" is that module alone, and "*" in a
# prefix stands for any one name. A task folder spans layers: the registry (gankit.tasks itself)
# and each task's config.py are base (gankit.config reads them); its maths is in tasks; its page
# panels (serve.py) are an app; its user surface (surface.py: commands, flags, API) is the CLI's.
LAYERS = [
    ("base", ["gankit.errors", "gankit.disk", "gankit.config", "gankit.util", "gankit.threads", "gankit.version",
              "=gankit.tasks", "gankit.tasks.*.config"]),
    # a user's image and video files; gankit.data reads videos through it, so it sits below data
    ("media", ["gankit.media"]),
    ("blocks", ["gankit.data", "gankit.models", "gankit.losses", "gankit.regularizers", "gankit.augment",
                "gankit.viz", "gankit.tiling", "gankit.report"]),
    ("metrics", ["gankit.metrics"]),
    ("tasks", ["gankit.tasks"]),
    ("training", ["gankit.training"]),
    ("inference", ["gankit.run", "gankit.export", "gankit.export_onnx", "gankit.card", "gankit.bench"]),
    ("api", ["gankit.api"]),  # the Python API never imports the apps or the CLI built on it
    ("apps", ["gankit.apps", "gankit.tasks.*.serve"]),
    # a task's surface.py adds its commands with the CLI's helpers (gankit.cli.common)
    ("cli", ["gankit.cli", "gankit.__main__", "gankit", "gankit.tasks.*.surface"]),
]


def _matches(module: str, prefix: str) -> bool:
    if prefix.startswith("="):
        return module == prefix[1:]
    parts, want = module.split("."), prefix.split(".")
    return len(parts) >= len(want) and all(w in ("*", p) for w, p in zip(want, parts))


def layer_of(module: str) -> int:
    found = [(len(p.split(".")) + p.startswith("="), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
             if p != "gankit" and _matches(module, p)]
    if found:
        return max(found)[1]
    assert module == "gankit" or module.startswith("gankit."), module
    if module == "gankit":
        return len(LAYERS) - 1
    raise AssertionError(f"{module} is in no layer; add it to LAYERS in {__file__}")


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported gankit module, line, at module level) for every import statement in a file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            # `from gankit import api` imports the submodule gankit.api
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in ALL else base for a in node.names]
        else:
            continue
        for t in targets:
            if t == "gankit" or t.startswith("gankit."):
                while t not in ALL and "." in t:  # `import gankit.data.files` -> the module
                    t = t.rsplit(".", 1)[0]
                found.append((t, node.lineno, id(node) in top))
    return found


ALL = modules()


def test_every_module_is_in_a_layer():
    for name in ALL:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(ALL))
def test_imports_go_downwards(name):
    own = layer_of(name)
    bad = [f"{name}:{line} imports {t} ({LAYERS[layer_of(t)][0]}) from layer {LAYERS[own][0]}"
           for t, line, _ in imports(name, ALL[name]) if layer_of(t) > own]
    assert not bad, "; ".join(bad)


def test_no_import_cycle_at_module_level():
    graph = {n: {t for t, _, top in imports(n, p) if top and t != n} for n, p in ALL.items()}
    # A package's __init__ runs when any of its submodules is imported: that edge is implicit.
    state: dict[str, int] = {}

    def visit(n, trail):
        state[n] = 1
        for m in sorted(graph.get(n, ())):
            if m.startswith(n + "."):  # a package importing its own submodules
                continue
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [m]))
            if m not in state:
                visit(m, trail + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])


def test_the_layer_check_can_fail(tmp_path):
    """An upward import, even inside a function, is found: config importing the trainer."""
    fake = tmp_path / "config.py"
    fake.write_text("def f():\n    from gankit.training.loop import train\n    from . import errors\n")
    found = imports("gankit.config", fake)
    assert ("gankit.training.loop", 2, False) in found and ("gankit.errors", 3, False) in found
    assert layer_of("gankit.training.loop") > layer_of("gankit.config")


@pytest.mark.parametrize("importer, imported", [
    ("gankit.api", "gankit.apps.augment_eval.driver"),  # the API forwarding to an app: a cycle
    ("gankit.api", "gankit.cli.evaluate"),
    ("gankit.apps.serve.app", "gankit.cli.common"),  # nothing imports the CLI
    ("gankit.media.images", "gankit.data.dataset"),  # media is below data: data reads videos through it
    ("gankit.media.video", "gankit.data.frames"),
])
def test_the_arrows_issue_27_removed_would_fail(importer, imported):
    assert layer_of(imported) > layer_of(importer), f"{importer} -> {imported} would pass the layer check"


@pytest.mark.parametrize("argv", [["--help"], ["presets"], ["presets", "dcgan"], ["train", "--help"],
                                  ["--version"], ["report", "--help"], ["serve", "--help"]])
def test_commands_that_need_no_tensor_do_not_import_torch(argv):
    code = ("import sys\nfrom gankit.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
