import math
from pathlib import Path

import pytest

from cml_action.errors import UserError
from cml_action.metrics import flatten, load_values, numeric, rows_for


def test_flatten_nests_with_dots_and_indexes_lists_of_mappings():
    data = {"eval": {"f1": 0.5, "per_class": [{"p": 1}, {"p": 0.25}]}, "tags": ["a", "b"], "n": 3, "ok": True}
    flat = flatten(data)
    assert flat["eval.f1"] == 0.5
    assert flat["eval.per_class.1.p"] == 0.25
    assert flat["tags"] == '["a", "b"]'
    assert flat["n"] == 3.0 and isinstance(flat["n"], float)
    assert flat["ok"] is True


@pytest.mark.parametrize(
    "name,text,key,value",
    [
        ("m.json", '{"a": {"b": 2}}', "a.b", 2.0),
        ("m.yaml", "a:\n  b: 0.75\n", "a.b", 0.75),
        ("m.toml", "[a]\nb = 1.5\n", "a.b", 1.5),
        ("m.csv", "epoch,loss\n1,0.9\n2,0.4\n", "loss", 0.4),
        ("m.tsv", "epoch\tloss\n1\t0.9\n2\t0.3\n", "loss", 0.3),
        ("m.csv", "metric,value\naccuracy,0.91\nf1,0.88\n", "f1", 0.88),
    ],
)
def test_formats(name, text, key, value):
    assert load_values(text, name)[key] == value


def test_malformed_json_names_file_line_and_column():
    with pytest.raises(UserError) as err:
        load_values('{\n  "a": 1,\n  "b": }', "metrics.json")
    message = str(err.value)
    assert message.startswith("metrics.json: invalid JSON at line 3 column")
    assert "\n" not in message


def test_malformed_yaml_and_missing_file(tmp_path: Path):
    with pytest.raises(UserError, match=r"params.yaml: invalid YAML at line 2"):
        load_values("a: 1\n b: [", "params.yaml")
    with pytest.raises(UserError, match="nope.json: file not found"):
        load_values(tmp_path / "nope.json", "nope.json")


def test_rows_join_head_and_baseline_including_removed_keys():
    rows = rows_for(["m.json"], {"m.json": {"acc": 0.9, "new": 1.0}}, {"m.json": {"acc": 0.8, "old": 2.0}})
    assert [(r.key, r.head, r.base) for r in rows] == [("acc", 0.9, 0.8), ("new", 1.0, None), ("old", None, 2.0)]


def test_numeric_handles_nan_and_non_numbers():
    assert math.isnan(numeric(float("nan")))
    assert numeric("0.5") == 0.5
    assert numeric("abc") is None and numeric(True) is None and numeric(None) is None


def test_hostile_files_are_one_line_user_errors_and_ordinary_aliases_still_work():
    import pytest as _pytest

    from cml_action.errors import UserError
    from cml_action.metrics import load_values as load

    assert load("base: &b {lr: 0.1}\nrun: *b\n", "p.yaml") == {"base.lr": 0.1, "run.lr": 0.1}
    laughs = "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(6))
    cases = {("x.yaml", laughs): "YAML aliases expand to more than 50,000 values",
             ("n.json", '{"n": 1' + "0" * 400 + "}"): "a 401-digit integer is beyond any float",
             ("d.json", "[" * 3000 + "]" * 3000): "nested deeper than 64 levels",
             ("q.csv", 'a,b\n1,"2\n'): "cannot parse: unexpected end of data",
             ("w.json", "{" + ",".join(f'"k{i}": {i}' for i in range(50_001)) + "}"): "50,001 values is beyond the limit"}
    for (name, text), expected in cases.items():
        with _pytest.raises(UserError, match=expected):
            load(text, name)
