// A modal confirmation (<dialog>), so a destructive action names what it destroys.

import { h, uid } from "./dom.js";

/** Resolves true when the person confirms, false on Cancel or Escape. */
export function confirmAction({ title, message, confirmLabel, danger = true }) {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const messageId = uid("dialog-message");
    const dialog = h("dialog", {
      class: "confirm",
      "aria-labelledby": titleId,
      "aria-describedby": messageId,
    });
    const cancel = h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel");
    const confirm = h(
      "button",
      { type: "button", class: danger ? "danger" : "primary", onclick: () => dialog.close("confirm") },
      confirmLabel,
    );
    dialog.append(
      h("h2", { id: titleId }, title),
      h("p", { id: messageId }, message),
      h("div", { class: "actions" }, cancel, confirm),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
