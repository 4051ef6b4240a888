// Home: begin a game or join one by its code, with a name.

import { Api } from "../arcane/http.js";
import { $, setText } from "./dom.js";
import { messageFor } from "./messages.js";
import { lastName, rememberName, rememberSeat } from "./seats.js";

const api = new Api();

function seatAndGo(seat) {
  rememberSeat(seat);
  rememberName(seat.player_name);
  window.location.assign(`/game/${encodeURIComponent(seat.game_code)}`);
}

function handle(formId, errorId, submit) {
  const form = $(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    setText(errorId, "");
    button.disabled = true;
    try {
      seatAndGo(await submit());
    } catch (error) {
      setText(errorId, messageFor(error));
      button.disabled = false;
    }
  });
}

function requireName(id) {
  const name = $(id).value.trim();
  if (!name) {
    $(id).focus();
    throw new Error("Tell us your name first.");
  }
  return name;
}

for (const id of ["create-name", "join-name"]) {
  const input = $(id);
  input.value = lastName();
  input.addEventListener("input", () => {
    for (const other of ["create-name", "join-name"]) if (other !== id) $(other).value = input.value;
  });
}
const wanted = new URLSearchParams(window.location.search).get("code");
if (wanted) $("join-code").value = wanted.toUpperCase().slice(0, 6);

handle("create-form", "create-error", () =>
  api.createGame(requireName("create-name"), Number($("create-size").value)));

function wantedCode() {
  const code = $("join-code").value.trim().toUpperCase();
  if (!/^[A-Z0-9]{6}$/.test(code)) {
    $("join-code").focus();
    throw new Error("Game codes are 6 letters or digits.");
  }
  return code;
}

handle("join-form", "join-error", () => {
  const name = requireName("join-name");
  return api.joinGame(wantedCode(), name);
});

// Watching needs the same two things: a name and the code.
$("watch-game").addEventListener("click", async () => {
  setText("join-error", "");
  try {
    const name = requireName("join-name");
    seatAndGo(await api.watchGame(wantedCode(), name));
  } catch (error) {
    setText("join-error", messageFor(error));
  }
});
