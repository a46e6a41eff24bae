import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { z } from 'zod';
import { invalidField } from '../errors.js';
import { rowIdProblem } from '../ids.js';
import type { Actor, EventStream, EventType, UsherEvent } from './stream.js';
import { EVENT_TYPES } from './stream.js';

/** Authentication events: written in batches, off the request's path. Every other event is written in its change's transaction. */
const BATCHED: ReadonlySet<EventType> = new Set(['login.succeeded', 'login.failed', 'login.rate_limited', 'session.created', 'session.ended', 'proxy.untrusted_headers', 'invite.redeem_failed']);

/** At most this many batched events wait; past it new ones are dropped (and counted), so a flood cannot grow memory. */
const MAX_PENDING = 10_000;
const FLUSH_EVERY_MS = 1_000;
const BATCH_ROWS = 500;

interface AuditRow {
  id: number | string;
  at: number | string;
  type: string;
  actor_kind: string;
  actor_user_id: number | null;
  actor_method: string | null;
  target_user_id: number | null;
  ip: string | null;
  detail: string;
}

/** An audit entry as the API answers it. */
export interface AuditEntry {
  id: number;
  at: string;
  type: string;
  actor: Actor;
  targetUserId: number | null;
  ip: string | null;
  detail: Record<string, unknown>;
}

function toRow(e: UsherEvent): Omit<AuditRow, 'id'> {
  const a = e.actor;
  return {
    at: e.at,
    type: e.type,
    actor_kind: a.kind,
    actor_user_id: a.kind === 'user' ? a.userId : null,
    actor_method: a.kind === 'user' ? a.method : a.kind === 'idp' ? a.provider : null,
    target_user_id: e.targetUserId,
    ip: e.ip,
    detail: JSON.stringify(e.detail),
  };
}

function fromRow(r: AuditRow): AuditEntry {
  const actor: Actor =
    r.actor_kind === 'user'
      ? { kind: 'user', userId: Number(r.actor_user_id), method: r.actor_method ?? '' }
      : r.actor_kind === 'idp'
        ? { kind: 'idp', provider: r.actor_method ?? '' }
        : r.actor_kind === 'cli' || r.actor_kind === 'anonymous'
          ? { kind: r.actor_kind }
          : { kind: 'system' };
  return {
    id: Number(r.id),
    at: new Date(Number(r.at)).toISOString(),
    type: r.type,
    actor,
    targetUserId: r.target_user_id === null ? null : Number(r.target_user_id),
    ip: r.ip,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
  };
}

/** How far behind the batched writes are, and what they lost (metrics). */
export interface AuditBacklog {
  /** Authentication events waiting to be written, the batch being written included. */
  pending: number;
  /** When the first of them happened (ms since the epoch): they wait in order. Undefined when none waits. */
  oldestAt: number | undefined;
  /** Events never written since start: dropped with the queue full, or in a batch whose write failed. */
  lost: { queueFull: number; writeFailed: number };
}

export interface AuditQuery {
  offset: number;
  limit: number;
  type?: string;
  actorUserId?: number;
  targetUserId?: number;
  since?: number;
  until?: number;
  /**
   * Only entries about users now in this organisation (an org admin's view): the audit log keeps the target's
   * id, and the users table says who is in which organisation. Entries about a user deleted since, or about
   * no user, are left out.
   */
  orgId?: number;
}

/**
 * The audit log: subscribes to the event stream, writes changes in their transaction and authentication
 * events in batches, answers queries (newest first) and prunes what is older than the retention.
 */
export class AuditLog {
  private pending: Omit<AuditRow, 'id'>[] = [];
  private dropped = 0;
  private flushing: Promise<void> | undefined;
  /** The batch being written: how many of its rows are not written yet, and the first of those's time. */
  private writing: { rows: number; oldestAt: number } | undefined;
  private readonly lost = { queueFull: 0, writeFailed: 0 };
  private readonly timer: NodeJS.Timeout;
  private readonly pruner: NodeJS.Timeout;

  constructor(
    private readonly db: Knex,
    events: EventStream,
    private readonly log: Logger,
    private readonly retentionMs: number,
  ) {
    events.recordWith(async (trx, list) => {
      const rows = list.filter((e) => !BATCHED.has(e.type)).map(toRow);
      if (rows.length > 0) await trx('audit_log').insert(rows);
    });
    events.on((e) => this.enqueue(e), { types: [...BATCHED] });
    this.timer = setInterval(() => void this.flush(), FLUSH_EVERY_MS).unref();
    this.pruner = setInterval(() => void this.prune().catch((err: unknown) => this.log.warn({ err }, 'audit: pruning failed')), 3_600_000).unref();
  }

  private enqueue(e: UsherEvent): void {
    if (this.pending.length >= MAX_PENDING) {
      this.dropped++;
      this.lost.queueFull++;
      return;
    }
    this.pending.push(toRow(e));
    if (this.pending.length >= BATCH_ROWS) void this.flush();
  }

