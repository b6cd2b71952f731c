"""The controller objects in awx/ agree with the playbooks, inventories and role argument specs.

A survey that offers a value a role refuses, a job template naming a playbook
that is not there, or a workflow node naming a template that does not exist
only fails in AWX, at launch; here it fails in the unit tier.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
AWX = ROOT / "awx"

# Playbooks that job templates may name before they exist, each with the reason.
# Keep this list short and empty it as soon as the playbook lands.
PENDING_PLAYBOOKS: set[str] = set()

KINDS = (
    "controller_organizations",
    "controller_credential_types",
    "controller_credentials",
    "controller_execution_environments",
    "controller_projects",
    "controller_inventories",
    "controller_inventory_sources",
    "controller_templates",
    "controller_workflows",
)
# Survey question type -> argument spec type of the variable it sets.
SURVEY_TYPES = {
    "text": "str",
    "textarea": "str",
    "password": "str",
    "integer": "int",
    "float": "float",
    "multiplechoice": "str",
    "multiselect": "list",
}
# A multiplechoice answer is a string; the roles read these bool options with `| bool`
# (and check them in preflight), so "true"/"false" choices may set a bool.
BOOL_CHOICES = {"true", "false"}
# Survey choices must also pass the role's own preflight lists where the argument
# spec has no `choices` (the list is long and lives in the role's vars).
ROLE_VALUE_LISTS = {
    "model_quantizations": ("model", "__model_quant_types"),
    "model_serve_quantization": ("model", "__model_quant_types"),
}
BUILTIN_CREDENTIAL_TYPES = {"Amazon Web Services", "Source Control", "Machine", "Container Registry"}
TEMPLATE_RE = re.compile(r"{{\s*(.*?)\s*}}")


class Unsafe(str):
    """A string tagged !unsafe: Ansible never templates it (credential type injectors)."""


class Loader(yaml.SafeLoader):
    pass


Loader.add_constructor("!unsafe", lambda loader, node: Unsafe(loader.construct_scalar(node)))


def _load(path: Path):
    return yaml.load(path.read_text(), Loader=Loader)


def _specs() -> dict[str, dict[str, dict]]:
    """option name -> {role: option spec} over every role's argument specs."""
    found: dict[str, dict[str, dict]] = {}
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parents[1].name
        for entry in yaml.safe_load(spec_file.read_text())["argument_specs"].values():
            for name, opt in (entry.get("options") or {}).items():
                found.setdefault(name, {})[role] = opt
    return found


SPECS = _specs()
AWX_CONFIG_DEFAULTS = yaml.safe_load((ROOT / "roles/awx_config/defaults/main.yml").read_text())


def _render(value):
    """Resolve {{ awx_config_* }} with the role defaults, as awx_configure.yml does."""
    if isinstance(value, Unsafe):
        return value
    if isinstance(value, str):
        whole = re.fullmatch(r"{{\s*(\w+)\s*}}", value)
        if whole:
            return AWX_CONFIG_DEFAULTS[whole.group(1)]
        return TEMPLATE_RE.sub(lambda m: str(AWX_CONFIG_DEFAULTS[m.group(1)]), value)
    if isinstance(value, list):
        return [_render(v) for v in value]
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    return value


def _raw() -> dict:
    data: dict = {}
    for path in sorted(AWX.glob("*.yml")):
        content = _load(path) or {}
        for key, items in content.items():
            assert key not in data, f"{key} defined twice ({path.name})"
            data[key] = items
    return data


RAW = _raw()
DATA = _render(RAW)
TEMPLATES = {t["name"]: t for t in DATA.get("controller_templates", [])}
WORKFLOWS = {w["name"]: w for w in DATA.get("controller_workflows", [])}


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _questions():
    for kind, objects in (("job template", TEMPLATES), ("workflow", WORKFLOWS)):
        for name, obj in objects.items():
            for q in (obj.get("survey_spec") or {}).get("spec", []):
                yield pytest.param(q, id=f"{kind}:{name}:{q.get('variable')}")


def _role_list(role: str, var: str) -> list:
    for vars_file in sorted((ROOT / "roles" / role / "vars").glob("*.yml")):
        content = yaml.safe_load(vars_file.read_text()) or {}
        if var in content:
            return content[var]
    raise AssertionError(f"{var} not found in roles/{role}/vars")


