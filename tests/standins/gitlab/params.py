"""The request parameters GitLab documents for each endpoint the stand-in serves.

Taken from GitLab's REST API documentation and its OpenAPI v3 description (doc/api/openapi/openapi_v3.yaml in
gitlab-org/gitlab): name -> (type, required). Types: str, int, bool, list, file. A request with an unknown
parameter is recorded (GitLab drops it silently; the fixture fails the test), a missing required one or a
wrongly typed value is a spec violation. Pagination parameters
(page, per_page) are accepted on every list endpoint.
"""

from __future__ import annotations

PAGED = {"page": ("int", False), "per_page": ("int", False)}
STATES = ("pending", "running", "success", "failed", "canceled", "skipped")

PARAMS: dict[tuple[str, str], dict[str, tuple[str, bool]]] = {
    ("GET", "mr_notes"): {**PAGED, "sort": ("str", False), "order_by": ("str", False), "activity_filter": ("str", False)},
    ("POST", "mr_notes"): {"body": ("str", True), "internal": ("bool", False), "created_at": ("str", False),
                           "merge_request_diff_head_sha": ("str", False)},
    ("PUT", "mr_note"): {"body": ("str", False), "confidential": ("bool", False), "internal": ("bool", False)},
    ("GET", "issue_notes"): {**PAGED, "sort": ("str", False), "order_by": ("str", False), "activity_filter": ("str", False)},
    ("POST", "issue_notes"): {"body": ("str", True), "internal": ("bool", False), "confidential": ("bool", False),
                              "created_at": ("str", False)},
    ("PUT", "issue_note"): {"body": ("str", False), "confidential": ("bool", False), "internal": ("bool", False)},
    ("GET", "commit_comments"): {**PAGED},
    ("POST", "commit_comments"): {"note": ("str", True), "path": ("str", False), "line": ("int", False),
                                  "line_type": ("str", False)},
    ("GET", "commit_mrs"): {**PAGED, "state": ("str", False)},
    ("POST", "uploads"): {"file": ("file", True)},
    ("POST", "statuses"): {"state": ("str", True), "ref": ("str", False), "name": ("str", False), "context": ("str", False),
                           "target_url": ("str", False), "description": ("str", False), "coverage": ("float", False),
                           "pipeline_id": ("int", False)},
    ("POST", "user_runners"): {"runner_type": ("str", True), "group_id": ("int", False), "project_id": ("int", False),
                               "description": ("str", False), "paused": ("bool", False), "locked": ("bool", False),
                               "run_untagged": ("bool", False), "tag_list": ("list", False), "access_level": ("str", False),
                               "maximum_timeout": ("int", False), "maintenance_note": ("str", False)},
    ("GET", "user"): {},
    ("GET", "runner"): {},
    ("DELETE", "runner"): {},
    ("GET", "project_runners"): {**PAGED, "scope": ("str", False), "type": ("str", False), "status": ("str", False),
                                 "paused": ("bool", False), "tag_list": ("list", False)},
    ("POST", "pipeline_retry"): {},
}
ENUMS = {
    "state": STATES,
    "runner_type": ("instance_type", "group_type", "project_type"),
    "sort": ("asc", "desc"),
    "order_by": ("created_at", "updated_at"),
    "line_type": ("new", "old"),
}