  /** Writes what waits; resolves when it is written (tests and shutdown wait on it). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.pending.length === 0 && this.dropped === 0) return Promise.resolve();
    const rows = this.pending;
    const dropped = this.dropped;
    this.pending = [];
    this.dropped = 0;
    this.flushing = (async () => {
      if (dropped > 0) this.log.warn({ dropped }, 'audit: authentication events dropped, more came than could be written');
      let written = 0;
      try {
        while (written < rows.length) {
          this.writing = { rows: rows.length - written, oldestAt: Number(rows[written]!.at) };
          const batch = rows.slice(written, written + BATCH_ROWS);
          await this.db('audit_log').insert(batch);
          written += batch.length;
        }
      } catch (err) {
        this.lost.writeFailed += rows.length - written;
        this.log.warn({ err, rows: rows.length - written }, 'audit: could not write authentication events');
      } finally {
        this.writing = undefined;
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** How far behind the batched writes are; read at each metrics scrape. Events wait in the order they came. */
  backlog(): AuditBacklog {
    const first = this.pending[0];
    return {
      pending: (this.writing?.rows ?? 0) + this.pending.length,
      oldestAt: this.writing?.oldestAt ?? (first && Number(first.at)),
      lost: { ...this.lost },
    };
  }

  /** Removes entries older than the retention. */
  async prune(now = Date.now()): Promise<number> {
    // The newest policy.changed stays: the next start compares the policy with its digest.
    const lastPolicy = this.db('audit_log').where({ type: 'policy.changed' }).max('id');
    return this.db('audit_log')
      .where('at', '<', now - this.retentionMs)
      .andWhere((q) => q.whereNot({ type: 'policy.changed' }).orWhere('id', '<', lastPolicy))
      .delete();
  }

  async list(q: AuditQuery): Promise<{ entries: AuditEntry[]; total: number }> {
    const where = (b: Knex.QueryBuilder) => {
      if (q.type !== undefined) b.where('type', q.type);
      if (q.actorUserId !== undefined) b.where('actor_user_id', q.actorUserId);
      if (q.targetUserId !== undefined) b.where('target_user_id', q.targetUserId);
      if (q.since !== undefined) b.where('at', '>=', q.since);
      if (q.until !== undefined) b.where('at', '<', q.until);
      if (q.orgId !== undefined) b.whereIn('target_user_id', this.db('users').select('id').where({ org_id: q.orgId }));
    };
    const [rows, count] = await Promise.all([
      this.db<AuditRow>('audit_log').where(where).orderBy([{ column: 'at', order: 'desc' }, { column: 'id', order: 'desc' }]).offset(q.offset).limit(q.limit),
      this.db('audit_log').where(where).count({ n: '*' }).first(),
    ]);
    return { entries: (rows as AuditRow[]).map(fromRow), total: Number((count as { n: number | string } | undefined)?.n ?? 0) };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.pruner);
    await this.flush();
  }
}

const MAX_AUDIT_LIMIT = 1000;
const TIME = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d)?)?$/;
const AGO = /^(\d{1,6})([smhd])$/;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO time, or a span back from now (`7d`, `12h`). */
export function parseSince(name: string, raw: string, now = Date.now()): number {
  const ago = AGO.exec(raw);
  if (ago) return now - Number(ago[1]) * UNIT_MS[ago[2]!]!;
  const at = TIME.test(raw) ? Date.parse(raw) : NaN;
  if (Number.isNaN(at)) throw invalidField(name, 'must be an ISO-8601 time, or a span back from now such as 7d or 12h');
  return at;
}

/** Reads `offset`, `limit`, `type`, `actor`, `user`, `since`, `until`; anything wrong is a 400 naming it. */
export function parseAuditQuery(query: Record<string, unknown>): AuditQuery {
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw invalidField(name, 'must be given once, as a plain value');
    return v;
  };
  const int = (name: string, min: number, max: number, fallback: number) => {
    const raw = one(name);
    if (raw === undefined) return fallback;
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw invalidField(name, `must be an integer ${min}-${max}`);
    return Number(raw);
  };
  const id = (name: string) => {
    const raw = one(name);
    if (raw === undefined) return undefined;
    if (rowIdProblem(raw)) throw invalidField(name, 'must be a user id');
    return Number(raw);
  };
  const type = one('type');
  if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type)) throw invalidField('type', `must be one of ${EVENT_TYPES.join(', ')}`);
  const since = one('since');
  const until = one('until');
  return {
    offset: int('offset', 0, 1_000_000_000, 0),
    limit: int('limit', 1, MAX_AUDIT_LIMIT, 50),
    type,
    actorUserId: id('actor'),
    targetUserId: id('user'),
    since: since === undefined ? undefined : parseSince('since', since),
    until: until === undefined ? undefined : parseSince('until', until),
  };
}

const once = (description: string) => z.string({ error: 'must be given once, as a plain value' }).optional().meta({ description });

/** The audit list's query parameters, as the API document shows them; parsed by `parseAuditQuery`. */
export const auditQuerySchema = z
  .object({
    offset: once('Rows to skip (default 0).'),
    limit: once(`Rows to return, 1-${MAX_AUDIT_LIMIT} (default 50).`),
    type: once('Only events of this type.'),
    actor: once('Only events this user id did.'),
    user: once('Only events about this user id.'),
    since: once('From this time: ISO-8601, or a span back from now such as 7d or 12h.'),
    until: once('Up to this time, in the same forms as since.'),
  })
  .transform((query) => parseAuditQuery(query));
