"""The admin's validation messages in Simplified Chinese (issue 16 item 8, both languages): an invalid
value is shown next to its field in the page's language, with the field name and the limits kept,
and a Chinese settings page with errors has no English label left (real app, real tiny home)."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from tests.workspace.conftest import sign_in, token_of
from workflow.config_versions import SettingsError, current_version, validate
from workflow.db import store_for
from workspace.admin import field_messages
from workspace.app import build_app
from workspace.texts import validation_message

#: words a Chinese page may show in Latin letters: names of products and formats, the English
#: option of the language switch, and the tiny home's admin's name (data)
ALLOWED = {"churnwatch", "YAML", "yaml", "Webhook", "English", "Root", "Admin", "MRR"}


def errors_of(html: str) -> dict[str, str]:
    return {k: html_lib.unescape(v) for k, v in
            re.findall(r'class="field-error" role="alert" data-field="([^"]+)">([^<]*)', html)}


def latin_words(html: str) -> set[str]:
    """Latin words of the page's visible labels (data shown as data left out: setting names in
    <code>, the YAML boxes, typed values, scripts and styles)."""
    for pattern in (r"<textarea.*?</textarea>", r"<code>.*?</code>", r"<(script|style)\b.*?</\1>", r"<head>.*?</head>"):
        html = re.sub(pattern, " ", html, flags=re.S)
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", html))
    return set(re.findall(r"[A-Za-z]{2,}", text))


@pytest.fixture
def zh_admin(home):
    with TestClient(build_app(home)) as client:
        assert sign_in(client, "root@example.com").status_code == 303
        token = token_of(client.get("/").text)
        client.post("/lang", data={"lang": "zh-CN", "csrf_token": token})
        yield client, token


def test_an_invalid_value_on_a_chinese_settings_page_is_worded_in_chinese_with_its_limits(zh_admin, home):
    client, token = zh_admin
    bad = client.post("/admin/settings/alert_rules", data={
        "csrf_token": token, "based_on": "0", "f:alert_rules.0.threshold": "500", "f:alert_rules.0.days": "soon"})
    assert bad.status_code == 422
    assert errors_of(bad.text) == {"alert_rules.0.threshold": "应小于或等于 100",
                                   "alert_rules.0.days": "应为整数，无法将文本解析为整数"}
    assert "个值无效：见下方标出的字段。未保存任何内容。" in bad.text
    assert latin_words(bad.text) <= ALLOWED, latin_words(bad.text) - ALLOWED
    assert 'value="500"' in bad.text  # what was typed is kept
    bad_yaml = client.post("/admin/settings/webhooks", data={
        "csrf_token": token, "based_on": "0", "yaml": "- name: ops\n  url: http://127.0.0.1:9/x\n  format: fax\n"})
    assert bad_yaml.status_code == 422
    # a section-level error keeps the field's path and the allowed values
    assert "webhooks.0.format: 应为以下之一：&#39;generic&#39;, &#39;slack&#39;" in bad_yaml.text
    assert latin_words(bad_yaml.text.split('id="webhooks"')[1].split("</form>")[0].split("<table")[0]) \
        <= ALLOWED | {"webhooks", "format", "generic", "slack", "dingtalk", "wecom"}
    broken = client.post("/admin/settings/alert_rules", data={
        "csrf_token": token, "based_on": "0", "yaml": "- name: [unclosed\n"})
    assert broken.status_code == 422 and "不是有效的 YAML，无法解析" in broken.text
    assert current_version(store_for(home)) == 0


def test_an_english_page_keeps_pydantics_wording(home):
    with TestClient(build_app(home)) as client:
        assert sign_in(client, "root@example.com").status_code == 303
        token = token_of(client.get("/").text)
        bad = client.post("/admin/settings/alert_rules", data={
            "csrf_token": token, "based_on": "0", "f:alert_rules.0.threshold": "-1"})
        assert errors_of(bad.text) == {"alert_rules.0.threshold": "Input should be greater than or equal to 1"}


def test_the_settings_models_own_checks_are_translated():
    with pytest.raises(SettingsError) as caught:
        validate({"playbooks": {"nonsense_tier": {"action_en": "x", "action_zh": "x", "owner": "CSM",
                                                   "respond_within": "4 hours", "respond_within_hours": 4}}})
    assert isinstance(caught.value.__cause__, ValidationError)
    zh = field_messages(caught.value, "zh-CN")
    en = field_messages(caught.value, "en")
    assert set(zh) == set(en) == set(caught.value.by_field())
    message = next(iter(zh.values()))
    assert message.startswith("未知的风险等级 nonsense_tier（可用等级：") and "high_risk" in message
    assert next(iter(en.values())) == next(iter(caught.value.by_field().values()))


@pytest.mark.parametrize(("kind", "ctx", "expected"), [
    ("greater_than", {"gt": 0}, "应大于 0"),
    ("string_too_long", {"max_length": 200}, "最多 200 个字符"),
    ("literal_error", {"expected": "'a' or 'b'"}, "应为以下之一：'a' 或 'b'"),
    ("missing", None, "必填"),
    ("some_new_type", None, "值无效：Input is odd"),  # unknown: says invalid, keeps the original
])
def test_validation_message_maps_pydantic_types_with_their_limits(kind, ctx, expected):
    assert validation_message(kind, ctx, "Input is odd", "zh-CN") == expected
    assert validation_message(kind, ctx, "Input is odd", "en") == "Input is odd"

