"""The HTML comparison (evaluation/html_report.py): built from runs with real mp4s, and loaded in a headless
Chromium (slow tier): no script errors, every video loads, a screenshot kept as a test artefact."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_compare import write_run

from avgen.cli.main import main
from avgen.decoding.export import write_sample

ARTIFACTS = Path(os.environ.get("AVGEN_TEST_ARTIFACTS", Path(__file__).parents[1] / "outputs" / "test_artifacts"))


def clip(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.uniform(size=(1, 3, 16, 16)), 8, axis=0)  # (F, 3, H, W) in [0, 1]
    t = np.arange(8000) / 8000
    return frames.astype(np.float32), (0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t)).astype(np.float32)


@pytest.fixture
def compared(tmp_path):
    """Two runs of one dataset with joint samples, v2a outputs and their conditions; `avgen compare` run."""
    out = tmp_path / "outputs"
    for k, name in enumerate(("cmmd_synthetic", "ncmmd_synthetic")):
        metrics = {
            "dataset": "synthetic",
            "method": "cmmd",
            "variant": f"eta={0.02 * (1 - k)}",
            "temporal_f1": 0.4 - 0.1 * k,
            "v2a_temporal_f1": 0.3,
            "intervals": {"temporal_f1": [0.3 - 0.1 * k, 0.5 - 0.1 * k]},
        }
        write_run(out, name, metrics)
        samples = out / name / "samples"
        samples.mkdir()
        for i in range(2):
            write_sample(samples / f"sample_{i:03d}.mp4", *clip(10 * k + i), fps=8, sample_rate=8000)
        write_sample(samples / "v2a_000.mp4", *clip(20 + k), fps=8, sample_rate=8000)
        write_sample(samples / "reference_000.mp4", *clip(99), fps=8, sample_rate=8000)
    assert main(["compare", f"paths.output_dir={out}"]) == 0
    return out / "compare" / "synthetic.html"


def test_the_page_links_every_run_sample_and_condition(compared):
    page = compared.read_text()
    sources = re.findall(r'<video controls preload="metadata" src="([^"]+)"', page)
    assert len(sources) == 2 * 2 + 2 + 1  # joint 2 x 2 runs, v2a 1 x 2 runs, one condition column
    assert all((compared.parent / s).is_file() for s in sources)  # relative links: no server needed
    assert "../ncmmd_synthetic/samples/sample_001.mp4" in sources and "condition (real clip)" in page
    for chooser in ('value="cmmd_synthetic"', 'value="ncmmd_synthetic"', 'value="temporal_f1"'):
        assert chooser in page
    assert "<table>" in page and "0.400 [0.300, 0.500]" in page  # the Markdown report's tables, as HTML
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_the_page_loads_in_a_headless_browser(compared):
    browser = chromium()
    if browser is None:  # .ci/run installs it; elsewhere: apt-get install chromium
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    url = compared.as_uri()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=20000", "--dump-dom", url], capture_output=True, text=True, timeout=180
    ).stdout
    found = re.search(r'data-selftest="([^"]*)"', dom)
    assert found, dom[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["problems"] == [] and result["videos"] == 7 and result["loaded"] == 7, result
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "compare_synthetic.png"
    subprocess.run(
        [*flags, "--window-size=1400,1800", "--virtual-time-budget=20000", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert shot.stat().st_size > 10_000
