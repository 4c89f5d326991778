"""Evaluation, shared by `avgen train` (its last step), `avgen eval`, `avgen sample` and the validation-media
callback: `generation` (joint and conditional pairs), `plan` (which metrics), `decoding` (store arrays ->
media and mp4s), `scoring` (samples -> metrics.json), `report` (what identifies a run, report keys)."""
