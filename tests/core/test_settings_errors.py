"""A settings file that does not validate names the key, what is wrong and, where the key has one, what
it expects (probe p18: `new_feature: [ai_assistant]` gave a bare "Input should be a valid dictionary")."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.settings import load_settings


@pytest.mark.parametrize("text, said", [
    ("event_roles:\n  new_feature: [ai_assistant]\n",
     "event_roles.new_feature: Input should be a valid dictionary (expected: new-feature event type -> "
     "release date)"),
    ("serving:\n  min_coverage: 2\n",
     "serving.min_coverage: Input should be less than or equal to 1 (expected: /score: an account whose given "
     "features carry less than this share of the model's gain gets an error instead of a tier)"),
    # a list item's field: no description of the list is passed off as the item's
    ("webhooks:\n  - {url: 'http://x', format: nope}\n", "webhooks.0.name: Field required"),
])
def test_a_wrong_setting_says_what_the_key_expects(tmp_path, text, said):
    (tmp_path / "churnwatch.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "churnwatch.yaml")
    assert str(info.value) == f"{tmp_path / 'churnwatch.yaml'}: {said}"
