"""Every integer the API and the pages read is bounded by its column's range: the edge integers
(past signed 64 bits, negative, zero) in each integer parameter and body field of every API
operation in the schema, and in each id of the pages' URLs, answer a documented 4xx, never a
5xx (on SQLite past 64 bits the driver raised OverflowError). Run on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.converters import IntConverter
from rest_framework.test import APIClient

from annotate.integers import INT64_MAX, INT64_MIN, PATH_CONVERTERS
from annotate.models import Comparison
from rewardtrain.models import TrainingRun
from tests.factories import MembershipFactory, make_pair

pytestmark = pytest.mark.django_db

EDGES = [-(2**63) - 1, -1, 0, 2**63 - 1, 2**63, 10**40]

# A valid body for each operation with an integer body field, into which each edge goes in
# turn; "LEASED" is replaced by the id of a pair leased to the caller.
BASE_BODIES: dict[str, dict[str, Any]] = {
    "comparisons_create": {"pair_id": "LEASED", "preferred": "tie"},
    "projects_generation_jobs_create": {"generators": ["none"], "prompts": ["Hello?"]},
    # No set is leased in this pairwise world: every edge must still answer 400 or 404.
    "set_judgments_create": {"set_id": 1, "all_bad": True},
    # An edge inside the range adds the judge (201); the next finds the name taken (400).
    "projects_judges_create": {"name": "edge", "base_url": "http://h/v1", "model": "m"},
    "projects_judging_jobs_create": {"judge": "none"},
}


@pytest.fixture
def world(project, staff) -> dict[str, Any]:
    """Staff on the project, with a pair leased to them; an API client and the schema."""
    MembershipFactory(project=project, user=staff)
    for i in range(3):
        make_pair(project, f"Question {i}?")
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(staff)
    leased = client.get(f"/api/projects/{project.slug}/next/").json()["pair_id"]
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    return {"client": client, "schema": schema, "leased": leased, "slug": project.slug}


def resolved(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def is_integer(node: dict) -> bool:
    kind = node.get("type")
    return kind == "integer" or (isinstance(kind, list) and "integer" in kind)


def integer_schemas(schema: dict, node: dict, where: str) -> Iterator[tuple[str, dict]]:
    """Each integer anywhere in a request's schema (properties, items, allOf/oneOf/anyOf)."""
    node = resolved(schema, node)
    if is_integer(node):
        yield where, node
    for name, inner in node.get("properties", {}).items():
        yield from integer_schemas(schema, inner, f"{where}.{name}")
    if "items" in node:
        yield from integer_schemas(schema, node["items"], f"{where}[]")
    for key in ("allOf", "oneOf", "anyOf"):
        for inner in node.get(key, []):
            yield from integer_schemas(schema, inner, where)


def operations(schema: dict) -> Iterator[tuple[str, str, dict]]:
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def request_inputs(schema: dict, operation: dict) -> Iterator[tuple[str, dict]]:
    for param in operation.get("parameters", []):
        yield from integer_schemas(schema, param["schema"], f"{param['in']}:{param['name']}")
    for media, content in operation.get("requestBody", {}).get("content", {}).items():
        yield from integer_schemas(schema, content["schema"], f"body({media})")


def test_every_integer_a_request_carries_is_bounded_in_the_schema(world):
    schema = world["schema"]
    found = [
        (f"{method.upper()} {path} {where}", node)
        for path, method, operation in operations(schema)
        for where, node in request_inputs(schema, operation)
    ]
    unbounded = [
        where
        for where, node in found
        if not ("minimum" in node and "maximum" in node)
        or not INT64_MIN <= node["minimum"] <= node["maximum"] <= INT64_MAX
    ]
    assert not unbounded, f"integers without bounds within signed 64 bits: {unbounded}"
    # The walk sees them: ids in paths and the judgment's three integer fields.
    assert len(found) >= 8, found


def filled_url(path: str, slug: str, target: str, value: int, in_query: bool) -> str:
    """The operation's path with `value` in the parameter `target` and the slug elsewhere."""
    url = re.sub(r"\{(\w+)\}", lambda m: str(value) if m[1] == target else slug, path)
    return f"{url}?{target}={value}" if in_query else url


def body_integers(schema: dict, operation: dict) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    properties = resolved(schema, content.get("schema", {})).get("properties", {})
    return [name for name, node in properties.items() if is_integer(resolved(schema, node))]


def edge_requests(world: dict) -> Iterator[tuple[str, str, dict, dict]]:
    """(method, url, body, operation) for each edge in each integer input of each operation."""
    schema, slug = world["schema"], world["slug"]
    for path, method, operation in operations(schema):
        params = [
            p for p in operation.get("parameters", []) if is_integer(resolved(schema, p["schema"]))
        ]
        fields = body_integers(schema, operation)
        if fields:
            assert operation["operationId"] in BASE_BODIES, f"add a base body for {path}"
        base = {
            key: world["leased"] if value == "LEASED" else value
            for key, value in BASE_BODIES.get(operation["operationId"], {}).items()
        }
        for value in EDGES:
            for param in params:
                url = filled_url(path, slug, param["name"], value, param["in"] == "query")
                yield method, url, base, operation
            for name in fields:
                yield method, filled_url(path, slug, "", 0, False), {**base, name: value}, operation


