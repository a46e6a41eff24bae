import { Router, type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ConfigError, groupGrantProblems, isResolvedConfig, resolveConfig } from './config/load.js';
import { resourceList, type ResourceConfig } from './config/parsers.js';
import { GrantService } from './grants/service.js';
import { UsherAuthz } from './grants/access.js';
import { grantEndpoints } from './grants/routes.js';
import type { UsherConfig } from './config/schema.js';
import { openDatabase, openReads, type Db } from './db/connect.js';
import { migrateLatest } from './db/migrate.js';
import { deriveKeys, loadSecret } from './crypto/secret.js';
import { createLogger } from './logger.js';
import { Authorizer } from './authz/enforcer.js';
import { requireAuth, requireRole } from './authz/guards.js';
import { PolicyService } from './authz/policy-service.js';
import { policyEndpoints } from './authz/routes.js';
import { pollPolicy } from './authz/policy-sync.js';
import { Cluster } from './cluster/cluster.js';
import { explainEndpoints } from './authz/explain-routes.js';
import { userGuard } from './authz/targets.js';
import { OrgGroupRoles } from './authz/group-org-roles.js';
import { OrgService } from './orgs/service.js';
import { orgEndpoints } from './orgs/routes.js';
import { USHER_PERMISSIONS, type PermissionInfo } from './authz/permissions.js';
import { authenticateWith, refuseKeyInUrl } from './authn/chain.js';
import { ApiKeyMethod } from './authn/methods/api-key.js';
import { csrfForCookies, rejectDisabled, rejectMixedCredentials, trackDeviceUse, trackLastActive, trackScopedKeyUse } from './authn/hooks.js';
import { ScopedKeyService } from './api-keys/service.js';
import { scopedKeyEndpoints } from './api-keys/routes.js';
import { DeviceTokenMethod } from './authn/methods/device-token.js';
import { SessionMethod } from './authn/methods/session.js';
import { PROXY_PROVIDER, ProxyMethod } from './authn/methods/proxy.js';
import { Provisioner } from './authn/provisioning.js';
import { verifyEndpoints, verifyMiddleware } from './authn/verify-routes.js';
import { compileTrustedProxies } from './config/trusted-proxies.js';
import { LoginLimiter } from './authn/login-limiter.js';
import { loginEndpoints } from './authn/login-routes.js';
import { PasswordLogin } from './authn/password-login.js';
import { OidcClient } from './authn/oidc/client.js';
import { oidcEndpoints } from './authn/oidc/routes.js';
import { OidcLogin, idpLogoutUrl } from './authn/oidc/login.js';
import { openSessionBackend, type SessionBackend } from './sessions/backend.js';
import { SessionManager, sessionOf } from './sessions/manager.js';
import { sessionEndpoints } from './sessions/routes.js';
import { DeviceTokens } from './sessions/devices.js';
import { publicAuthEndpoints } from './authn/routes.js';
import { jsonBody, noStore } from './http/body.js';
import { inSeries } from './http/in-series.js';
import { staticRouteMatcher } from './http/route-match.js';
import { AppError, Errors } from './errors.js';
import { errorHandler, notFound } from './http/error-handler.js';
import { userSchemas } from './users/schemas.js';
import { UserService } from './users/service.js';
import { ADMIN_ROLE, DEFAULT_ROLE, toPublicUser, type PublicUser } from './users/model.js';
import { EventStream, type Origin, type UsherEvent } from './events/stream.js';
import { AuditLog } from './events/audit.js';
import { recordPolicyChange } from './events/policy-change.js';
import { auditEndpoints } from './events/routes.js';
import { userEndpoints } from './users/routes.js';
import { recoveryCodeEndpoints } from './users/recovery-code-routes.js';
import { InviteService } from './invites/service.js';
import { inviteEndpoints } from './invites/routes.js';
import { connectEndpoints } from './authn/connect-routes.js';
import { CodeSignIn } from './authn/code-sign-in.js';
import { EndpointTable } from './http/endpoint-table.js';
import { originOf } from './http/origin.js';
import { documentEndpoints } from './http/document-route.js';
import { consoleConfigEndpoints, consoleRouter } from './http/console.js';
import { accountUpdate } from './http/account-update.js';
import { bootstrapAdmin } from './bootstrap.js';
import { UsherMetrics } from './metrics/metrics.js';
import { metricsProbes } from './metrics/probes.js';
import { listenForMetrics, metricsHandler, metricsResponder } from './metrics/serve.js';
import type { Server } from 'node:http';

