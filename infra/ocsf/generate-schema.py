#!/usr/bin/env python3
"""Writes the JSON Schema the tests validate the broker's OCSF events against.

Generated once from a pinned OCSF release and committed as test data, so the tests need no
network and validate against OCSF's own definitions, never a copy of the broker's output:

    # OCSF 1.8.0: github.com/ocsf/ocsf-schema at 3dcb905d ("v1.8.0 prep (#1592)")
    git -C ocsf-schema archive 3dcb905d | tar -x -C schema-1.8.0
    pip install ocsf-lib==0.10.4
    python -m ocsf.compile schema-1.8.0 --ignore-extension windows linux macos > compiled.json
    python infra/ocsf/generate-schema.py compiled.json schema-1.8.0 \
        > shared/core/tests/data/ocsf-1.8.0.schema.json

`ocsf.compile` resolves the repository (inheritance, profiles, the dictionary) into one
document; this turns the classes the broker emits, and every object they reach, into JSON
Schema (draft 2020-12): each class and object closed (`additionalProperties: false`, except
OCSF's open `object`), its required attributes required, `_id` enums as the listed values,
types by their base type with the type's pattern, length and range, and OCSF's
`at_least_one` / `just_one` constraints, read from the repository's own files (ocsf-lib 0.10.4
gives every object extending `_entity` that base's constraint, `name` or `uid`, in place of
its own, such as `network_endpoint`'s `ip`, `hostname`, ...); of the attributes profiles add, only those of the
profiles the broker declares (`cloud`, `datetime`).
"""

import json
import os
import sys

CLASSES = ["user_access", "authorize_session", "api_activity"]

# The profiles the broker's events may declare (`metadata.profiles`); an attribute another
# profile adds is left out, as it is from an event that does not declare that profile.
PROFILES = {"cloud", "datetime"}

BASE = {
    "string_t": {"type": "string"},
    "integer_t": {"type": "integer"},
    "long_t": {"type": "integer"},
    "float_t": {"type": "number"},
    "boolean_t": {"type": "boolean"},
    "json_t": {},
}


def type_schema(types, name):
    """The JSON Schema of OCSF scalar type `name`, down its chain of base types."""
    schema = {}
    while name not in BASE:
        t = types[name]
        if t.get("regex"):
            schema.setdefault("pattern", t["regex"])
        if t.get("max_len"):
            schema.setdefault("maxLength", t["max_len"])
        if t.get("range"):
            schema.setdefault("minimum", t["range"][0])
            schema.setdefault("maximum", t["range"][1])
        name = t["type"]
    return {**BASE[name], **schema}


def constraints(c):
    out = {}
    if not c:
        return out
    if c.get("at_least_one"):
        out["anyOf"] = [{"required": [a]} for a in c["at_least_one"] if "." not in a]
    if c.get("just_one"):
        out["oneOf"] = [{"required": [a]} for a in c["just_one"]]
    return out


def attribute_schema(schema, attr, reached):
    kind = attr["type"]
    if kind == "object":
        one = {"type": "object"}
    elif kind in schema["types"]:
        one = type_schema(schema["types"], kind)
        if attr.get("enum") and attr.get("sibling"):
            cast = int if one.get("type") == "integer" else str
            one["enum"] = sorted(cast(k) for k in attr["enum"])
    else:
        reached.append(kind)
        one = {"$ref": f"#/$defs/{kind}"}
    if attr.get("is_array"):
        return {"type": "array", "items": one}
    return one


def raw_definitions(repo, folder):
    """Every object (`objects`) or event class (`events`) of the repository as written, by
    name: the two are apart, since a class may extend a category named like an object."""
    found = {}
    for root, _, files in os.walk(os.path.join(repo, folder)):
        for file in files:
            if file.endswith(".json"):
                with open(os.path.join(root, file)) as f:
                    raw = json.load(f)
                if "name" in raw:
                    found.setdefault(raw["name"], raw)
    return found


def own_constraints(raw, name):
    """The constraints `name` declares, or the nearest it inherits."""
    while name in raw:
        if raw[name].get("constraints"):
            return raw[name]["constraints"]
        name = raw[name].get("extends")
    return None


def definition(schema, entity, reached, raw):
    attributes = {
        name: attr
        for name, attr in entity["attributes"].items()
        if attr.get("profile") in (None, *PROFILES)
    }
    return {
        "type": "object",
        "title": entity["caption"],
        "properties": {
            name: attribute_schema(schema, attr, reached) for name, attr in sorted(attributes.items())
        },
        "required": sorted(n for n, a in attributes.items() if a.get("requirement") == "required"),
        "additionalProperties": False,
        **constraints(own_constraints(raw, entity["name"])),
    }


def main(path, repo):
    with open(path) as f:
        schema = json.load(f)
    classes = raw_definitions(repo, "events")
    objects = raw_definitions(repo, "objects")
    defs = {}
    reached = []
    for name in CLASSES:
        cls = schema["classes"][name]
        defs[f"class_{cls['uid']}"] = definition(schema, cls, reached, classes)
    while reached:
        name = reached.pop()
        if name not in defs:
            defs[name] = definition(schema, schema["objects"][name], reached, objects)
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"OCSF {schema['version']} classes {', '.join(CLASSES)}: infra/ocsf/generate-schema.py",
        "$defs": dict(sorted(defs.items())),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
