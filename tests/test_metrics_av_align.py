"""AV-Align on media with known answers (a clip against itself vs a time-shifted copy), and the reference
mode against a transcription of the reference script on generated mp4s."""

from __future__ import annotations

import numpy as np
import pytest

from avgen.metrics.av_align import AVAlign, av_align_files, av_align_iou, reference_iou, reproducible_flow

FPS, SR = 10, 16000


def jumping_square(jumps: list[int], frames: int = 40) -> np.ndarray:
    """A bright square that jumps to a new place at the given frames (motion peaks there)."""
    video = np.zeros((frames, 64, 64, 3), np.uint8)
    spots = [(8, 8), (36, 36), (8, 36), (36, 8)]
    spot = 0
    for k in range(frames):
        if k in jumps:
            spot = (spot + 1) % len(spots)
        y, x = spots[spot]
        video[k, y : y + 20, x : x + 20] = 230
    return video


def clicks(times: list[float], seconds: float = 4.0) -> np.ndarray:
    wav = np.random.default_rng(0).normal(0, 1e-3, int(seconds * SR)).astype(np.float32)
    for t in times:
        k = int(t * SR)
        wav[k : k + 160] += np.random.default_rng(1).uniform(-0.9, 0.9, 160).astype(np.float32)
    return wav


def test_iou_counts_one_to_one_matches():
    assert av_align_iou(np.array([1.0, 2.0]), np.array([1.05, 3.0]), 0.1) == pytest.approx(1 / 3)
    assert av_align_iou(np.array([1.0, 1.02]), np.array([1.0]), 0.1) == pytest.approx(1 / 2)  # never above 1
    assert av_align_iou(np.array([]), np.array([]), 0.1) == 0.0


def test_reference_iou_counts_every_onset_near_a_peak_in_a_strict_window():
    """The published examples of where the reference and the one-to-one variant part ways."""
    onsets, video = np.array([0.5, 0.55, 1.0]), np.array([0.5, 1.0])
    assert reference_iou(onsets, video, fps=10) == pytest.approx(1.5)  # three hits against two peaks
    assert av_align_iou(onsets, video, 1 / 10) == pytest.approx(2 / 3)
    onsets, video = np.array([0.25, 1.5]), np.array([0.125, 1.375])  # exactly one frame apart at 8 fps
    assert reference_iou(onsets, video, fps=8) == 0.0  # strict: |v - a| < 1 / fps
    assert av_align_iou(onsets, video, 1 / 8) == 1.0
    assert reference_iou(np.array([]), np.array([]), 8) == 0.0  # the script divides by zero here


@pytest.mark.parametrize("mode", ["reference", "one_to_one"])
def test_aligned_clip_scores_high_and_shifted_copy_low(mode):
    jumps = [5, 13, 22, 31]
    video = jumping_square(jumps)
    aligned = AVAlign(FPS, SR, mode=mode)
    aligned.update([video], [clicks([k / FPS for k in jumps])])
    shifted = AVAlign(FPS, SR, mode=mode)
    shifted.update([video], [clicks([k / FPS + 0.4 for k in jumps])])  # every sound 4 frames late
    assert float(aligned.compute()) > 0.6
    assert float(shifted.compute()) < 0.2


def test_reference_mode_equals_the_reference_script_on_mp4_files(tmp_path):
    """Generated mp4 + wav pairs (aligned, late and early sound, a still clip) scored by `av_align_files` and
    by the transcribed script: the same IoU per file, to float precision."""
    import soundfile as sf

    from avgen.data.media import write_mp4
    from tests.reference.av_align_script import score_files

    jumps = [5, 13, 22, 31]
    cases = {
        "aligned": (jumping_square(jumps), [k / FPS for k in jumps]),
        "late": (jumping_square(jumps), [k / FPS + 0.3 for k in jumps]),
        "early": (jumping_square([7, 20, 33]), [0.45, 1.65, 2.95]),
        "many_onsets": (jumping_square([10, 30]), [0.98, 1.02, 1.5, 2.97, 3.03]),
    }
    stems = []
    for name, (video, times) in cases.items():
        stem = tmp_path / name
        wav = clicks(times)
        write_mp4(stem.with_suffix(".mp4"), video, FPS, wav, SR)
        sf.write(stem.with_suffix(".wav"), wav, SR)
        stems.append(str(stem))
    ours = av_align_files([f"{s}.mp4" for s in stems])
    with reproducible_flow():  # the script's computation on the same (reproducible) OpenCV kernels as ours
        for stem, score in zip(stems, ours):
            assert score == pytest.approx(score_files([stem]), abs=1e-12), stem
        assert np.mean(ours) == pytest.approx(score_files(stems), abs=1e-12)
    assert ours[0] > ours[1]  # aligned above late
    # without the wav, the mp4's own (AAC) track: what `avgen score` reads for a folder of mp4s
    (tmp_path / "aligned.wav").unlink()
    assert av_align_files([stems[0] + ".mp4"])[0] == pytest.approx(ours[0], abs=0.35)


