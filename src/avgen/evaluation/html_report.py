"""The comparison as a page to read, watch and hear (`outputs/compare/<dataset>.html`, written beside the
Markdown report by `avgen compare`): the same protocol card, tables (intervals, floors, ceilings, normalised
scores, paired differences) and plots, then a sample grid: one row per sample index (generation is seeded per
index, so a row is the same seed and condition for every run), one column per run, each cell a playable mp4
with its sound. Video-to-audio and audio-to-video rows put the real test clip they were conditioned on first.

One self-contained file with relative links to the runs' own mp4s: it works from the file system, with no
server and no network. Checkboxes choose the runs and metrics shown. The page checks itself: every script
error and every video that fails to load is recorded in `document.body.dataset.selftest` (what the browser
test in tests/test_html_report.py reads).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import markdown as markdown_lib

# the sample files a run writes (evaluation/scoring.py): joint samples, conditional outputs, their conditions
GRIDS = (
    ("Joint samples", "sample", None),
    ("Video to audio (the run's audio for the test clip's video)", "v2a", "reference"),
    ("Audio to video (the run's video for the test clip's audio)", "a2v", "reference"),
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1600px; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; }
video { width: 200px; display: block; }
.controls { position: sticky; top: 0; background: #fffe; padding: 0.5em 0; border-bottom: 1px solid #ddd; }
.controls fieldset { display: inline-block; margin-right: 1em; vertical-align: top; }
.hidden { display: none; }
.grid td.index { font-weight: bold; }
"""

# Hides every table row holding an unchecked run's or metric's name in a cell, every column headed by an
# unchecked metric and every grid column of an unchecked run; records script errors and failed videos.
SCRIPT = """
const problems = [];
window.addEventListener("error", e => problems.push("script: " + e.message));
const consoleError = console.error;
console.error = (...args) => { problems.push("console: " + args.join(" ")); consoleError(...args); };
function hiddenNames() {
  return new Set([...document.querySelectorAll(".controls input:not(:checked)")].map(i => i.value));
}
function apply() {
  const hide = hiddenNames();
  for (const table of document.querySelectorAll("table")) {
    const header = [...table.querySelectorAll("thead th, tr:first-child th")].map(th => th.textContent.trim());
    for (const row of table.querySelectorAll("tr")) {
      const cells = [...row.children];
      const byName = cells.some(c => hide.has(c.textContent.trim()) && !c.matches("th"));
      row.classList.toggle("hidden", byName);
      cells.forEach((c, i) => c.classList.toggle("hidden", hide.has(header[i]) || hide.has(c.dataset.run)));
    }
  }
}
function selftest() {
  const videos = [...document.querySelectorAll("video")];
  let settled = 0, loaded = 0;
  const done = () => {
    if (++settled === videos.length) {
      document.body.dataset.selftest = JSON.stringify({videos: videos.length, loaded: loaded, problems: problems});
    }
  };
  if (!videos.length) { document.body.dataset.selftest = JSON.stringify({videos: 0, loaded: 0, problems: problems}); }
  for (const v of videos) {
    if (v.readyState >= 1) { loaded++; done(); continue; }
    v.addEventListener("loadedmetadata", () => { loaded++; done(); }, {once: true});
    v.addEventListener("error", () => { problems.push("video: " + v.getAttribute("src")); done(); }, {once: true});
    v.load();
  }
}
document.addEventListener("change", apply);
window.addEventListener("load", () => { apply(); selftest(); });
"""


def _checkboxes(legend: str, names: list[str]) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" checked value="{html.escape(n)}"> {html.escape(n)}</label> ' for n in names
    )
    return f"<fieldset><legend>{legend}</legend>{boxes}</fieldset>"


def sample_files(run_dir: Path, prefix: str) -> dict[int, Path]:
    """{sample index: mp4} of one kind (`sample_000.mp4`, `v2a_000.mp4`, ...) in a run's samples folder."""
    out = {}
    for path in (run_dir / "samples").glob(f"{prefix}_*.mp4"):
        index = path.stem[len(prefix) + 1 :]
        if index.isdigit():
            out[int(index)] = path
    return out


def run_samples(rows: list[dict[str, Any]], prefix: str) -> tuple[dict[str, dict[int, Path]], list[int]]:
    """({run: {sample index: mp4}} of the runs that wrote this kind, every index any of them wrote): the
    columns and rows of a sample grid (the HTML page's and the W&B table's)."""
    found = {r["run"]: sample_files(Path(r["dir"]), prefix) for r in rows if r.get("dir") is not None}
    found = {name: s for name, s in found.items() if s}
    return found, sorted({i for s in found.values() for i in s})


def _video(path: Path, page_dir: Path) -> str:
    src = html.escape(Path(os.path.relpath(path, page_dir)).as_posix())
    return f'<video controls preload="metadata" src="{src}"></video>'


def sample_grid(rows: list[dict[str, Any]], page_dir: Path) -> str:
    """The grids of every sample kind some run wrote: rows = sample indices, columns = runs."""
    parts = []
    for title, prefix, condition in GRIDS:
        found, indices = run_samples(rows, prefix)
        if not found:
            continue
        conditions: dict[int, Path] = {}
        if condition is not None:  # the real test clips: the same for every run scored with this seed
            for clips in run_samples(rows, condition)[0].values():
                for i, path in clips.items():
                    conditions.setdefault(i, path)
        head = "<th>sample</th>" + ("<th>condition (real clip)</th>" if conditions else "")
        head += "".join(f'<th data-run="{html.escape(n)}">{html.escape(n)}</th>' for n in found)
        body = []
        for i in indices:
            cells = f'<td class="index">{i}</td>'
            if conditions:
                cells += f"<td>{_video(conditions[i], page_dir) if i in conditions else ''}</td>"
            for name, samples in found.items():
                video = _video(samples[i], page_dir) if i in samples else ""
                cells += f'<td data-run="{html.escape(name)}">{video}</td>'
            body.append(f"<tr>{cells}</tr>")
        parts.append(
            f"<h2>{html.escape(title)}</h2><table class='grid'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
        )
    if not parts:
        return "<h2>Samples</h2><p>No run wrote sample videos (evaluate.num_videos=0?).</p>"
    note = (
        "<p>Each row is one sample index: the same seed (and, for v2a/a2v, the same test clip) for every run. "
        "Columns follow the run checkboxes above.</p>"
    )
    return parts[0].replace("</h2>", "</h2>" + note, 1) + "".join(parts[1:])


def html_page(title: str, markdown_text: str, rows: list[dict[str, Any]], columns: list[str], page_dir: Path) -> str:
    """The HTML report of one dataset: the Markdown report's content, the choosers and the sample grid."""
    body = markdown_lib.markdown(markdown_text, extensions=["tables"])
    runs = [r["run"] for r in rows]
    controls = f'<div class="controls">{_checkboxes("runs", runs)}{_checkboxes("metrics", columns)}</div>'
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>{controls}\n{body}\n"
        f"{sample_grid(rows, page_dir)}\n<script>{SCRIPT}</script></body></html>\n"
    )
