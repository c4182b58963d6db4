"""report.html in a real browser: headless Chromium opens the file offline, runs plotly.js and draws every plot.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Without it the test skips, unless
``SYNTHDB_REQUIRE_SERVERS=1``, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipelines.stages.report import build_report
from schemas.kinds import Kind
from schemas.model import Column, DatabaseSchema, ForeignKey, PrimaryKey, Table

# Offline and quiet: no network, no first-run UI, a throwaway profile per call.
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=15000",  # let plotly finish drawing before the DOM is dumped / the screenshot taken
]


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        reason = "Chromium is not installed (Debian package 'chromium')"
        if os.environ.get("SYNTHDB_REQUIRE_SERVERS") == "1":
            pytest.fail(f"SYNTHDB_REQUIRE_SERVERS=1 but {reason}")
        pytest.skip(reason)
    return found


def _run_chromium(binary: str, profile: Path, *args: str) -> bytes:
    # Its own process group, so a hung browser is ended with all its helper processes.
    proc = subprocess.Popen(
        [binary, *_FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
    return out


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the (still filtered) scanlines of an 8-bit PNG: enough to tell a blank page from a drawn one.

    A uniform page has all scanlines alike after PNG filtering; a page with text and plots has hundreds of
    different ones and uses nearly every byte value.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    assert header is not None and header[2] == 8, f"unexpected PNG header {header}"
    width, height, _, color = header[:4]
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    return width, height, [raw[i * stride : (i + 1) * stride] for i in range(height)]


def _small_database() -> tuple[dict[str, pa.Table], DatabaseSchema]:
    rng = np.random.default_rng(5)
    n = 300
    segment = rng.choice(np.array(["a", "b", "c"]), size=n)
    income = np.where(segment == "a", 80.0, 40.0) * rng.lognormal(0, 0.2, n)
    kids = rng.poisson(np.where(segment == "a", 5.0, 2.0))
    parent = np.repeat(np.arange(n), kids)
    tables = {
        "customers": pa.table({"id": np.arange(n), "segment": segment, "income": income}),
        "orders": pa.table(
            {
                "id": np.arange(parent.size),
                "customer_id": parent,
                "amount": income[parent] * rng.lognormal(0, 0.3, parent.size),
                "channel": rng.choice(np.array(["web", "store"]), size=parent.size),
            }
        ),
    }
    schema = DatabaseSchema(
        tables=[
            Table(
                name="customers",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="segment", type="VARCHAR(5)", kind=Kind.CATEGORICAL),
                    Column(name="income", type="DOUBLE PRECISION", kind=Kind.NUMERIC),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="orders",
                columns=[
                    Column(name="id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="customer_id", type="BIGINT", nullable=False, kind=Kind.ID),
                    Column(name="amount", type="DOUBLE PRECISION", kind=Kind.NUMERIC),
                    Column(name="channel", type="VARCHAR(5)", kind=Kind.CATEGORICAL),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[ForeignKey(columns=["customer_id"], ref_table="customers", ref_columns=["id"])],
            ),
        ]
    )
    return tables, schema


def test_report_html_opens_offline_in_chromium_and_plots_render(chromium: str, tmp_path: Path) -> None:
    real, schema = _small_database()
    rng = np.random.default_rng(9)
    # A rough "synthetic" copy: real rows with noise on the numbers, so every plot has two different series.
    synth = {
        name: t.set_column(
            t.schema.get_field_index(col),
            col,
            pa.array(t[col].to_numpy() * rng.lognormal(0, 0.3, t.num_rows)),
        )
        for name, t, col in (("customers", real["customers"], "income"), ("orders", real["orders"], "amount"))
    }
    held = {name: t.slice(0, t.num_rows // 10) for name, t in real.items()}
    result = build_report(real, synth, schema, tmp_path / "report", holdout=held, title="chromium <check>")
    html = result.html_path.read_text(encoding="utf-8")
    assert "http://" not in html.split("<body>", 1)[1].split("<script", 1)[0]  # nothing in the page to fetch
    assert "<title>chromium &lt;check&gt;</title>" in html  # names are escaped, not injected
    figures = html.count("Plotly.newPlot(")
    assert figures == 6  # distributions x2, correlations x2, children per parent, distances

    url = result.html_path.resolve().as_uri()
    dom = _run_chromium(chromium, tmp_path / "profile-dom", "--dump-dom", url).decode("utf-8", "replace")
    # After plotly.js ran, each figure is a plot container holding its SVG layers, with bars and heatmaps drawn.
    assert dom.count('class="plot-container plotly"') == figures
    assert dom.count('class="main-svg"') >= 2 * figures
    assert len(re.findall(r'class="point"', dom)) > 50  # bars of the histograms
    assert 'class="hm"' in dom  # the correlation heatmaps
    assert "chromium &lt;check&gt;" in dom

    shot = tmp_path / "report.png"
    _run_chromium(chromium, tmp_path / "profile-png", f"--screenshot={shot}", "--window-size=1280,2000", url)
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert len(set(rows)) > 200, "the screenshot is (nearly) blank"
    assert len(set(b"".join(rows))) > 128, "the screenshot has too few distinct values to hold text and plots"
