import { signal } from './signal';
import { BASE, href } from './api';

/** The console path the address bar shows, without the mount point ('/login'). */
const current = () => {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return path === '' ? '/' : path;
};

export const route = signal(current());
/** Set by a move inside the console; the next page heading takes the focus (see PageHeading). */
let moved = false;
addEventListener('popstate', () => {
  moved = true;
  route.set(current());
});

/** Whether the console moved to another page since the last heading took the focus; clears it. */
export function takeMoved(): boolean {
  const was = moved;
  moved = false;
  return was;
}

/** Goes to a console page without reloading. */
export function navigate(path: string, replace = false) {
  const url = href(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  moved = true;
  route.set(current());
  window.scrollTo(0, 0);
}
