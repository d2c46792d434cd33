"""Shared fixtures. MNIST is converted once into the user's gankit cache (as in real use);
tests that exercise the conversion or download themselves point $GANKIT_CACHE elsewhere."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


class NoHostReads(torch.utils._python_dispatch.TorchDispatchMode):
    """Fails on every op that reads a tensor's value to the host: `_local_scalar_dense` (what
    `.item()`, `bool(t)`, `float(t)` and a tensor passed as a Scalar run) and the ops whose output
    shape depends on values (nonzero, masked_select, a boolean index). On CUDA each is a
    synchronisation a graph cannot capture. Only top-level ops reach the mode, so a boolean index
    is caught by its argument."""

    READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default,
             torch.ops.aten.masked_select.default}
    INDEXING = {torch.ops.aten.index.Tensor, torch.ops.aten.index_put.default, torch.ops.aten.index_put_.default}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.READS or (func in self.INDEXING and any(
                i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1])):
            raise AssertionError(f"host read inside the graph step: {func}")
        return func(*args, **(kwargs or {}))


@pytest.fixture
def no_host_reads():
    """The `NoHostReads` mode: `with no_host_reads(): step()` fails on any read back to the host."""
    return NoHostReads


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("GANKIT_CACHE", str(d))
    return d


def kill_mid_run(phase: str, pace: float, args: list[str], out, env: dict, rows: int = 6, wait: float = 120) -> None:
    """Run `gankit <args>` in a subprocess whose step function `phase` ("module:function", what the
    task's `phases` calls) sleeps `pace` s per call, and SIGKILL it once `out`/metrics.jsonl holds
    `rows` rows: paced so the kill lands mid-run, after a checkpoint and before the end. Fails if
    the trainer ends first; after `wait` s it is killed anyway (the caller's checkpoint check then
    says how far it got)."""
    module, fn = phase.split(":")
    trainer = textwrap.dedent(f"""
        import sys, time
        import {module} as m
        real = m.{fn}
        def paced(*a, **k):
            time.sleep({pace!r}); return real(*a, **k)
        m.{fn} = paced
        from gankit.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", trainer, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    t0 = time.time()
    while time.time() - t0 < wait:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= rows:
            break
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.fixture
def sigkill_mid_run():
    """`kill_mid_run`: `sigkill_mid_run("gankit.tasks.x.task:x_phase", 0.2, ["train", ...], out, env)`."""
    return kill_mid_run


# -- the browser tests: Debian's chromium driven by Playwright (never a browser download) ---------
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium (Playwright, executable_path = $GANKIT_CHROMIUM or /usr/bin/chromium).
    Skips with one line saying how to enable it where the browser or Playwright is missing."""
    import os
    from pathlib import Path

    exe = os.environ.get("GANKIT_CHROMIUM", "/usr/bin/chromium")
    if not Path(exe).exists():
        pytest.skip(f"browser tests need Chromium at {exe}: `make test` installs Debian's chromium as root; "
                    "elsewhere install it and set GANKIT_CHROMIUM")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright for Python: pip install -e '.[test]'")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page; console errors and uncaught exceptions collected in `page.errors`."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    yield pg
    ctx.close()
