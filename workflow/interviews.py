"""Exit interviews (ARTICLE §2, issue 15 item 6): the five questions' answers as a record per
churned account, with a suggested reason category and avoidable flag that the interviewer
confirms or changes.

* One record per (account, churn date); recording it again replaces the answers. The churn
  date defaults to the interview date.
* **The suggestion** is a transparent keyword rule (English and Chinese keywords, ``KEYWORDS``):
  each category scores 3 per keyword found in the main reason (question 1) and 1 per keyword
  found in the help story (question 2, service words only), the one thing to do better (3)
  and the replacement (4), a business-change keyword of an unavoidable cause counting twice
  (an acquisition outweighs the tool the buyer uses); the highest score wins (ties: the main reason's own best category,
  then the article's order); nothing found is ``other``. **Avoidable** is ``False`` when a
  keyword of an unavoidable cause (``UNAVOIDABLE``: bankruptcy, acquisition, pivot, the
  champion left) is in the answers, else the category's usual judgement
  (``core.vocabulary.REASON_CATEGORIES``: product, price, service, competitor avoidable;
  business change not; other unknown). The keywords that decided it are stored with it.
* The interviewer's **confirmed** category and flag are stored next to the suggestion;
  ``diagnose`` uses the confirmed values, or the suggestion while nothing is confirmed
  (``as_feedback``: the interviews as rows of the ``churn_feedback`` table).
* Every change is audit-logged (entity ``exit_interview``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Connection, Engine

from core.errors import ChurnwatchError
from core.vocabulary import REASON_BY_KEY, REASON_KEYS, reason_label
from workflow import audit
from workflow.db import METADATA, SQLITE_FILE, open_store, operations_url, write

ENTITY = "exit_interview"
TEMPLATES = Path(__file__).with_name("templates") / "review"

INTERVIEWS = sa.Table(
    "exit_interviews", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.String(200), nullable=False),
    sa.Column("churned_at", sa.Date, nullable=False),
    sa.Column("interviewed_on", sa.Date, nullable=False),
    sa.Column("interviewer", sa.String(200), nullable=False),
    sa.Column("lang", sa.String(10), nullable=False, server_default="en"),
    sa.Column("main_reason", sa.Text, nullable=False),
    sa.Column("asked_for_help", sa.Text),
    sa.Column("do_better", sa.Text),
    sa.Column("instead", sa.Text),
    sa.Column("come_back", sa.Text),
    sa.Column("suggested_category", sa.String(40), nullable=False),
    sa.Column("suggested_avoidable", sa.Boolean),
    sa.Column("suggestion_basis", sa.Text),
    sa.Column("category", sa.String(40)),
    sa.Column("avoidable", sa.Boolean),
    sa.Column("confirmed_by", sa.String(200)),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("account_id", "churned_at", name="uq_exit_interviews_account_id"),
)

#: The five questions (ARTICLE §2): (answer field, English, Chinese).
QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("main_reason", "What is the main reason you are leaving?", "您离开的主要原因是什么？"),
    ("asked_for_help", "Did you ask us for help before deciding, and how did that go?",
     "做出决定之前，您是否向我们寻求过帮助？结果如何？"),
    ("do_better", "What is the one thing we could have done better (features, usability, training, price...)?",
     "我们最应该改进的一件事是什么（功能、易用性、培训、价格……）？"),
    ("instead", "What will you use instead, or how will you now solve the problem?",
     "您将改用什么产品，或者今后如何解决这个问题？"),
    ("come_back", "Under what conditions would you come back?", "在什么条件下您会考虑回来？"),
)
ANSWER_FIELDS = tuple(q[0] for q in QUESTIONS)

#: Category -> keywords (English: matched at a word start, any ending; Chinese: anywhere).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "product": ("bug", "defect", "crash", "missing feature", "feature", "complex", "complicated", "hard to use",
                "difficult to use", "usability", "unstable", "integration", "performance",
                "功能", "缺陷", "故障", "崩溃", "复杂", "难用", "不好用", "易用", "集成", "性能", "不稳定"),
    "price": ("price", "pricing", "expensive", "cost", "budget", "cheaper", "afford", "value for money",
              "价格", "太贵", "昂贵", "费用", "成本", "预算", "性价比", "便宜"),
    "service": ("support", "service", "no one answered", "nobody answered", "no response", "slow response",
                "respond", "ticket", "onboarding", "training", "account manager",
                "客服", "支持", "服务", "响应", "回复", "没人理", "工单", "培训", "客户经理"),
    "competitor": ("competitor", "switch", "moving to", "another vendor", "another tool",
                   "alternative", "better offer", "better deal",
                   "竞争对手", "竞品", "换成", "改用", "转用", "别家", "其他厂商", "更好的报价", "更优惠"),
    "business_change": ("bankrupt", "insolven", "acquired", "acquisition", "merge", "pivot",
                        "shut down", "shutting down", "closing the business", "out of business", "restructur",
                        "champion left", "left the company", "successor", "downsiz",
                        "破产", "被收购", "收购", "合并", "转型", "倒闭", "关闭", "停业", "重组", "离职", "继任",
                        "裁员"),
}
#: Keywords of an unavoidable cause (ARTICLE §2): bankruptcy, acquisition, pivot, the champion left.
UNAVOIDABLE: tuple[str, ...] = ("bankrupt", "insolven", "acquired", "acquisition", "merge", "pivot",
                                "shut down", "shutting down", "out of business", "closing the business",
                                "champion left", "left the company", "successor",
                                "破产", "被收购", "收购", "合并", "转型", "倒闭", "停业", "离职", "继任")
#: Weight of a keyword per question; question 2 counts service words only.
WEIGHTS = {"main_reason": 3, "asked_for_help": 1, "do_better": 1, "instead": 1}


class InterviewError(ChurnwatchError):
    """An exit interview cannot be recorded or found as asked."""


class Answers(BaseModel):
    """The five answers; the main reason is required, the others may be left empty."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    main_reason: str = Field(min_length=1, max_length=5000)
    asked_for_help: str | None = Field(None, max_length=5000)
    do_better: str | None = Field(None, max_length=5000)
    instead: str | None = Field(None, max_length=5000)
    come_back: str | None = Field(None, max_length=5000)


