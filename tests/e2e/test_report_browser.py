"""report.html in a real browser: headless Chromium renders it (a screenshot that is not blank) and its DOM has
every figure with its plot and caption. Fails, never skips, when Chromium is missing."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from geo_recon.report import render_run
from tests.unit.report.histories import write_region_loss

FIGURES = ("fig-lag", "fig-rates", "fig-lag-cdf", "fig-anomalies")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is missing: install it with `scripts/install-chromium` (as root; it runs "
                "`apt-get install -y chromium`), or run `scripts/setup` as root", pytrace=False)


def run_chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_region_loss(tmp_path_factory.mktemp("browser") / "region-loss-async", "async")
    render_run(run_dir)
    return run_dir / "report.html"


def test_screenshot_is_a_png_that_is_not_blank(report: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    run_chromium(f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri(), profile=tmp_path / "profile")
    assert shot.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        rgb = image.convert("RGB")
        colors = rgb.getcolors(maxcolors=1 << 20) or []
        inked = sum(n for n, c in colors if c != (255, 255, 255))
        assert len(colors) > 100, f"only {len(colors)} colours: the page rendered (nearly) blank"
        assert inked > 0.05 * 1200 * 3000, "less than 5% of the page is drawn"
        # the NOT MET banner's background (#fdecea) and the fault shading are on screen
        assert any(c == (0xFD, 0xEC, 0xEA) for _, c in colors), "the verdict banner is not rendered"


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.figure: str | None = None
        self.inside: dict[str, dict[str, int]] = {}
        self.captions: dict[str, str] = {}
        self.in_caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "figure":
            self.figure = dict(attrs).get("id") or "?"
            self.inside[self.figure] = {}
            self.captions[self.figure] = ""
        elif self.figure:
            self.inside[self.figure][tag] = self.inside[self.figure].get(tag, 0) + 1
            self.in_caption = self.in_caption or tag == "figcaption"

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self.figure = None
        elif tag == "figcaption":
            self.in_caption = False

    def handle_data(self, data: str) -> None:
        if self.figure and self.in_caption:
            self.captions[self.figure] += data


def test_dom_has_every_figure_with_its_plot(report: Path, tmp_path: Path) -> None:
    dom = run_chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout.decode()
    assert "NOT MET" in dom
    parsed = Dom()
    parsed.feed(dom)
    assert list(parsed.inside) == list(FIGURES)
    for fig_id in FIGURES:
        inside = parsed.inside[fig_id]
        assert inside.get("svg") == 1, f"{fig_id}: no plot"
        assert inside.get("path", 0) >= 10 and inside.get("text", 0) >= 5, f"{fig_id}: the plot is empty"
        assert inside.get("figcaption") == 1 and len(parsed.captions[fig_id]) > 40, fig_id
    assert 'class="plot-error"' not in dom
