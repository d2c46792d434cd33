"""A task is one folder: no central module names a task, and every task's surface is reached
through the registry alone (STYLE.md: adding a task touches its folder, one registry line, its
presets and its tests).

"Central" is the trunk (training/), the contract (tasks/base.py), the loader (config.py),
inference (run.py, export.py, bench.py) and every user surface (api.py, cli/, report/, apps/);
the registry (`gankit/tasks/__init__.py`) is the one place that lists tasks. The building blocks
(data/, models/, metrics/, ...) are shared by tasks and name data kinds, some of which share a
task's name ("text", "audio"). Naming a task means:
a string literal equal to a task's name, an import of a task's folder, or reading a task's config
section by name (`cfg.translate`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from gankit.tasks import TASKS, task_part

SRC = Path(__file__).resolve().parents[1] / "src" / "gankit"
CENTRAL = ("training", "cli", "report", "apps", "tasks/base.py", "config.py", "run.py", "export.py", "bench.py",
           "api.py", "__init__.py", "__main__.py", "export_onnx.py", "card.py")

# Literals equal to a task's name that mean something else in that module: a JSON field of an
# answer or a frame (what it carries, not which task made it).
NOT_TASK_NAMES = {
    ("apps/serve/app.py", "audio"): "the answer's field holding a WAV data URL",
    ("apps/serve/app.py", "text"): "the answer's field holding lines",
    ("report/page.py", "audio"): "a report frame's field holding its clips",
}


def central_modules() -> list[Path]:
    return [p for c in CENTRAL for p in ([SRC / c] if c.endswith(".py") else sorted((SRC / c).rglob("*.py")))]


def task_sections() -> set[str]:
    """Config sections a task owns and no other shares: its own name's section, and what its
    config.py contributes (when it has one)."""
    names = set(TASKS)
    for task in TASKS:
        cfg = task_part(task, "config")
        names |= set(getattr(cfg, "SECTIONS", {}))
    return names


def namings(path: Path, sections: set[str], rel: str | None = None) -> list[str]:
    rel = rel or str(path.relative_to(SRC))
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in TASKS:
            if (rel, node.value) not in NOT_TASK_NAMES:
                found.append(f"{rel}:{node.lineno}: the literal {node.value!r}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.module == "gankit.tasks":
                mods += [f"gankit.tasks.{a.name}" for a in node.names]
            for m in mods:
                if any(m == v or m.startswith(v + ".") for v in TASKS.values()):
                    found.append(f"{rel}:{node.lineno}: imports {m}")
        elif isinstance(node, ast.Attribute) and node.attr in sections:
            base = node.value
            if (isinstance(base, ast.Name) and base.id in ("cfg", "config")) or \
                    (isinstance(base, ast.Attribute) and base.attr in ("cfg", "config")):
                found.append(f"{rel}:{node.lineno}: reads the config section {node.attr!r}")
    return found


def test_no_central_module_names_a_task():
    sections = task_sections()  # generation's model, reg and burnin included
    found = [f for path in central_modules() for f in namings(path, sections)]
    assert not found, "central modules naming a task:\n" + "\n".join(found)


def test_the_check_catches_a_task_name(tmp_path):
    """The scan above can fail: a literal, an import and a section read are each caught."""
    name = next(iter(TASKS))
    folder = TASKS[name]
    bad = tmp_path / "bad.py"
    bad.write_text(f"import {folder}.task\nif run.task == {name!r}:\n    x = cfg.{name}\n")
    found = namings(bad, set(TASKS), rel="bad.py")
    assert len(found) == 3, found


def test_every_task_folder_has_its_parts():
    """Each registered task reaches the trainer, the CLI and the report through fixed file names."""
    for task, folder in TASKS.items():
        d = SRC / Path(*folder.split(".")[1:])
        assert (d / "task.py").is_file(), f"{task}: no task.py"
        surface = task_part(task, "surface")
        assert surface is not None and "{run}" in surface.USAGE, f"{task}: surface.py needs a USAGE with {{run}}"


@pytest.mark.parametrize("task", list(TASKS))
def test_task_surfaces_import_no_torch(task):
    """`gankit --help` imports every surface: none may pull torch in."""
    code = (f"import sys; from gankit.tasks import task_part; task_part({task!r}, 'surface'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_api_offers_every_task_function():
    """`gankit.api.<name>` reaches each function a task's surface lists in API, and nothing else."""
    import gankit.api as api

    for task in TASKS:
        for name in getattr(task_part(task, "surface"), "API", ()):
            assert callable(getattr(api, name)) and name in dir(api)
    with pytest.raises(AttributeError):
        api.no_such_function  # noqa: B018
