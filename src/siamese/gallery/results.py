"""Search answers written as a table (CSV or JSON: one row per query and rank, columns `query`,
`rank`, `file`, `distance`, `same`) or as pictures (an HTML page or a PNG: each query beside its
k nearest thumbnails with their distances). Every file is written atomically."""

import base64
import csv
import html
import io
from itertools import groupby
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from siamese.core.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from siamese.gallery.nearest import Match

COLUMNS = ("query", "rank", "file", "distance", "same")
THUMB = 128  # pixels of a thumbnail's longer side


def write_table(matches: list[Match], path: str | Path) -> None:
    """`.csv` or `.json` by the suffix of `path`."""
    path = Path(path)
    rows = [m.record() for m in matches]
    if path.suffix.lower() == ".json":
        atomic_write_json(path, rows)
    elif path.suffix.lower() == ".csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "distance": f"{r['distance']:.6f}"} for r in rows)
        atomic_write_text(path, out.getvalue())
    else:
        raise ValueError(f"out={path}: the table is written as .csv or .json, not {path.suffix!r}")


def by_query(matches: list[Match]) -> list[tuple[str, list[Match]]]:
    return [(q, list(group)) for q, group in groupby(matches, key=lambda m: m.query)]


def thumbnail(path: str | Path) -> Image.Image:
    """An RGB thumbnail of an image file, its longer side THUMB pixels (a grey square where it
    cannot be read any more)."""
    try:
        with Image.open(path) as img:
            return ImageOps.contain(ImageOps.exif_transpose(img).convert("RGB"), (THUMB, THUMB))
    except (OSError, ValueError, SyntaxError):
        return Image.new("RGB", (THUMB, THUMB), (200, 200, 200))


def _data_uri(path: str | Path) -> str:
    buffer = io.BytesIO()
    thumbnail(path).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def write_html(matches: list[Match], root: Path, path: str | Path, tau: float) -> None:
    """One row per query: its image, then its k nearest with rank, distance and the verdict at
    τ; thumbnails inline, so the page is one file that opens anywhere."""
    rows = []
    for query, group in by_query(matches):
        cells = [
            f'<figure class="query"><img src="{_data_uri(query)}">'
            f"<figcaption>{html.escape(Path(query).name)}</figcaption></figure>"
        ]
        for m in group:
            verdict = "same" if m.same else "different"
            cells.append(
                f'<figure class="{verdict}"><img src="{_data_uri(root / m.file)}">'
                f"<figcaption>{m.rank}. {html.escape(m.file)}<br>d {m.distance:.4f} "
                f"{verdict}</figcaption></figure>"
            )
        rows.append(f'<div class="row">{"".join(cells)}</div>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>siamese search</title><style>
body {{ font-family: sans-serif; }} .row {{ display: flex; gap: 8px; margin-bottom: 16px; }}
figure {{ margin: 0; width: {THUMB}px; font-size: 11px; overflow-wrap: anywhere; }}
img {{ width: {THUMB}px; height: {THUMB}px; object-fit: contain; background: #f4f4f4; }} .query {{ border-right: 2px solid #333; }}
.same figcaption {{ color: #060; }} .different figcaption {{ color: #900; }}
</style></head><body><h1>{len(rows)} queries, τ = {tau:.4f}</h1>
{chr(10).join(rows)}
</body></html>
"""
    atomic_write_text(path, page)


def write_png(matches: list[Match], root: Path, path: str | Path) -> None:
    """The same grid as one PNG: a row per query, the query first, each match captioned with its
    rank and distance (green: same at τ, red: different)."""
    groups = by_query(matches)
    width = 1 + max(len(g) for _, g in groups)
    cell, caption = THUMB + 8, 14
    sheet = Image.new("RGB", (width * cell, len(groups) * (cell + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (query, group) in enumerate(groups):
        y = r * (cell + caption)
        items = [(query, Path(query).name[:18], "black")]
        items += [
            (root / m.file, f"{m.rank}. d {m.distance:.3f}", "green" if m.same else "red")
            for m in group
        ]
        for c, (file, text, colour) in enumerate(items):
            sheet.paste(thumbnail(file), (c * cell + 4, y + 4))
            draw.text((c * cell + 4, y + cell), text, fill=colour)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
