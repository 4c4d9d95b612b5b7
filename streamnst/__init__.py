"""streamnst: real-time, temporally stable neural style transfer for live video."""

__version__ = "0.1.0"
