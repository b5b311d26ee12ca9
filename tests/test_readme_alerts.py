"""The README's example alert rules parse and use only metrics that exist: the API's (checked
by tests/api/test_metrics.py) and the SDK's (checked by tests/api/test_worker_metrics.py)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.api.test_worker_metrics import RULE_METRICS

README = Path(__file__).resolve().parent.parent / "README.md"
API_METRICS = {
    "casedesk_http_requests_total",
    "casedesk_http_request_duration_seconds",
    "casedesk_cases_opened",
    "casedesk_cases_closed",
    "casedesk_cases_escalated",
    "casedesk_cases_overdue",
    "casedesk_stuck_cases",
    "casedesk_messages",
    "casedesk_metrics_index_up",
}
METRIC = re.compile(r"\b((?:casedesk|temporal)_[a-z_]+)")


def rules() -> list[dict[str, str]]:
    text = README.read_text()
    section = text[text.index("### Alert rules") :]
    block = section[section.index("```yaml\n") + 8 : section.index("```\n", 8)]
    document = yaml.safe_load(block)
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_rule_uses_a_metric_that_exists():
    found = rules()
    assert len(found) >= 5
    for rule in found:
        assert rule["alert"] and rule["expr"]
        for name in METRIC.findall(rule["expr"]):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in API_METRICS | RULE_METRICS, (rule["alert"], name)