@pytest.mark.slow  # fresh processes (OpenCV's optimised kernels vary between processes, not within one)
def test_the_flow_trajectory_is_the_same_in_every_process(tmp_path):
    import subprocess
    import sys

    np.save(tmp_path / "frames.npy", jumping_square([5, 13, 22, 31]))
    code = (
        "import sys, numpy as np; from avgen.metrics.av_align import reference_motion; "
        "sys.stdout.write(reference_motion(np.load(sys.argv[1])).tobytes().hex())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "frames.npy")], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(6)
    }
    assert len(runs) == 1


def test_calibrated_av_align_sits_between_its_floors_and_ceiling():
    """Aligned pairs with distinct jump times: value near the real ceiling, deranged and shifted floors low."""
    from avgen.metrics.calibrated import calibrated_av_align

    schedules = [[5, 13, 22, 31], [8, 17, 27, 35], [3, 11, 20, 29], [6, 15, 24, 33], [9, 18, 26, 36]]
    videos = [jumping_square(j) for j in schedules]
    audios = [clicks([k / FPS for k in j]) for j in schedules]
    score = calibrated_av_align(
        videos, audios, FPS, SR, num_derangements=20, shift_seconds=0.4, reference=(videos, audios)
    )
    assert score.value == pytest.approx(score.ceiling) and score.value > 0.5  # the real pairs themselves
    assert score.floor < 0.35 and score.shifted_floor < 0.2 and score.floor_std >= 0
    lo, hi = score.interval
    assert lo <= score.value <= hi
    assert score.calibration()["normalised"] == pytest.approx(1.0)


def test_one_pair_has_an_interval_and_no_derangement_floor():
    from avgen.metrics.calibrated import calibrated_av_align

    jumps = [5, 13, 22, 31]
    score = calibrated_av_align([jumping_square(jumps)], [clicks([k / FPS for k in jumps])], FPS, SR)
    assert score.floor is None and "floor" not in score.calibration() and "shifted_floor" in score.calibration()
    assert score.interval == (score.value, score.value)


def _folder(root, cases):
    import soundfile as sf

    from avgen.data.media import write_mp4

    root.mkdir()
    for name, (video, times) in cases.items():
        wav = clicks(times)
        write_mp4(root / f"{name}.mp4", video, FPS, wav, SR)
        sf.write(root / f"{name}.wav", wav, SR)
    return root


def test_avgen_score_scores_a_folder_of_mp4s_with_the_runs_protocol(tmp_path, capsys):
    """`avgen score <dir> ref=<dir>`: AV-Align per file exactly as the reference script (through
    `av_align_files`), its interval and floor over files, the variant beside it, and FVD against the
    reference folder through the same path as a run's evaluation (a stand-in I3D)."""
    import json

    import torch

    from avgen.cli.main import main
    from tests.test_metrics_distances import ScriptedI3D, tiny_i3d

    jumps = [[5, 13, 22, 31], [7, 20, 33], [3, 11, 25], [9, 18, 30]]
    generated = _folder(
        tmp_path / "gen", {f"s{i}": (jumping_square(j), [k / FPS + 0.1 * i for k in j]) for i, j in enumerate(jumps)}
    )
    # the real clips: other motion (the square jumps every 4 frames), each with its own sound
    steady = [[4 * k + i for k in range(9)] for i in range(4)]
    real = _folder(
        tmp_path / "real", {f"r{i}": (jumping_square(j), [k / FPS for k in j]) for i, j in enumerate(steady)}
    )
    i3d = tmp_path / "i3d.pt"
    torch.jit.script(ScriptedI3D(torch.jit.trace(tiny_i3d(), torch.zeros(1, 3, 4, 32, 32)))).save(str(i3d))
    args = [
        "score",
        str(generated),
        f"ref={real}",
        "metrics=av_align,av_align_one_to_one,fvd",
        f"evaluate.fvd.weights={i3d}",
        "evaluate.fvd.num_frames=4",
        "evaluate.fvd.size=32",
        "evaluate.synthetic.num_derangements=10",
    ]
    assert main(args) == 0
    metrics = json.loads((generated / "scores" / "metrics.json").read_text())
    per_file = json.loads((generated / "scores" / "per_file.json").read_text())
    exact = av_align_files(sorted(generated.glob("*.mp4")))
    assert per_file["file"] == ["s0", "s1", "s2", "s3"] and per_file["av_align"] == pytest.approx(exact, abs=1e-12)
    assert metrics["av_align"] == pytest.approx(np.mean(exact), abs=1e-12)
    lo, hi = metrics["intervals"]["av_align"]
    assert lo <= metrics["av_align"] <= hi
    assert metrics["calibration"]["av_align"]["ceiling"] == pytest.approx(
        np.mean(av_align_files(sorted(real.glob("*.mp4"))))
    )
    assert metrics["protocol"]["av_align"]["mode"] == "reference" and "av_align_one_to_one" in metrics
    assert metrics["fvd"] > 1e-6 and metrics["protocol"]["fvd"]["num_samples"] == 4
    assert main(["score", str(generated), "metrics=fvd"]) == 2
    assert "give ref=" in capsys.readouterr().err
