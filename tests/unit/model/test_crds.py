"""The committed CRDs are generated from the models, structural, and valid CRD objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel, Field

from milkyway.model.crd_schema import CrdInfo, CrdSchemaError, build_crd, structural_problems
from milkyway.model.crds import CRD_MODELS, all_crds, crd_files, main
from milkyway.sim.apiserver.crd_validation import validate_crd

ROOT = Path(__file__).resolve().parents[3]
CRD_DIR = ROOT / "deploy" / "crds"


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_deploy_crds_are_up_to_date() -> None:
    expected = crd_files()
    present = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
    assert present == sorted(expected), (
        "regenerate: python -m milkyway.model.crds --write deploy/crds"
    )
    for name, text in expected.items():
        assert (CRD_DIR / name).read_text() == text, (
            f"{name} is stale; regenerate: python -m milkyway.model.crds --write deploy/crds"
        )
    assert main(["--check", str(CRD_DIR)]) == 0


def test_check_reports_a_stale_directory(tmp_path: Path) -> None:
    main(["--write", str(tmp_path)])
    assert main(["--check", str(tmp_path)]) == 0
    first = sorted(tmp_path.glob("*.yaml"))[0]
    first.write_text(first.read_text() + "# edited\n")
    assert main(["--check", str(tmp_path)]) == 1


def test_registry_lists_application_cluster_componenttype() -> None:
    kinds = {crd["spec"]["names"]["kind"]: crd for crd in all_crds()}
    assert {"Application", "Cluster", "ComponentType"} <= set(kinds)
    assert kinds["Application"]["spec"]["scope"] == "Namespaced"
    assert kinds["Cluster"]["spec"]["scope"] == "Cluster"
    assert kinds["ComponentType"]["spec"]["scope"] == "Cluster"
    assert len(CRD_MODELS) == len(kinds)


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_is_structural_and_a_valid_kubernetes_object(crd: dict[str, Any]) -> None:
    assert structural_problems(_schema(crd)) == []
    assert kubernetes_validate.validate(crd, "1.32", strict=True) == "1.32"
    version = crd["spec"]["versions"][0]
    has_status = "status" in _schema(crd)["properties"]
    assert version.get("subresources") == ({"status": {}} if has_status else None)
    assert version["additionalPrinterColumns"][-1]["name"] == "Age"
    if crd["spec"]["names"]["kind"] in ("Application", "Cluster", "ComponentType"):
        assert crd["spec"]["names"]["shortNames"]
    assert crd["spec"]["names"]["categories"] == ["milkyway"]


def test_application_schema_accepts_the_talks_example_and_rejects_bad_size() -> None:
    schema = _schema(next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Application"))
    example = yaml.safe_load((ROOT / "examples" / "stream1.yaml").read_text())
    jsonschema.validate(example, _as_json_schema(schema))
    example["spec"]["components"][0]["regions"][0]["zones"][0]["size"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(example, _as_json_schema(schema))


@pytest.mark.parametrize("crd", all_crds()[:3], ids=lambda c: c["metadata"]["name"])
def test_the_simulated_api_server_would_serve_the_crd(crd: dict[str, Any]) -> None:
    assert validate_crd(crd) == []


def test_defaults_and_nullable_are_carried_over() -> None:
    schema = _schema(next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Application"))
    component = schema["properties"]["spec"]["properties"]["components"]["items"]
    assert component["properties"]["config"]["default"] == "default"
    assert component["properties"]["type"]["nullable"] is True
    assert component["required"] == ["name", "version", "regions"]
    quantity = component["properties"]["resources"]["properties"]["cpu"]
    assert quantity["x-kubernetes-int-or-string"] is True


class _UnionSpec(BaseModel):
    value: int | list[str]


class _UnionResource(BaseModel):
    crd: ClassVar[CrdInfo] = CrdInfo(plural="unions")
    kind: str = "Union"
    spec: _UnionSpec = Field(default_factory=lambda: _UnionSpec(value=1))


def test_non_structural_union_is_refused() -> None:
    with pytest.raises(CrdSchemaError, match=r"spec\.value"):
        build_crd(_UnionResource)


def test_structural_checker_finds_untyped_fields() -> None:
    assert structural_problems({"type": "object", "properties": {"x": {}}}) == [".x: no type"]
    problems = structural_problems({"type": "object", "additionalProperties": False})
    assert problems == [": additionalProperties: false"]


def _as_json_schema(node: Any) -> Any:
    """OpenAPI v3.0 to JSON schema: ``nullable`` becomes a null type, int-or-string an anyOf."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if node.get("nullable"):
        out.pop("nullable")
        return {"anyOf": [out, {"type": "null"}]}
    return out
