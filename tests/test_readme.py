"""The README's commands are real: each runs here, on tiny sizes, so that they never rot."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from functools import reduce
from pathlib import Path

import pytest
import torch
from PIL import Image

from siamese.data.sources.synthetic import SyntheticGlyphs
from tests.helpers import ROOT, TINY, fake_mnist, official_runs_archive, write_glyph_folder

pytestmark = pytest.mark.slow
README = (ROOT / "README.md").read_text()
# resume= continues a run that was stopped: tests/test_resume.py stops one and runs these
TRAIN = [
    line.strip()
    for line in README.splitlines()
    if line.strip().startswith(("python train.py", "siamese train")) and "resume=" not in line
]
RESUME = [
    line.strip() for line in README.splitlines() if "python train.py" in line and "resume=" in line
]
TOOLS = [
    line.strip() for line in README.splitlines() if line.strip().startswith("python -m siamese.")
]


def run(args: list[str], cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def split(line: str) -> tuple[list[str], str | None]:
    """The command's arguments, and the error the README promises in its trailing comment; the
    `siamese` command, which only an installed package puts on PATH, as `python -m siamese`."""
    command, _, comment = line.partition("#")
    words = shlex.split(command)
    args = ["-m", *words] if words[0] == "siamese" else words[1:]
    return args, (comment.strip() or None)


def test_readme_shows_the_commands():
    assert len(TRAIN) >= 5 and len(TOOLS) == 13
    assert "make train" in README and "make test" in README


def user_files(root: Path) -> dict[str, str]:
    """What the README's own-data commands name, written as a user would have it: a folder of
    class folders, a manifest, and MNIST's files where torchvision looks for them."""
    glyphs = SyntheticGlyphs(num_classes=20, samples_per_class=6)(image_size=16)
    write_glyph_folder(glyphs, root / "faces")
    rows = [
        f"faces/{glyphs.class_names[y]}/{i:04d}.png,{glyphs.class_names[y]}"
        for i, y in enumerate(glyphs.labels.tolist())
    ]
    (root / "products.csv").write_text("\n".join(["path,label", *rows]) + "\n")
    # re-identification: the last 6 classes are the test split, one query and 5 gallery each
    roles = [
        f"{row},test,{int(i % 6 == 0)},{int(i % 6 != 0)}" if y >= 14 else f"{row},,,"
        for i, (row, y) in enumerate(zip(rows, glyphs.labels.tolist(), strict=True))
    ]
    header = "path,label,split,is_query,is_gallery"
    (root / "reid.csv").write_text("\n".join([header, *roles]) + "\n")
    fake_mnist(root / "cache", n_train=60, n_test=60)
    return {
        "~/faces": str(root / "faces"),
        "products.csv": str(root / "products.csv"),
        "reid.csv": str(root / "reid.csv"),
    }


