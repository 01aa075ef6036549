// Building the page from data without ever parsing HTML: every value from an
// API becomes a text node or an attribute value, never markup. (The page's
// Content-Security-Policy also requires Trusted Types with no policy, so an
// assignment of HTML to an element would throw.)

const FORBIDDEN_ATTRIBUTES = new Set(["style", "srcdoc"]);

/** An element with attributes, listeners (functions only) and children. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name} must be a function`);
      element.addEventListener(name.slice(2), value);
    } else if (FORBIDDEN_ATTRIBUTES.has(name)) {
      throw new TypeError(`attribute ${name} is not allowed`);
    } else if (name === "class") {
      element.className = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Append children: nodes as they are, anything else as text. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

export function replaceChildren(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let counter = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** Copy `text` to the clipboard; true when it worked. */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the selection fallback
    }
  }
  const area = h("textarea", { readonly: true, class: "offscreen", "aria-hidden": "true" });
  area.value = text;
  document.body.append(area);
  area.select();
  let done = false;
  try {
    done = document.execCommand("copy");
  } catch {
    done = false;
  }
  area.remove();
  return done;
}

/** A button that copies `text()` and says so, named `label` for assistive technology. */
export function copyButton(label, text, visible = "Copy") {
  const status = h("span", { class: "copy-status", role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "copy",
      "aria-label": label,
      title: label,
      onclick: async () => {
        const ok = await copyText(typeof text === "function" ? text() : text);
        status.textContent = ok ? "Copied" : "Copy failed: select the text and copy it";
        setTimeout(() => {
          status.textContent = "";
        }, 2500);
      },
    },
    visible,
  );
  return h("span", { class: "copy-wrap" }, button, status);
}

/** A command line shown as code with a copy button. */
export function command(text, label) {
  return h("div", { class: "command" }, h("code", {}, text), copyButton(label, text));
}
