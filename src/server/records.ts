import type { TaskService } from '../core/task-service.js';
import type { StoredRecord } from '../contracts/task-store.js';

/** What a batch or run shares with its stored record. */
interface Recorded {
  id: string;
  tenant: string;
  createdAt: number;
  state: string;
}

/** Writes the record of a batch or run to the engine's store (nothing without one). */
export async function writeRecord(
  engine: Pick<TaskService, 'store'>,
  kind: StoredRecord['kind'],
  item: Recorded,
  data: unknown,
): Promise<void> {
  await engine.store?.putRecord({
    id: item.id,
    kind,
    tenant: item.tenant,
    createdAt: item.createdAt,
    state: item.state,
    data,
  });
}

/** The stored record of a batch or run, when the id is one of that kind and the store has it. */
export async function readRecord(
  engine: Pick<TaskService, 'store'>,
  kind: StoredRecord['kind'],
  id: string,
): Promise<StoredRecord | undefined> {
  const store = engine.store;
  if (!store || !id.startsWith(`${kind}_`)) return undefined;
  const record = await store.getRecord(id);
  return record?.kind === kind ? record : undefined;
}