class InterviewIn(BaseModel):
    """An exit interview as the API and ``churnwatch interview record`` take it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    account_id: str = Field(min_length=1, max_length=200)
    interviewer: str = Field(min_length=1, max_length=200)
    answers: Answers
    interviewed_on: dt.date | None = None  # default today (UTC)
    churned_at: dt.date | None = None  # default the interview date
    lang: str = Field("en", pattern="^(en|zh-CN)$")
    category: str | None = None  # the interviewer's confirmed category
    avoidable: bool | None = None  # the interviewer's confirmed flag (with category)

    @field_validator("category")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in REASON_BY_KEY:
            raise ValueError(f"unknown reason category {value!r} (categories: {', '.join(REASON_KEYS)})")
        return value


class Suggestion(BaseModel):
    category: str
    avoidable: bool | None
    basis: dict[str, list[str]]  # question -> keywords found (those that decided the category or the flag)


def _found(keyword: str, text: str) -> bool:
    if keyword.isascii():
        return re.search(r"(?<![a-z])" + re.escape(keyword), text) is not None
    return keyword in text


def suggest(answers: Answers) -> Suggestion:
    """The suggested category and avoidable flag from the answers (the rule in the module docstring)."""
    texts = {f: (getattr(answers, f) or "").lower() for f in ANSWER_FIELDS}
    scores = dict.fromkeys(REASON_KEYS, 0)
    hits: dict[str, dict[str, list[str]]] = {k: {} for k in REASON_KEYS}
    for field, weight in WEIGHTS.items():
        for category, words in KEYWORDS.items():
            if field == "asked_for_help" and category != "service":
                continue
            found = [w for w in words if _found(w, texts[field])]
            if found:
                scores[category] += weight * sum(2 if category == "business_change" and w in UNAVOIDABLE else 1
                                                 for w in found)
                hits[category].setdefault(field, []).extend(found)
    best = max(scores.values())
    if best == 0:
        category = "other"
    else:
        tied = [k for k in REASON_KEYS if scores[k] == best]
        main = {k: len(hits[k].get("main_reason", [])) for k in tied}
        category = max(tied, key=lambda k: (main[k], -REASON_KEYS.index(k)))
    basis = {f: list(ws) for f, ws in hits.get(category, {}).items()}
    unavoidable = {f: [w for w in UNAVOIDABLE if _found(w, texts[f])] for f in ANSWER_FIELDS if f != "come_back"}
    unavoidable = {f: ws for f, ws in unavoidable.items() if ws}
    if unavoidable:
        avoidable: bool | None = False
        for f, ws in unavoidable.items():
            basis[f] = sorted(set(basis.get(f, [])) | set(ws))
    else:
        avoidable = REASON_BY_KEY[category].avoidable
    return Suggestion(category=category, avoidable=avoidable, basis=basis)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the API, the CLI and the audit log show it."""
    out = dict(row)
    out["suggestion_basis"] = json.loads(out["suggestion_basis"]) if out.get("suggestion_basis") else {}
    out["confirmed"] = out.get("confirmed_at") is not None
    out["reason_category"] = out["category"] if out["confirmed"] else out["suggested_category"]
    out["reason_avoidable"] = out["avoidable"] if out["confirmed"] else out["suggested_avoidable"]
    for k in ("churned_at", "interviewed_on", "confirmed_at", "created_at", "updated_at"):
        if out.get(k) is not None:
            out[k] = out[k].isoformat()
    return out


