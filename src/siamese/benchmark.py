"""The Omniglot one-shot benchmark: the 20 official within-alphabet 20-way runs (Lake,
Salakhutdinov and Tenenbaum 2015), scored as the repository's own script scores them.

    python -m siamese.benchmark omniglot ckpt_path=RUN/checkpoints/best.ckpt [runs=DIR|FILE.zip]

`runs` is a folder holding run01/ ... run20/ (each with class_labels.txt, training/ and test/), or
the repository's archive of them (`python/one-shot-classification/all_runs.zip` of
github.com/brendenlake/omniglot). By default the archive in the cache folder
($SIAMESE_CACHE or ~/.cache/siamese)/omniglot/all_runs.zip, downloaded there where the network
allows; otherwise the error names the file and where to put it. Every run is scored as
`classification_run` of demo_classification.py: each of the 20 test images takes the class of its
nearest training image by the model's distance (answer files in their sorted order, as the script
sorts them), error = percent wrong; the overall error is the mean over the runs. The per-run and
overall errors are printed and written to a new benchmark_omniglot*.json beside the checkpoint.
"""

import tempfile
import zipfile
from pathlib import Path

import torch

from siamese.core.atomic import atomic_write_json, new_file
from siamese.data.decode import cache_root
from siamese.data.images import load_image
from siamese.data.sources.omniglot import fetch_file
from siamese.data.sources.torchvision_sets import preflight
from siamese.inference import Model, load_model
from siamese.keyvalue import UsageError, argv, parse

USAGE = "python -m siamese.benchmark omniglot ckpt_path=FILE [runs=DIR|FILE.zip]"
RUNS_URL = (
    "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
    "one-shot-classification/all_runs.zip"
)
RUNS_MD5 = "e8996daecdf12afeeb4a53a179f06b19"
LABELS = "class_labels.txt"  # lines "runXX/test/itemYY.png runXX/training/classZZ.png"


def default_archive() -> Path:
    return cache_root() / "omniglot" / "all_runs.zip"


def classification_run(root: Path, run: str, model: Model) -> float:
    """Percent error of one run, as demo_classification.classification_run computes it: the
    files of `root/run/class_labels.txt` (paths relative to `root`), test and training files
    each sorted, the answers in the file's own order, argmin of the distance."""
    with open(root / run / LABELS) as f:
        content = f.read().splitlines()
    pairs = [line.split() for line in content]
    test_files = [pair[0] for pair in pairs]
    train_files = [pair[1] for pair in pairs]
    answers_files = list(train_files)
    test_files.sort()
    train_files.sort()
    ntest = len(test_files)
    train_items, test_items = embed(model, root, train_files), embed(model, root, test_files)
    cost = model.distance_between(test_items[:, None], train_items[None])  # (ntest, ntrain)
    yhat = cost.argmin(dim=1).tolist()  # the first of equal costs, as numpy's argmin
    correct = 0.0
    for i in range(ntest):
        if train_files[yhat[i]] == answers_files[i]:
            correct += 1.0
    pcorrect = 100 * correct / ntest
    return 100 - pcorrect


def embed(model: Model, root: Path, files: list[str]) -> torch.Tensor:
    images = [load_image(root / f, model.channels, model.image_size, model.resize) for f in files]
    return model.embed(torch.stack(images))


def run_names(root: Path) -> list[str]:
    return sorted(p.parent.name for p in root.glob(f"run*/{LABELS}"))


def score_runs(model: Model, root: Path) -> dict:
    """{"runs": {run: error %}, "error": mean error %} over every run folder in `root`."""
    runs = run_names(root)
    if not runs:
        raise FileNotFoundError(f"no runs in {root}: expected run01/{LABELS}, run02/{LABELS}, ...")
    errors = {run: classification_run(root, run, model) for run in runs}
    return {"runs": errors, "error": sum(errors.values()) / len(errors)}


def archive(timeout_s: float = 10.0) -> Path:
    """The official runs' archive in the cache folder, downloaded there if missing and
    reachable; otherwise an error that names the file and where to put it."""
    path = default_archive()
    if path.is_file():
        return path
    try:
        preflight(RUNS_URL, timeout_s)
        fetch_file(RUNS_URL, path, RUNS_MD5, timeout_s)
    except OSError as err:
        raise FileNotFoundError(
            f"the official Omniglot runs are not in {path} and could not be downloaded ({err}). "
            f"Download {RUNS_URL} where the network is reachable and copy it to {path} "
            "($SIAMESE_CACHE moves the folder), or give runs=DIR, a folder holding "
            f"run01/{LABELS} ... run20/{LABELS} with their training/ and test/ images"
        ) from err
    return path


def benchmark_omniglot(ckpt_path: str, runs: str | None = None) -> tuple[dict, Path]:
    """Scores the model on the runs (a folder, an archive, or the cached official archive) and
    writes the result beside the checkpoint; returns it and the file written."""
    model = load_model(ckpt_path)
    source = Path(runs).expanduser() if runs else archive()
    if not source.exists():
        raise FileNotFoundError(f"runs={source} does not exist")
    if source.is_dir():
        result = score_runs(model, source)
    else:
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(source) as z:
            z.extractall(tmp)
            result = score_runs(model, Path(tmp))
    record = {"checkpoint": str(ckpt_path), "runs_from": str(source), **result}
    out = new_file(Path(ckpt_path).parent / "benchmark_omniglot.json")
    atomic_write_json(out, record)
    return result, out


def main() -> None:
    args, (name,) = parse(argv(), USAGE, {"ckpt_path": None, "runs": ""}, positional=1)
    if name != "omniglot":
        raise UsageError(f"unknown benchmark {name!r} (known: omniglot)", USAGE)
    try:
        result, out = benchmark_omniglot(args["ckpt_path"], args["runs"] or None)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise SystemExit(f"error: {err}") from None
    for run, error in result["runs"].items():
        print(f" {run} (error {error:.1f}%)")
    print(f" average error {result['error']:.2f}% over {len(result['runs'])} runs; {out}")


if __name__ == "__main__":
    main()
