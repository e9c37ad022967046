"""Smoke test on the real Kermany data where it lies beside the checkout; skipped elsewhere."""
from pathlib import Path

import numpy as np
import pytest

from genaug.data import load_data

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chest_xray_224"


@pytest.mark.skipif(not (REAL / "train").is_dir(), reason="real data not present at ../shared/data/chest_xray_224")
def test_real_data_loads_with_patient_level_val(tmp_path):
    b = load_data(str(REAL), 32, cache_dir=tmp_path / "cache")
    assert b.classes == ["NORMAL", "PNEUMONIA"]
    assert len(b.train) + len(b.val) == 1341 + 3875
    assert b.test.class_counts(2) == [234, 390]
    from genaug.report import is_kermany_test_split
    assert is_kermany_test_split(b)   # so its reports set the published figures beside the measured ones
    assert not set(b.train.patients) & set(b.val.patients)
    assert b.skipped == []
    assert b.train.images.dtype == np.uint8 and b.train.images.shape[1:] == (32, 32)