def test_the_edge_integers_answer_a_documented_4xx_in_every_operation(world):
    client = world["client"]
    tried, wrong = 0, []
    for method, url, body, operation in edge_requests(world):
        send = getattr(client, method)
        response = send(url, body, format="json") if body else send(url)
        tried += 1
        status = response.status_code
        documented = str(status) in operation["responses"]
        is_json = response["Content-Type"].startswith("application/json")
        if status >= 500 or not documented or (status >= 400 and not is_json):
            wrong.append(f"{method.upper()} {url} {body} -> {response.status_code}")
    assert not wrong, "\n".join(wrong)
    # 5 path ids and 3 body fields, 6 edges each.
    assert tried >= 8 * len(EDGES)


def test_the_issue_request_answers_400_naming_the_field(world):
    client = world["client"]
    for pair_id in (2**63, 10**40, -(2**63) - 1, "9223372036854775808"):
        body = {"pair_id": pair_id, "preferred": "both_bad"}
        response = client.post("/api/comparisons/", body, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["detail"].startswith("pair_id: Ensure this value is ")
    # Within range but no such pair: the 404 of an unknown pair.
    response = client.post(
        "/api/comparisons/", {"pair_id": 2**63 - 1, "preferred": "both_bad"}, format="json"
    )
    assert response.status_code == 404 and response.json() == {"detail": "No such pair."}
    assert not Comparison.objects.exists()


def test_a_cursor_whose_position_is_not_an_id_is_an_invalid_cursor(world):
    client = world["client"]
    for position in ("9223372036854775808", "1" * 5000, "abc", "-1"):
        cursor = base64.b64encode(f"p={position}".encode()).decode()
        response = client.get("/api/comparisons/", {"cursor": cursor})
        assert response.status_code == 404, (position[:30], response.content)
        assert response.json() == {"detail": "Invalid cursor"}
    cursor = base64.b64encode(b"p=9223372036854775807").decode()
    assert client.get("/api/comparisons/", {"cursor": cursor}).status_code == 200


def app_patterns(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple]:
    """(route, converters) of every URL pattern of the app, Django's admin left out."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith("admin/"):
            continue
        if isinstance(entry, URLResolver):
            yield from app_patterns(entry, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.pattern.converters


def test_no_url_takes_an_unbounded_integer():
    plain = [
        route
        for route, converters in app_patterns()
        if any(isinstance(c, IntConverter) for c in converters.values())
    ]
    assert not plain, f"use <id:...> or <id32:...> (annotate/integers.py): {plain}"


def test_the_edge_integers_in_the_pages_ids_answer_4xx(world, project, staff, client):
    client.force_login(staff)
    bounded = (*PATH_CONVERTERS.values(),)
    routes = [
        route
        for route, converters in app_patterns()
        if any(isinstance(c, bounded) for c in converters.values()) and not route.startswith("api/")
    ]
    assert len(routes) >= 5, routes
    wrong = []
    for route in routes:
        # The 32-bit edges too: a user's id and a version's number are 32-bit columns.
        for value in [*EDGES, 2**31 - 1, 2**31]:
            url = "/" + re.sub(r"<(\w+):(\w+)>", f"{value}", route.replace("<slug:slug>", "demo"))
            for method in (client.get, client.post):
                status = method(url).status_code
                if not 400 <= status < 500:
                    wrong.append(f"{method.__name__.upper()} {url} -> {status}")
    assert not wrong, "\n".join(wrong)


def test_the_loss_chart_run_out_of_range_is_400_naming_it(client, project, staff):
    run = TrainingRun.objects.create(project=project)
    client.force_login(staff)
    url = f"/projects/{project.slug}/training/loss-chart/"
    for value in EDGES:
        response = client.get(url, {"run": value})
        if value == 2**63 - 1:
            assert response.status_code == 404
        else:
            assert response.status_code == 400
            assert response.content.decode().startswith("run must be a whole number from 1 ")
    assert client.get(url, {"run": run.pk}).status_code == 200


def test_a_review_strength_out_of_range_is_refused_by_name(world, project, staff, client):
    pair = project.pairs.first()
    client.force_login(staff)
    url = f"/projects/{project.slug}/review/{pair.pk}/"
    for value in ["x", "0", "-1", str(2**63), str(10**40), "1" * 5000]:
        body = {"action": "resolve", "choice": "a", "strength": value}
        response = client.post(url, body, follow=True)
        shown = [str(m) for m in response.context["messages"]]
        assert shown == ["Strength must be a whole number from 1 to 32767."], value[:30]
    assert not Comparison.objects.filter(pair=pair).exists()
