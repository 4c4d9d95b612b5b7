"""The live path: sources, the pipeline, sinks, the WebRTC server and the control surface."""

# the live filter stylises at most 640 px wide (360p) on a CPU: a 720p camera costs what
# 360p does; on a GPU (the chain runs there too: engine/steps) up to 1080p
LIVE_MAX_SIDE = 640
LIVE_MAX_SIDE_GPU = 1920
# a call's picture keeps the person recognisable: where neither --keep-face nor the style
# says, this much of a face shows through (0.6: the demo's signer, eyes and mouth, read
# clearly through starry_night; 0 turned the face into a blue mask)
LIVE_KEEP_FACE = 0.6
