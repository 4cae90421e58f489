"""Names of the files a run writes into its output folder, and the encoder presets of its video
(light module: no model imports, so the CLI can check its options and the output folder before
loading anything)."""

VIDEO_NAME = "annotated.mp4"
TRACKS_NAME = "tracks.jsonl"
REPORT_NAME = "report.json"
EVENTS_NAME = "events.jsonl"  # live streams only: connections, reconnections, size changes
CROPS_DIR = "crops"

# In CROPS_DIR, per track: the best crop as input | bicubic | enhanced, the enhanced crop alone,
# and the image the OCR read the track's voted text from (its evidence).
BEST_CROP_NAME = "track_{:04d}.png"
ENHANCED_CROP_NAME = "track_{:04d}_enhanced.png"
READ_CROP_NAME = "track_{:04d}_read.png"

# libx264's speed presets for the annotated video, fastest first.
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
