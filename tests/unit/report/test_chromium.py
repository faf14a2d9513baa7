"""The report in a real browser: headless Chromium parses the page and paints its charts.

Chromium comes from the Debian package ``chromium`` (CI installs it); without it these tests fail
rather than skip, so a missing browser cannot pass for a working report. Each test keeps its page,
profile and screenshot under its own tmp_path, so the tests run in parallel under xdist.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.unit.report.markup import parse
from tests.unit.report.objects import GENERATED_AT, charter, cycles
from weavergen.reports import render_report

TIMEOUT_SECONDS = 120
WIDTH, HEIGHT = 1200, 2000
SERIES_BLUE, SIGNAL_RED = bytes.fromhex("0969da"), bytes.fromhex("cf222e")


def chromium_binary() -> str:
    """The chromium on PATH; its absence fails the test (in the test, not as a setup error)."""
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail(
            "chromium is not on PATH: install the Debian package chromium "
            "(apt-get install -y chromium); CI installs it"
        )
    return binary


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on the report page, with a profile of its own under tmp_path."""
    page = tmp_path / "report.html"
    page.write_text(render_report(charter(), cycles(), generated_at=GENERATED_AT), "utf-8")
    command = [
        chromium_binary(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--force-color-profile=srgb",
        f"--user-data-dir={tmp_path / 'profile'}",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct colours of an 8-bit RGB or RGBA PNG (stdlib only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, interlace) == (8, 0), "expected 8-bit, non-interlaced"
    bpp = {2: 3, 6: 4}[colour_type]
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours = bytearray(stride), set[bytes]()
    for y in range(height):
        start = y * (stride + 1)
        kind_byte, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind_byte, line, prev, bpp)
        colours.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp))
        prev = line
    return width, height, colours


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> None:
    """Undo one PNG row filter in place (None, Sub, Up, Average, Paeth)."""
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 2:
            line[i] = (line[i] + b) & 255
        elif kind == 3:
            line[i] = (line[i] + ((a + b) >> 1)) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255


def test_chromium_parses_the_svg_charts(tmp_path: Path) -> None:
    done = run_chromium(tmp_path, "--dump-dom")
    _, dom = parse(done.stdout)
    charts = charter()["status"]["controlCharts"]
    history = {k: len(c["history"]) for k, c in charts.items() if isinstance(c, dict)}
    svgs = dom.find_all("svg", "control-chart")
    assert {svg.attrs["data-chart"]: svg for svg in svgs}.keys() == history.keys()
    for svg in svgs:
        (polyline,) = svg.find_all("polyline", "series")
        assert len(polyline.attrs["points"].split()) == history[svg.attrs["data-chart"]]
    assert len(dom.find_all("svg", "phase-bars")) == len(cycles())
    assert not dom.find_all("script")


def test_chromium_paints_the_page(tmp_path: Path) -> None:
    shot = tmp_path / "out.png"
    run_chromium(
        tmp_path,
        f"--screenshot={shot}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
    )
    assert shot.is_file(), "chromium wrote no screenshot"
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(colours) > 100, f"only {len(colours)} colours: the page looks blank"
    assert SERIES_BLUE in colours, "no series line painted"
    assert SIGNAL_RED in colours, "no signal marker painted"
