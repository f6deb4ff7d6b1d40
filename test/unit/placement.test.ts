import assert from 'node:assert/strict';
import { TorporError } from '../../lib/errors';
import { chooseHost, HostView } from '../../services/scheduler/src/domain/placement';

const host = (hostId: string, region: string, total: number, used: number, alive = true): HostView => ({ hostId, region, memoryMbTotal: total, memoryMbUsed: used, alive });

describe('placement', () => {
  const hosts = [host('a', 'bog', 4096, 3000), host('b', 'bog', 4096, 1000), host('c', 'gdl', 8192, 0), host('d', 'bog', 8192, 0, false)];
  it('picks the live host of the region with the most free memory', () => assert.equal(chooseHost(hosts, 'bog', 512).hostId, 'b'));
  it('skips hosts without room', () => assert.equal(chooseHost([host('a', 'bog', 1024, 900), host('b', 'bog', 1024, 0)], 'bog', 512).hostId, 'b'));
  it('S1: can exclude the host a machine is moving away from', () => assert.equal(chooseHost([...hosts, host('e', 'bog', 2048, 0)], 'bog', 512, ['b']).hostId, 'e'));
  it('an unknown region is FAILED_PRECONDITION naming the regions that exist', () =>
    assert.throws(() => chooseHost(hosts, 'jnb', 256), (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /jnb.*bog, gdl/.test(e.message)));
  it('no room anywhere is RESOURCE_EXHAUSTED with the most free memory', () =>
    assert.throws(() => chooseHost(hosts, 'gdl', 9000), (e: unknown) => e instanceof TorporError && e.kind === 'resource_exhausted' && /8192 MiB/.test(e.message)));
  it('only dead hosts is FAILED_PRECONDITION', () => assert.throws(() => chooseHost([host('d', 'bog', 8192, 0, false)], 'bog', 256), /unavailable/));
});