def _row(conn: Connection, account_id: str, churned_at: dt.date | None = None, lock: bool = False):
    q = sa.select(INTERVIEWS).where(INTERVIEWS.c.account_id == account_id)
    if churned_at is not None:
        q = q.where(INTERVIEWS.c.churned_at == churned_at)
    q = q.order_by(INTERVIEWS.c.churned_at.desc())
    if lock:
        q = q.with_for_update()
    return conn.execute(q).mappings().first()


def record(engine: Engine, interview: InterviewIn, actor: str | None = None) -> dict[str, Any]:
    """Store (or replace) the interview of ``(account_id, churned_at)``; the suggestion is computed
    from the answers, the confirmed values are the interviewer's when given. Returns the record."""
    now = _now()
    interviewed_on = interview.interviewed_on or now.date()
    churned_at = interview.churned_at or interviewed_on
    s = suggest(interview.answers)
    values: dict[str, Any] = {
        "account_id": interview.account_id, "churned_at": churned_at, "interviewed_on": interviewed_on,
        "interviewer": interview.interviewer, "lang": interview.lang, **interview.answers.model_dump(),
        "suggested_category": s.category, "suggested_avoidable": s.avoidable,
        "suggestion_basis": json.dumps(s.basis, ensure_ascii=False), "updated_at": now}
    if interview.category is not None:
        values.update(category=interview.category, avoidable=interview.avoidable,
                      confirmed_by=actor or interview.interviewer, confirmed_at=now)
    with write(engine) as conn:
        before = _row(conn, interview.account_id, churned_at, lock=True)
        if before is None:
            try:  # FOR UPDATE locks no row that does not exist yet: two first interviews can race to insert
                with conn.begin_nested():
                    new_id = conn.execute(INTERVIEWS.insert().values(created_at=now, **values)).inserted_primary_key[0]
            except sa.exc.IntegrityError:  # the other one inserted first: this one replaces it, as a later save
                before = _row(conn, interview.account_id, churned_at, lock=True)
                if before is None:
                    raise
        if before is not None:
            new_id = before["id"]
            conn.execute(INTERVIEWS.update().where(INTERVIEWS.c.id == new_id).values(**values))
        after = conn.execute(sa.select(INTERVIEWS).where(INTERVIEWS.c.id == new_id)).mappings().one()
        audit.record(conn, actor=actor or interview.interviewer, entity=ENTITY, entity_id=str(new_id),
                     action="create" if before is None else "update",
                     before=None if before is None else _public(dict(before)), after=_public(dict(after)), at=now)
    return _public(dict(after))


def confirm(engine: Engine, account_id: str, category: str, avoidable: bool | None, actor: str,
            churned_at: dt.date | None = None) -> dict[str, Any]:
    """The interviewer confirms (or changes) the category and flag of the account's latest interview
    (or the one of ``churned_at``)."""
    if category not in REASON_BY_KEY:
        raise InterviewError(f"unknown reason category {category!r} (categories: {', '.join(REASON_KEYS)})")
    now = _now()
    with write(engine) as conn:
        before = _row(conn, account_id, churned_at, lock=True)
        if before is None:
            raise InterviewError(f"no exit interview recorded for account {account_id!r}"
                                 + (f" churned on {churned_at}" if churned_at else ""))
        conn.execute(INTERVIEWS.update().where(INTERVIEWS.c.id == before["id"]).values(
            category=category, avoidable=avoidable, confirmed_by=actor, confirmed_at=now, updated_at=now))
        after = conn.execute(sa.select(INTERVIEWS).where(INTERVIEWS.c.id == before["id"])).mappings().one()
        audit.record(conn, actor=actor, entity=ENTITY, entity_id=str(before["id"]), action="confirm",
                     before=_public(dict(before)), after=_public(dict(after)), at=now)
    return _public(dict(after))