export type { UsherConfig } from './config/schema.js';
export type { AuthUser, AuthMethod, Identity, PostAuthHook } from './authn/types.js';
export type { PublicUser } from './users/model.js';
export type { PermissionInfo } from './authz/permissions.js';
export type { ResourceConfig } from './config/parsers.js';
export type { Grant, ResourceSet } from './grants/model.js';
export type { ResourceCheck, UsherAuthz } from './grants/access.js';
export type { Actor, EventType, UsherEvent } from './events/stream.js';
export { ConfigError, loadConfig, resolveConfig } from './config/load.js';
export { AppError } from './errors.js';

/** Mount point of Usher's API inside `router`. */
export const API_BASE = '/api/v1/auth';

/** What the authentication chain can answer on any route behind it. */
const CHAIN_ERRORS = [
  Errors.keyInUrl,
  Errors.invalidInput,
  Errors.conflictingCredentials,
  Errors.unauthenticated,
  Errors.invalidApiKey,
  Errors.invalidDeviceToken,
  Errors.csrf,
  Errors.unsupportedMediaType,
  Errors.proxyUsernameRefused,
  Errors.notProvisioned,
  Errors.sessionStoreUnavailable,
];
/** And with the JSON body parser in front. */
const API_ERRORS = [...CHAIN_ERRORS, Errors.malformedJson, Errors.tooLarge];

/** Host hooks, called after the change is committed; a failing hook is logged, never undoes the change. */
export interface UserHooks {
  onUserCreated?: (user: PublicUser) => void | Promise<void>;
  onUserDeleted?: (user: PublicUser) => void | Promise<void>;
}

export interface UsherOptions extends UserHooks {
  /** Settings in the config file's shape (validated like the file), or a config from `loadConfig()`. */
  config?: unknown;
  /** Where logs go; defaults to a pino logger on stdout at the configured level. */
  logger?: Logger;
  /** Folder holding model.conf and policy.csv; defaults to the package's policies/. */
  policyDir?: string;
  /** The host app's permissions, beside config `permissions:` (docs/permissions.md). */
  permissions?: readonly PermissionInfo[];
  /**
   * The host app's resource types, beside config `resources:` (docs/permissions.md, Access grants):
   * `[{ type: 'library', actions?: ['read'], description?, defaultForNewUsers?: ['*'] }]`.
   */
  resources?: readonly { type: string; actions?: readonly string[]; description?: string; defaultForNewUsers?: readonly (string | number)[] }[];
  /** The time in ms that device tokens' last use and idle timeout count in; defaults to Date.now (tests drive it). */
  clock?: () => number;
}

