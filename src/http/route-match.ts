/** The characters a RegExp gives a meaning to. */
const SPECIAL = /[.*+?^${}()|[\]\\]/g;

/**
 * Whether a request URL is one Express would route to the static route `path` under its defaults: case
 * insensitive, one optional trailing slash, the query ignored (`/VERIFY`, `/verify/`, `/Verify?rd=x`).
 * For middleware that runs before routing, such as `authenticate` mounted by a host app. It errs toward
 * matching: the path is tried as sent and as a URL parser normalises it (absolute form, dot segments).
 */
export function staticRouteMatcher(path: string): (url: string) => boolean {
  const pattern = new RegExp(`^${path.replace(SPECIAL, '\\$&')}/?$`, 'i');
  return (url) => {
    const raw = url.split('?', 1)[0]!;
    if (pattern.test(raw)) return true;
    try {
      return pattern.test(new URL(url, 'http://usher.invalid').pathname);
    } catch {
      return false;
    }
  };
}
