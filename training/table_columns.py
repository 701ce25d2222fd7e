"""Which of a flat table's columns the model does not read, with the reason (``training.own_table``'s report):
said by ``train``, by ``GET /model`` and in the request contract (``Catalogue.ignored``). A module of its own,
light to import, for the service and the bundle."""

from __future__ import annotations

from features.profile import PERSONAL_DATA


def unused_columns(report: dict) -> dict[str, str]:
    """The table's columns ``load_own_table`` did not use, with the reason, in the order it says them
    (``describe_table``; ``GET /model``'s ``left_out_features`` of a table model)."""
    pairs = ([(c, "excluded in churnwatch.yaml") for c in report.get("dropped_excluded", [])]
             + [(c, PERSONAL_DATA) for c in report.get("dropped_personal", [])]
             + [(c, "identifier: a different value on every row") for c in report.get("dropped_identifier", [])]
             + [(c, "free text") for c in report.get("dropped_free_text", [])]
             + [(c, "one value") for c in report.get("dropped_constant", [])]
             + list(report.get("dropped_unreadable_dates", {}).items())
             + list(report.get("dropped_name", {}).items())
             + [(c, f"type {t}") for c, t in report.get("dropped_unsupported", {}).items()])
    return {str(c): str(why) for c, why in pairs}


def table_ignored(report: dict) -> dict[str, str]:
    """The table's columns a request may send and the model ignores (``Catalogue.ignored``): its id and label
    columns and those not used (``unused_columns``), but not a column left out for sharing its name with a
    feature's once written as one ("Monthly_Fee" beside "Monthly Fee"): sent alone, it is the feature sent under
    the wrong name, and stays a 422 (the review of 2026-12-06)."""
    twins = set(report.get("name_twins", {}))
    return {**{str(report[key]): why for key, why in (
        ("id_column", "the id column: send it as the request's account_id"),
        ("label_column", "the label column: not read to score")) if report.get(key) is not None},
            **{c: why for c, why in unused_columns(report).items() if c not in twins}}
