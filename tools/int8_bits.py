"""int8 with 8-bit against 7-bit weights, side by side in one run: the median time per frame
and the PSNR from fp32, on frames of the bundled demo clip at the live size (640x360).

    python tools/int8_bits.py [--threads 1] [--style starry_night]

On a CPU without VNNI (AVX2 only) ONNX Runtime sums pairs of uint8 x int8 products in 16
bits, which saturate with 8-bit weights; nets/quantize.py therefore quantises to 7. This
prints what that costs and gains on the machine it runs on. Graphs go to a temporary cache.
"""

from __future__ import annotations

import os
import tempfile
import time
from itertools import islice

import click
import numpy as np


@click.command()
@click.option("--threads", default=1, show_default=True)
@click.option("--style", default="starry_night", show_default=True)
def main(threads: int, style: str) -> None:
    import onnxruntime.quantization as ort_quant

    from streamnst.engine.stylizer import Stylizer, StylizerSettings
    from streamnst.media.demo import demo_clip
    from streamnst.media.imageio import resize_to
    from streamnst.offline.metrics import psnr, read_frames

    frames = [resize_to(f, (640, 360)) for f in islice(read_frames(demo_clip()), 0, 120, 6)]
    given = ort_quant.quantize_static
    stylizers = {}
    for bits in (8, 7):
        def quantize_static(*args, _reduce=bits == 7, **kwargs):
            return given(*args, **{**kwargs, "reduce_range": _reduce})

        ort_quant.quantize_static = quantize_static  # the recipe's one switch
        os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=f"int8-{bits}-")
        stylizers[bits] = Stylizer(style, StylizerSettings(dtype="int8", threads=threads))
    ort_quant.quantize_static = given
    fp32 = Stylizer(style, StylizerSettings(dtype="fp32", threads=threads))
    times: dict[int, list[float]] = {8: [], 7: []}
    for frame in frames * 3:  # interleaved, so both see the same load
        for bits, stylizer in stylizers.items():
            start = time.perf_counter()
            stylizer.stylize(frame)
            times[bits].append(time.perf_counter() - start)
    db: dict[int, list[float]] = {8: [], 7: []}
    for frame in frames:
        reference = fp32.stylize(frame)
        for bits, stylizer in stylizers.items():
            db[bits].append(psnr(stylizer.stylize(frame), reference))
    for bits in (8, 7):
        print(f"{bits}-bit weights: {np.median(times[bits]) * 1000:.1f} ms/frame (median, "
              f"{threads} thread(s)); PSNR from fp32 min {min(db[bits]):.1f}, median "
              f"{np.median(db[bits]):.1f} dB")
    print(f"time, 7-bit / 8-bit: {np.median(times[7]) / np.median(times[8]):.2f}x")


if __name__ == "__main__":
    main()
