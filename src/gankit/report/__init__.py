"""A training run as one self-contained HTML page (`write_report`), and several runs side by side
(`compare_reports`).

    from gankit.report import write_report, compare_reports
    write_report("runs/demo")                                   # runs/demo/report.html
    compare_reports(["runs/a", "runs/b"], "compare.html")

The page needs no network: images are inline data URIs, plots inline SVG, the CSS and the
script are in the file. It shows what the run directory holds so far and says what it lacks, so
training can refresh it at every grid step (it takes milliseconds) and a crashed or half-written
run still gets one. Submodules: `read` (the run directory as a `RunData`), `plots` (SVG line
plots), `style` (CSS, script, shared helpers), `page` (one run), `compare` (several).

This package imports neither torch nor matplotlib: `gankit report` must be quick to start.
"""

from __future__ import annotations

from pathlib import Path

from gankit import disk
from gankit.errors import GankitError
from gankit.report import compare, page
from gankit.report.read import RunData, read_run

__all__ = ["write_report", "compare_reports", "read_run", "RunData"]


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write RUN/report.html (or `out`) for one run; returns the path. Atomic (temp file + os.replace)."""
    run = read_run(run_dir)
    return _write(page.render(run), Path(out) if out is not None else run.path / "report.html")


def compare_reports(run_dirs: list[str | Path], out: str | Path) -> Path:
    """One HTML page comparing several runs: curves of each on one plot, a table of final metrics."""
    if not run_dirs:
        raise GankitError("compare_reports needs at least one run directory")
    return _write(compare.render([read_run(d) for d in run_dirs]), Path(out))


def _write(html: str, out: Path) -> Path:
    """`html` into `out` all at once: a reader (a browser refreshing while training rewrites the
    page) sees the old page or the new one, never half of one."""
    if out.is_dir():
        raise GankitError(f"{out} is a directory; give the report a file name, e.g. {out / 'report.html'}")
    with disk.atomic(out) as tmp:  # a refusal (a full disk, a read-only folder) is one line naming `out`
        tmp.write_text(html, encoding="utf-8")
    return out
