"""One µm/px per bag without ``--mpp`` (``predict-bags``): DeepAPL test and validation patients.

Each patient folder's scale as :func:`hemascope.train.bags_inputs.estimate_bag_mpp` gives it (24
pictures spread over the bag), against the data set's 0.21 µm/px. Usage::

    python benchmarks/bench_bag_scale.py
"""


import numpy as np
import pandas as pd

from hemascope.train.bags_inputs import estimate_bag_mpp

rows = []
for split, truth in (("deepapl_test", 0.21), ("deepapl_val", 0.21)):
    t = pd.read_csv(f"/tmp/hemascope_cells/{split}.csv")
    for g, part in t.groupby("group"):
        rows.append(estimate_bag_mpp(list(part["path"])) / truth - 1)
r = np.abs(np.array(rows))
print(len(r), "median |err|", np.median(r).round(3), "max", r.max().round(3), "within 5%", (r <= 0.05).mean().round(3), "within 15%", (r<=0.15).mean())
