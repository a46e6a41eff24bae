/** A known failure with a stable code; the error handler turns it into `{ error: { code, message } }`. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    // An expected answer, never logged with a stack: capturing one costs more than the rest of a refused
    // request (a flood of refused logins is a flood of these).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'AppError';
  }
}

/** Makes one kind of error; carries its code, status and usual message for the API document. */
export interface ErrorFactory {
  (message?: string): AppError;
  readonly code: string;
  readonly status: number;
  readonly message: string;
}

function define(status: number, code: string, defaultMessage: string): ErrorFactory {
  const make = (message = defaultMessage) => new AppError(status, code, message);
  return Object.assign(make, { code, status, message: defaultMessage });
}

/** Every error Usher answers with, declared once. */
export const Errors = {
  invalidInput: define(400, 'request.invalid', 'The request is invalid.'),
  malformedJson: define(400, 'request.malformed_json', 'The request body is not valid JSON.'),
  conflictingCredentials: define(400, 'auth.conflicting_credentials', 'The request carries credentials of different users (API key, session cookie, proxy identity).'),
  keyInUrl: define(400, 'auth.key_in_url', 'API keys are not accepted in the URL; send the X-Api-Key header.'),
  unauthenticated: define(401, 'auth.unauthenticated', 'Authentication is required.'),
  invalidCredentials: define(401, 'auth.invalid_credentials', 'The username or password is wrong.'),
  invalidApiKey: define(401, 'auth.invalid_api_key', 'The API key is not valid.'),
  invalidDeviceToken: define(401, 'auth.invalid_device_token', 'The device token is not valid: unknown, ended, or unused for too long. Connect the device again.'),
  csrf: define(403, 'auth.csrf', 'Cross-site request refused.'),
  forbidden: define(403, 'auth.forbidden', 'You are not allowed to do this.'),
  proxyUsernameRefused: define(403, 'auth.proxy_username_refused', 'The username the proxy sent holds compatibility, invisible or space characters that would make it pass for another name; it is refused.'),
  notProvisioned: define(403, 'auth.not_provisioned', 'There is no account for this identity here, and accounts are not created automatically.'),
  passwordLoginOff: define(403, 'user.password_login_off', 'This account signs in through its identity provider; an admin can allow a local password.'),
  wrongCurrentPassword: define(403, 'user.wrong_current_password', 'The current password is wrong.'),
  notFound: define(404, 'not_found', 'Not found.'),
  userNotFound: define(404, 'user.not_found', 'There is no such user.'),
  methodNotAllowed: define(405, 'request.method_not_allowed', 'This method is not allowed here.'),
  usernameTaken: define(409, 'user.username_taken', 'That username is taken.'),
  emailTaken: define(409, 'user.email_taken', 'That email address is already in use.'),
  lastAdmin: define(409, 'user.last_admin', 'The last enabled admin cannot be demoted, disabled or deleted.'),
  adminNeedsPassword: define(409, 'user.admin_needs_password', 'An admin must have a password.'),
  cannotDeleteSelf: define(409, 'user.cannot_delete_self', 'You cannot delete your own account.'),
  roleNotFound: define(404, 'role.not_found', 'There is no such role.'),
  roleExists: define(409, 'role.exists', 'A role of that name exists already.'),
  roleBuiltIn: define(409, 'role.built_in', 'Built-in roles (policies/policy.csv) cannot be edited, renamed or deleted through the API.'),
  roleInUse: define(409, 'role.in_use', 'The role is in use (held by users, inherited by another role, or named by configuration); name a role to move its holders to with `moveTo`.'),
  escalation: define(403, 'authz.escalation', 'You cannot grant a role or permission you do not hold yourself.'),
  grantNotFound: define(404, 'grant.not_found', 'This user has no such grant.'),
  grantExists: define(409, 'grant.exists', 'The user already has a grant on this resource; revoke it first to change its actions.'),
  targetHoldsMore: define(403, 'authz.target_holds_more', 'This account holds more than you do (an admin role, or a permission you lack); only someone holding all of it may act on it.'),
  orgNotFound: define(404, 'org.not_found', 'There is no such organisation.'),
  orgExists: define(409, 'org.exists', 'An organisation of that name exists already (names differ by more than case).'),
  orgInUse: define(409, 'org.in_use', 'The organisation has members; delete it with `members=detach` to take them out of it.'),
  setupDone: define(409, 'setup.already_done', 'Setup is already done: a user exists.'),
  apiKeyUnreadable: define(409, 'api_key.unreadable', 'The stored key cannot be read (the server secret changed); rotate it with POST.'),
  apiKeyNotFound: define(404, 'api_key.not_found', 'There is no such scoped API key.'),
  apiKeyNameTaken: define(409, 'api_key.name_taken', 'You have a scoped API key of that name already.'),
  apiKeyLimit: define(409, 'api_key.limit', 'A user has at most 100 scoped API keys; revoke one first.'),
  sessionNotFound: define(404, 'session.not_found', 'There is no such session.'),
  inviteNotFound: define(404, 'invite.not_found', 'This user has no such invite.'),
  inviteNotActive: define(409, 'invite.not_active', 'Only a pending invite can be resent or revoked; create a new one.'),
  inviteTypo: define(400, 'invite.typo', 'This code has a typo: check each character and try again.'),
  inviteInvalid: define(401, 'invite.invalid', 'There is no such code.'),
  inviteExpired: define(410, 'invite.expired', 'This invite has expired; ask for a new one.'),
  inviteUsedUp: define(410, 'invite.used_up', 'This invite has been used up; ask for a new one.'),
  inviteRevoked: define(410, 'invite.revoked', 'This invite was revoked; ask for a new one.'),
  inviteReplaced: define(410, 'invite.replaced', 'A newer invite replaced this one; use the newer code.'),
  accountDisabled: define(403, 'auth.account_disabled', 'This account is disabled.'),
  tooLarge: define(413, 'request.too_large', 'The request body is too large (100 KB at most).'),
  unsupportedMediaType: define(415, 'request.unsupported_media_type', 'The request body must be application/json.'),
  sessionStoreUnavailable: define(503, 'session.store_unavailable', 'Sessions are unavailable for the moment; try again shortly.'),
  tooManyAttempts: define(429, 'auth.too_many_attempts', 'Too many failed logins; try again later.'),
  oidcUnknownProvider: define(404, 'oidc.unknown_provider', 'There is no such sign-in provider.'),
  oidcInvalidState: define(400, 'oidc.invalid_state', 'This sign-in is unknown, used already or expired; start again.'),
  oidcLoginFailed: define(401, 'oidc.login_failed', 'The sign-in provider did not confirm who you are.'),
  oidcInvalidLogoutToken: define(400, 'oidc.invalid_logout_token', 'The logout token is not valid.'),
  oidcProviderUnavailable: define(502, 'oidc.provider_unavailable', 'The sign-in provider does not answer; try again later.'),
  unavailable: define(503, 'service.unavailable', 'The service is not ready.'),
  busy: define(503, 'service.busy', 'Too many password checks are waiting; try again in a moment.'),
} as const;

/** A 400 that names the offending field. */
export function invalidField(field: string, problem: string): AppError {
  return Errors.invalidInput(`${field}: ${problem}`);
}
