"""What several test modules share: where the project is, and its config options."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
TINY = ["debug=tiny"]  # conf/debug/tiny.yaml: seconds on a CPU, every metric still defined


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))
