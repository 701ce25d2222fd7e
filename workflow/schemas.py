"""The generic webhook's JSON: what a receiver gets (``GenericMessage``), with its JSON Schema.

Dates and times are ISO 8601 (times in UTC with ``+00:00``); money is in the data's currency.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GenericItem(BaseModel):
    """One account that needs action."""

    model_config = ConfigDict(extra="forbid")

    account_id: str
    name: str | None = None
    health_score: float
    tier: str = Field(description="tier key (core.vocabulary): healthy, low_risk, medium_risk, high_risk")
    tier_label: str = Field(description="the tier's name in the message's language")
    top_reason: str | None = None
    mrr: float | None = None
    expected_loss: float | None = Field(None, description="MRR x churn probability")
    owner: str | None = None
    due_at: dt.datetime | None = Field(None, description="UTC")
    overdue: bool = False
    as_of: dt.date = Field(description="the scoring date")
    link: str
    task_id: int | None = None
    alert_ids: list[str] = Field(default_factory=list)
    action: str | None = Field(None, description="the tier's playbook action in the message's language")


class GenericMessage(BaseModel):
    """A run's digest (``type: digest``) or one account's message (``type: account``)."""

    model_config = ConfigDict(extra="forbid")

    schema_: Literal["churnwatch.webhook/v1"] = Field("churnwatch.webhook/v1", alias="schema")
    type: Literal["digest", "account"]
    run_id: str
    webhook: str
    lang: Literal["en", "zh-CN"]
    generated_at: dt.datetime
    title: str
    count: int = Field(description="accounts that need action in this run")
    by_tier: dict[str, int]
    mrr_at_risk: float | None = Field(description="MRR of the accounts in the message; null when none has an "
                                      "MRR (a flat table's scores, no MRR column)")
    expected_loss: float | None = Field(description="their summed expected loss; null when none has an MRR")
    items: list[GenericItem] = Field(description="ordered by expected loss, then health")
    more: int = Field(0, description="accounts left out of items (see full_list)")
    full_list: str


#: The JSON Schema of the generic webhook's body, for receivers.
GENERIC_SCHEMA: dict = GenericMessage.model_json_schema(by_alias=True)
