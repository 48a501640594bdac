"""The numbers of shared/STATISTICS.md: pure functions over plain data (lists / numpy arrays).

The item is the unit of analysis and every A/B comparison is paired unless the traffic was split.
Each function returns a small dataclass with ``to_dict()`` (plain numbers, NaN -> None). A result
says which interval and which test it used, and p-values say whether they are fixed-horizon or
always-valid (see ``sequential``).
"""

from ._base import Result, plain
from .agreement import Agreement, krippendorff_alpha
from .bootstrap import bca_mean_interval, quantile_bootstrap, resample_counts
from .bradley_terry import BTResult, bradley_terry
from .latency import LatencyComparison, paired_latency, percentiles, unpaired_latency
from .likert import LikertComparison, LikertMean, item_means, likert_mean, paired_likert
from .multiple import benjamini_hochberg, holm
from .planning import (SampleSize, mcnemar_n, mcnemar_power_exact, paired_mde, paired_n,
                       sign_test_n, sign_test_power)
from .preference import (PositionBias, Preference, pairwise_preference, position_bias,
                         sign_flip_test)
from .proportions import (IndependentProportions, PairedProportions, independent_proportions,
                          newcombe_paired_interval, paired_proportions, tango_interval,
                          wilson_interval)
from .sequential import (ALWAYS_VALID, FIXED, PValueLabel, SequentialEstimate,
                         always_valid_p_value, betting_p_value, betting_sequence,
                         confidence_sequence, cs_half_width, fixed_horizon,
                         independent_binary_sequence, never_below, p_value_label,
                         paired_binary_sequence)

__all__ = [
    "ALWAYS_VALID", "Agreement", "BTResult", "FIXED", "IndependentProportions",
    "LatencyComparison", "LikertComparison", "LikertMean", "PValueLabel", "PairedProportions",
    "PositionBias", "Preference", "Result", "SampleSize", "SequentialEstimate",
    "always_valid_p_value", "bca_mean_interval", "betting_p_value", "betting_sequence", "benjamini_hochberg", "bradley_terry",
    "confidence_sequence", "cs_half_width", "fixed_horizon", "holm", "independent_proportions",
    "independent_binary_sequence", "item_means", "krippendorff_alpha", "likert_mean", "mcnemar_n", "mcnemar_power_exact",
    "never_below", "newcombe_paired_interval", "p_value_label", "paired_binary_sequence", "paired_latency", "paired_likert", "paired_mde",
    "paired_n", "paired_proportions", "pairwise_preference", "percentiles", "plain",
    "position_bias", "quantile_bootstrap", "resample_counts", "sign_flip_test", "sign_test_n", "sign_test_power",
    "tango_interval", "unpaired_latency", "wilson_interval",
]