/** What a host app gets: mount `router`, put `authenticate` before its own routes, guard them with `requireRole`. */
export interface Usher {
  readonly config: UsherConfig;
  /** Usher's routes under /api/v1/auth, with JSON body parsing and JSON errors. Mount at the app's root. */
  readonly router: Router;
  /** The browser console (docs/console.md): mount it at any path, `app.use('/auth', usher.console)`; it calls the API at /api/v1/auth. */
  readonly console: Router;
  /** Sets `req.user` when the request proves who it is; leaves it undefined for anonymous requests. */
  readonly authenticate: RequestHandler;
  /** 401 unless authenticated. */
  readonly requireAuth: RequestHandler;
  /** 401 unless authenticated, 403 unless the caller has one of these roles. */
  requireRole(...roles: string[]): RequestHandler;
  /**
   * 401 unless authenticated, 403 unless the caller holds the permission (through their role or directly):
   * `requirePermission('cert.create')`, or `requirePermission('cert', 'create')`. Refusals are Usher's JSON errors.
   */
  requirePermission(permission: string, action?: string): RequestHandler;
  /** 401 unless authenticated, 403 unless the caller may `action` (`read`) on the resource `idOf(req)` of `type`. */
  requireGrant(type: string, idOf: (req: Request) => unknown, action?: string): RequestHandler;
  readonly users: UserService;
  /** Invites: codes that sign a user's devices in (docs/invites.md). */
  readonly invites: InviteService;
  /** Scoped API keys (app passwords; docs/api.md#scoped-api-keys). */
  readonly apiKeys: ScopedKeyService;
  readonly sessions: SessionManager;
  /** Apps' sessions (`Authorization: Bearer usd_...`): `issue()` signs a device in. */
  readonly devices: DeviceTokens;
  /** Asking Usher: `can(user, 'cert.create')`, `can(user, { type: 'library', id: 3 })`, `resources(user, 'library')`; the policy's roles and digest. */
  readonly authz: UsherAuthz;
  /** Users' access grants to the host app's resources. */
  readonly grants: GrantService;
  /** Custom roles and users' direct permissions (docs/permissions.md). */
  readonly policy: PolicyService;
  /** Every change and authentication decision, with who acted; subscribe with `events.on()`. */
  readonly events: EventStream;
  /** The audit log the events are written to. */
  readonly audit: AuditLog;
  /** Every endpoint Usher serves, as declared; `GET /api/v1/auth/openapi.json` describes them. */
  readonly endpoints: EndpointTable;
  /** Prometheus metrics when `metrics.enabled`, else undefined (docs/metrics.md). */
  readonly metrics: UsherMetricsApi | undefined;
  readonly db: Db;
  /** Pure reads (lists, counts): on SQLite separate read-only connections, on PostgreSQL `db` itself. */
  readonly reads: Db;
  readonly log: Logger;
  /** Resolves when the database answers. */
  ready(): Promise<void>;
  /** Closes the database. */
  close(): Promise<void>;
}

/** What a host app mounts to expose Usher's metrics itself. */
export interface UsherMetricsApi {
  /** Usher's own registry (not prom-client's global one). */
  readonly registry: import('prom-client').Registry;
  /** GET handler answering the registry; requires `Authorization: Bearer <metrics.token>` when a token is set. */
  readonly handler: RequestHandler;
  /** The same, rejecting with the 401 to answer (for an endpoint declaration). */
  readonly respond: (req: Request, res: import('express').Response) => Promise<void>;
  /** Times requests by route template and status class; `app.use()` it before Usher's router. */
  readonly timeRequests: RequestHandler;
  /** The `metrics.listen` listener, once listening (its address, when port 0 picked one). */
  readonly server: Server | undefined;
}

/** Validates settings unless they already came from loadConfig/resolveConfig. */
function toConfig(config: unknown): UsherConfig {
  return isResolvedConfig(config) ? config : resolveConfig({ file: config ?? {} });
}

