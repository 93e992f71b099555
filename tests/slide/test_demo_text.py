"""``hemascope demo`` prints the generator's truth beside the prediction, and labels demo models."""

from types import SimpleNamespace

import pandas as pd

from hemascope.cli.demo import describe_result
from hemascope.slide import differential_count


def test_describe_result_shows_truth_beside_prediction():
    found = ["blast"] * 40 + ["neutrophil"] * 50 + ["lymphocyte"] * 10 + ["platelet"] * 5
    drawn = ["blast"] * 42 + ["neutrophil"] * 48 + ["lymphocyte"] * 10 + ["platelet"] * 30
    subtype = {
        "model": "aml-subtype-demo",
        "version": "0.2.0",
        "demo": True,
        "abstained": False,
        "label": "NPM1",
        "probabilities": {"NPM1": 0.9, "control": 0.1},
    }
    result = SimpleNamespace(
        n_cells=len(found),
        slide={"name": "sample"},
        differential=differential_count(pd.Series(found)).to_dict(),
        subtypes=[subtype],
        subtype=subtype,
        provenance={
            "models": {"cell": {"name": "wbc-demo", "version": "0.1.0", "sha256": "ab" * 32}}
        },
    )
    truth = SimpleNamespace(cells=pd.DataFrame({"class": drawn}), subtype="NPM1")
    text = describe_result(result, truth)
    assert "truth: 100 white cells" in text
    blast_line = next(line for line in text.splitlines() if line.strip().startswith("Blast "))
    assert "40.0%" in blast_line and "42.0%" in blast_line
    assert "Blasts: 40.0%" in text and "truth 42.0%" in text
    assert "[SYNTHETIC/DEMO model]): NPM1" in text and "Subtype truth (generator): NPM1" in text
    assert "RESEARCH USE ONLY" in text
    assert "truth" not in describe_result(result)  # without truth, no truth columns
