"""The structure features of benchmarks/headroom.py read the chain as the policy computes it."""

import numpy as np

from benchmarks.headroom import structure_features


def test_structure_features_count_borrows_carries_and_two_digit_results():
    # 7 + 5 = 12 (carry, two digits), 12 - 4 = 8 (borrow: 2 < 4), 8 * 3 = 24 (two digits)
    f = structure_features(["7 + 5 - 4 * 3", "9 - 2"])
    assert f.shape == (2, 13)
    assert f[0, :4].tolist() == [1, 1, 1, 0]  # one +, one -, one *, no /
    assert (f[0, 4], f[0, 5], f[0, 6], f[0, 7]) == (1, 1, 1, 2)
    assert f[0, 8] == np.float32(0.24) and f[0, 10] == 3
    assert (f[1, 4], f[1, 5], f[1, 7], f[1, 10]) == (0, 0, 0, 1)  # 9 - 2: no borrow
    assert np.isclose(f[0, 12], np.log1p(len("7 + 5 - 4 * 3")))
