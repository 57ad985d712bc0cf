from __future__ import annotations

from pathlib import Path

import pytest

from segmint.config import ConfigError, load_settings


def test_recommendation_section_reads_lists_and_numbers(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text(
        "[recommendations]\n"
        "top_n = 5\n"
        'repeatable_categories = ["grocery", "pet food"]\n'
        'repeatable_product_ids = ["p1"]\n'
        "holdout_days = 7\n"
        "factors = 32\n"
    )
    cfg = load_settings(config, environ={}).recommendations
    assert cfg.top_n == 5 and cfg.holdout_days == 7
    assert cfg.repeatable_categories == ("grocery", "pet food")
    assert cfg.repeatable_product_ids == ("p1",)
    assert cfg.factors == (32,)
    hash(cfg)  # frozen and hashable, lists or not


def test_unknown_recommendation_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text("[recommendations]\ntop_k = 5\n")
    with pytest.raises(ConfigError, match="top_k"):
        load_settings(config, environ={})


def test_factor_candidates_must_be_positive(tmp_path: Path) -> None:
    config = tmp_path / "segmint.toml"
    config.write_text("[recommendations]\nfactors = [8, 0]\n")
    with pytest.raises(ConfigError, match="factors"):
        load_settings(config, environ={})
