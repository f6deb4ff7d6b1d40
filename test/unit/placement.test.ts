import assert from 'node:assert/strict';
import { TorporError } from '../../lib/errors';
import { chooseHost, HostView } from '../../services/scheduler/src/domain/placement';

const host = (hostId: string, region: string, total: number, used: number, alive = true, images = ['default']): HostView => ({ hostId, region, memoryMbTotal: total, memoryMbUsed: used, alive, images });

describe('placement', () => {
  const hosts = [host('a', 'bog', 4096, 3000), host('b', 'bog', 4096, 1000), host('c', 'gdl', 8192, 0), host('d', 'bog', 8192, 0, false)];
  it('picks the live host of the region with the most free memory', () => assert.equal(chooseHost(hosts, 'bog', 512, 'default').hostId, 'b'));
  it('skips hosts without room', () => assert.equal(chooseHost([host('a', 'bog', 1024, 900), host('b', 'bog', 1024, 0)], 'bog', 512, 'default').hostId, 'b'));
  it('S1: can exclude the host a machine is moving away from', () => assert.equal(chooseHost([...hosts, host('e', 'bog', 2048, 0)], 'bog', 512, 'default', ['b']).hostId, 'e'));
  it('an unknown region is FAILED_PRECONDITION naming the regions that exist', () =>
    assert.throws(() => chooseHost(hosts, 'jnb', 256, 'default'), (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /jnb.*bog, gdl/.test(e.message)));
  it('no room anywhere is RESOURCE_EXHAUSTED with the most free memory', () =>
    assert.throws(() => chooseHost(hosts, 'gdl', 9000, 'default'), (e: unknown) => e instanceof TorporError && e.kind === 'resource_exhausted' && /8192 MiB/.test(e.message)));
  it('only dead hosts is FAILED_PRECONDITION', () => assert.throws(() => chooseHost([host('d', 'bog', 8192, 0, false)], 'bog', 256, 'default'), /unavailable/));
  it('only hosts that have built the image qualify; none is FAILED_PRECONDITION naming the images there and how to build one', () => {
    const two = [host('a', 'bog', 4096, 0, true, ['default']), host('b', 'bog', 1024, 0, true, ['default', 'slow-start'])];
    assert.equal(chooseHost(two, 'bog', 256, 'slow-start').hostId, 'b');
    assert.throws(() => chooseHost(two, 'bog', 256, 'nosuch'), (e: unknown) => e instanceof TorporError && e.kind === 'failed_precondition' && /image "nosuch" is not built on any host in region "bog" \(images there: default, slow-start\); build it with `torpor images build DIR --name nosuch`/.test(e.message));
  });
});
