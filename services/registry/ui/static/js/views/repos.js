// The caller's repositories: tags, size (shared layers counted once), last push;
// a filter; an empty state with the docker commands for this registry.

import { command, h } from "../dom.js";
import { bytes, dateTime, relative } from "../format.js";

export function pushHelp(ctx, repository) {
  const host = ctx.config.registry_host;
  const user = ctx.session.username;
  const target = repository ? `${host}/${repository}` : `${host}/${user}/my-image`;
  return h(
    "div",
    { class: "stack" },
    command(`docker login ${host} -u ${user}`, "Copy docker login command"),
    command(`docker tag my-image:latest ${target}:latest`, "Copy docker tag command"),
    command(`docker push ${target}:latest`, "Copy docker push command"),
  );
}

function row(repo) {
  const name = String(repo.name);
  return h(
    "tr",
    { "data-name": name.toLowerCase() },
    h("th", { scope: "row", "data-label": "Repository" }, h("a", { href: `#/repos/${name}` }, name)),
    h("td", { "data-label": "Tags", class: "num" }, String(repo.tag_count)),
    h("td", { "data-label": "Size", class: "num", title: `${repo.total_size} bytes` }, bytes(repo.total_size)),
    h(
      "td",
      { "data-label": "Last push" },
      repo.last_pushed
        ? h("time", { datetime: repo.last_pushed, title: dateTime(repo.last_pushed) }, relative(repo.last_pushed))
        : "never",
    ),
  );
}

export async function reposView(ctx) {
  const { repositories } = await ctx.api.repositories();
  const heading = h("h1", {}, "Repositories");
  if (repositories.length === 0) {
    return h(
      "section",
      {},
      heading,
      h(
        "div",
        { class: "card empty stack" },
        h("h2", {}, "No repositories yet"),
        h("p", {}, `Push an image to ${ctx.config.registry_host}/${ctx.session.username}/… and it appears here.`),
        pushHelp(ctx),
        h(
          "p",
          { class: "muted" },
          "docker login asks for your password; for CI or Kubernetes create a service account instead.",
        ),
      ),
    );
  }
  const rows = repositories.map(row);
  const count = h("p", { class: "muted", role: "status" }, `${repositories.length} repositories`);
  const none = h("p", { class: "empty-filter", hidden: true });
  const filter = h("input", {
    id: "repo-filter",
    type: "search",
    autocomplete: "off",
    spellcheck: "false",
    oninput: () => {
      const query = filter.value.trim().toLowerCase();
      let shown = 0;
      for (const r of rows) {
        r.hidden = !r.dataset.name.includes(query);
        if (!r.hidden) shown += 1;
      }
      count.textContent = query ? `${shown} of ${repositories.length} repositories` : `${repositories.length} repositories`;
      none.hidden = shown !== 0;
      none.textContent = shown === 0 ? `No repository matches “${filter.value.trim()}”.` : "";
    },
  });
  return h(
    "section",
    {},
    h("div", { class: "page-head" }, heading),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "repo-filter" }, "Filter repositories"), filter),
      count,
    ),
    h(
      "table",
      { class: "listing" },
      h("caption", { class: "visually-hidden" }, "Your repositories"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Repository"),
          h("th", { scope: "col", class: "num" }, "Tags"),
          h("th", { scope: "col", class: "num" }, "Size"),
          h("th", { scope: "col" }, "Last push"),
        ),
      ),
      h("tbody", {}, rows),
    ),
    none,
    h("details", { class: "help" }, h("summary", {}, "Push another image"), pushHelp(ctx)),
  );
}
