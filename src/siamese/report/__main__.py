"""`python -m siamese.report [SWEEP_DIR]`: no folder given, the newest under outputs/sweeps/.
A compare folder (outputs/compare/..., with tune/ and confirm/) gets the compare report."""

import argparse
import sys

from siamese.compare.collect import is_compare_folder
from siamese.report.collect import SweepError, latest_sweep
from siamese.report.write import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m siamese.report",
        description="Table, CSV, plot and SPRN − SDRN difference of a Hydra sweep folder, "
        "or the report of a compare folder (python -m siamese.compare).",
    )
    parser.add_argument(
        "sweep_dir", nargs="?", help="the sweep folder (default: newest under outputs/sweeps/)"
    )
    args = parser.parse_args(argv)
    try:
        sweep_dir = args.sweep_dir or latest_sweep()
        if is_compare_folder(sweep_dir):
            from siamese.compare.summary import write_compare_report

            paths = write_compare_report(sweep_dir)
        else:
            paths = write_report(sweep_dir)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    # the Markdown as written, without the image link, which means nothing in a terminal
    text = paths["md"].read_text()
    print("\n".join(line for line in text.splitlines() if not line.startswith("![")).rstrip())
    print()
    for path in paths.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
