import { api } from './api';
import type { components } from './api-types';

export type Org = components['schemas']['Organization'];
export type ResourceType = components['schemas']['ResourceType'];

/** The organisations the caller may read; empty when they may read none (a 403 is no organisation to show). */
export const readOrgs = (): Promise<Org[]> =>
  api.GET('/api/v1/auth/orgs').then(
    ({ data, response }) => (response.ok && data ? data : []),
    () => [],
  );

/** The resource types the host app declares (GET /resources); empty when none, or when it cannot be asked. */
export const readResourceTypes = (): Promise<ResourceType[]> =>
  api.GET('/api/v1/auth/resources').then(
    ({ data, response }) => (response.ok && data ? data : []),
    () => [],
  );

/** How the console names a resource type's grants: seed 004's "Whole library" and "Specific shares". */
export const typeLabel = (type: string) => (type === 'library' ? 'Whole library' : `Specific ${type}s`);
