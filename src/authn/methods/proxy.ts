import type { Request } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { compileTrustedProxies, normalizeAddress } from '../../config/trusted-proxies.js';
import type { ProxyConfig } from '../../config/schema.js';
import { Errors, invalidField } from '../../errors.js';
import { DEFAULT_ROLE, type UserRecord } from '../../users/model.js';
import { looksLikeAnother, nameProblem, usernameKey } from '../../names.js';
import type { UserService } from '../../users/service.js';
import { ANONYMOUS, eventOf, type EventStream } from '../../events/stream.js';
import type { ExternalIdentity, Provisioner, ProvisioningPolicy } from '../provisioning.js';
import { UserCache } from '../user-cache.js';
import type { AuthMethod, Identity } from '../types.js';

/** The provider name of proxy identities (identities table, g2 rules). */
export const PROXY_PROVIDER = 'proxy';

/** At most one "untrusted address" warning per this long; the next one counts those left out. */
const WARN_EVERY_MS = 60_000;

/** Stands for an absent header in a cache key; no header value can hold CR or LF. */
const ABSENT = '\r';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const validEmail = z.email().max(320);

/**
 * A trusted reverse proxy's identity headers (Authelia, Authentik, oauth2-proxy...). They are believed
 * only from a peer in server.trustedProxies, matched on the socket's own address; from anyone else
 * they are ignored and a warning is logged. The account is found, created and given its role by the
 * shared provisioning steps; a known user whose headers have not changed is answered from a short
 * cache, with no query (a change to that user through this process drops it; see settle for what
 * depends on other users).
 */
export class ProxyMethod implements AuthMethod {
  readonly name = PROXY_PROVIDER;
  private readonly userHeaders: readonly string[];
  private readonly groupsHeader: string;
  private readonly emailHeader: string | undefined;
  private readonly nameHeader: string | undefined;
  private readonly trusted: (address: string | undefined) => boolean;
  private readonly policy: ProvisioningPolicy;
  private readonly cache: UserCache<string, { user: UserRecord; heldBack: boolean }>;
  /** Header names as configured, for messages (Node gives them in lower case). */
  private readonly labels = new Map<string, string>();
  private lastWarning = 0;
  private readonly events: EventStream;
  private unreported = 0;

  constructor(
    private readonly settings: ProxyConfig,
    trustedProxies: readonly string[],
    users: UserService,
    private readonly provisioner: Provisioner,
    cacheTtlMs: number,
    private readonly log: Logger,
    /**
     * Requests whose identity headers are never read: forward auth (GET /verify) asks who a cookie or key
     * is, and a proxy's auth subrequest carries the client's own headers from a trusted address.
     */
    private readonly ignores: (req: Request) => boolean = () => false,
  ) {
    for (const h of [...settings.userHeaders, settings.groupsHeader, settings.emailHeader, settings.nameHeader]) {
      if (h) this.labels.set(h.toLowerCase(), h);
    }
    this.userHeaders = settings.userHeaders.map((h) => h.toLowerCase());
    this.groupsHeader = settings.groupsHeader.toLowerCase();
    this.emailHeader = settings.emailHeader?.toLowerCase();
    this.nameHeader = settings.nameHeader?.toLowerCase();
    this.trusted = compileTrustedProxies(trustedProxies);
    this.policy = {
      autoProvision: settings.autoProvision,
      roleSync: settings.roleSync,
      defaultRole: DEFAULT_ROLE,
      usernameTaken: 'link',
      linkVerifiedEmail: false,
    };
    this.events = users.events;
    // An answer held back by another user (the last-admin rail, a taken email) goes at anyone's change.
    this.cache = new UserCache(users.events, cacheTtlMs, (key) => this.provisioner.settle(this.identityOf(key), this.policy), (found) => found.heldBack);
  }

  applies(req: Request): boolean {
    for (const header of this.userHeaders) {
      if (req.headers[header] !== undefined) return !this.ignores(req);
    }
    return false;
  }

