"""A test-only transcription of the AV-Align reference script (TempoTokens `av_align.py`, the metric's
published implementation), kept as close to it as runs: what `avgen.metrics.av_align` is tested against.
The one change: its local-maximum loop reads an undefined `n`; here `n = len(arr)`, the evident intent."""

from __future__ import annotations

import cv2
import librosa


def extract_frames(video_path):
    frames = []
    cap = cv2.VideoCapture(video_path)
    frame_rate = cap.get(cv2.CAP_PROP_FPS)
    if not cap.isOpened():
        raise ValueError("Error: Unable to open the video file.")
    while True:
        ret, frame = cap.read()
        if not ret:
            break
        frames.append(frame)
    cap.release()
    return frames, frame_rate


def detect_audio_peaks(audio_file):
    y, sr = librosa.load(audio_file)
    onset_env = librosa.onset.onset_strength(y=y, sr=sr)
    onset_frames = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr)
    return librosa.frames_to_time(onset_frames, sr=sr)


def find_local_max_indexes(arr, fps):
    n = len(arr)
    local_extrema_indexes = []
    for i in range(1, n - 1):
        if arr[i - 1] < arr[i] > arr[i + 1]:
            local_extrema_indexes.append(i / fps)
    return local_extrema_indexes


def compute_of(img1, img2):
    prev_gray = cv2.cvtColor(img1, cv2.COLOR_BGR2GRAY)
    curr_gray = cv2.cvtColor(img2, cv2.COLOR_BGR2GRAY)
    flow = cv2.calcOpticalFlowFarneback(prev_gray, curr_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    magnitude = cv2.magnitude(flow[..., 0], flow[..., 1])
    return cv2.mean(magnitude)[0]


def detect_video_peaks(frames, fps):
    flow_trajectory = [compute_of(frames[0], frames[1])] + [
        compute_of(frames[i - 1], frames[i]) for i in range(1, len(frames))
    ]
    return flow_trajectory, find_local_max_indexes(flow_trajectory, fps)


def calc_intersection_over_union(audio_peaks, video_peaks, fps):
    intersection_length = 0
    for audio_peak in audio_peaks:
        for video_peak in video_peaks:
            if video_peak - 1 / fps < audio_peak < video_peak + 1 / fps:
                intersection_length += 1
                break
    return intersection_length / (len(audio_peaks) + len(video_peaks) - intersection_length)


def score_files(stems):
    """The script's main loop over `<stem>.mp4` + `<stem>.wav`: the mean IoU."""
    score = 0
    for file in stems:
        frames, fps = extract_frames(f"{file}.mp4")
        audio_peaks = detect_audio_peaks(f"{file}.wav")
        _, video_peaks = detect_video_peaks(frames, fps)
        score += calc_intersection_over_union(audio_peaks, video_peaks, fps)
    return score / len(stems)