# ---- the files themselves ---------------------------------------------------
def test_only_known_object_lists():
    assert set(RAW) <= set(KINDS), set(RAW) - set(KINDS)
    for kind in ("controller_projects", "controller_inventory_sources", "controller_templates", "controller_workflows"):
        assert RAW.get(kind), f"{kind} is empty"


def test_templated_values_are_awx_config_variables():
    """Only plain {{ awx_config_* }} references, each a documented option of slm.edge.awx_config."""
    options = yaml.safe_load((ROOT / "roles/awx_config/meta/argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]
    for text in _strings(RAW):
        if isinstance(text, Unsafe):
            continue
        for expr in TEMPLATE_RE.findall(text):
            assert re.fullmatch(r"awx_config_\w+", expr), f"{text!r}: only {{{{ awx_config_* }}}} in awx/"
            assert expr in options, f"{expr} is not an option of slm.edge.awx_config"


def test_no_secret_values_in_the_repository():
    for cred in DATA.get("controller_credentials", []):
        assert "inputs" not in cred, f"{cred['name']}: secrets come from the environment (inputs_from_env)"
        for field, env in cred["inputs_from_env"].items():
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*", env), f"{cred['name']}.{field}: {env!r} is not a variable name"
        assert set(cred.get("required_inputs", [])) <= set(cred["inputs_from_env"])
        assert isinstance(cred.get("required"), bool)


def test_hugging_face_credential_type_injects_the_token():
    (hf,) = [t for t in DATA["controller_credential_types"] if t["name"] == "Hugging Face token"]
    fields = {f["id"]: f for f in hf["inputs"]["fields"]}
    assert fields["hf_token"]["secret"] is True
    assert hf["injectors"]["env"] == {"HF_TOKEN": "{{ hf_token }}"}
    assert hf["injectors"]["extra_vars"] == {"model_hf_token": "{{ hf_token }}"}
    # injector templates are the controller's: Ansible must not render them
    assert all(isinstance(v, Unsafe) for v in _strings(RAW["controller_credential_types"][0]["injectors"]))
    assert "model_hf_token" in SPECS and "model" in SPECS["model_hf_token"]


def test_credentials_use_known_types():
    defined = {t["name"] for t in DATA.get("controller_credential_types", [])}
    for cred in DATA["controller_credentials"]:
        assert cred["credential_type"] in defined | BUILTIN_CREDENTIAL_TYPES, cred["name"]
    aws = [c for c in DATA["controller_credentials"] if c["credential_type"] == "Amazon Web Services"]
    assert aws and aws[0]["required"] is True


# ---- job templates ----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_job_template_playbook_exists(name):
    playbook = TEMPLATES[name]["playbook"]
    if playbook in PENDING_PLAYBOOKS:
        pytest.skip(f"{playbook} is pending (PENDING_PLAYBOOKS)")
    assert (ROOT / playbook).is_file(), f"{name}: {playbook} does not exist"
    assert yaml.safe_load((ROOT / playbook).read_text()), playbook


def test_pending_playbooks_are_still_pending():
    """A playbook that landed must leave PENDING_PLAYBOOKS, so it is checked again."""
    landed = sorted(p for p in PENDING_PLAYBOOKS if (ROOT / p).is_file())
    assert not landed, f"remove {landed} from PENDING_PLAYBOOKS"


def test_every_playbook_has_a_template():
    named = {t["playbook"] for t in TEMPLATES.values()}
    for playbook in ("provision", "site", "smoke", "benchmark", "cleanup"):
        assert f"playbooks/{playbook}.yml" in named, playbook


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_job_template_references_exist(name):
    jt = TEMPLATES[name]
    projects = {p["name"] for p in DATA["controller_projects"]}
    inventories = {i["name"] for i in DATA["controller_inventories"]}
    ees = {e["name"] for e in DATA.get("controller_execution_environments", [])}
    credentials = {c["name"] for c in DATA.get("controller_credentials", [])}
    assert jt["project"] in projects
    assert jt["inventory"] in inventories
    assert jt.get("execution_environment", next(iter(ees))) in ees
    assert set(jt.get("credentials", [])) <= credentials
    assert set(jt.get("optional_credentials", [])) <= credentials
    required = {c["name"] for c in DATA["controller_credentials"] if c["required"]}
    assert set(jt.get("credentials", [])) <= required, "a template may only require required credentials"


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_job_template_extra_vars_are_known(name):
    """extra_vars are role options or shared variables the roles read (aws_region, slm_cluster)."""
    defaults_text = "\n".join(p.read_text() for p in ROOT.glob("roles/*/defaults/main.yml"))
    for var in TEMPLATES[name].get("extra_vars") or {}:
        assert var in SPECS or re.search(r"{{\s*" + re.escape(var) + r"\b", defaults_text), (
            f"{name}: extra var {var} is neither a role option nor read by a role default"
        )


def test_unified_job_template_names_are_unique():
    """Workflow nodes find templates by name among projects, inventory sources, templates and workflows."""
    names = [
        o["name"]
        for kind in (
            "controller_projects",
            "controller_inventory_sources",
            "controller_templates",
            "controller_workflows",
        )
        for o in DATA.get(kind, [])
    ]
    assert len(names) == len(set(names)), names


# ---- surveys ----------------------------------------------------------------
@pytest.mark.parametrize("q", list(_questions()))
def test_survey_question_matches_the_role_spec(q):
    for key in ("question_name", "variable", "type", "required"):
        assert key in q, f"survey question without {key}"
    assert isinstance(q["required"], bool)
    qtype, var = q["type"], q["variable"]
    assert qtype in SURVEY_TYPES, qtype
    assert var in SPECS, f"survey variable {var} is not in any role's meta/argument_specs.yml"
    problems = []
    for role, opt in SPECS[var].items():
        why = _incompatible(q, opt, var)
        if not why:
            return
        problems.append(f"{role}: {why}")
    pytest.fail(f"{var}: " + "; ".join(problems))


def _incompatible(q: dict, opt: dict, var: str) -> str | None:
    qtype, spec_type = q["type"], opt.get("type", "str")
    choices = q.get("choices")
    if isinstance(choices, str):
        choices = [c for c in choices.splitlines() if c]
    allowed = opt.get("choices")
    if var in ROLE_VALUE_LISTS:
        role_list = _role_list(*ROLE_VALUE_LISTS[var])
        allowed = role_list if allowed is None else [c for c in allowed if c in role_list]
    expected = SURVEY_TYPES[qtype]
    if spec_type == "bool" and qtype == "multiplechoice" and choices and set(choices) <= BOOL_CHOICES:
        allowed = sorted(BOOL_CHOICES)
    elif spec_type not in (expected, "raw"):
        # raw (auto or a number, say) takes whatever the survey gives; the role's own checks read it.
        return f"survey type {qtype} gives {expected}, the spec wants {spec_type}"
    if qtype in ("multiplechoice", "multiselect"):
        if not choices:
            return f"{qtype} without choices"
        if len(set(choices)) != len(choices):
            return "duplicate choices"
        if allowed is not None and not set(choices) <= {str(c) for c in allowed}:
            return f"choices {sorted(set(choices) - {str(c) for c in allowed})} are not allowed by the role"
        if qtype == "multiselect" and opt.get("elements", "str") != "str":
            return f"multiselect gives a list of str, the spec wants elements {opt.get('elements')}"
    if "default" not in q or q["default"] in ("", None):
        if qtype in ("integer", "float", "multiplechoice") and q["required"] and "default" not in q:
            return "a required question needs a default"
        return None
    default = q["default"]
    if qtype in ("text", "textarea", "password"):
        if not isinstance(default, str):
            return f"default {default!r} is not a string"
        if not q.get("min", 0) <= len(default) <= q.get("max", 1024):
            return f"default {default!r} is outside min/max length"
    elif qtype == "integer":
        if not isinstance(default, int) or isinstance(default, bool):
            return f"default {default!r} is not an integer"
        if not q.get("min", default) <= default <= q.get("max", default):
            return f"default {default} is outside {q.get('min')}..{q.get('max')}"
    elif qtype == "float":
        if not isinstance(default, int | float) or isinstance(default, bool):
            return f"default {default!r} is not a number"
    elif qtype == "multiplechoice":
        if default not in choices:
            return f"default {default!r} is not one of the choices"
    elif qtype == "multiselect":
        values = default.splitlines() if isinstance(default, str) else default
        if not set(values) <= set(choices):
            return f"default {values!r} is not a subset of the choices"
    return None


@pytest.mark.parametrize("name", sorted({**TEMPLATES, **WORKFLOWS}))
def test_survey_variables_are_unique(name):
    obj = {**TEMPLATES, **WORKFLOWS}[name]
    variables = [q["variable"] for q in (obj.get("survey_spec") or {}).get("spec", [])]
    assert len(variables) == len(set(variables)), variables
    assert bool(variables) == bool(obj.get("survey_enabled")), "survey_enabled and survey_spec disagree"


def test_survey_offers_what_users_change_most():
    asked = {q.values[0]["variable"] for q in _questions()}
    for var in (
        "model_source",
        "model_hf_repo",
        "model_hf_revision",
        "model_quantizations",
        "model_serve_quantization",
        "llama_server_ctx_size",
        "llama_server_replica_mode",
        "ec2_provision_instance_type",
        "ec2_provision_count",
        "ec2_provision_cluster_name",
        "ec2_cleanup_cluster_name",
    ):
        assert var in asked, var


# ---- inventory source -------------------------------------------------------
@pytest.mark.parametrize("source", DATA["controller_inventory_sources"], ids=lambda s: s["name"])
def test_inventory_source_file_exists_and_reads_the_given_variables(source):
    assert source["source"] == "scm"
    assert source["source_project"] in {p["name"] for p in DATA["controller_projects"]}
    assert source["inventory"] in {i["name"] for i in DATA["controller_inventories"]}
    path = ROOT / source["source_path"]
    assert path.is_file(), source["source_path"]
    text = path.read_text()
    config = yaml.safe_load(text)
    assert config["plugin"] == "amazon.aws.aws_ec2"
    # the same cluster filter as the file: its tag filter is fed by SLM_CLUSTER
    assert "tag:slm:cluster" in config["filters"]
    assert "SLM_CLUSTER" in config["filters"]["tag:slm:cluster"]
    assert "instance-state-name" in config["filters"]
    # site.yml and smoke.yml default to hosts: llm_servers
    assert "llm_servers" in config["groups"]
    # the controller passes source_vars of a project source as environment variables
    read = set(re.findall(r"lookup\('ansible.builtin.env',\s*'(\w+)'\)", text))
    assert set(source.get("source_vars", {})) <= read, f"{path.name} reads {read}"
    assert {"SLM_CLUSTER", "AWS_REGION"} <= set(source["source_vars"])


# ---- workflows --------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_nodes_reference_existing_templates(name):
    nodes = {n["identifier"]: n for n in WORKFLOWS[name]["workflow_nodes"]}
    assert len(nodes) == len(WORKFLOWS[name]["workflow_nodes"]), "duplicate identifiers"
    for node in nodes.values():
        assert node["unified_job_template"] in TEMPLATES, node["unified_job_template"]
        for link in ("success_nodes", "failure_nodes", "always_nodes"):
            for target in node.get(link, []):
                assert target in nodes, f"{node['identifier']}.{link} -> {target}"


def test_deploy_workflow_is_provision_site_smoke():
    (wf,) = WORKFLOWS.values()
    nodes = {n["identifier"]: n for n in wf["workflow_nodes"]}
    linked = {t for n in nodes.values() for t in n.get("success_nodes", [])}
    (root,) = set(nodes) - linked
    chain, node = [], nodes[root]
    while node:
        chain.append(TEMPLATES[node["unified_job_template"]]["playbook"])
        node = nodes[node["success_nodes"][0]] if node.get("success_nodes") else None
        assert len(chain) <= len(nodes), "cycle"
    assert chain == ["playbooks/provision.yml", "playbooks/site.yml", "playbooks/smoke.yml"]


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_answers_every_required_question_of_its_templates(name):
    """A node whose template has a required question without default cannot start in a workflow."""
    wf = WORKFLOWS[name]
    wf_questions = {q["variable"]: q for q in wf["survey_spec"]["spec"]}
    for node in wf["workflow_nodes"]:
        jt = TEMPLATES[node["unified_job_template"]]
        for q in (jt.get("survey_spec") or {}).get("spec", []):
            if q.get("variable") in wf_questions:
                assert wf_questions[q["variable"]] == q, f"{q['variable']}: workflow and template questions differ"
            elif q["required"]:
                assert q.get("default") not in (None, ""), f"{jt['name']}: {q['variable']} has no answer in {name}"
