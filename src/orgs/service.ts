import { Errors } from '../errors.js';
import { uniqueViolation, type Db } from '../db/connect.js';
import { eventOf, type EventStream, type Origin, type UsherEvent } from '../events/stream.js';
import { orgsRepo, type Organization } from './repository.js';

export interface OrgInput {
  name: string;
  description?: string;
}

/** What to do with an organisation's members when it is deleted: nothing (refuse), or take them out of it. */
export type MembersOnDelete = 'refuse' | 'detach';

/**
 * Organisations: each change runs in one transaction with its audit event. Deleting one whose members are
 * still in it is refused unless the caller says to detach them; the members keep their global role, so
 * the admins the last-admin rail counts never change here.
 */
export class OrgService {
  constructor(
    private readonly db: Db,
    private readonly events: EventStream,
  ) {}

  list(): Promise<Organization[]> {
    return orgsRepo.list(this.db);
  }

  async get(id: number): Promise<Organization> {
    const org = await orgsRepo.find(this.db, id);
    if (!org) throw Errors.orgNotFound();
    return org;
  }

  async create(input: OrgInput, origin: Origin): Promise<Organization> {
    const { org, events } = await this.db.transaction(async (trx) => {
      let id: number;
      try {
        id = await orgsRepo.insert(trx, { name: input.name, description: input.description ?? '' }, Date.now());
      } catch (err) {
        throw uniqueViolation(err) === null ? err : Errors.orgExists();
      }
      const events = [eventOf(origin, 'org.created', null, { orgId: id, name: input.name })];
      await this.events.record(trx, events);
      return { org: (await orgsRepo.find(trx, id))!, events };
    });
    await this.events.publish(events);
    return org;
  }

  async update(id: number, input: Partial<OrgInput>, origin: Origin): Promise<Organization> {
    const { org, events } = await this.db.transaction(async (trx) => {
      const before = await orgsRepo.findForUpdate(trx, id);
      if (!before) throw Errors.orgNotFound();
      try {
        await orgsRepo.update(trx, id, input, Date.now());
      } catch (err) {
        throw uniqueViolation(err) === null ? err : Errors.orgExists();
      }
      const fields = (['name', 'description'] as const).filter((f) => input[f] !== undefined && input[f] !== before[f]);
      const events: UsherEvent[] = fields.length === 0 ? [] : [eventOf(origin, 'org.updated', null, { orgId: id, fields: fields.join(','), ...(input.name !== undefined && input.name !== before.name ? { from: before.name, to: input.name } : {}) })];
      await this.events.record(trx, events);
      return { org: (await orgsRepo.find(trx, id))!, events };
    });
    await this.events.publish(events);
    return org;
  }

  async remove(id: number, members: MembersOnDelete, origin: Origin): Promise<void> {
    const events = await this.db.transaction(async (trx) => {
      // Locked first: a member added meanwhile (its foreign key reads this row) waits for the deletion.
      const org = await orgsRepo.findForUpdate(trx, id);
      if (!org) throw Errors.orgNotFound();
      const count = await orgsRepo.countMembers(trx, id);
      if (count > 0 && members !== 'detach') throw Errors.orgInUse(`${org.name} has ${count} member${count === 1 ? '' : 's'}; delete it with ?members=detach to take them out of it.`);
      const detached = await orgsRepo.detachMembers(trx, id, Date.now());
      await orgsRepo.remove(trx, id);
      const events = [
        ...detached.map((userId) => eventOf(origin, 'user.org_changed', userId, { from: id, to: null, reason: 'org_deleted' })),
        eventOf(origin, 'org.deleted', null, { orgId: id, name: org.name, detached: detached.length }),
      ];
      await this.events.record(trx, events);
      return events;
    });
    await this.events.publish(events);
  }
}
