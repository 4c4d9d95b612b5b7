"""The live path: sources, the pipeline, sinks, the WebRTC server and the control surface."""

# the live filter stylises at most 640 px wide (360p): a 720p camera costs what 360p does
LIVE_MAX_SIDE = 640
