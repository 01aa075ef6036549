// One repository: its tags with digest, size, pushed time, platforms of an
// index, attached artifacts (referrers) with their artifactType; pull commands
// to copy; deleting a tag after a confirmation that names it.

import { ApiError } from "../api.js";
import { confirmAction } from "../dialog.js";
import { command, copyButton, h, uid } from "../dom.js";
import { bytes, dateTime, platform, relative, shortDigest, toMillis } from "../format.js";

const INDEX_TYPES = new Set([
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
]);
const TITLE = "org.opencontainers.image.title";

function time(value) {
  if (!value) return "—";
  return h("time", { datetime: value, title: dateTime(value) }, relative(value));
}

function digestLine(digest, label) {
  return h(
    "span",
    { class: "digest" },
    h("code", { title: digest }, shortDigest(digest)),
    copyButton(label, digest, "Copy digest"),
  );
}

function definition(term, ...details) {
  return [h("dt", {}, term), h("dd", {}, ...details)];
}

function kind(tag) {
  if (INDEX_TYPES.has(tag.media_type)) return "Multi-platform index";
  if (tag.media_type) return "Image";
  return "—";
}

function artifact(item, tagName) {
  const annotations = Object.entries(item.annotations || {});
  const title = item.annotations ? item.annotations[TITLE] : null;
  return h(
    "li",
    { class: "artifact" },
    h("span", { class: "artifact-type" }, String(item.artifact_type || item.media_type)),
    title ? h("span", { class: "artifact-title" }, String(title)) : null,
    h(
      "span",
      { class: "muted artifact-meta" },
      digestLine(item.digest, `Copy digest of an artifact attached to ${tagName}`),
      ` · ${bytes(item.size)} · `,
      time(item.created_at),
    ),
    annotations.length
      ? h(
          "details",
          {},
          h("summary", {}, `Annotations (${annotations.length})`),
          h("dl", { class: "annotations" }, annotations.map(([k, v]) => definition(String(k), String(v)))),
        )
      : null,
  );
}

function tagCard(ctx, repository, tag, onDelete) {
  const host = ctx.config.registry_host;
  const headingId = uid("tag");
  const platforms = tag.platforms || [];
  const referrers = tag.referrers || [];
  return h(
    "li",
    { class: "card tag", "aria-labelledby": headingId },
    h(
      "div",
      { class: "tag-head" },
      h("h2", { id: headingId }, h("span", { class: "visually-hidden" }, "Tag "), String(tag.name)),
      h(
        "button",
        { type: "button", class: "danger quiet", "aria-label": `Delete tag ${tag.name}`, onclick: () => onDelete(tag) },
        "Delete",
      ),
    ),
    h(
      "dl",
      { class: "facts" },
      definition("Digest", digestLine(tag.digest, `Copy digest of ${tag.name}`)),
      definition("Size", h("span", { title: `${tag.size} bytes` }, bytes(tag.size))),
      definition("Pushed", time(tag.pushed_at)),
      definition("Type", kind(tag)),
      platforms.length
        ? definition(
            "Platforms",
            h("ul", { class: "chips", "aria-label": `Platforms of ${tag.name}` }, platforms.map((p) => h("li", { title: p.digest }, platform(p)))),
          )
        : null,
    ),
    h(
      "div",
      { class: "stack pull" },
      command(`docker pull ${host}/${repository}:${tag.name}`, `Copy pull command for ${tag.name}`),
      command(`docker pull ${host}/${repository}@${tag.digest}`, `Copy pull-by-digest command for ${tag.name}`),
    ),
    referrers.length
      ? h(
          "section",
          { class: "artifacts", "aria-label": `Artifacts attached to ${tag.name}` },
          h("h3", {}, `Attached artifacts (${referrers.length})`),
          h("ul", {}, referrers.map((item) => artifact(item, tag.name))),
        )
      : null,
  );
}

function notFound(name, message) {
  return h(
    "section",
    {},
    h("p", { class: "crumbs" }, h("a", { href: "#/repos" }, "Repositories")),
    h("h1", {}, "Repository not found"),
    h("p", { role: "alert" }, message || `You have no repository named ${name}.`),
  );
}

export async function repoView(ctx, name) {
  let repo;
  let tags;
  try {
    [repo, tags] = await Promise.all([ctx.api.repository(name), ctx.api.tags(name)]);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      return notFound(name, error.status === 400 ? error.message : null);
    }
    throw error;
  }

  async function onDelete(tag) {
    const confirmed = await confirmAction({
      title: `Delete tag ${tag.name}?`,
      message:
        `The tag ${tag.name} of ${repo.name} is removed now. The image stays reachable by ` +
        `digest until garbage collection removes it, unless another tag points to it.`,
      confirmLabel: `Delete tag ${tag.name}`,
    });
    if (!confirmed) return;
    const deleted = await ctx.act(async () => {
      await ctx.api.deleteTag(repo.name, tag.name);
      return true;
    }, `Could not delete tag ${tag.name}`);
    if (deleted) ctx.notify(`Deleted tag ${tag.name} of ${repo.name}.`, "success");
    ctx.refresh();
  }

  // Newest first: what was pushed last is what a person usually looks for.
  const ordered = [...tags.tags].sort(
    (a, b) => (toMillis(b.pushed_at) ?? 0) - (toMillis(a.pushed_at) ?? 0) || String(a.name).localeCompare(String(b.name)),
  );
  const list = ordered.length
    ? h("ul", { class: "tags" }, ordered.map((tag) => tagCard(ctx, repo.name, tag, onDelete)))
    : h("p", { class: "card empty" }, "This repository has no tags.");
  return h(
    "section",
    {},
    h("p", { class: "crumbs" }, h("a", { href: "#/repos" }, "Repositories"), " / "),
    h("h1", { class: "repo-name" }, String(repo.name)),
    h(
      "dl",
      { class: "summary" },
      definition("Tags", String(repo.tag_count)),
      definition("Size", h("span", { title: `${repo.total_size} bytes` }, bytes(repo.total_size))),
      definition("Last push", time(repo.last_pushed)),
    ),
    list,
  );
}
