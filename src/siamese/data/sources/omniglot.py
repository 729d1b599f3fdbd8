"""Omniglot's files (Lake, Salakhutdinov and Tenenbaum 2015; github.com/brendenlake/omniglot, MIT
licence) as the torchvision source lists them: a background set for train/val (the whole one, 30
alphabets, or the two background-small sets of 5 alphabets each, Greek and Latin in both, counted
once) and the evaluation set (20 alphabets) as the test split; and the download of the
repository's own archives, checked by their MD5 and written atomically.
"""

import hashlib
import urllib.request
import zipfile
from pathlib import Path

from siamese.core.atomic import atomic_write_bytes
from siamese.data.imageset import FREE, SPLIT_CODES
from siamese.data.sources.files import Entry

REPOSITORY = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
FOLDER = "omniglot-py"  # torchvision's folder for Omniglot under its root
EVALUATION = "images_evaluation"
SMALL_SETS = {  # the background-small archives of the repository and their MD5
    "images_background_small1": "e704a628b5459e08445c13499850abc4",
    "images_background_small2": "b75a71a51d3b13f821f212756fe481fd",
}
BACKGROUND = {"Omniglot": ("images_background",), "OmniglotSmall": tuple(SMALL_SETS)}


def omniglot_entries(base: Path, name: str, official_split: bool) -> list[Entry]:
    """The PNGs of `name`'s background folders (train/val) and of the evaluation set (the test
    split when `official_split`), labelled `alphabet/character`; an image in two background
    folders (the small sets' Greek and Latin) is listed once."""
    entries, seen = [], set()
    folders = [(b, FREE) for b in BACKGROUND[name]] + [(EVALUATION, SPLIT_CODES["test"])]
    for folder, code in folders:
        for png in sorted((base / folder).glob("*/*/*.png")):
            key = png.relative_to(base / folder)  # alphabet/character/file
            if key in seen:
                continue
            seen.add(key)
            label = f"{png.parent.parent.name}/{png.parent.name}"
            entries.append(Entry(png, label, code if official_split else FREE))
    return entries


def fetch_file(url: str, path: Path, md5: str, timeout_s: float) -> None:
    """`url`'s bytes into `path`, written only once whole and matching `md5`."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        data = response.read()
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise OSError(f"{url}: MD5 {got}, expected {md5} (a changed or truncated file)")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def fetch_small_sets(root: Path, timeout_s: float) -> None:
    """The background-small archives missing from `root`/omniglot-py, downloaded and unpacked
    there (each holds its own folder, images_background_small1/...)."""
    base = root / FOLDER
    for name, md5 in SMALL_SETS.items():
        if (base / name).is_dir():
            continue
        archive = base / f"{name}.zip"
        if not archive.is_file():
            fetch_file(f"{REPOSITORY}/{name}.zip", archive, md5, timeout_s)
        with zipfile.ZipFile(archive) as z:
            z.extractall(base)
