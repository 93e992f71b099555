"""Print docs/cli.md's table: each command of this room × {defaults, realistic mistakes} → exit code, line.

Run from the repository root: ``python tests/acceptance/cli_table.py > /tmp/table.md`` (a few minutes;
makes its inputs in a temporary folder).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _run(argv: list[str], cwd: Path) -> tuple[int, str, bool]:
    proc = subprocess.run([sys.executable, "-m", "hemascope.cli.main", *argv], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, "TQDM_DISABLE": "1"})
    text = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip() and "%|" not in ln]
    errors = [ln for ln in text if ln.startswith(("hemascope: error", "FAILED"))]
    slides = [ln for ln in text if ln.startswith(("done ", "resumed "))]
    line = (errors or slides or text or [""])[-1]
    return proc.returncode, line, "Traceback" in proc.stderr


def main() -> None:
    import numpy as np
    from PIL import Image

    from hemascope.synthetic import SmearSpec, render_field, sample_slide_path

    tmp = Path(tempfile.mkdtemp(prefix="hemascope-cli-table-"))
    sample = sample_slide_path()
    field = tmp / "field.png"
    Image.fromarray(render_field(SmearSpec(size=(768, 768), mpp=0.5, seed=21, glass_margin=0.0),
                                 masks=False)[0]).save(field)
    blank = tmp / "blank.png"
    Image.fromarray(np.full((512, 512, 3), 245, np.uint8)).save(blank)
    broken = tmp / "broken.tif"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)
    (tmp / "a_file").write_text("x")
    rows = [
        ("info", "defaults (sample slide)", ["info", str(sample)]),
        ("info", "defaults (plain field PNG)", ["info", str(field)]),
        ("info", "missing file", ["info", "nothere.svs"]),
        ("models", "defaults", ["models"]),
        ("models", "unknown model", ["models", "nope"]),
        ("make-sample", "defaults (small)", ["make-sample", str(tmp / "s.ome.tif"), "--size", "512", "--quiet"]),
        ("make-sample", "output under a file", ["make-sample", str(tmp / "a_file" / "s.ome.tif"), "--quiet"]),
        ("make-sample", "bad --class-mix", ["make-sample", str(tmp / "t.ome.tif"), "--class-mix", "blast", "--quiet"]),
        ("analyze", "defaults (sample slide)", ["analyze", str(sample), "--out", str(tmp / "a1"), "--quiet"]),
        ("analyze", "defaults (plain field, µm/px estimated)", ["analyze", str(field), "--out", str(tmp / "a2"), "--quiet"]),
        ("analyze", "--resume of a finished run", ["analyze", str(sample), "--out", str(tmp / "a1"), "--resume", "--quiet"]),
        ("analyze", "one good and one broken slide", ["analyze", str(field), str(broken), "--out", str(tmp / "a3"), "--mpp", "0.5", "--quiet"]),
        ("analyze", "only a broken slide", ["analyze", str(broken), "--out", str(tmp / "a4"), "--quiet"]),
        ("analyze", "no red cells to measure µm/px", ["analyze", str(blank), "--out", str(tmp / "a5"), "--quiet"]),
        ("analyze", "missing slide file", ["analyze", "nothere.svs", "--out", str(tmp / "a6")]),
        ("analyze", "--out under a file", ["analyze", str(sample), "--out", str(tmp / "a_file" / "out")]),
        ("analyze", "--out on a read-only file system", ["analyze", str(sample), "--out", "/proc/hemascope/out"]),
        ("analyze", "slide model of another cell model", ["analyze", str(sample), "--out", str(tmp / "a7"), "--slide-model", "aml-subtype-demo"]),
        ("analyze", "unknown cell model", ["analyze", str(sample), "--out", str(tmp / "a8"), "--cell-model", "wbcc"]),
        ("analyze", "--mpp out of range", ["analyze", str(sample), "--out", str(tmp / "a9"), "--mpp", "0"]),
        ("demo", "defaults", ["demo", "--out", str(tmp / "demo"), "--quiet"]),
        ("demo", "--out under a file", ["demo", "--out", str(tmp / "a_file" / "demo")]),
    ]
    print("| command | case | exit | what it prints (last line; errors on stderr) |")
    print("|---|---|---|---|")
    for command, case, argv in rows:
        code, line, traceback = _run(argv, tmp)
        line = line.replace(str(tmp) + "/", "").replace(str(sample), "SAMPLE").replace("|", "\\|")
        if len(line) > 160:
            line = line[:157] + "..."
        assert not traceback, (command, case)
        print(f"| `{command}` | {case} | {code} | `{line}` |")


if __name__ == "__main__":
    main()
