import { signal } from './signal';
import { BASE, href } from './api';

/** The console path the address bar shows, without the mount point ('/login'). */
const current = () => {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return path === '' ? '/' : path;
};

export const route = signal(current());
addEventListener('popstate', () => route.set(current()));

/** Goes to a console page without reloading. */
export function navigate(path: string, replace = false) {
  const url = href(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route.set(current());
  window.scrollTo(0, 0);
}
