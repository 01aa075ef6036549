"""Read models of the dashboard API: repository summaries and tag details.

Sizes are computed from the reference rows written by
``metadata.manifests.store_manifest``, never from the manifest bytes:

- A tag's size is what pulling it transfers: its manifest, every manifest
  an index reaches through ``manifest_children`` (recursively, so every
  platform of a multi-platform image counts), and the distinct config and
  layer blobs of all of them (a layer shared by two platforms counts once).
- A repository's ``total_size`` answers "how much does this repository hold
  that I can see": the same closure started from every tag, extended to the
  manifests that refer to reachable ones through ``subject`` (signatures,
  SBOMs attached to a tagged image), each distinct blob and manifest counted
  once. Untagged manifests nothing tagged reaches, and blobs linked but
  referenced by no such manifest (an unfinished push, leftovers of a deleted
  tag), are not counted: they are what the garbage collector is to remove.
- ``last_pushed`` is the latest tag move or manifest push; None when the
  repository has neither.

Each tag also carries what the web dashboard shows beside it: the media
type of its manifest, the platforms of an index (read from the index's
stored bytes, one at a time, since the platform lives only in the index's
descriptors) and the artifacts attached to it through ``subject``
(signatures, SBOMs) with their ``artifactType`` and annotations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.registry.manifest_schema import INDEX_TYPES
from services.registry.metadata.repositories import Repository
from services.registry.metadata.sql import Queryable, chunks, executor

__all__ = [
    "Artifact",
    "Platform",
    "RepositorySummary",
    "TagDetail",
    "index_platforms",
    "list_tag_details",
    "summarize_repositories",
]

# Every manifest reachable from a seed (a tag, or every tag of a repository),
# through the edges an image pull follows (an index's children) and, for a
# repository's total, also from a manifest to the manifests whose subject it
# is. Recursion on (seed, repo_id, digest) so one query serves every seed at
# once; UNION (not UNION ALL) keeps each row once. The placeholders take
# constant SQL from this module; every value is a bound parameter (`:ids` an
# expanding list).
_REACHABLE = """
    WITH RECURSIVE edges (repo_id, parent, child) AS ({edges}),
    reach (seed, repo_id, digest) AS (
        {seeds}
        UNION
        SELECT r.seed, r.repo_id, e.child FROM reach r
        JOIN edges e ON e.repo_id = r.repo_id AND e.parent = r.digest
    )
"""

_CHILD_EDGES = (
    "SELECT repo_id, parent_digest, child_digest FROM manifest_children WHERE repo_id IN :ids"
)
_REFERRER_EDGES = (
    _CHILD_EDGES + " UNION ALL SELECT repo_id, subject_digest, digest FROM manifests"  # noqa: S608
    " WHERE subject_digest IS NOT NULL AND repo_id IN :ids"
)

# Bytes per seed: each reachable manifest once and each distinct blob once.
# The UNION de-duplicates (seed, kind, digest) before summing; `kind` keeps a
# manifest and a blob that happen to share a digest apart.
_SIZES = """
    SELECT seed, SUM(size) AS size FROM (
        SELECT r.seed AS seed, 'm' AS kind, m.digest AS digest, m.size AS size
        FROM reach r JOIN manifests m ON m.repo_id = r.repo_id AND m.digest = r.digest
        UNION
        SELECT r.seed, 'b', b.digest, b.size FROM reach r
        JOIN manifest_blobs mb ON mb.repo_id = r.repo_id AND mb.manifest_digest = r.digest
        JOIN blobs b ON b.digest = mb.blob_digest
    ) parts GROUP BY seed
