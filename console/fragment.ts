/**
 * The invite or recovery code an invite link carries after '#code='. Read and removed from the address bar
 * when this module is evaluated, first of all, before any request: it never reaches history, a bookmark,
 * a screenshot of the address bar, or a Referer.
 */
export function takeCode(): string | null {
  if (!location.hash) return null;
  const params = new URLSearchParams(location.hash.slice(1));
  history.replaceState(history.state, '', location.pathname + location.search);
  const code = params.get('code');
  return code && code.trim() !== '' ? code.trim() : null;
}

let landing = takeCode();

/** The code the page was opened with, once: coming back to /connect later (history) redeems nothing again. */
export function takeLandingCode(): string | null {
  const code = landing;
  landing = null;
  return code;
}