@pytest.mark.parametrize("line", TRAIN)
def test_readme_train_command(line, tmp_path):
    args, promised_error = split(line)
    command = args[:3] if args[0] == "-m" else args[:1]  # -m siamese train, or train.py
    flags = [a for a in args[len(command) :] if a == "-m"]
    overrides = [a for a in args[len(command) :] if a != "-m"]
    out = "hydra.sweep.dir" if flags else "hydra.run.dir"
    prefix, env = TINY, None
    if any(o.startswith("data=") and o != "data=synthetic" for o in overrides):
        # the user's own files, small: any data source runs fast at 16 px
        paths = user_files(tmp_path / "files")
        overrides = [reduce(lambda o, p: o.replace(*p), paths.items(), o) for o in overrides]
        prefix = ["debug=fast", "data.image_size=16"]
        env = {**os.environ, "SIAMESE_CACHE": str(tmp_path / "files" / "cache")}
    if promised_error is not None:  # as a user sees it: the message, not its traceback
        prefix = [*prefix, "extras.traceback=false"]
    proc = run([*command, *flags, *prefix, *overrides, f"{out}={tmp_path / 'out'}"], env=env)
    if promised_error is None:
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = list((tmp_path / "out").glob("**/metrics.json"))
        assert records and all('"status": "completed"' in r.read_text() for r in records)
        if "reid.csv" in line:  # the test split scored as queries against the gallery too
            assert all('"test/cmc_at_1"' in r.read_text() for r in records)
            assert all('"test/map"' in r.read_text() for r in records)
        if flags:  # one job per grid point
            grid = [len(a.split("=", 1)[1].split(",")) for a in overrides]
            assert len(records) == torch.tensor(grid).prod()
    else:
        assert proc.returncode != 0
        words = re.split(r"\s*\.\.\.\s*", promised_error)  # the README elides with "..."
        assert all(w in proc.stderr for w in words), (words, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A tiny run, and the image files the README's tool commands name."""
    run_dir = tmp_path_factory.mktemp("run")
    proc = run(["train.py", *TINY, "data.image_size=16", f"hydra.run.dir={run_dir}"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = SyntheticGlyphs(num_classes=3, samples_per_class=4, seed=5)(image_size=16)
    gallery = run_dir / "images"
    gallery.mkdir()
    for i, img in enumerate(data.images):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(gallery / f"{i:02d}.png")
    for name, i in (("a.png", 0), ("b.png", 1)):
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(run_dir / name)
    return run_dir


def tool(line: str, run_dir: Path) -> subprocess.CompletedProcess:
    args, _ = split(line.replace("$RUN", str(run_dir)))
    return run(args, cwd=run_dir)


def test_readme_evaluate_writes_new_metrics_beside_the_checkpoint(trained_run):
    line = next(t for t in TOOLS if "siamese.evaluate" in t)
    for expected in ("metrics.json", "metrics-1.json"):  # a second evaluation never overwrites
        proc = tool(line, trained_run)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (trained_run / "checkpoints" / expected).is_file()
    assert "test/p_at_1" in proc.stdout


def test_readme_verify_prints_distance_threshold_and_verdict(trained_run):
    proc = tool(next(t for t in TOOLS if "siamese.verify" in t), trained_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.match(r"distance (\S+)  threshold (\S+)  (same|different)", proc.stdout)
    assert match
    d, tau = float(match[1]), float(match[2])
    assert match[3] == ("same" if d < tau else "different")
    ckpt = torch.load(trained_run / "checkpoints/best.ckpt", weights_only=False)
    assert tau == pytest.approx(float(ckpt["state_dict"]["threshold"]), abs=1e-4)


def test_readme_search_finds_the_query_itself_first(trained_run):
    proc = tool(next(t for t in TOOLS if "siamese.search" in t), trained_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert len(rows) == 5
    assert rows[0][2].endswith("images/00.png") and float(rows[0][1]) == pytest.approx(0, abs=1e-3)
    distances = [float(r[1]) for r in rows]
    assert distances == sorted(distances)


def test_readme_benchmark_scores_the_official_runs_in_the_cache(trained_run, tmp_path):
    official_runs_archive(tmp_path / "cache" / "omniglot" / "all_runs.zip")  # 3 hand-made runs
    line = next(t for t in TOOLS if "siamese.benchmark" in t)
    args, _ = split(line.replace("$RUN", str(trained_run)))
    env = {**os.environ, "SIAMESE_CACHE": str(tmp_path / "cache")}
    proc = run(args, cwd=trained_run, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert " run03 (error " in proc.stdout and "over 3 runs" in proc.stdout
    assert (trained_run / "checkpoints" / "benchmark_omniglot.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-m", "siamese.verify", "ckpt_path=$RUN/checkpoints/best.ckpt", "a.png", "nope.png"],
            "nope.png does not exist",
        ),
        (
            ["-m", "siamese.verify", "ckpt_path=$RUN/checkpoints/best.ckpt", "a.png", "bad.png"],
            "cannot read image bad.png",
        ),
        (
            ["-m", "siamese.verify", "ckpt_path=$RUN/test_embeddings.pt", "a.png", "b.png"],
            "is not a checkpoint of a siamese run",
        ),
        (
            [
                "-m",
                "siamese.search",
                "ckpt_path=$RUN/checkpoints/best.ckpt",
                "gallery=none",
                "query=a.png",
            ],
            "gallery folder none does not exist",
        ),
        (
            ["-m", "siamese.evaluate", "ckpt_path=$RUN/checkpoints/best.ckpt", "data.nokey=1"],
            "nokey",
        ),
    ],
)
def test_tool_errors_name_the_file_or_key(trained_run, args, message):
    (trained_run / "bad.png").write_bytes(b"not an image")
    proc = run([a.replace("$RUN", str(trained_run)) for a in args], cwd=trained_run)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_readme_export_then_verify_and_search_with_the_export_answer_as_the_checkpoint(trained_run):
    for line in (t for t in TOOLS if "siamese.export" in t):
        proc = tool(line, trained_run)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in (trained_run / "export").iterdir()} >= {"model.onnx", "model.pt"}
    for command in ("siamese.verify", "siamese.search"):
        with_ckpt, with_model = (t for t in TOOLS if command in t and "index=" not in t)
        assert "ckpt_path=" in with_ckpt and "model=" in with_model
        a, b = tool(with_ckpt, trained_run), tool(with_model, trained_run)
        assert a.returncode == 0 and b.returncode == 0, b.stderr[-3000:]
        rows_a, rows_b = a.stdout.split(), b.stdout.split()
        assert len(rows_a) == len(rows_b) and rows_a[-1] == rows_b[-1]  # verdict / last path
        numbers = [
            (float(x), float(y))
            for x, y in zip(rows_a, rows_b, strict=True)
            if x[0] in "0123456789" and "." in x
        ]
        assert all(abs(x - y) < 1e-3 for x, y in numbers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_index_search_and_serve(trained_run):
    """The index section's commands in order: build, update, many queries to CSV and HTML, then
    the service answering the README's curl line."""
    if not (trained_run / "export" / "model.onnx").is_file():
        assert tool(next(t for t in TOOLS if "format=onnx" in t), trained_run).returncode == 0
    lines = [t for t in TOOLS if "index=photos.idx" in t]
    serve = next(t for t in lines if "siamese.serve" in t)
    printed = []
    for line in (t for t in lines if t != serve):
        proc = tool(line, trained_run)
        assert proc.returncode == 0, (line, proc.stderr[-3000:])
        printed.append(proc.stdout)
    assert "photos.idx: 12 images" in printed[0] and "is up to date" in printed[1]
    again = tool(lines[0], trained_run)  # an index is never overwritten
    assert again.returncode != 0 and "exists: bring it up to date" in again.stderr
    rows = (trained_run / "results.csv").read_text().splitlines()
    assert rows[0] == "query,rank,file,distance,same" and len(rows) == 1 + 12 * 3
    assert "data:image/png;base64" in (trained_run / "results.html").read_text()
    port = free_port()
    args, _ = split(serve.replace("port=8000", f"port={port}"))
    server = subprocess.Popen([sys.executable, *args], cwd=trained_run, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert "serving photos.idx (12 images" in server.stdout.readline()
        curl = next(line for line in README.splitlines() if line.strip().startswith("curl "))
        curl = curl.strip().replace("8000", str(port))
        answer = json.loads(subprocess.run(shlex.split(curl), cwd=trained_run, capture_output=True,
                                           text=True, timeout=60, check=True).stdout)  # fmt: skip
        assert len(answer["results"]) == 5 and answer["results"][0]["file"] == "00.png"
        assert answer["results"][0]["distance"] < 1e-3 and answer["results"][0]["same"]
    finally:
        server.terminate()
        server.wait(timeout=30)