def get(engine: Engine, account_id: str) -> list[dict[str, Any]]:
    """The account's interviews, latest churn first (empty when none)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(INTERVIEWS).where(INTERVIEWS.c.account_id == account_id)
                            .order_by(INTERVIEWS.c.churned_at.desc())).mappings().all()
    return [_public(dict(r)) for r in rows]


def list_interviews(engine: Engine, since: dt.date | None = None, until: dt.date | None = None) -> list[dict]:
    """Every interview (churn dated in ``[since, until]`` when given), by churn date then account."""
    q = sa.select(INTERVIEWS)
    if since is not None:
        q = q.where(INTERVIEWS.c.churned_at >= since)
    if until is not None:
        q = q.where(INTERVIEWS.c.churned_at <= until)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(INTERVIEWS.c.churned_at, INTERVIEWS.c.account_id)).mappings().all()
    return [_public(dict(r)) for r in rows]


FEEDBACK_COLUMNS = ["account_id", "churned_at", "reason_category", "avoidable", "notes", "source"]


def as_feedback(engine: Engine) -> pd.DataFrame:
    """The interviews as ``churn_feedback`` rows (account_id, churned_at, reason_category, avoidable,
    notes = the main reason) plus ``source``: ``interview`` (confirmed) or ``interview (suggested)``."""
    rows = list_interviews(engine)
    frame = pd.DataFrame([{
        "account_id": r["account_id"], "churned_at": dt.date.fromisoformat(r["churned_at"]),
        "reason_category": r["reason_category"], "avoidable": r["reason_avoidable"], "notes": r["main_reason"],
        "source": "interview" if r["confirmed"] else "interview (suggested)"} for r in rows],
        columns=FEEDBACK_COLUMNS)
    frame["avoidable"] = frame["avoidable"].astype("boolean")
    return frame


def feedback_of_home(home: Path, configured_url: str | None = None) -> pd.DataFrame:
    """``as_feedback`` of the home's operational store; empty when the home has none yet (the
    default SQLite file is not created just to read it)."""
    url = operations_url(home, configured_url)
    if url.startswith("sqlite:///") and url.endswith(SQLITE_FILE) and not (Path(home) / SQLITE_FILE).exists():
        return pd.DataFrame(columns=FEEDBACK_COLUMNS)
    try:
        return as_feedback(open_store(url))
    except sa.exc.OperationalError as exc:
        raise InterviewError(f"cannot read the exit interviews from the operational store "
                             f"{sa.engine.make_url(url).render_as_string(hide_password=True)}: "
                             f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}") from exc


def templates() -> Environment:
    """The Jinja2 environment of the review's templates (autoescaped)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["reason_label"] = reason_label
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    return env


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and x != x) or x is pd.NA or x is pd.NaT


def _cell(x: Any) -> str:
    """A Markdown table cell: ``|`` escaped, lines joined (Jinja2 still HTML-escapes the text)."""
    return "-" if _missing(x) else " ".join(str(x).split()).replace("|", "\\|")


def _pct(x: Any, signed: bool = False) -> str:
    return "-" if _missing(x) else (f"{x * 100:+.1f} pp" if signed else f"{x:.1%}")


def _num(x: Any, digits: int = 1, signed: bool = False) -> str:
    return "-" if _missing(x) else (f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}")


def render_form(account_id: str, lang: str = "en", name: str | None = None,
                churned_at: dt.date | None = None) -> str:
    """A printable exit-interview form for one account: the five questions in ``lang`` with the
    other language under each, space to write, and the categories to tick."""
    if lang not in ("en", "zh-CN"):
        raise InterviewError(f"--lang {lang!r}: expected en or zh-CN")
    other = "en" if lang == "zh-CN" else "zh-CN"
    questions = [{"n": i + 1, "main": zh if lang == "zh-CN" else en, "second": en if lang == "zh-CN" else zh}
                 for i, (_, en, zh) in enumerate(QUESTIONS)]
    return templates().get_template("interview_form.html.j2").render(
        account_id=account_id, name=name, churned_at=churned_at, lang=lang, other=other, questions=questions,
        categories=REASON_KEYS)
