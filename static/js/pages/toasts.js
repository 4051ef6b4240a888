// Short notices at the corner of the screen: joins, reconnections, disconnections, errors.

import { $, h } from "./dom.js";

const LIMIT = 4;

export function toast(message, { kind = "info", duration = 4500 } = {}) {
  const region = $("toasts");
  const item = h("div", { class: `toast toast-${kind}` }, message);
  region.append(item);
  while (region.children.length > LIMIT) region.firstElementChild.remove();
  setTimeout(() => {
    item.classList.add("leaving");
    setTimeout(() => item.remove(), 400);
  }, duration);
  return item;
}
