"""Shared constants and helpers of the test suite."""

from jobs import label

SERVE_TOKEN = "test-token"

STRATEGIES = ["majority/n=1", "majority/n=4", "best_of_n/n=4", "weighted_best_of_n/n=4",
              "beam_search/n=4/m=2/it=10"]


def label_cfg(query_path, out, **kw):
    return label.LabelConfig(queries=str(query_path), out_dir=str(out), strategies=STRATEGIES,
                             resamples=10, shard_size=8, replicas=1, **kw)
