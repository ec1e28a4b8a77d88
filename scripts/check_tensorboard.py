#!/usr/bin/env python3
"""Load TensorBoard event files with TensorBoard's own loader and summarize their scalars.

Usage: scripts/check_tensorboard.py PATH

PATH is a run directory (every events.out.tfevents.* file in it is read, as TensorBoard does) or one
event file. For each scalar tag this prints the number of points and the first and last (step, value).
Exits 1 when no scalars are found, 2 when PATH does not exist or tensorboard is not installed.

Uses tensorboard.backend.event_processing.event_accumulator.EventAccumulator, which migrates legacy
`simple_value` summaries (the form Kondate's TensorBoardWriter writes) into scalar-plugin data, so a
scalar listed here is one the TensorBoard UI shows. Needs `pip install tensorboard`.
"""

import os
import sys


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    if not os.path.exists(path):
        print(f"error: {path}: no such file or directory", file=sys.stderr)
        return 2
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        print("error: tensorboard is not installed (pip install tensorboard)", file=sys.stderr)
        return 2

    # size_guidance 0 keeps every scalar point instead of TensorBoard's default reservoir sample of 10,000.
    accumulator = event_accumulator.EventAccumulator(
        path, size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    tags = sorted(accumulator.Tags().get(event_accumulator.SCALARS, []))
    if not tags:
        print(f"error: {path}: no scalars found", file=sys.stderr)
        return 1

    print(f"{path}: {len(tags)} scalar tag(s)")
    for tag in tags:
        events = accumulator.Scalars(tag)
        first, last = events[0], events[-1]
        print(
            f"  {tag}: {len(events)} point(s), "
            f"first (step {first.step}, {first.value:.6g}), last (step {last.step}, {last.value:.6g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
