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

# x264 overrides used when none are given. veryfast with sub-pixel refinement 1 and diamond motion
# search (instead of 2 and hexagon) encodes a 1080p frame about 1.5x faster for a 10-15 % larger
# file and 0.2-0.3 dB lower PSNR (encoder table in benchmarks/results/throughput); the annotated
# video is a record of the run, and at 1080p its encode is the pipeline's largest CPU cost.
PRESET_TWEAKS = {"veryfast": "subme=1:me=dia"}