/** Builds Usher: opens and migrates the database, loads the policy, creates the bootstrap admin. */
export async function createUsher(options: UsherOptions = {}): Promise<Usher> {
  const config = toConfig(options.config);
  const log = options.logger ?? createLogger(config.logLevel);
  for (const line of config.warnings) log.warn(line);
  const keys = deriveKeys(loadSecret(config));
  // USHER_PROXY_ADMIN_GROUPS become g2 rules beside policy.csv's.
  const proxyAdmins = config.proxy.enabled ? config.proxy.adminGroups.map((group) => ({ group, role: ADMIN_ROLE, provider: PROXY_PROVIDER })) : [];
  // Each OIDC provider's allowedAdminGroups likewise, scoped to that provider.
  const oidcAdmins = config.oidc.providers.flatMap((p) => p.allowedAdminGroups.map((group) => ({ group, role: ADMIN_ROLE, provider: `oidc:${p.id}` })));
  const groupRules = [...proxyAdmins, ...oidcAdmins];
  const db = openDatabase(config);
  const reads = openReads(config, db);
  let backend: SessionBackend | undefined;
  let devices: DeviceTokens | undefined;
  let audit: AuditLog | undefined;
  let metricsServer: Server | undefined;
  let cluster: Cluster | undefined;
  let started: UsherMetrics | undefined;
  try {
    const applied = await migrateLatest(db, config);
    if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');
    // The policy lives in the database; policy.csv's built-in roles are written into it first.
    const appPermissions = [...config.permissions, ...(options.permissions ?? [])];
    const clash = appPermissions.filter((p, i) => USHER_PERMISSIONS.some((u) => u.name === p.name) || appPermissions.findIndex((q) => q.name === p.name) !== i);
    if (clash.length > 0) throw new ConfigError(clash.map((p) => `config: permissions: ${p.name} is declared twice, or is one of Usher's own`));
    const authz = await Authorizer.open(db, { policyDir: options.policyDir, groupRules, permissions: appPermissions });
    const resources = hostResources(config.resources, options.resources);
    const badRules = groupGrantProblems(resources, config.groupGrants, 'config: ');
    if (badRules.length > 0) throw new ConfigError(badRules);
    const badRoles = config.oidc.providers.filter((p) => !authz.roles.has(p.defaultRole));
    if (badRoles.length > 0) {
      throw new ConfigError(badRoles.map((p) => `config: oidc.providers[${config.oidc.providers.indexOf(p)}].defaultRole: must be one of ${[...authz.roles].join(', ')}`));
    }
    // The event stream and its subscribers, in the order they hear an event: the audit log (inside the
    // change's transaction, then authentication events in batches), the host's hooks, the session store
    // (awaited: a store failure is the request's 503), then the authenticated-user caches (in the methods).
    const events = new EventStream(log);
    audit = new AuditLog(db, events, log, config.auditRetentionMs);
    const hook = (fn: ((user: PublicUser) => void | Promise<void>) | undefined) => (e: UsherEvent) =>
      fn && e.context?.user ? fn(toPublicUser(e.context.user)) : undefined;
    events.on(hook(options.onUserCreated), { types: ['user.created'] });
    events.on(hook(options.onUserDeleted), { types: ['user.deleted'] });
    const users = new UserService(db, keys, log, events, reads);
    // Every new account gets the default grants in its creating transaction, whatever creates it.
    const grants = await GrantService.open(db, events, resources, config.groupGrants);
    users.onCreate({ inside: (trx, user, origin) => grants.giveDefaults(trx, user, origin), after: (id) => grants.created(id) });
    const access = new UsherAuthz(authz, grants);
    const syncGroupGrants = (id: number, provider: string, groups: readonly string[], origin: Origin) => grants.syncGroups(id, provider, groups, origin);
    const invites = new InviteService(db, keys, events);
    // Roles configuration names stay while it names them.
    const orgGroups = new OrgGroupRoles(config.orgGroups, () => authz.policy.rank);
    const badOrgRoles = config.orgGroups.filter((r) => !authz.roles.has(r.role));
    if (badOrgRoles.length > 0) throw new ConfigError(badOrgRoles.map((r) => `config: orgGroups[${config.orgGroups.indexOf(r)}].role: must be one of ${[...authz.roles].join(', ')}`));
    const pinned = new Set([DEFAULT_ROLE, ...authz.groupRoles.roles(), ...orgGroups.roles(), ...config.oidc.providers.map((p) => p.defaultRole)]);
    const policy = new PolicyService(db, authz, events, pinned);
    users.guardRoles((trx, role, origin) => policy.checkRoleAssignment(trx, role, origin));
    // Who may act on whom, checked inside each change's transaction (org admins, the holds-more rail).
    const guard = userGuard(authz);
    users.guardTargets(guard);
    invites.guardTargets(guard);
    policy.guardTargets(guard);
    grants.guardTargets(guard);
    const orgs = new OrgService(db, events);
    // A deleted user's direct permissions go with their row (ON DELETE CASCADE): compile without them.
    events.on(() => authz.refresh(), { types: ['user.deleted'] });
    await bootstrapAdmin(config, users, log);
    if (await recordPolicyChange(db, events, authz.digest, authz.roles.size)) log.info({ digest: authz.digest }, 'the access policy changed since the last start');

    backend = await openSessionBackend(config, db, log);
    // Changes made through other instances reach the caches (src/cluster): at once over Redis, else at the poll.
    const sessionBackend = backend;
    events.onChangedElsewhere((userId) => sessionBackend.forget(userId));
    cluster = await Cluster.start({
      db,
      events,
      log,
      redis: config.redisUrl ? { url: config.redisUrl, prefix: config.redisPrefix } : undefined,
      syncPolicy: () => authz.sync(),
      syncGrants: () => grants.sync(),
    });
    const changeLog = cluster.changes;
    const sessions = new SessionManager(backend, keys, config, log);
    const deviceTokens = new DeviceTokens(db, keys, events, log, { idleTimeoutMs: config.session.deviceIdleTimeoutMs, cacheTtlMs: config.apiKeyCacheTtlMs }, options.clock);
    devices = deviceTokens;
    events.on(
      async (e) => {
        if (!e.context?.endsSessions || e.targetUserId === null) return;
        // Device tokens are already refused by their epoch: a failure to delete them is left to pruning.
        await deviceTokens
          .endAll(e.targetUserId, { keep: e.context.keepSession, epoch: e.context.sessionEpoch })
          .catch((err: unknown) => log.warn({ err, userId: e.targetUserId }, 'could not delete device tokens'));
        try {
          await sessions.endAll(e.targetUserId, e.context.keepSession);
        } catch (err) {
          log.warn({ err, userId: e.targetUserId }, 'could not remove sessions from the store');
          throw err;
        }
      },
      { awaited: true },
    );
    const limiter = new LoginLimiter(backend, config.loginLimit);
    // Metrics count events after the audit log, the hooks and the session ending have heard them.
    const metrics = config.metrics.enabled
      ? new UsherMetrics(
          { methods: ['api-key', 'device', 'session', 'proxy', 'password', 'invite', 'recovery_code', ...config.oidc.providers.map((p) => `oidc:${p.id}`)], oidcProviders: config.oidc.providers.map((p) => p.id) },
          metricsProbes(db, backend, audit),
        )
      : undefined;
    started = metrics;
    metrics?.listenTo(events);

    const scopedKeys = new ScopedKeyService(db, keys, authz, events);
    const apiKeyMethod = new ApiKeyMethod(users, config.apiKeyCacheTtlMs, scopedKeys);
    // Forward auth's requests, as Express routes them (marked by the route itself below), or as it would
    // route them (for a host app's `authenticate`, which runs before any routing).
    // A symbol property rather than a WeakSet: no entry for the garbage collector to track per request.
    const forwardAuth = Symbol('usher.forwardAuth');
    type Marked = Request & { [forwardAuth]?: true };
    const isVerifyUrl = staticRouteMatcher(`${API_BASE}/verify`);
    const isForwardAuth = (req: Request) => (req as Marked)[forwardAuth] === true || isVerifyUrl(req.originalUrl);
    const deviceMethod = new DeviceTokenMethod(users, deviceTokens, config.apiKeyCacheTtlMs);
    const methods = [
      apiKeyMethod,
      deviceMethod,
      new SessionMethod(users, sessions, config.apiKeyCacheTtlMs),
      ...(config.proxy.enabled
        ? [new ProxyMethod(config.proxy, config.trustedProxies, users, new Provisioner(users, authz.groupRoles, syncGroupGrants, orgGroups), config.apiKeyCacheTtlMs, log, isForwardAuth)]
        : []),
    ];
    const chain = authenticateWith(
      methods,
      [rejectMixedCredentials, rejectDisabled, csrfForCookies(config.publicUrl), trackLastActive(users, log), trackDeviceUse(deviceTokens), trackScopedKeyUse(scopedKeys, log)],
    );
    // Sessions are loaded only for requests that carry the cookie; then the methods are tried.
    // A request that also carries an API key or a device token does not need the session: when the store is
    // down it goes on without one, so they keep working while Redis is away.
    const authenticateOnly: RequestHandler = (req, res, next) => {
      if (!sessions.hasCookie(req)) {
        chain(req, res, next);
        return;
      }
      sessions.load(req, res, (err?: unknown) => {
        const storeDown = err instanceof AppError && err.code === 'session.store_unavailable';
        if (err && !(storeDown && (apiKeyMethod.applies(req) || deviceMethod.applies(req)))) return next(err);
        chain(req, res, next);
      });
    };
    const authenticate = metrics ? metrics.countAuthOutcomes(authenticateOnly, methods) : authenticateOnly;
    const schemas = userSchemas({ passwordMinLength: config.passwordMinLength, roles: () => authz.roles });

    const oidcClients = new Map(
      config.oidc.providers.map((p) => [p.id, new OidcClient(p, `${config.publicUrl}${API_BASE}/oidc/${p.id}/callback`, config.oidc.timeoutMs, log, metrics?.observeOidcRequest)]),
    );

    // One flat router with full paths: a mounted sub-router costs a prefix rewrite on every request.
    const router = Router();
    // Forward auth first, with its own middleware: Express matching the route decides, however the path is
    // spelled, that a trusted proxy's query string there is the proxied app's (see registerVerifyRoute).
    // The route Express matched marks the request, so the proxy method never reads identity headers there.
    const forwardAuthenticate: RequestHandler = (req, res, next) => {
      (req as Marked)[forwardAuth] = true;
      authenticate(req, res, next);
    };
    const endpoints = new EndpointTable((caller, object, action) => authz.can(caller, object, action));
    const isTrustedPeer = compileTrustedProxies(config.trustedProxies);
    endpoints.mount(router, API_BASE, verifyEndpoints(authz, config.forwardAuth, isTrustedPeer), {
      use: verifyMiddleware(isTrustedPeer),
      before: [forwardAuthenticate],
      errors: CHAIN_ERRORS,
    });
    // Everything Usher answers is about a person (keys, sessions, profiles): never stored by a cache.
    router.use(API_BASE, (req, res, next) => {
      noStore(res);
      // Before every route, the public OIDC ones included: a key in the URL is refused everywhere.
      try {
        refuseKeyInUrl(req);
        next();
      } catch (err) {
        next(err);
      }
    });
    // OIDC first: the provider's back-channel logout is a form post, which the JSON-only parser refuses.
    const oidcLogin = new OidcLogin({
      clients: oidcClients,
      sessions,
      users,
      provisioner: new Provisioner(users, authz.groupRoles, syncGroupGrants, orgGroups),
      log,
      starts: backend.limiter('oidc-start', config.oidc.startsPerMinute, 60_000),
    });
    endpoints.mount(router, API_BASE, oidcEndpoints(oidcLogin, API_BASE), { errors: [Errors.keyInUrl, Errors.sessionStoreUnavailable] });
    // One layer: each layer Express walks costs on every request.
    router.use(API_BASE, inSeries(jsonBody, authenticate));
    endpoints.mount(
      router,
      API_BASE,
      [
        ...userEndpoints({ base: API_BASE, users, authz, schemas, grantsOf: (id) => grants.list(id), applyUpdate: accountUpdate(users, limiter, sessions) }),
        ...loginEndpoints(users, sessions, deviceTokens, new PasswordLogin(users, limiter), (req) => idpLogoutUrl(oidcClients, sessionOf(req)?.oidc, `${config.publicUrl ?? ''}/`)),
        ...sessionEndpoints(users, sessions, deviceTokens),
        ...inviteEndpoints({ invites, publicUrl: config.publicUrl, reach: (id, origin) => users.requireFor(id, origin, 'invites.read') }),
        ...connectEndpoints(sessions, new CodeSignIn(users, invites, deviceTokens, new LoginLimiter(backend, config.loginLimit, 'connect'))),
        ...recoveryCodeEndpoints(users),
        ...scopedKeyEndpoints(scopedKeys, (req, id) => users.reach(id, originOf(req), 'users.api-keys')),
        ...publicAuthEndpoints(users, schemas),
        ...auditEndpoints(audit, (caller) => authz.canIn(caller, null, 'audit', 'read')),
        ...orgEndpoints({ base: API_BASE, orgs, authz }),
        ...policyEndpoints({ base: API_BASE, policy, authz }),
        ...explainEndpoints({ authz, users, grants }),
        ...grantEndpoints({ base: API_BASE, access, users }),
        ...consoleConfigEndpoints(config),
        ...documentEndpoints(endpoints),
      ],
      { errors: API_ERRORS },
    );
    router.use(API_BASE, notFound);
    router.use(API_BASE, errorHandler(log));

    const serveMetrics = metrics && metricsHandler(metrics.registry, config.metrics.token);
    if (serveMetrics && config.metrics.listen) metricsServer = await listenForMetrics(serveMetrics, config.metrics.listen, log);
    // Changes made through other instances on this database: started last, so nothing after it can fail.
    const policyPoll = pollPolicy(authz, config.cluster.pollIntervalMs, log, [() => grants.sync(), () => changeLog.sync()]);

    return {
      config,
      router,
      console: consoleRouter({ apiBase: API_BASE }),
      authenticate,
      requireAuth,
      requireRole,
      requirePermission: (permission, action) => access.requirePermission(permission, action),
      requireGrant: (type, idOf, action) => access.requireGrant(type, idOf, action),
      users,
      invites,
      apiKeys: scopedKeys,
      sessions,
      devices: deviceTokens,
      authz: access,
      grants,
      policy,
      events,
      audit,
      endpoints,
      metrics: metrics && serveMetrics && {
        registry: metrics.registry,
        handler: serveMetrics,
        respond: metricsResponder(metrics.registry, config.metrics.token),
        timeRequests: metrics.timeRequests, server: metricsServer },
      db,
      reads,
      log,
      async ready() {
        await db.raw('select 1');
      },
      async close() {
        await policyPoll.stop();
        await cluster?.close();
        metrics?.close();
        if (metricsServer) await closeServer(metricsServer);
        devices?.close();
        await audit?.close();
        await backend?.close();
        await db.destroy();
        if (reads !== db) await reads.destroy();
      },
    };
  } catch (err) {
    await cluster?.close();
    started?.close();
    if (metricsServer) await closeServer(metricsServer);
    devices?.close();
    await audit?.close();
    await backend?.close();
    await db.destroy();
    if (reads !== db) await reads.destroy();
    throw err;
  }
}

/** Config `resources:` and createUsher's `resources`, validated as one list (one line per problem, naming the key). */
function hostResources(fromConfig: readonly ResourceConfig[], fromHost: UsherOptions['resources']): readonly ResourceConfig[] {
  const parsed = fromHost === undefined ? { ok: true as const, value: [] as readonly ResourceConfig[] } : resourceList(fromHost);
  if (!parsed.ok) throw new ConfigError([`createUsher: resources: ${parsed.problem}`]);
  const twice = parsed.value.filter((r) => fromConfig.some((c) => c.type === r.type));
  if (twice.length > 0) throw new ConfigError(twice.map((r) => `createUsher: resources: ${r.type} is declared in config resources: too`));
  return [...fromConfig, ...parsed.value];
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
