"""The words of webhook messages, in English and Simplified Chinese (``core.vocabulary.LANGS``).

``text(lang, key, **values)`` fills one of them; an unknown language falls back to English.
Tier names come from ``core.vocabulary`` and playbook actions from ``core.settings``, not from here.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "churnwatch: {n} accounts need action",
        "title_one": "churnwatch: {account} needs action",
        "summary": "MRR at risk {mrr} · expected loss {loss} · scored {as_of}",
        "health": "health {v}",
        "mrr": "MRR {v}",
        "loss": "expected loss {v}",
        "owner": "owner {v}",
        "unassigned": "unassigned",
        "due": "due {v}",
        "overdue": "overdue",
        "no_due": "no deadline",
        "reason": "reason: {v}",
        "todo": "What to do",
        "todo_line": "{label} ({n}): {act} (respond within {within})",
        "todo_one": "What to do: {act} (respond within {within})",
        "more": "… and {n} more",
        "full": "full list",
        "open": "open the account",
    },
    "zh-CN": {
        "title": "churnwatch：{n} 个客户需要跟进",
        "title_one": "churnwatch：客户 {account} 需要跟进",
        "summary": "风险 MRR {mrr} · 预计损失 {loss} · 评分日期 {as_of}",
        "health": "健康分 {v}",
        "mrr": "MRR {v}",
        "loss": "预计损失 {v}",
        "owner": "负责人 {v}",
        "unassigned": "未分配",
        "due": "截止 {v}",
        "overdue": "已逾期",
        "no_due": "无截止时间",
        "reason": "主要原因：{v}",
        "todo": "处理方式",
        "todo_line": "{label}（{n}）：{act}（{within}内响应）",
        "todo_one": "处理方式：{act}（{within}内响应）",
        "more": "……另有 {n} 个客户",
        "full": "查看完整列表",
        "open": "查看客户",
    },
}


def text(lang: str, key: str, **values: object) -> str:
    """The text ``key`` in ``lang`` (English when the language has none), filled with ``values``."""
    return TEXTS.get(lang, TEXTS["en"]).get(key, TEXTS["en"][key]).format(**values)