"""


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    repository: Repository
    tag_count: int
    total_size: int
    last_pushed: float | None


@dataclass(frozen=True, slots=True)
class Platform:
    """One entry of an index: the platform it is for and the manifest serving it."""

    os: str
    architecture: str
    variant: str | None
    digest: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """A manifest attached to a tagged one through its ``subject``."""

    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    annotations: Mapping[str, str]
    created_at: float


@dataclass(frozen=True, slots=True)
class TagDetail:
    name: str
    digest: str
    size: int
    pushed_at: float
    media_type: str = ""
    platforms: tuple[Platform, ...] = ()
    referrers: tuple[Artifact, ...] = ()


async def _sizes(q: Any, edges: str, seeds: str, values: dict[str, Any]) -> dict[str, int]:
    sql = _REACHABLE.format(edges=edges, seeds=seeds) + _SIZES
    return {str(row["seed"]): int(row["size"]) for row in await q.fetch_all(sql, values)}


async def summarize_repositories(
    db: Queryable, repositories: Sequence[Repository]
) -> list[RepositorySummary]:
    """Tag count, total size and last push of each repository, in the given order."""
    q = executor(db)
    counts: dict[str, tuple[int, float | None]] = {}
    pushed: dict[str, float] = {}
    sizes: dict[str, int] = {}
    for batch in chunks([r.id for r in repositories]):
        values: dict[str, Any] = {"ids": list(batch)}
        for row in await q.fetch_all(
            "SELECT repo_id, COUNT(*) AS n, MAX(updated_at) AS latest FROM tags"
            " WHERE repo_id IN :ids GROUP BY repo_id",
            values,
        ):
            counts[str(row["repo_id"])] = (int(row["n"]), float(row["latest"]))
        for row in await q.fetch_all(
            "SELECT repo_id, MAX(created_at) AS latest FROM manifests"
            " WHERE repo_id IN :ids GROUP BY repo_id",
            values,
        ):
            pushed[str(row["repo_id"])] = float(row["latest"])
        seeds = "SELECT repo_id, repo_id, manifest_digest FROM tags WHERE repo_id IN :ids"
        sizes.update(await _sizes(q, _REFERRER_EDGES, seeds, values))
    summaries = []
    for repository in repositories:
        tag_count, tag_latest = counts.get(repository.id, (0, None))
        times = [t for t in (tag_latest, pushed.get(repository.id)) if t is not None]
        summaries.append(
            RepositorySummary(
                repository=repository,
                tag_count=tag_count,
                total_size=sizes.get(repository.id, 0),
                last_pushed=max(times) if times else None,
            )
        )
    return summaries


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def index_platforms(payload: bytes) -> tuple[Platform, ...]:
    """The platforms an index's descriptors name, in the index's order.

    Entries without a platform, and the attestation manifests BuildKit lists
    as ``unknown/unknown``, are not platforms anyone pulls, so they are left
    out. The bytes were validated when pushed; anything odd is skipped, never
    an error.
    """
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ()
    entries = document.get("manifests") if isinstance(document, dict) else None
    found: list[Platform] = []
    for entry in entries if isinstance(entries, list) else []:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(platform, dict):
            continue
        os_name, arch = _text(platform.get("os")), _text(platform.get("architecture"))
        digest = _text(entry.get("digest"))
        if os_name is None or arch is None or digest is None or "unknown" in (os_name, arch):
            continue
        found.append(Platform(os_name, arch, _text(platform.get("variant")), digest))
    return tuple(found)


def _annotations(raw: object) -> Mapping[str, str]:
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        loaded = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): str(v) for k, v in loaded.items()}


async def _referrers_of_tags(q: Any, repo_id: str) -> dict[str, list[Artifact]]:
    """Subject digest → the artifacts attached to it, for every tagged manifest, oldest first."""
    found: dict[str, list[Artifact]] = {}
    rows = await q.fetch_all(
        "SELECT subject_digest, digest, media_type, artifact_type, size, annotations, created_at"
        " FROM manifests WHERE repo_id = :repo AND subject_digest IN"
        " (SELECT manifest_digest FROM tags WHERE repo_id = :repo)"
        " ORDER BY created_at, digest",
        {"repo": repo_id},
    )
    for r in rows:
        found.setdefault(str(r["subject_digest"]), []).append(
            Artifact(
                digest=str(r["digest"]),
                media_type=str(r["media_type"]),
                artifact_type=r["artifact_type"],
                size=int(r["size"]),
                annotations=_annotations(r["annotations"]),
                created_at=float(r["created_at"]),
            )
        )
    return found


async def _platforms_of(q: Any, repo_id: str, digests: set[str]) -> dict[str, tuple[Platform, ...]]:
    """Index digest → its platforms; one stored payload in memory at a time."""
    found: dict[str, tuple[Platform, ...]] = {}
    for digest in sorted(digests):
        payload = await q.fetch_val(
            "SELECT payload FROM manifests WHERE repo_id = :repo AND digest = :digest",
            {"repo": repo_id, "digest": digest},
        )
        if payload is not None:
            found[digest] = index_platforms(bytes(payload))
    return found


async def list_tag_details(db: Queryable, repo_id: str) -> list[TagDetail]:
    """Every tag of the repository with its digest, pull size, last move, media type,
    platforms and attached artifacts, by name."""
    q = executor(db)
    values: dict[str, Any] = {"repo": repo_id, "ids": [repo_id]}
    rows = await q.fetch_all(
        "SELECT t.name AS name, t.manifest_digest AS manifest_digest,"
        " t.updated_at AS updated_at, m.media_type AS media_type"
        " FROM tags t JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest"
        " WHERE t.repo_id = :repo ORDER BY t.name",
        values,
    )
    if not rows:
        return []
    seeds = "SELECT name, repo_id, manifest_digest FROM tags WHERE repo_id = :repo"
    sizes = await _sizes(q, _CHILD_EDGES, seeds, values)
    referrers = await _referrers_of_tags(q, repo_id)
    indexes = {str(r["manifest_digest"]) for r in rows if r["media_type"] in INDEX_TYPES}
    platforms = await _platforms_of(q, repo_id, indexes)
    return [
        TagDetail(
            name=str(r["name"]),
            digest=str(r["manifest_digest"]),
            size=sizes.get(str(r["name"]), 0),
            pushed_at=float(r["updated_at"]),
            media_type=str(r["media_type"]),
            platforms=platforms.get(str(r["manifest_digest"]), ()),
            referrers=tuple(referrers.get(str(r["manifest_digest"]), ())),
        )
        for r in rows
    ]
