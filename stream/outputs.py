"""Names of the files a run writes into its output folder (light module: no model imports, so the
CLI can check the output folder before loading anything)."""

VIDEO_NAME = "annotated.mp4"
TRACKS_NAME = "tracks.jsonl"
REPORT_NAME = "report.json"
EVENTS_NAME = "events.jsonl"  # live streams only: connections, reconnections, size changes
CROPS_DIR = "crops"