  authenticate(req: Request): Identity | null | Promise<Identity | null> {
    const peer = req.socket.remoteAddress;
    if (!this.trusted(peer)) {
      this.warnUntrusted(peer);
      return null;
    }
    let user: string | undefined;
    let userHeader = '';
    for (const header of this.userHeaders) {
      user = this.single(req, header);
      userHeader = header;
      if (user !== undefined && user.trim() !== '') break;
    }
    if (user === undefined || user.trim() === '') return null;
    const groups = this.single(req, this.groupsHeader);
    const email = this.emailHeader && this.single(req, this.emailHeader);
    const name = this.nameHeader && this.single(req, this.nameHeader);
    const key = `${userHeader}\n${user}\n${groups ?? ABSENT}\n${email || ABSENT}\n${name || ABSENT}`;
    const found = this.cache.get(key);
    return found instanceof Promise ? found.then((f) => this.identity(f)) : this.identity(found);
  }

  private identity(found: { user: UserRecord } | null): Identity | null {
    return found ? { user: found.user, method: this.name } : null;
  }

  /** A header's one value; sent twice (Node joins them with ", ") is a 400: which one would be meant? */
  private single(req: Request, header: string): string | undefined {
    const value = req.headers[header];
    if (typeof value !== 'string') return undefined;
    if (value.includes(', ') && (req.headersDistinct[header]?.length ?? 0) > 1) throw invalidField(this.labels.get(header) ?? header, 'send the header once');
    return value;
  }

  /** The external identity a cache key stands for (parsed only on a cache miss). */
  private identityOf(key: string): ExternalIdentity {
    const [userHeader, rawUser, rawGroups, rawEmail, rawName] = key.split('\n') as [string, string, string, string, string];
    const decode = (header: string | undefined, value: string) => utf8Value(this.labels.get(header!) ?? '', value);
    const username = plainUsername(decode(userHeader, rawUser));
    const groups = rawGroups === ABSENT ? undefined : split(decode(this.groupsHeader, rawGroups), this.settings.groupsSeparator);
    const email = rawEmail === ABSENT ? undefined : decode(this.emailHeader, rawEmail).trim();
    const name = rawName === ABSENT ? undefined : decode(this.nameHeader, rawName).trim();
    return {
      provider: PROXY_PROVIDER,
      subject: usernameKey(username),
      username,
      email: email && validEmail.safeParse(email).success ? email : undefined,
      name: name && nameProblem(name) === null ? name : undefined,
      groups,
    };
  }

  private warnUntrusted(peer: string | undefined): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) {
      this.unreported++;
      return;
    }
    const address = peer === undefined ? null : normalizeAddress(peer);
    const alsoSince = this.lastWarning ? this.unreported : undefined;
    this.log.warn({ peer: address ?? undefined, alsoSince }, 'proxy auth: identity headers from an address outside trustedProxies ignored');
    // In the audit log too, as often as the warning: someone may be trying to pass for a proxy.
    void this.events.publish([eventOf({ actor: ANONYMOUS, ip: address }, 'proxy.untrusted_headers', null, { alsoSince: alsoSince ?? 0 })]).catch(() => undefined);
    this.lastWarning = now;
    this.unreported = 0;
  }
}

/**
 * The proxy's username as the account's name must be: the same text, case aside (docs/proxy-auth.md).
 * A name that only NFKC folding or stripping turns into a valid one (fullwidth `ａｄｍｉｎ`, `admin` and a
 * no-break space) is another name than the account it would fold onto, so it is refused, never linked.
 * Canonical forms are one name: NFC is taken as is.
 */
function plainUsername(raw: string): string {
  const name = raw.normalize('NFC');
  if (looksLikeAnother(name)) throw Errors.proxyUsernameRefused();
  return name;
}

/** Node reads header bytes as Latin-1; proxies send UTF-8. */
function utf8Value(header: string, value: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(value)) return value;
  try {
    return utf8.decode(Buffer.from(value, 'latin1'));
  } catch {
    throw invalidField(header, 'must be UTF-8');
  }
}

const split = (value: string, separator: string): string[] =>
  value
    .split(separator)
    .map((g) => g.trim())
    .filter((g) => g !== '');
