"""A small in-memory stand-in for the AWX / Automation Controller REST API (v2).

Just enough of the API for the awx.awx modules that slm.edge.awx_config uses:
list with filters (``?name=...&organization=3``, ``or__id``/``or__name``),
create (POST), update (PATCH), survey specs, associations (credentials of a
job template, success/failure/always nodes of a workflow node) and the
``unified_job_templates`` view. Like the real controller it refuses a job
template whose playbook is not in the project, an inventory source whose file is
not there, and references to objects that do not exist, so a mistake in the
data or the role fails here as it would against AWX.

It is not AWX: no RBAC, no jobs, no project updates (the project is the
checkout given as ``project_root``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

API = "/api/v2/"
PRODUCT_VERSION = "24.6.1"

# field -> endpoint it references (checked on create/update)
REFERENCES = {
    "organization": "organizations",
    "project": "projects",
    "source_project": "projects",
    "inventory": "inventories",
    "credential": "credentials",
    "credential_type": "credential_types",
    "execution_environment": "execution_environments",
    "workflow_job_template": "workflow_job_templates",
    "unified_job_template": "unified_job_templates",
}
# sub-resource -> endpoint of the associated objects
ASSOCIATIONS = {
    "credentials": "credentials",
    "labels": "labels",
    "instance_groups": "instance_groups",
    "success_nodes": "workflow_job_template_nodes",
    "failure_nodes": "workflow_job_template_nodes",
    "always_nodes": "workflow_job_template_nodes",
    "notification_templates_started": "notification_templates",
    "notification_templates_success": "notification_templates",
    "notification_templates_error": "notification_templates",
    "notification_templates_approvals": "notification_templates",
    "galaxy_credentials": "credentials",
}
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources")
TYPES = {
    "organizations": "organization",
    "credential_types": "credential_type",
    "credentials": "credential",
    "execution_environments": "execution_environment",
    "projects": "project",
    "inventories": "inventory",
    "inventory_sources": "inventory_source",
    "job_templates": "job_template",
    "workflow_job_templates": "workflow_job_template",
    "workflow_job_template_nodes": "workflow_job_template_node",
}


class FakeController:
    """State of the fake API; ``start()`` serves it on 127.0.0.1."""

    def __init__(self, token: str, project_root: Path, missing_ok: frozenset[str] = frozenset()):
        self.token = token
        self.project_root = Path(project_root)
        self.missing_ok = missing_ok
        self.objects: dict[str, dict[int, dict]] = {}
        self.associations: dict[tuple[str, int, str], list[int]] = {}
        self.surveys: dict[tuple[str, int], dict] = {}
        self.writes: list[str] = []
        self.lock = threading.Lock()
        self._next = 1
        self._add("credential_types", {"name": "Amazon Web Services", "kind": "cloud", "managed": True})
        self.server: ThreadingHTTPServer | None = None

    # ---- state ---------------------------------------------------------
    def _add(self, endpoint: str, data: dict) -> dict:
        oid, self._next = self._next, self._next + 1
        url = f"{API}{endpoint}/{oid}/"
        obj = {
            "id": oid,
            "type": TYPES.get(endpoint, endpoint.rstrip("s")),
            "url": url,
            "related": {sub: f"{url}{sub}/" for sub in (*ASSOCIATIONS, "survey_spec")},
            "summary_fields": {},
        }
        if endpoint == "projects":
            obj["scm_revision"] = ""
        obj.update(data)
        self.objects.setdefault(endpoint, {})[oid] = obj
        return obj

    def named(self, endpoint: str, name: str) -> dict:
        """The one object of ``endpoint`` called ``name`` (for test assertions)."""
        found = [o for o in self.objects.get(endpoint, {}).values() if o.get("name") == name]
        assert len(found) == 1, f"{endpoint} named {name!r}: {len(found)} found"
        return found[0]

    def survey(self, endpoint: str, name: str) -> dict:
        return self.surveys.get((endpoint, self.named(endpoint, name)["id"]), {})

    def associated(self, endpoint: str, oid: int, sub: str) -> list[dict]:
        target = ASSOCIATIONS[sub]
        return [self.objects[target][i] for i in self.associations.get((endpoint, oid, sub), [])]

    def _list(self, endpoint: str) -> list[dict]:
        if endpoint == "unified_job_templates":
            return [o for ep in UNIFIED for o in self.objects.get(ep, {}).values()]
        return list(self.objects.get(endpoint, {}).values())

    def _exists(self, endpoint: str, oid: object) -> bool:
        return any(str(o["id"]) == str(oid) for o in self._list(endpoint))

    def _validate(self, endpoint: str, data: dict) -> dict:
        errors: dict[str, list[str]] = {}
        for field, target in REFERENCES.items():
            if data.get(field) not in (None, "") and not self._exists(target, data[field]):
                errors[field] = [f"{target} {data[field]} does not exist"]
        if endpoint == "job_templates" and "playbook" in data:
            playbook = data["playbook"]
            if not (self.project_root / playbook).is_file() and playbook not in self.missing_ok:
                errors["playbook"] = [f"Playbook not found for project: {playbook}"]
        if endpoint == "inventory_sources" and data.get("source") == "scm":
            if not (self.project_root / data.get("source_path", "")).is_file():
                errors["source_path"] = [f"{data.get('source_path')} is not a file of the project"]
        return errors

    # ---- HTTP ----------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, body: object) -> tuple[int, object]:
        if not path.startswith(API):
            return 404, {"detail": "Not found."}
        parts = [p for p in path[len(API) :].split("/") if p]
        with self.lock:
            if method != "GET":
                self.writes.append(f"{method} {path}")
            if len(parts) == 1:
                return self._collection(method, parts[0], query, body)
            endpoint, oid = parts[0], int(parts[1])
            obj = self.objects.get(endpoint, {}).get(oid)
            if obj is None:
                return 404, {"detail": "Not found."}
            if len(parts) == 2:
                return self._item(method, endpoint, obj, body)
            return self._sub(method, endpoint, obj, parts[2], body)

    def _collection(self, method, endpoint, query, body):
        if method == "GET":
            items = self._list(endpoint)
            ors = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
            ands = {k: v for k, v in query.items() if not k.startswith("or__") and k not in ("page", "page_size")}
            if ors:
                items = [o for o in items if any(str(o.get(k)) == v for k, v in ors.items())]
            items = [o for o in items if all(str(o.get(k)) == v for k, v in ands.items())]
            return 200, {"count": len(items), "next": None, "previous": None, "results": items}
        if method == "POST":
            errors = self._validate(endpoint, body)
            if not body.get("name") and endpoint != "workflow_job_template_nodes":
                errors["name"] = ["This field is required."]
            if errors:
                return 400, errors
            return 201, self._add(endpoint, body)
        return 405, {"detail": "Method not allowed."}

    def _item(self, method, endpoint, obj, body):
        if method == "GET":
            return 200, obj
        if method == "PATCH":
            errors = self._validate(endpoint, body)
            if errors:
                return 400, errors
            obj.update(body)
            return 200, obj
        if method == "DELETE":
            del self.objects[endpoint][obj["id"]]
            return 204, None
        return 405, {"detail": "Method not allowed."}

    def _sub(self, method, endpoint, obj, sub, body):
        key = (endpoint, obj["id"])
        if sub == "survey_spec":
            if method == "GET":
                return 200, self.surveys.get(key, {})
            if method == "POST":
                self.surveys[key] = body
                return 200, body
            if method == "DELETE":
                self.surveys.pop(key, None)
                return 200, {}
        if sub in ASSOCIATIONS:
            ids = self.associations.setdefault((endpoint, obj["id"], sub), [])
            if method == "GET":
                items = self.associated(endpoint, obj["id"], sub)
                return 200, {"count": len(items), "next": None, "previous": None, "results": items}
            if method == "POST":
                target = int(body["id"])
                if target not in self.objects.get(ASSOCIATIONS[sub], {}):
                    return 400, {"detail": f"{ASSOCIATIONS[sub]} {target} does not exist"}
                if body.get("disassociate"):
                    if target in ids:
                        ids.remove(target)
                elif target not in ids:
                    ids.append(target)
                return 204, None
        return 404, {"detail": "Not found."}

    def start(self) -> str:
        controller = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                if self.headers.get("Authorization") != f"Bearer {controller.token}":
                    self._reply(401, {"detail": "Authentication credentials were not provided."})
                    return
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                status, payload = controller.handle(self.command, url.path, query, body)
                self._reply(status, payload)

            def _reply(self, status, payload):
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("X-API-Product-Name", "AWX")
                self.send_header("X-API-Product-Version", PRODUCT_VERSION)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
