// Refusals in the game's own words.

export function messageFor(error) {
  switch (error?.code) {
    case "INVALID_GAME": return "There is no game with that code.";
    case "GAME_FULL": return "That table is full.";
    case "GAME_STARTED": return "That tale has already begun.";
    case "ALREADY_CHOSE": return "You have already chosen this turn.";
    case "WRONG_PHASE": return "That is not possible right now.";
    case "NOT_HOST": return "Only the host can do that.";
    case "RATE_LIMITED": return "Slow down a little.";
    case "NETWORK": return "The server could not be reached. Try again.";
    case "TIMEOUT": return "The server did not answer in time. Try again.";
    default: return error?.message ?? "Something went wrong.";
  }
}
