// Where a tab keeps its seats: the player token per game (sessionStorage, this tab only), the
// name last used (localStorage).

const TOKEN_PREFIX = "arcane.token.";

function session() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

function local() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null;
  }
}

export function rememberSeat(seat) {
  session()?.setItem(TOKEN_PREFIX + seat.game_code, seat.player_token);
}

export function tokenFor(gameCode) {
  return session()?.getItem(TOKEN_PREFIX + gameCode) ?? null;
}

export function forgetSeat(gameCode) {
  session()?.removeItem(TOKEN_PREFIX + gameCode);
}

export function lastName() {
  return local()?.getItem("arcane.name") ?? "";
}

export function rememberName(name) {
  try {
    local()?.setItem("arcane.name", name);
  } catch {
    // storage full or disabled: the name is simply not prefilled next time
  }
}
