"""A training run's files besides its state: the loss log and TensorBoard."""

from __future__ import annotations

import csv
from pathlib import Path

from streamnst.core.atomic import atomic_path
from streamnst.core.errors import InputError

CSV_KEYS = ["total", "content", "style", "tv", "noise", "motion"]
CSV_HEADER = ["step", *CSV_KEYS, "images_per_s"]


def log_losses(run_path: Path, step: int, losses: dict[str, float], images_per_s: float
               ) -> None:
    """Append one row to RUN/losses.csv (the header first, for a new file)."""
    path = run_path / "losses.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(CSV_HEADER)
        w.writerow([step, *(f"{losses.get(k, 0.0):.6g}" for k in CSV_KEYS),
                    f"{images_per_s:.3f}"])


def trim_losses(run_path: Path, step: int) -> None:
    """After a resume, forget rows logged past the restored step."""
    path = run_path / "losses.csv"
    if not path.exists():
        return
    # rows are re-laid under today's header: a run from an older version lacks columns
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [[r.get(k) or "0" for k in CSV_HEADER] for r in rows if int(r["step"]) <= step]
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        csv.writer(f).writerows([CSV_HEADER, *kept])


def open_board(run_path: Path):
    """A TensorBoard writer in RUN_DIR/tensorboard (`tensorboard --logdir RUN_DIR`)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError("--tensorboard needs the tensorboard package: "
                         "pip install 'streamnst[tensorboard]'") from None
    return SummaryWriter(str(run_path / "tensorboard"))


def board_step(board, step: int, losses: dict[str, float], images_per_s: float) -> None:
    for name, value in losses.items():
        board.add_scalar(f"loss/{name}", value, step)
    board.add_scalar("images_per_s", images_per_s, step)
